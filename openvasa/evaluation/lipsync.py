"""Lip sync against the real speaker: a real talking clip re-made from its first frame and its
own voice, and the generated mouth compared with the real one.

For each clip: portrait = the clip's first frame, audio = its own track; the motion engine
(the default diffusion model unless told otherwise) makes a video at the clip's own framing,
and the face mesh tracks both videos (`openvasa.evaluation.signals.face_signals`). Reported:

- mouth-opening correlation at the best lag within ±3 frames, and that lag (frames; > 0: the
  generated mouth moves later than the real one);
- M-LMD: the mean distance of the 40 lip landmarks between generated and real frames, each
  frame's lips centred on their own centroid and measured in face widths (×100: % of the
  face width), so head position and size do not count;
- bilabial closure recall, where the word times are known (GRID's `.align` files): the share
  of /p b m/ in the transcript at whose time the generated mouth closes. "Closed" is the real
  clip's own closed level (its 5th percentile of mouth opening) plus a quarter of its range
  to the 95th percentile; the real clip's recall under the same rule is reported beside it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from openvasa.errors import OpenvasaError
from openvasa.latent import topology as topo

PathLike = str | os.PathLike[str]

MAX_LAG_FRAMES = 3
_LIP_POINTS = sorted(
    set(topo.LIPS_OUTER_UPPER + topo.LIPS_OUTER_LOWER + topo.LIPS_INNER_UPPER)
    | set(topo.LIPS_INNER_LOWER)
)
# A bilabial counts as closed when the mouth is within this share of the real clip's
# closed-to-open range above its closed level, at some frame of its time window.
CLOSED_SHARE = 0.25
# Where a bilabial sits in its word, and the window (s) around that time in which the lips
# must meet: a word-initial stop closes just before and at the word's start in GRID's
# alignments; a final /m/ closes at the word's end.
_ONSET_WINDOW_S = (-0.10, 0.12)
_CODA_WINDOW_S = (-0.15, 0.05)
# GRID's 51-word vocabulary, the words with a bilabial (CMUdict: BIH1 N, P L EY1 S, B L UW1,
# B AY1, B IY1, P IY1, EH1 M, P L IY1 Z); none of the others has one.
GRID_BILABIALS: dict[str, str] = {
    "bin": "onset",
    "place": "onset",
    "blue": "onset",
    "by": "onset",
    "b": "onset",
    "p": "onset",
    "please": "onset",
    "m": "coda",
}
ALIGN_UNITS_PER_S = 25_000.0


@dataclass
class ClipLipSync:
    """One clip's figures (see the module docstring)."""

    name: str
    group: str
    frames: int
    correlation: float
    lag_frames: int
    correlation_at_zero: float
    m_lmd_pct: float
    bilabials: int = 0
    bilabial_recall: float = float("nan")
    real_bilabial_recall: float = float("nan")
    # Live motion only: median frame-to-frame speed across window joins over that inside
    # windows (1: no seam).
    join_speed_ratio: float = float("nan")
    real_mouth: list[float] = field(default_factory=list, repr=False)
    generated_mouth: list[float] = field(default_factory=list, repr=False)


def read_align(path: PathLike) -> list[tuple[float, float, str]]:
    """GRID `.align` file → [(start_s, end_s, word)], silences included as "sil"."""
    words = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise OpenvasaError(f"{Path(path).name} line {number} is not `START END WORD`.")
        start, end, word = parts
        words.append((int(start) / ALIGN_UNITS_PER_S, int(end) / ALIGN_UNITS_PER_S, word))
    return words


def bilabial_windows(words: Sequence[tuple[float, float, str]]) -> list[tuple[float, float]]:
    """The (start_s, end_s) windows in which the lips must close for a bilabial."""
    windows = []
    for start, end, word in words:
        where = GRID_BILABIALS.get(word.lower())
        if where == "onset":
            windows.append((start + _ONSET_WINDOW_S[0], start + _ONSET_WINDOW_S[1]))
        elif where == "coda":
            windows.append((end + _CODA_WINDOW_S[0], end + _CODA_WINDOW_S[1]))
    return windows


