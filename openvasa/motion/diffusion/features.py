"""The motion model's audio condition: Whisper-base encoder features (50 Hz, 512-d) averaged
over each video frame's time span. Training data (data, preprocess) and sampling (engine)
compute them the same way here."""

from __future__ import annotations

from functools import cache

import numpy as np

from openvasa.audio import Audio
from openvasa.timing import frame_count


def pool_to_frames(
    features: np.ndarray, feature_rate: float, fps: float, n_frames: int
) -> np.ndarray:
    """Average (T, A) features at `feature_rate` Hz over each video frame's time span."""
    edges = np.round(np.arange(n_frames + 1) / fps * feature_rate).astype(int)
    edges = np.clip(edges, 0, len(features))
    out = np.zeros((n_frames, features.shape[1]), np.float32)
    cumulative = np.concatenate([np.zeros((1, features.shape[1])), np.cumsum(features, 0)])
    for i in range(n_frames):
        a, b = edges[i], max(edges[i + 1], edges[i] + 1)
        b = min(b, len(features))
        a = min(a, b - 1)
        out[i] = (cumulative[b] - cumulative[a]) / max(b - a, 1)
    return out


@cache
def _whisper():
    from openvasa.audio.whisper import WhisperEncoder

    return WhisperEncoder()


def audio_features(audio: Audio, fps: float) -> np.ndarray:
    """(frames, 512) Whisper-base encoder features pooled to the video rate."""
    features = _whisper().features(audio)
    return pool_to_frames(features, 50.0, fps, frame_count(audio.duration_s, fps))
