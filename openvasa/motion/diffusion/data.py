"""Training data for the motion generator: clips of motion latents with audio features.

A dataset is a folder of `.npz` shards. Each shard holds one or more clips, concatenated:

    motion          (T, 60) float32  [pose 6, ARKit blendshapes 52, gaze 2] per video frame
    audio_features  (T, A)  float16  audio features pooled to the video frame rate
    clip_starts     (N + 1,) int64   frame where each clip starts, and the total T
    gaze            (N, 2)  float32  main gaze direction of each clip, degrees
    head_distance   (N,)    float32  1.0 = default framing
    emotion         (N, 52) float32  the clip's emotion as a blendshape offset
    fps             ()      float32
    clip_names      (N,)    str      optional: each clip's source (the video's file name)
    real            (N,)    bool     optional: tracked from a real video (`preprocess`), not
                                     made by the teacher
    samples         (S,)    int16    optional: the clips' audio, 16 kHz mono, as their features
                                     were computed from it (live students are trained on the
                                     features a live stream computes: `live_features`)
    sample_starts   (N + 1,) int64   where each clip's audio starts in `samples`

`openvasa corpus build` and `openvasa preprocess` write this layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from openvasa.errors import OpenvasaError
from openvasa.motion.diffusion.model import MOTION_DIM

POSE_DIMS = slice(0, 6)


@dataclass
class MotionClips:
    """All clips of a dataset in memory, with pose made relative to each clip's mean."""

    motion: np.ndarray  # (T, 60) float32
    audio: np.ndarray  # (T, A) float16
    clip_starts: np.ndarray  # (N + 1,)
    gaze: np.ndarray  # (N, 2)
    head_distance: np.ndarray  # (N,)
    emotion: np.ndarray  # (N, 52)
    fps: float
    names: np.ndarray | None = None  # (N,) str, each clip's source
    real: np.ndarray | None = None  # (N,) bool, tracked from a real video
    voices: list | None = None  # N × (S,) int16 16 kHz audio of each clip, None where unknown

    def __post_init__(self):
        if self.names is None:
            self.names = np.array([f"clip{i:05d}" for i in range(self.n_clips)])
        if self.real is None:
            self.real = np.zeros(self.n_clips, bool)
        if self.voices is None:
            self.voices = [None] * self.n_clips

    @property
    def n_clips(self) -> int:
        return len(self.clip_starts) - 1

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-dimension mean and standard deviation of the motion (floored)."""
        mean = self.motion.mean(0)
        std = np.maximum(self.motion.std(0), 1e-2)
        return mean.astype(np.float32), std.astype(np.float32)


def to_int16(samples: np.ndarray) -> np.ndarray:
    """16 kHz float samples in [-1, 1] as the int16 a shard stores."""
    return np.round(np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)


def from_int16(samples: np.ndarray) -> np.ndarray:
    """A shard's int16 audio as float32 samples in [-1, 1] (the inverse of `to_int16`)."""
    return samples.astype(np.float32) / 32767


def relative_pose(motion: np.ndarray) -> np.ndarray:
    """Pose relative to the clip's own mean: the generator learns motion, not framing."""
    out = motion.copy()
    out[:, POSE_DIMS] -= motion[:, POSE_DIMS].mean(0)
    return out


