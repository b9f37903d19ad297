"""`openvasa preprocess VIDEOS… --out DIR`: real talking videos → training shards.

Each video is tracked with the face mesh and encoded into motion latents with the latent
space's encoder (pose, 52 blendshapes, gaze per frame); its audio track becomes Whisper-base
features pooled to the video rate; the clip's conditions (main gaze, head distance, emotion)
are estimated from the clip itself. Clips run in `jobs` worker processes; every
`clips_per_shard` input videos make one shard, so an interrupted run resumes where it stopped.
A clip that cannot teach (no audio, face lost too often, a non-finite value) is skipped with
a one-line reason and the run goes on. The list of videos is also split by worker index so
that a cluster array job can run one slice per task (`--worker-index $SLURM_ARRAY_TASK_ID`).

`augment=K` adds K copies of every clip whose voice is heard as another recording would
carry it (`augmented_copy`), in a shard beside each one (`…_aug{K}.npz`); the tracked motion
is read back from the first shard, so augmenting finished shards tracks nothing again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from openvasa.audio.load import Audio
from openvasa.errors import OpenvasaError
from openvasa.motion.diffusion.data import save_shard, to_int16
from openvasa.timing import frame_count

# A clip whose face the tracker finds in fewer of its frames than this is skipped: the
# gaps would be filled with guesses, not motion.
MIN_FACE_FRACTION = 0.9
# Shorter clips hold no training window (the model's windows are 50 frames).
MIN_FRAMES = 50
CLIPS_PER_SHARD = 50
# BLAS libraries start a thread per core in every process; with one process per core they
# spin against each other (the encoder's least-squares fits ran 4x slower on a busy machine).
_ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


class SkippedClip(OpenvasaError):
    """A clip that cannot be used for training; the message says why in one line."""


def _shuffle_key(video: str) -> str:
    return hashlib.sha1(str(video).encode()).hexdigest()


def my_share(videos: list[str], worker_index: int, workers: int) -> list[str]:
    """The videos this worker handles: every `workers`-th, starting at `worker_index`, in
    an order fixed by their names' hashes (the same on every worker, and a random sample of
    the list in every shard, so that a run stopped early still covers the whole list)."""
    if not 0 <= worker_index < workers:
        raise OpenvasaError(f"Worker index {worker_index} must lie in [0, {workers}).")
    return sorted(dict.fromkeys(videos), key=_shuffle_key)[worker_index::workers]


def clip_name(path: str | os.PathLike[str]) -> str:
    """A clip's name in its shard: the folder too, because GRID's speakers share sentence
    codes (s1/bbaf2n, s26/bbaf2n)."""
    return f"{Path(path).parent.name}/{Path(path).name}"


def _fill_gaps(values: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Columns of (T, D) `values` with the frames outside `good` (or non-finite)
    interpolated from their neighbours."""
    out = values.astype(np.float64).copy()
    frames = np.arange(len(out))
    for column in range(out.shape[1]):
        ok = good & np.isfinite(out[:, column])
        if ok.sum() >= 2:
            out[:, column] = np.interp(frames, np.nonzero(ok)[0], out[ok, column])
        elif ok.sum() == 1:
            out[:, column] = out[ok, column][0]
    return out


