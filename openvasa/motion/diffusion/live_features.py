"""The audio features a live stream hears, so that live students can be trained on them.

A live stream commits a few frames at a time and hears only a few frames past them, so each
window's Whisper encoding ends just after the frames it commits: every committed frame is
encoded 1-4 frames from the edge of what Whisper hears, and Whisper (bidirectional, trained on
30 s inputs) describes such frames otherwise than it does inside a whole clip. A model
trained on whole-clip features reads them as another kind of voice: on GRID val the shipped
student of commit a4f887a moved mouthLowerDown/mouthUpperUp 0.02x as much as the real
speakers from live features, 0.49x / 0.26x from whole-clip features in the same windows, and
its rendered lips fell from 0.63 to 0.52.

`heard_features` is what a stream computes for one window; `live_feature_tracks` computes
the same for every frame of a training clip at every distance from the edge, in batches.
"""

from __future__ import annotations

import numpy as np

from openvasa.audio.load import SAMPLE_RATE
from openvasa.audio.whisper import FEATURE_DIM, FEATURE_RATE_HZ
from openvasa.motion.diffusion.features import pool_to_frames
from openvasa.timing import frame_count


def heard_features(whisper, clip: np.ndarray, fps: float) -> np.ndarray:
    """(frames, 512) features of a stream window's audio `clip` (16 kHz, starting on a frame
    boundary and ending where the stream has heard up to), pooled to the video rate."""
    n_frames = frame_count(len(clip) / SAMPLE_RATE, fps)
    return pool_to_frames(whisper.features(clip), FEATURE_RATE_HZ, fps, n_frames)


def live_feature_tracks(
    whisper,
    samples: np.ndarray,
    fps: float,
    n_frames: int,
    depth: int,
    lookback_frames: int,
    batch: int = 64,
) -> np.ndarray:
    """(n_frames, depth, 512) float16: [f, d - 1] is frame f's features as a live stream
    hears them when its audio reaches the end of frame f + d - 1 (d = 1: f is the last frame
    heard), encoding the `lookback_frames` frames before that point (fewer at the start; at
    the clip's end the audio stops there). `samples`: the clip's 16 kHz audio."""
    frame_samples = SAMPLE_RATE / fps

    def at(frame: int) -> int:
        return int(round(frame * frame_samples))

    samples = np.asarray(samples, np.float32)
    out = np.zeros((n_frames, depth, FEATURE_DIM), np.float16)
    ends = list(range(1, n_frames + 1))  # an encoding for each point the audio reaches

    def store(end: int, pooled: np.ndarray) -> None:
        begin = end - len(pooled)
        for d in range(1, depth + 1):
            f = end - d
            if f >= begin and f >= 0:
                out[f, d - 1] = pooled[f - begin]
        if end == n_frames:  # the audio stops here: frames nearer the end stay at this edge
            for f in range(max(begin, n_frames - depth), n_frames):
                out[f, n_frames - f :] = pooled[f - begin]

    full = [e for e in ends if e >= lookback_frames]
    for end in (e for e in ends if e < lookback_frames):  # the start: shorter encodings
        store(end, heard_features(whisper, samples[: at(end)], fps))
    for i in range(0, len(full), batch):
        group = full[i : i + batch]
        clips = [samples[at(e - lookback_frames) : at(e)] for e in group]
        lengths = {len(c) for c in clips}
        if len(lengths) > 1:  # frames of unequal length (a frame rate that does not divide)
            for end, clip in zip(group, clips, strict=True):
                store(end, heard_features(whisper, clip, fps))
            continue
        states = whisper.features_of_equal_clips(clips)
        for end, state in zip(group, states, strict=True):
            store(end, pool_to_frames(state, FEATURE_RATE_HZ, fps, lookback_frames))
    return out