def closure_recall(
    mouth: np.ndarray, fps: float, windows: Sequence[tuple[float, float]], closed_level: float
) -> float:
    """Share of `windows` (s) in which the mouth opening drops to `closed_level` or below."""
    if not windows:
        return float("nan")
    hits = 0
    for start, end in windows:
        a = max(0, int(np.floor(start * fps)))
        b = min(len(mouth), int(np.ceil(end * fps)) + 1)
        segment = mouth[a:b]
        hits += bool(len(segment) and np.nanmin(segment) <= closed_level)
    return hits / len(windows)


def _filled(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, np.float64)
    good = np.isfinite(values)
    if good.all() or good.sum() < 2:
        return np.nan_to_num(values)
    frames = np.arange(len(values))
    return np.interp(frames, frames[good], values[good])


def best_lag_correlation(
    generated: np.ndarray, real: np.ndarray, max_lag: int = MAX_LAG_FRAMES
) -> tuple[float, int, float]:
    """(best correlation, its lag, correlation at lag 0) of generated[t + lag] with real[t]."""
    n = min(len(generated), len(real))
    generated, real = generated[:n], real[:n]
    results = {}
    for lag in range(-max_lag, max_lag + 1):
        a = generated[lag:] if lag >= 0 else generated[:lag]
        b = real[: n - lag] if lag >= 0 else real[-lag:]
        if len(a) < 3 or a.std() < 1e-12 or b.std() < 1e-12:
            results[lag] = float("nan")
        else:
            results[lag] = float(np.corrcoef(a, b)[0, 1])
    finite = {k: v for k, v in results.items() if np.isfinite(v)}
    if not finite:
        return float("nan"), 0, float("nan")
    lag = max(finite, key=finite.get)
    return finite[lag], lag, results[0]


def mouth_landmark_distance(generated, real) -> float:
    """M-LMD in % of the face width between two `FaceSignals` (frames both cover)."""
    n = min(len(generated), len(real))

    def lips(signals):
        points = signals.landmarks[:n, _LIP_POINTS, :2]
        centred = points - points.mean(axis=1, keepdims=True)
        return centred / signals.face_width_px[:n, None, None]

    distance = np.linalg.norm(lips(generated) - lips(real), axis=2).mean(axis=1)
    return float(100.0 * np.nanmean(distance)) if np.isfinite(distance).any() else float("nan")


def join_speed_ratio(motion, stride: int) -> float:
    """Median frame-to-frame speed (pose, blendshapes, gaze) from each window's last frame to
    the next window's first, over the median inside windows; windows of `stride` frames."""
    channels = np.concatenate([motion.pose, motion.blendshapes, motion.gaze], axis=1)
    speed = np.abs(np.diff(channels, axis=0)).sum(axis=1)
    joins = np.arange(stride - 1, len(speed), stride)
    inside = np.setdiff1d(np.arange(len(speed)), joins)
    if not len(joins) or not len(inside):
        return float("nan")
    return float(np.median(speed[joins]) / max(np.median(speed[inside]), 1e-12))


def first_frame(video: PathLike) -> np.ndarray:
    from openvasa.io.video import iter_video_frames

    for frame in iter_video_frames(video):
        return np.ascontiguousarray(frame)
    raise OpenvasaError(f"{Path(video).name} has no video frames.")