def preprocess_video(path: str | os.PathLike[str]) -> dict:
    """One video → motion (T, 60), audio features (T, 512) and its conditions.

    Raises SkippedClip (one line: the clip's name and why) for a clip that cannot be used.
    """
    from openvasa.errors import NoFaceError
    from openvasa.evaluation.signals import face_signals, video_audio
    from openvasa.motion.diffusion.features import audio_features

    name = clip_name(path)
    try:
        # Gaze from the tracker, not the refine passes: 2.1-2.3x faster with the same pose,
        # mouth and lids. On 4 GRID clips gaze moved by 1-5 degrees (mean |difference|);
        # real clips carry no gaze loss by default (`train motion --real-head-weight 0`).
        signals = face_signals(path, fine_gaze=False)
    except NoFaceError:
        raise SkippedClip(f"{name}: no face found in any frame.") from None
    audio = video_audio(path)
    if audio is None:
        raise SkippedClip(f"{name}: no audio track, so it cannot teach lip sync.")
    n = min(len(signals.pose), frame_count(audio.duration_s, signals.fps))
    if n < MIN_FRAMES:
        raise SkippedClip(f"{name}: {n} frames, shorter than one training window ({MIN_FRAMES}).")
    found = signals.found[:n]
    if found.mean() < MIN_FACE_FRACTION:
        raise SkippedClip(
            f"{name}: face tracked in only {found.mean():.0%} of frames "
            f"(at least {MIN_FACE_FRACTION:.0%} needed)."
        )
    raw = np.concatenate([signals.pose, signals.blendshapes, signals.gaze], 1)[:n]
    # Frames where the face was lost (and gaze during blinks) are filled from their
    # neighbours; the clip's statistics are taken over tracked frames only.
    motion = _fill_gaps(raw, found)
    blendshapes = signals.blendshapes[:n][found]
    gaze_rows = signals.gaze[:n][found]
    gaze = np.nanmedian(gaze_rows, axis=0) if np.isfinite(gaze_rows).any() else np.zeros(2)
    features = audio_features(audio, signals.fps)[:n]
    # Head distance relative to openvasa's default framing (face 40 % of the frame width).
    width = np.nanmedian(signals.face_width_px[:n][found]) / signals.frame_size[0]
    clip = {
        "name": name,
        "motion": motion.astype(np.float32),
        "audio_features": features,
        "voice": to_int16(audio.samples),  # as encoded: the features of the first n frames
        "fps": float(signals.fps),
        "gaze": np.nan_to_num(gaze).astype(np.float32),
        "head_distance": float(np.clip(0.4 / max(width, 1e-3), 0.5, 2.0)),
        # Emotion: the clip's median expression beyond neutral, as a blendshape offset.
        "emotion": np.clip(np.nanmedian(blendshapes, axis=0), 0, 1).astype(np.float32),
    }
    for key in ("motion", "audio_features", "gaze", "head_distance", "emotion"):
        if not np.isfinite(np.asarray(clip[key], np.float64)).all():
            raise SkippedClip(f"{name}: non-finite values in its {key.replace('_', ' ')}.")
    if len(features) < n:
        raise SkippedClip(f"{name}: audio features cover {len(features)} of {n} frames.")
    return clip


VOICE_SPEEDS = (0.8, 1.25)  # how much faster an augmented copy plays (pitch and formants too)


def augmented_copy(clip: dict, audio: Audio, rng: np.random.Generator) -> dict:
    """`clip` with its voice as another recording and another speaker might carry it: the
    corpus's augmentation (`openvasa.corpus.augment`: equalisation, a room, noise, level;
    never the clean sound), played 0.8-1.25x as fast (log-uniform), resampled, so that pitch
    and formants move with the tempo as another voice's would (Kaldi's speed perturbation,
    wider: GRID trains on one speaker, whose voice alone would let the model tell real faces
    from the synthetic corpus by the voice); the motion is re-timed to match. Conditions are
    the clip's own."""
    from openvasa.audio.load import SAMPLE_RATE
    from openvasa.corpus.augment import apply_augmentation, change_speed, draw_augmentation
    from openvasa.motion.diffusion.features import audio_features

    augmentation = replace(
        draw_augmentation(rng, clean_share=0.0),
        speed=round(float(np.exp(rng.uniform(*np.log(VOICE_SPEEDS)))), 3),
    )
    samples, _ = change_speed(audio.samples, [], augmentation.speed)
    heard = Audio.from_array(apply_augmentation(samples, augmentation, rng), SAMPLE_RATE)
    motion = clip["motion"]
    fps = clip["fps"]
    n = min(frame_count(heard.duration_s, fps), int((len(motion) - 1) / augmentation.speed) + 1)
    source = np.arange(n) * augmentation.speed  # where each new frame falls in the old clip
    frames = np.arange(len(motion))
    retimed = np.stack([np.interp(source, frames, motion[:, d]) for d in range(motion.shape[1])], 1)
    return {
        **clip,
        "name": f"{clip['name']}~{augmentation.speed:g}x",
        "motion": retimed.astype(np.float32),
        "audio_features": audio_features(heard, fps)[:n],
        "voice": to_int16(heard.samples),
    }


def _augment_one(task: tuple[dict, str, int, int]) -> list[dict]:
    """Worker: `copies` augmented copies of one clip, drawn from a seed fixed by its name."""
    from openvasa.evaluation.signals import video_audio

    clip, path, copies, seed = task
    audio = video_audio(path)
    if audio is None:
        return []
    rng = np.random.default_rng([seed, int(_shuffle_key(clip["name"])[:8], 16)])
    return [augmented_copy(clip, audio, rng) for _ in range(copies)]


def _clips_of_shard(path: Path) -> list[dict]:
    """The clips of a shard written by `_write_shard`, as `preprocess_video` returned them."""
    with np.load(path) as shard:
        starts = shard["clip_starts"]
        return [
            {
                "name": str(shard["clip_names"][i]),
                "motion": shard["motion"][starts[i] : starts[i + 1]],
                "audio_features": shard["audio_features"][starts[i] : starts[i + 1]],
                "voice": (
                    shard["samples"][shard["sample_starts"][i] : shard["sample_starts"][i + 1]]
                    if "samples" in shard.files
                    else None
                ),
                "fps": float(shard["fps"]),
                "gaze": shard["gaze"][i],
                "head_distance": float(shard["head_distance"][i]),
                "emotion": shard["emotion"][i],
            }
            for i in range(len(starts) - 1)
        ]