def load_clips(folder: str | Path | list) -> MotionClips:
    """Read every shard of a dataset folder (this layout, or a corpus from `openvasa corpus
    build`, recognised by its manifest.json), or of several folders (a list), joined.

    Raises OpenvasaError naming the shard and clip when a value is not finite."""
    if isinstance(folder, list | tuple):
        if len(folder) == 1:
            return load_clips(folder[0])
        return join_clips([load_clips(f) for f in folder])
    folder = Path(folder)
    if (folder / "manifest.json").is_file():
        return clips_from_corpus(folder)
    shards = sorted(folder.glob("*.npz")) if folder.is_dir() else []
    if not shards:
        raise OpenvasaError(
            f"No training shards (*.npz) in {folder}: build a corpus with "
            "`openvasa corpus build` or `openvasa preprocess`."
        )
    keys = ("motion", "audio", "gaze", "distance", "emotion", "names", "real", "voices")
    parts: dict[str, list] = {k: [] for k in keys}
    starts = [0]
    fps = None
    for shard in shards:
        with np.load(shard) as data:
            shard_fps = float(data["fps"])
            if fps is not None and abs(shard_fps - fps) > 1e-3:
                raise OpenvasaError(f"{shard.name} is at {shard_fps:g} fps, the others at {fps:g}.")
            fps = shard_fps
            motion = data["motion"].astype(np.float32)
            if motion.shape[1] != MOTION_DIM:
                raise OpenvasaError(
                    f"{shard.name}: motion has {motion.shape[1]} columns, not {MOTION_DIM}."
                )
            clip_starts = data["clip_starts"]
            n = len(clip_starts) - 1
            names = (
                data["clip_names"].astype(str)
                if "clip_names" in data.files
                else np.array([f"{shard.stem}:{i}" for i in range(n)])
            )
            audio = data["audio_features"]
            per_clip = {k: data[k] for k in ("gaze", "head_distance", "emotion")}
            for i, (a, b) in enumerate(zip(clip_starts[:-1], clip_starts[1:], strict=True)):
                bad = [
                    what
                    for what, values in (
                        ("motion", motion[a:b]),
                        ("audio features", audio[a:b]),
                        *((k.replace("_", " "), v[i]) for k, v in per_clip.items()),
                    )
                    if not np.isfinite(np.asarray(values, np.float32)).all()
                ]
                if bad:
                    raise OpenvasaError(
                        f"{shard.name}: clip {names[i]} has non-finite {', '.join(bad)}; "
                        "preprocess it again or leave it out."
                    )
                parts["motion"].append(relative_pose(motion[a:b]))
                starts.append(starts[-1] + int(b - a))
            parts["audio"].append(audio.astype(np.float16))
            parts["gaze"].append(data["gaze"].astype(np.float32))
            parts["distance"].append(data["head_distance"].astype(np.float32))
            parts["emotion"].append(data["emotion"].astype(np.float32))
            parts["names"].append(names)
            parts["real"].append(
                data["real"].astype(bool) if "real" in data.files else np.zeros(n, bool)
            )
            if "samples" in data.files:
                samples, edges = data["samples"], data["sample_starts"]
                parts["voices"].append([samples[edges[i] : edges[i + 1]] for i in range(n)])
            else:
                parts["voices"].append([None] * n)
    return MotionClips(
        np.concatenate(parts["motion"]),
        np.concatenate(parts["audio"]),
        np.array(starts),
        np.concatenate(parts["gaze"]),
        np.concatenate(parts["distance"]),
        np.concatenate(parts["emotion"]),
        fps,
        np.concatenate(parts["names"]),
        np.concatenate(parts["real"]),
        [voice for shard in parts["voices"] for voice in shard],
    )


def select_clips(clips: MotionClips, indices) -> MotionClips:
    """The clips `indices` of a dataset (in the dataset's order), as a dataset."""
    indices = np.sort(np.asarray(indices, np.int64))
    rows = np.concatenate(
        [np.arange(clips.clip_starts[i], clips.clip_starts[i + 1]) for i in indices]
    )
    lengths = np.diff(clips.clip_starts)[indices]
    return MotionClips(
        clips.motion[rows],
        clips.audio[rows],
        np.concatenate([[0], np.cumsum(lengths)]),
        clips.gaze[indices],
        clips.head_distance[indices],
        clips.emotion[indices],
        clips.fps,
        clips.names[indices],
        clips.real[indices],
        [clips.voices[i] for i in indices],
    )


def join_clips(datasets: list[MotionClips]) -> MotionClips:
    """Several datasets (at one frame rate, one audio feature size) as one."""
    fps = {round(d.fps, 3) for d in datasets}
    if len(fps) > 1:
        raise OpenvasaError(f"The datasets have different frame rates ({sorted(fps)}).")
    dims = {d.audio.shape[1] for d in datasets}
    if len(dims) > 1:
        raise OpenvasaError(f"The datasets have different audio feature sizes ({sorted(dims)}).")
    starts = [0]
    for d in datasets:
        starts.extend(starts[-1] + d.clip_starts[1:])
    return MotionClips(
        np.concatenate([d.motion for d in datasets]),
        np.concatenate([d.audio for d in datasets]),
        np.array(starts),
        np.concatenate([d.gaze for d in datasets]),
        np.concatenate([d.head_distance for d in datasets]),
        np.concatenate([d.emotion for d in datasets]),
        datasets[0].fps,
        np.concatenate([d.names for d in datasets]),
        np.concatenate([d.real for d in datasets]),
        [voice for d in datasets for voice in d.voices],
    )


def save_shard(
    path: str | Path,
    motions: list[np.ndarray],
    audio_features: list[np.ndarray],
    gaze: np.ndarray,
    head_distance: np.ndarray,
    emotion: np.ndarray,
    fps: float,
    names: list[str] | None = None,
    real: bool = False,
    voices: list[np.ndarray] | None = None,
) -> None:
    """Write clips as one shard (temp file, then rename). names: each clip's source;
    real: the clips were tracked from real videos; voices: each clip's 16 kHz int16 audio."""
    path = Path(path)
    extra = {"real": np.full(len(motions), real)}
    if names is not None:
        extra["clip_names"] = np.array(names, dtype=str)
    if voices is not None:
        extra["samples"] = np.concatenate(voices).astype(np.int16)
        extra["sample_starts"] = np.cumsum([0] + [len(v) for v in voices])
    starts = np.cumsum([0] + [len(m) for m in motions])
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez(
        tmp,
        motion=np.concatenate(motions).astype(np.float32),
        audio_features=np.concatenate(audio_features).astype(np.float16),
        clip_starts=starts,
        gaze=np.asarray(gaze, np.float32),
        head_distance=np.asarray(head_distance, np.float32),
        emotion=np.asarray(emotion, np.float32),
        fps=np.float32(fps),
        **extra,
    )
    tmp.replace(path)


