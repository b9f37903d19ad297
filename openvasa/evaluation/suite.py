"""`openvasa eval`: measure videos (and the real videos they imitate) and write the results.

    report = evaluate_videos(["a.mp4", "b.mp4"], references=["a_real.mp4", None], out_dir="ev")
    print(report.table())

`run_suite(pairs_file, out_dir)` first generates a video for every (portrait, audio
[, reference]) of a list, timing each stage, then evaluates them all in the same way.
Results: metrics.csv and metrics.json (one row per video, means per group), one PNG per video,
and for a suite speed.json.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from openvasa.errors import OpenvasaError
from openvasa.evaluation.metrics import VideoMetrics, compare_to_reference, video_metrics
from openvasa.evaluation.signals import FaceSignals, face_signals, speech_signals, video_audio
from openvasa.io.frames import atomic_write_bytes

PathLike = str | os.PathLike[str]
ProgressFn = Callable[[int, int], None]

# Columns of the printed table: (header, metric field, format).
TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("offset", "sync_offset_frames", "{:+.0f}"),
    ("sync r", "sync_correlation", "{:.3f}"),
    ("closed%", "silent_mouth_closed_pct", "{:.0f}"),
    ("ΔP", "delta_p_deg", "{:.3f}"),
    ("ΔP raw", "delta_p_raw_deg", "{:.3f}"),
    ("yaw°", "yaw_range_deg", "{:.1f}"),
    ("pitch°", "pitch_range_deg", "{:.1f}"),
    ("roll°", "roll_range_deg", "{:.1f}"),
    ("blink/min", "blinks_per_min", "{:.1f}"),
    ("jitter%", "jitter_pct", "{:.3f}"),
    ("drift%", "identity_drift_pct", "{:.2f}"),
    ("gaze err°", "gaze_error_deg", "{:.1f}"),
    ("dist err", "head_distance_error", "{:.3f}"),
    ("ref mouth", "ref_mouth_correlation", "{:.3f}"),
)


@dataclass
class Controls:
    """The controls a video was made with, for control-accuracy metrics (None: unknown)."""

    gaze_deg: tuple[float, float] | None = None
    head_distance: float | None = None
    # The framed portrait the video was made from, (H, W, 3) RGB in the video's pixels: gaze
    # is read against its eye model (else against the video's first frame).
    portrait_frame: np.ndarray | None = None


@dataclass
class EvaluationReport:
    """Metrics of every evaluated video; `group` is "generated" or "reference"."""

    rows: list[tuple[str, VideoMetrics]]
    speed: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def means(self) -> list[tuple[str, dict[str, float]]]:
        """Mean of every numeric metric per group (NaN-aware), as (group, values)."""
        out = []
        for group in ("generated", "reference"):
            dicts = [m.as_dict() for g, m in self.rows if g == group]
            if not dicts:
                continue
            values: dict[str, float] = {}
            for key, first in dicts[0].items():
                if isinstance(first, str):
                    continue
                column = np.array([float(d[key]) for d in dicts])
                finite = column[np.isfinite(column)]
                values[key] = float(finite.mean()) if len(finite) else math.nan
            out.append((group, values))
        return out

    def table(self) -> str:
        """The results as a fixed-width text table: one line per video, then group means."""
        lines = []
        name_width = max([len("video")] + [len(m.name) for _, m in self.rows] + [15]) + 2
        header = f"{'video':<{name_width}}" + "".join(f"{h:>11}" for h, _, _ in TABLE_COLUMNS)
        lines.append(header)
        lines.append("-" * len(header))

        def row(label: str, values: dict) -> str:
            cells = []
            for _, key, fmt in TABLE_COLUMNS:
                value = values.get(key, math.nan)
                cells.append(f"{'—' if not np.isfinite(value) else fmt.format(value):>11}")
            return f"{label:<{name_width}}" + "".join(cells)

        for group, metrics in self.rows:
            tag = "" if group == "generated" else " (ref)"
            lines.append(row(metrics.name + tag, metrics.as_dict()))
        means = self.means()
        if len(self.rows) > 1:
            lines.append("-" * len(header))
            for group, values in means:
                lines.append(row(f"mean {group}", values))
        if self.speed:
            lines.append("")
            lines.append(speed_text(self.speed))
        return "\n".join(lines)

    def write(self, out_dir: PathLike) -> list[Path]:
        """Write metrics.csv, metrics.json (and speed.json) into `out_dir`; their paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        records = [{"group": g, **m.as_dict()} for g, m in self.rows]
        records += [{"group": f"mean {g}", "name": "", **v} for g, v in self.means()]
        columns = list(records[0])
        text = io.StringIO()
        writer = csv.DictWriter(text, columns, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            writer.writerow({k: _csv_value(record.get(k, "")) for k in columns})
        written = [out / "metrics.csv", out / "metrics.json"]
        atomic_write_bytes(written[0], text.getvalue().encode())
        document = {"videos": records, "speed": self.speed, "warnings": self.warnings}
        atomic_write_bytes(written[1], json.dumps(_jsonable(document), indent=1).encode())
        if self.speed:
            written.append(out / "speed.json")
            atomic_write_bytes(written[2], json.dumps(_jsonable(self.speed), indent=1).encode())
        return written


def _csv_value(value: object) -> object:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return value


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def speed_text(speed: dict[str, float]) -> str:
    """Speed figures as lines of text."""
    parts = [
        f"speed over {speed.get('frames', 0):.0f} generated frames at "
        f"{speed.get('size', 0):.0f}x{speed.get('size', 0):.0f}: "
    ]
    stages = [
        (name, speed.get(f"{name}_fps"))
        for name in ("audio", "motion", "render", "encode", "end_to_end")
    ]
    parts.append(", ".join(f"{n} {v:.0f} fps" for n, v in stages if v is not None))
    parts.append(
        f"\nfirst frame after {1000 * speed.get('first_frame_latency_s', math.nan):.0f} ms "
        f"(offline: portrait analysis, audio, motion for the whole clip, one frame); "
        f"peak memory {speed.get('peak_rss_mb', math.nan):.0f} MB"
    )
    return "".join(parts)


def _signals(
    path: Path, progress: ProgressFn | None, model_frame: np.ndarray | None = None
) -> FaceSignals:
    return face_signals(path, progress=progress, model_frame=model_frame)


def evaluate_videos(
    generated: Sequence[PathLike],
    references: Sequence[PathLike | None] | None = None,
    *,
    audio: Sequence[PathLike | None] | None = None,
    controls: Sequence[Controls] | Controls | None = None,
    out_dir: PathLike | None = None,
    plots: bool = True,
    progress: Callable[[str], ProgressFn | None] | None = None,
) -> EvaluationReport:
    """Measure generated videos and, where given, the reference video of each.

    generated: video files. references: one per generated video (or None), the real video
    that used the same audio; each is measured like a generated one and compared with it.
    audio: audio file per video (default: the video's own audio track). controls: the gaze and
    head distance each video was made with, for control errors. out_dir: write metrics.csv,
    metrics.json and one PNG per video there. progress(description) gives a per-frame
    progress callback, or None.
    """
    paths = [Path(p) for p in generated]
    if not paths:
        raise OpenvasaError("Give at least one video to evaluate (--generated PATH …).")
    refs = list(references) if references is not None else [None] * len(paths)
    if len(refs) != len(paths):
        raise OpenvasaError(
            f"Give one reference video per generated video: {len(paths)} generated, "
            f"{len(refs)} references."
        )
    audios = list(audio) if audio is not None else [None] * len(paths)
    if len(audios) != len(paths):
        raise OpenvasaError(
            f"Give one audio file per generated video: {len(paths)} videos, {len(audios)} audio."
        )
    if controls is None or isinstance(controls, Controls):
        controls = [controls or Controls()] * len(paths)
    for path in [*paths, *(Path(r) for r in refs if r is not None)]:
        if not path.is_file():
            raise OpenvasaError(f"{path}: no such video file.")
    report = EvaluationReport([])
    names: set[str] = set()
    for path, ref, audio_path, ctl in zip(paths, refs, audios, controls, strict=True):
        bar = progress(path.name) if progress else None
        face = _signals(path, bar, ctl.portrait_frame)
        face.name = _unique(path.stem, names)
        clip = _audio(audio_path or path)
        speech = speech_signals(clip, face.fps, len(face)) if clip is not None else None
        if speech is None:
            report.warnings.append(f"{path.name} has no audio: lip-sync metrics are left out.")
        metrics, sync = video_metrics(
            face, speech, gaze_deg=ctl.gaze_deg, head_distance=ctl.head_distance
        )
        reference = None
        if ref is not None:
            ref_path = Path(ref)
            reference = _signals(ref_path, progress(ref_path.name) if progress else None)
            reference.name = _unique(ref_path.stem, names)
            ref_clip = _audio(ref_path) or clip
            ref_speech = (
                speech_signals(ref_clip, reference.fps, len(reference)) if ref_clip else None
            )
            ref_metrics, ref_sync = video_metrics(reference, ref_speech)
            for key, value in compare_to_reference(face, reference).items():
                setattr(metrics, key, value)
        report.rows.append(("generated", metrics))
        if reference is not None:
            report.rows.append(("reference", ref_metrics))
        if out_dir is not None and plots:
            from openvasa.evaluation.plots import plot_video

            plot_video(Path(out_dir) / f"{face.name}.png", face, speech, sync, reference)
            if reference is not None:
                plot_video(Path(out_dir) / f"{reference.name}.png", reference, ref_speech, ref_sync)
    if out_dir is not None:
        report.write(out_dir)
    return report


def _unique(name: str, taken: set[str]) -> str:
    candidate, i = name, 2
    while candidate in taken:
        candidate, i = f"{name}-{i}", i + 1
    taken.add(candidate)
    return candidate


def _audio(path: PathLike):
    from openvasa.audio import load_audio

    path = Path(path)
    if path.suffix.lower() in (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"):
        return video_audio(path)
    return load_audio(path)


# --- the suite: generate, then evaluate -----------------------------------------------------


@dataclass
class SuiteItem:
    """One line of a pairs file: what to generate, what to compare with, which controls."""

    portrait: Path
    audio: Path
    reference: Path | None = None
    gaze_deg: tuple[float, float] = (0.0, 0.0)
    head_distance: float = 1.0
    emotion: str = "neutral"
    seed: int = 0
    name: str = ""


def read_pairs(path: PathLike) -> list[SuiteItem]:
    """Read a pairs file; relative paths are relative to the file's folder.

    JSON (.json): a list of objects with "portrait", "audio" and optionally "reference",
    "gaze" [yaw, pitch], "head_distance", "emotion", "seed", "name".
    Otherwise text: one `portrait, audio[, reference]` per line (commas or tabs), `#` starts
    a comment, blank lines are skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise OpenvasaError(f"{path}: no such pairs file.")
    base = path.parent
    text = path.read_text(encoding="utf-8")
    items: list[SuiteItem] = []
    if path.suffix.lower() == ".json":
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as error:
            raise OpenvasaError(f"{path.name}: not valid JSON ({error.msg}).") from None
        if not isinstance(entries, list):
            raise OpenvasaError(f"{path.name}: must hold a list of {{portrait, audio}} objects.")
        for i, entry in enumerate(entries, 1):
            if not isinstance(entry, dict) or "portrait" not in entry or "audio" not in entry:
                raise OpenvasaError(f"{path.name}: entry {i} needs a portrait and an audio.")
            try:
                gaze = entry.get("gaze", (0.0, 0.0))
                items.append(
                    SuiteItem(
                        base / entry["portrait"],
                        base / entry["audio"],
                        base / entry["reference"] if entry.get("reference") else None,
                        (float(gaze[0]), float(gaze[1])),
                        float(entry.get("head_distance", 1.0)),
                        str(entry.get("emotion", "neutral")),
                        int(entry.get("seed", 0)),
                        str(entry.get("name", "")),
                    )
                )
            except (TypeError, ValueError, IndexError):
                raise OpenvasaError(f"{path.name}: entry {i} has a malformed value.") from None
    else:
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = [f.strip() for f in line.replace("\t", ",").split(",")]
            fields = [f for f in fields if f]
            if len(fields) not in (2, 3):
                raise OpenvasaError(
                    f"{path.name}, line {number}: expected `portrait, audio[, reference]`."
                )
            reference = base / fields[2] if len(fields) == 3 else None
            items.append(SuiteItem(base / fields[0], base / fields[1], reference))
    if not items:
        raise OpenvasaError(f"{path.name}: lists no (portrait, audio) pairs.")
    for item in items:
        for file in (item.portrait, item.audio, item.reference):
            if file is not None and not file.is_file():
                raise OpenvasaError(f"{path.name}: {file} does not exist.")
    return items


def run_suite(
    pairs: PathLike | Sequence[SuiteItem],
    out_dir: PathLike,
    *,
    size: int = 512,
    fps: float = 25.0,
    plots: bool = True,
    progress: Callable[[str], ProgressFn | None] | None = None,
) -> EvaluationReport:
    """Generate a video for every item of a pairs file (or list), then evaluate them all.

    Videos go to out_dir/clips/; metrics, plots and speed.json to out_dir. Speed is taken
    from the generation runs themselves: frames per second per stage over all clips, the
    first-frame latency (from the call to the first finished frame) and peak memory.
    """
    from openvasa.pipeline import Generator
    from openvasa.settings import Controls as GenerationControls
    from openvasa.settings import OutputSettings

    items = read_pairs(pairs) if isinstance(pairs, str | os.PathLike) else list(pairs)
    if not items:
        raise OpenvasaError("The suite has no (portrait, audio) pairs.")
    out = Path(out_dir)
    clips = out / "clips"
    generator = Generator(OutputSettings(size=size, fps=fps))
    totals = dict.fromkeys(("analysis", "audio", "motion", "render", "encode"), 0.0)
    frames = 0
    latencies = []
    videos, references, controls = [], [], []
    names: set[str] = set()
    for index, item in enumerate(items, 1):
        name = _unique(item.name or f"{index:02d}_{item.audio.stem}", names)
        video = clips / f"{name}.mp4"
        ctl = GenerationControls(
            gaze_deg=item.gaze_deg,
            head_distance=item.head_distance,
            emotion=item.emotion,
            seed=item.seed,
        )
        bar = progress(f"generating {name}") if progress else None
        first_frame_at: list[float] = []
        start = time.perf_counter()

        def on_frame(done: int, total: int, bar=bar, mark=first_frame_at, start=start) -> None:
            if not mark:
                mark.append(time.perf_counter() - start)
            if bar is not None:
                bar(done, total)

        result = generator.generate(
            item.portrait,
            item.audio,
            video,
            progress=on_frame,
            gaze_deg=ctl.gaze_deg,
            head_distance=ctl.head_distance,
            emotion=ctl.emotion,
            seed=ctl.seed,
        )
        latencies += first_frame_at
        frames += result.n_frames
        for stage in totals:
            totals[stage] += getattr(result.times, f"{stage}_s")
        videos.append(video)
        references.append(item.reference)
        framed = generator.prepare_portrait(
            item.portrait, head_distance=item.head_distance, size=size
        ).latent.image
        controls.append(Controls(item.gaze_deg, item.head_distance, framed))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    report = evaluate_videos(
        videos, references, controls=controls, out_dir=out, plots=plots, progress=progress
    )
    streaming = sum(totals[s] for s in ("audio", "motion", "render", "encode"))
    report.speed = {
        "size": float(size),
        "fps": float(fps),
        "clips": float(len(items)),
        "frames": float(frames),
        **{f"{stage}_s": seconds for stage, seconds in totals.items()},
        **{
            f"{stage}_fps": frames / seconds
            for stage, seconds in totals.items()
            if stage != "analysis" and seconds > 0
        },
        "end_to_end_fps": frames / streaming if streaming > 0 else math.nan,
        "first_frame_latency_s": float(np.median(latencies)) if latencies else math.nan,
        "peak_rss_mb": float(round(peak_mb)),
    }
    report.write(out)  # again, now with the speed figures
    return report