class LipSyncEvaluator:
    """Re-makes real clips from their first frame and voice, and compares the mouths.

    checkpoint: motion model (None: the shipped one); engine: the motion engine; seed: the
    generation seed (the same for every clip). live: the motion a live stream makes from the
    voice as it arrives (`Generator.live_motion`: short windows, a few frames of look-ahead)
    instead of the offline motion. cfg_audio: the offline sampler's audio guidance (None:
    the default).
    """

    def __init__(
        self,
        checkpoint: str | None = None,
        engine: str = "diffusion",
        seed: int = 0,
        live: bool = False,
        cfg_audio: float | None = None,
    ):
        from openvasa.face.detect import default_analyzer

        self.checkpoint = checkpoint
        self.engine = engine
        self.seed = seed
        self.live = live
        self.cfg_audio = cfg_audio
        self.analyzer = default_analyzer()
        self._generators: dict[tuple[int, float], object] = {}

    def _generator(self, size: int, fps: float):
        from openvasa.pipeline import Generator
        from openvasa.settings import DiffusionOptions, OutputSettings

        key = (size, round(fps, 3))
        if key not in self._generators:
            diffusion = DiffusionOptions(checkpoint=self.checkpoint)
            if self.cfg_audio is not None:
                diffusion = replace(diffusion, cfg_audio=self.cfg_audio)
            settings = OutputSettings(
                fps=fps,
                size=size,
                framing="native",
                engine=self.engine,
                diffusion=diffusion,
            )
            self._generators[key] = Generator(settings, analyzer=self.analyzer)
        return self._generators[key]

    def _live_video(self, generator, image: np.ndarray, audio, out: Path) -> float:
        """Write the live stream's video of `audio` to `out`; returns its join speed ratio."""
        from openvasa.pipeline import StageTimes
        from openvasa.settings import Controls

        portrait = generator.prepare_portrait(image)
        controls = Controls(seed=self.seed, head_distance=portrait.latent.framing.head_distance)
        motion = generator.live_motion(portrait, audio, controls)
        generator.write_outputs(portrait, motion, audio, out, None, None, StageTimes())
        settings = getattr(generator.live_engine(), "settings", None)
        stride = getattr(settings, "live_stride", 1)  # diffusion windows; energy: per frame
        return join_speed_ratio(motion, stride)

    def clip(self, video: PathLike, align: PathLike | None = None) -> ClipLipSync:
        """The figures of one real clip; `align` (default: the `.align` beside it, if any)."""
        from openvasa.evaluation.signals import face_signals, video_audio
        from openvasa.io.video import probe_media

        video = Path(video)
        info = probe_media(video)
        audio = video_audio(video)
        if audio is None:
            raise OpenvasaError(f"{video.name} has no audio track: nothing to sync with.")
        real = face_signals(video, analyzer=self.analyzer, refine_iris=False)
        size = max(info.width, info.height)
        size += size % 2
        generator = self._generator(size, info.fps)
        with tempfile.TemporaryDirectory() as tmp:
            made = Path(tmp) / f"{video.stem}.mp4"
            join_ratio = float("nan")
            if self.live:
                join_ratio = self._live_video(generator, first_frame(video), audio, made)
            else:
                generator.generate(first_frame(video), audio, made, seed=self.seed)
            generated = face_signals(made, analyzer=self.analyzer, refine_iris=False)
        real_mouth = _filled(real.mouth_open)
        made_mouth = _filled(generated.mouth_open)
        n = min(len(real_mouth), len(made_mouth))
        real_mouth, made_mouth = real_mouth[:n], made_mouth[:n]
        correlation, lag, at_zero = best_lag_correlation(made_mouth, real_mouth)
        result = ClipLipSync(
            name=video.stem,
            group=video.parent.name,
            frames=n,
            correlation=correlation,
            lag_frames=lag,
            correlation_at_zero=at_zero,
            m_lmd_pct=mouth_landmark_distance(generated, real),
            join_speed_ratio=join_ratio,
            real_mouth=[round(float(v), 5) for v in real_mouth],
            generated_mouth=[round(float(v), 5) for v in made_mouth],
        )
        align = Path(align) if align is not None else video.with_suffix(".align")
        if align.is_file():
            windows = bilabial_windows(read_align(align))
            low, high = np.percentile(real_mouth, [5, 95])
            closed = low + CLOSED_SHARE * (high - low)
            result.bilabials = len(windows)
            result.bilabial_recall = closure_recall(made_mouth, real.fps, windows, closed)
            result.real_bilabial_recall = closure_recall(real_mouth, real.fps, windows, closed)
        return result