class WindowSampler:
    """Random training windows: context (K frames before) + window (W frames)."""

    def __init__(
        self,
        clips: MotionClips,
        window: int,
        context: int,
        seed: int,
        real_fraction: float | None = None,
    ):
        """real_fraction: the share of windows drawn from real clips when the data holds
        both kinds (None: as many as their frames' share)."""
        self.clips = clips
        self.window = window
        self.context = context
        self.rng = np.random.default_rng(seed)
        lengths = np.diff(clips.clip_starts)
        self.usable = np.nonzero(lengths >= window)[0]
        if len(self.usable) == 0:
            raise OpenvasaError(f"Every clip is shorter than one window ({window} frames).")
        weights = (lengths[self.usable] - window + 1).astype(np.float64)
        real = clips.real[self.usable]
        if real_fraction is not None and real.any() and not real.all():
            if not 0.0 <= real_fraction <= 1.0:
                raise OpenvasaError(f"The real-data fraction {real_fraction} is not in [0, 1].")
            weights[real] *= real_fraction / weights[real].sum()
            weights[~real] *= (1.0 - real_fraction) / weights[~real].sum()
        self.p = weights / weights.sum()

    def batch(self, size: int) -> dict[str, np.ndarray]:
        c, w, k = self.clips, self.window, self.context
        clips = self.rng.choice(self.usable, size=size, p=self.p)
        out = {
            "motion": np.zeros((size, w, MOTION_DIM), np.float32),
            "audio": np.zeros((size, w, c.audio.shape[1]), np.float32),
            "context_motion": np.zeros((size, k, MOTION_DIM), np.float32),
            "context_audio": np.zeros((size, k, c.audio.shape[1]), np.float32),
            "has_context": np.zeros(size, bool),
            "gaze": c.gaze[clips] / 30.0,
            "distance": (c.head_distance[clips] - 1.0)[:, None],
            "emotion": c.emotion[clips],
            "real": c.real[clips],
            "start": np.zeros(size, np.int64),  # each window's first frame in `clips.motion`
        }
        for i, clip in enumerate(clips):
            first, last = c.clip_starts[clip], c.clip_starts[clip + 1]
            start = self.rng.integers(first, last - w + 1)
            out["start"][i] = start
            out["motion"][i] = c.motion[start : start + w]
            out["audio"][i] = c.audio[start : start + w]
            if start - k >= first:
                out["context_motion"][i] = c.motion[start - k : start]
                out["context_audio"][i] = c.audio[start - k : start]
                out["has_context"][i] = True
        return out


def clips_from_corpus(folder: str | Path) -> MotionClips:
    """Turn a teacher corpus (`openvasa corpus build`) into training clips: motion latents
    with Whisper features pooled to the video rate and each clip's conditions."""
    from openvasa.corpus.reader import iter_corpus_clips
    from openvasa.motion.diffusion.features import pool_to_frames
    from openvasa.motion.emotion import emotion_offset

    motions, audio, gaze, distance, emotion, voices = [], [], [], [], [], []
    fps = None
    for clip in iter_corpus_clips(folder):
        if clip.whisper is None:
            raise OpenvasaError(
                f"The corpus in {folder} was built without Whisper features; "
                "rebuild it with them to train the motion generator."
            )
        motion = clip.motion
        fps = motion.fps
        conditions = clip.record.get("conditions", clip.record)
        motions.append(
            relative_pose(np.concatenate([motion.pose, motion.blendshapes, motion.gaze], 1))
        )
        audio.append(pool_to_frames(clip.whisper, 50.0, fps, len(motion)).astype(np.float16))
        voices.append(to_int16(clip.audio.samples))
        gaze.append(conditions["gaze_deg"])
        distance.append(conditions["head_distance"])
        emotion.append(emotion_offset(conditions["emotion"], conditions["emotion_strength"] or 1.0))
    if not motions:
        raise OpenvasaError(f"The corpus in {folder} has no clips.")
    starts = np.cumsum([0] + [len(m) for m in motions])
    return MotionClips(
        np.concatenate(motions).astype(np.float32),
        np.concatenate(audio),
        starts,
        np.array(gaze, np.float32),
        np.array(distance, np.float32),
        np.array(emotion, np.float32),
        float(fps),
        voices=voices,
    )