def _preprocess_one(path: str) -> dict | str:
    """Worker: the clip, or the one-line reason it was skipped."""
    try:
        return preprocess_video(path)
    except OpenvasaError as error:
        message = str(error)
        name = clip_name(path)
        return message if isinstance(error, SkippedClip) else f"{name}: {message}"


def _init_worker() -> None:
    # One thread per process: the workers already fill the cores.
    import torch

    torch.set_num_threads(1)


def shard_name(worker_index: int, workers: int, part: int, augment: int = 0) -> str:
    suffix = f"_aug{augment}" if augment else ""
    return f"videos_{worker_index:04d}_of_{workers:04d}_{part:04d}{suffix}.npz"


def _write_shard(path: Path, clips: list[dict]) -> None:
    fps = {round(c["fps"], 3) for c in clips}
    if len(fps) > 1:
        raise OpenvasaError(
            f"The videos have different frame rates ({sorted(fps)}); convert them "
            "to one rate first."
        )
    save_shard(
        path,
        [c["motion"] for c in clips],
        [c["audio_features"] for c in clips],
        np.array([c["gaze"] for c in clips]),
        np.array([c["head_distance"] for c in clips]),
        np.array([c["emotion"] for c in clips]),
        clips[0]["fps"],
        names=[c["name"] for c in clips],
        real=True,
        voices=(
            [c["voice"] for c in clips] if all(c.get("voice") is not None for c in clips) else None
        ),
    )


def preprocess(
    videos: list[str],
    out: str | os.PathLike[str],
    worker_index: int = 0,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    *,
    jobs: int = 1,
    clips_per_shard: int = CLIPS_PER_SHARD,
    augment: int = 0,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Write this worker's share of `videos` as shards in `out`; returns the shard paths.

    jobs: worker processes (1: in this process). Shards already in `out` are kept and their
    videos not redone (resume). augment: augmented copies of each clip (`augmented_copy`),
    drawn from `seed`, in a shard beside each. `log` receives one line per skipped clip.
    Raises OpenvasaError when no video at all could be used.
    """
    share = my_share(videos, worker_index, workers)
    if not share:
        raise OpenvasaError("This worker has no videos to preprocess.")
    if jobs < 1:
        raise OpenvasaError(f"--jobs must be at least 1, not {jobs}.")
    if augment < 0:
        raise OpenvasaError(f"--augment must be 0 or more, not {augment}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    parts = [share[i : i + clips_per_shard] for i in range(0, len(share), clips_per_shard)]
    shards = [out / shard_name(worker_index, workers, k) for k in range(len(parts))]
    copies = [out / shard_name(worker_index, workers, k, augment) for k in range(len(parts))]
    todo = [
        k
        for k, shard in enumerate(shards)
        if not shard.exists() or (augment and not copies[k].exists())
    ]
    # Progress counts each clip once for tracking (where its shard is missing) and once for
    # its augmented copies.
    total = sum(len(parts[k]) * ((not shards[k].exists()) + bool(augment)) for k in todo)
    done = 0
    written: list[Path] = [s for s in shards + (copies if augment else []) if s.exists()]
    skipped = 0
    pool = None
    if jobs > 1:
        saved = {k: os.environ.get(k) for k in _ONE_THREAD}
        os.environ.update(_ONE_THREAD)  # the spawned workers read them as they start
        try:
            pool = ProcessPoolExecutor(
                jobs, mp_context=get_context("spawn"), initializer=_init_worker
            )
            pool.submit(int).result()  # start the workers now, while the variables hold
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    try:
        run = pool.map if pool else map
        for k in todo:
            if shards[k].exists():
                clips = _clips_of_shard(shards[k])
            else:
                clips = []
                for result in run(_preprocess_one, parts[k]):
                    if isinstance(result, str):
                        log(f"skipped {result}")
                        skipped += 1
                    else:
                        clips.append(result)
                    done += 1
                    if progress is not None:
                        progress(done, total)
                if clips:
                    _write_shard(shards[k], clips)
                    written.append(shards[k])
            if augment and clips:
                paths = {clip_name(v): v for v in parts[k]}
                tasks = [(c, paths[c["name"]], augment, seed) for c in clips]
                augmented = []
                for extra in run(_augment_one, tasks):
                    augmented.extend(extra)
                    done += 1
                    if progress is not None:
                        progress(done, total)
                done += len(parts[k]) - len(clips)  # the clips skipped above
                if augmented:
                    _write_shard(copies[k], augmented)
                    written.append(copies[k])
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if not written:
        raise OpenvasaError(f"None of the {len(share)} videos could be used ({skipped} skipped).")
    return sorted(written)