@dataclass
class LipSyncReport:
    clips: list[ClipLipSync]

    def groups(self) -> dict[str, list[ClipLipSync]]:
        out: dict[str, list[ClipLipSync]] = {}
        for clip in self.clips:
            out.setdefault(clip.group, []).append(clip)
        return out

    @staticmethod
    def summary(clips: Sequence[ClipLipSync]) -> dict[str, float]:
        """Means over clips; recall pooled over all bilabials."""
        bilabials = sum(c.bilabials for c in clips)

        def pooled(key):
            if not bilabials:
                return float("nan")
            return sum(getattr(c, key) * c.bilabials for c in clips if c.bilabials) / bilabials

        return {
            "clips": len(clips),
            "correlation": float(np.nanmean([c.correlation for c in clips])),
            "lag_frames": float(np.mean([c.lag_frames for c in clips])),
            "correlation_at_zero": float(np.nanmean([c.correlation_at_zero for c in clips])),
            "m_lmd_pct": float(np.nanmean([c.m_lmd_pct for c in clips])),
            "bilabials": bilabials,
            "bilabial_recall": pooled("bilabial_recall"),
            "real_bilabial_recall": pooled("real_bilabial_recall"),
            "join_speed_ratio": float(np.nanmean([c.join_speed_ratio for c in clips]))
            if any(np.isfinite(c.join_speed_ratio) for c in clips)
            else float("nan"),
        }

    def table(self, per_clip: bool = True) -> str:
        """A Markdown table: one row per clip (optional), per group, and the mean."""
        head = (
            "| clip | frames | mouth r (best lag) | lag (frames) | r at lag 0 | M-LMD (% face) "
            "| bilabial recall (real) |\n|---|---|---|---|---|---|---|"
        )

        def recall(value, real, count):
            return "–" if not count else f"{value:.2f} ({real:.2f}) of {count}"

        rows = [head]
        if per_clip:
            for c in self.clips:
                rows.append(
                    f"| {c.group}/{c.name} | {c.frames} | {c.correlation:.3f} | {c.lag_frames:+d} "
                    f"| {c.correlation_at_zero:.3f} | {c.m_lmd_pct:.2f} | "
                    f"{recall(c.bilabial_recall, c.real_bilabial_recall, c.bilabials)} |"
                )
        parts = list(self.groups().items())
        if len(parts) > 1 or not per_clip:
            parts.append(("mean", self.clips))
        for name, clips in parts:
            s = self.summary(clips)
            label = f"**{name}** ({s['clips']} clips)"
            rows.append(
                f"| {label} | | **{s['correlation']:.3f}** | {s['lag_frames']:+.1f} "
                f"| {s['correlation_at_zero']:.3f} | {s['m_lmd_pct']:.2f} | "
                f"{recall(s['bilabial_recall'], s['real_bilabial_recall'], s['bilabials'])} |"
            )
        joins = self.summary(self.clips)["join_speed_ratio"]
        if np.isfinite(joins):
            rows.append(
                f"\nLive window joins: median speed across joins / inside windows = {joins:.2f} "
                "(1: no seam)."
            )
        return "\n".join(rows)

    def write(self, out_dir: PathLike) -> Path:
        """lipsync.json (every figure and both mouth tracks per clip); returns its path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        data = {
            "clips": [asdict(c) for c in self.clips],
            "groups": {k: self.summary(v) for k, v in self.groups().items()},
            "mean": self.summary(self.clips),
        }
        path = out / "lipsync.json"
        tmp = path.with_name(".lipsync.json.tmp")
        tmp.write_text(json.dumps(data, indent=1, allow_nan=True))
        tmp.replace(path)
        return path


def evaluate_lip_sync(
    videos: Sequence[PathLike],
    *,
    checkpoint: str | None = None,
    engine: str = "diffusion",
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> LipSyncReport:
    """Figures for every real clip in `videos` (see the module docstring)."""
    if not videos:
        raise OpenvasaError("Give the real talking clips to compare with.")
    evaluator = LipSyncEvaluator(checkpoint, engine, seed)
    clips = []
    for i, video in enumerate(videos):
        clips.append(evaluator.clip(video))
        if progress is not None:
            progress(i + 1, len(videos))
    return LipSyncReport(clips)


def plot_mouths(
    clip: ClipLipSync,
    path: PathLike,
    fps: float = 25.0,
    title: str = "",
    others: dict[str, Sequence[float]] | None = None,
) -> None:
    """PNG of the real and the generated mouth opening of one clip over time; `others`:
    more generated tracks to draw, by label (e.g. another model's)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real = np.asarray(clip.real_mouth)
    made = np.asarray(clip.generated_mouth)
    t = np.arange(len(real)) / fps
    fig, ax = plt.subplots(figsize=(8, 2.6), dpi=110)
    ax.plot(t, real, color="black", label="real speaker")
    ax.plot(t, made, color="tab:red", label="generated")
    for i, (label, values) in enumerate((others or {}).items()):
        ax.plot(
            t[: len(values)],
            np.asarray(values)[: len(t)],
            color=f"C{i + 2}",
            alpha=0.7,
            linestyle="--",
            label=label,
        )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mouth opening (face widths)")
    ax.set_title(
        title
        or f"{clip.group}/{clip.name}: r = {clip.correlation:.2f} at lag {clip.lag_frames:+d}",
        fontsize=9,
    )
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = Path(path).with_name(f".{Path(path).stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def add_lipsync_parser(sub) -> None:
    """`openvasa eval lipsync VIDEOS… --out DIR`."""
    import argparse

    parser = sub.add_parser(
        "lipsync",
        help="re-make real talking clips from their first frame and voice; compare the mouths",
        description="For each real clip: portrait = its first frame, audio = its own voice; "
        "generate with the motion engine and compare the generated mouth with the real one "
        "(mouth-opening correlation at the best lag within ±3 frames, the lag, M-LMD in %% "
        "of the face width, bilabial closure recall where a GRID .align file lies beside "
        "the clip). Prints a table; writes lipsync.json (and plots) to --out.",
    )
    parser.add_argument("videos", nargs="+", type=Path, metavar="VIDEO")
    parser.add_argument("--out", type=Path, metavar="DIR", default=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help="motion model checkpoint (default: the shipped one)")
    parser.add_argument("--engine", default="diffusion", help="motion engine (default diffusion)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-plots", action="store_true", default=argparse.SUPPRESS)
    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS)


def cmd_lipsync(args) -> int:
    from openvasa.console import progress_bar

    if args.out is None:
        raise OpenvasaError("Say where to write the results: --out DIR.")
    missing = [str(v) for v in args.videos if not Path(v).is_file()]
    if missing:
        raise OpenvasaError(f"No such video: {missing[0]}.")
    update, bar = progress_bar(not args.quiet, "lip sync", unit="clip")
    try:
        report = evaluate_lip_sync(
            args.videos,
            checkpoint=args.checkpoint,
            engine=args.engine,
            seed=args.seed,
            progress=update,
        )
    finally:
        if bar is not None:
            bar.close()
    path = report.write(args.out)
    if not args.no_plots:
        for clip in report.clips:
            plot_mouths(clip, Path(args.out) / f"{clip.group}_{clip.name}_mouth.png")
    print(report.table())
    print(f"wrote {path}" + ("" if args.no_plots else " and plots"))
    return 0
