"""`openvasa preprocess VIDEOS… --out DIR`: real talking videos → training shards.

Each video is tracked with the face mesh and encoded into motion latents with the latent
space's encoder (pose, 52 blendshapes, gaze per frame); its audio track becomes Whisper-base
features pooled to the video rate; the clip's conditions (main gaze, head distance, emotion)
are estimated from the clip itself. The list of videos is split by worker index so that a
cluster array job can run one slice per task (`--worker-index $SLURM_ARRAY_TASK_ID`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from openvasa.errors import OpenvasaError
from openvasa.motion.diffusion.data import save_shard
from openvasa.timing import frame_count


def my_share(videos: list[str], worker_index: int, workers: int) -> list[str]:
    """The videos this worker handles: every `workers`-th, starting at `worker_index`."""
    if not 0 <= worker_index < workers:
        raise OpenvasaError(f"Worker index {worker_index} must lie in [0, {workers}).")
    return sorted(videos)[worker_index::workers]


def preprocess_video(path: str | os.PathLike[str]) -> dict:
    """One video → motion (T, 60), audio features (T, 512) and its conditions."""
    from openvasa.evaluation.signals import face_signals, video_audio
    from openvasa.motion.diffusion.engine import audio_features

    signals = face_signals(path)
    audio = video_audio(path)
    if audio is None:
        raise OpenvasaError(f"{Path(path).name} has no audio track: it cannot teach lip sync.")
    keep = signals.found
    n = min(len(signals.pose), frame_count(audio.duration_s, signals.fps))
    motion = np.concatenate([signals.pose, signals.blendshapes, signals.gaze], 1)[:n]
    # Frames where the face was lost are filled from their neighbours.
    for column in range(motion.shape[1]):
        values = motion[:, column]
        good = keep[:n] & np.isfinite(values)
        if good.sum() >= 2:
            motion[:, column] = np.interp(np.arange(n), np.nonzero(good)[0], values[good])
    features = audio_features(audio, signals.fps)[:n]
    gaze = np.nanmedian(signals.gaze[:n], axis=0)
    # Head distance relative to openvasa's default framing (face 40 % of the frame width).
    width = np.nanmedian(signals.face_width_px[:n]) / signals.frame_size[0]
    return {
        "motion": motion.astype(np.float32),
        "audio_features": features,
        "fps": signals.fps,
        "gaze": np.nan_to_num(gaze),
        "head_distance": float(np.clip(0.4 / max(width, 1e-3), 0.5, 2.0)),
        # Emotion: the clip's mean expression beyond neutral, as a blendshape offset.
        "emotion": np.clip(np.median(signals.blendshapes[:n], axis=0), 0, 1),
    }


def preprocess(
    videos: list[str],
    out: str | os.PathLike[str],
    worker_index: int = 0,
    workers: int = 1,
    progress=None,
) -> Path:
    """Write this worker's share of `videos` as one shard in `out`; returns the shard path."""
    share = my_share(videos, worker_index, workers)
    if not share:
        raise OpenvasaError("This worker has no videos to preprocess.")
    clips = []
    for i, video in enumerate(share):
        clips.append(preprocess_video(video))
        if progress is not None:
            progress(i + 1, len(share))
    fps = {round(c["fps"], 3) for c in clips}
    if len(fps) > 1:
        raise OpenvasaError(
            f"The videos have different frame rates ({sorted(fps)}); convert them "
            "to one rate first."
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shard = out / f"videos_{worker_index:04d}_of_{workers:04d}.npz"
    save_shard(
        shard,
        [c["motion"] for c in clips],
        [c["audio_features"] for c in clips],
        np.array([c["gaze"] for c in clips]),
        np.array([c["head_distance"] for c in clips]),
        np.array([c["emotion"] for c in clips]),
        clips[0]["fps"],
    )
    return shard
