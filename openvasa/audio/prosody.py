"""Per-video-frame prosody and spectral shape: what drives the mouth of the procedural engine.

Loudness and energy open the jaw, low spectral centroid with strong low band marks rounded
vowels (funnel, pucker), drops to silence close the lips, the high band marks sibilants.
Everything is computed for all frames at once on strided windows of the signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

from openvasa.audio.load import Audio
from openvasa.timing import frame_count

LOUDNESS_FLOOR_DB = -80.0
"""Loudness of digital silence, in dBFS."""

MIN_WINDOW_S = 0.040
"""Shortest analysis window, so that high frame rates still see two pitch periods at 60 Hz."""

PITCH_MIN_HZ = 60.0
PITCH_MAX_HZ = 500.0
YIN_THRESHOLD = 0.3
"""Pitch is the first lag where YIN's normalised difference has a local minimum below this."""
FULLY_VOICED_DIFFERENCE = 0.15
UNVOICED_DIFFERENCE = 0.5
"""Voicing falls from 1 to 0 as the lowest normalised difference rises between these two:
clean vowels reach below 0.15, fricatives and noise stay above 0.7."""

LOW_BAND_HZ = 1000.0
HIGH_BAND_HZ = 3500.0

ENERGY_RANGE_DB = 50.0
"""Energy reaches 0 this far below the clip's speech level at most."""
MIN_ENERGY_RANGE_DB = 20.0
"""…and at least this far below it, however loud the background noise is."""


@dataclass
class Prosody:
    """Per-video-frame features; every array is float32 with shape (n_frames,), where
    frame i describes the audio around time (i + 0.5) / fps seconds."""

    fps: float
    loudness_db: np.ndarray
    """RMS level in dBFS, floored at -80."""
    energy: np.ndarray
    """Loudness relative to the clip's own speech level: 0 at the noise floor, 1 at the
    95th percentile of loudness and above."""
    voicing: np.ndarray
    """How periodic (voiced) the frame is, 0–1."""
    pitch_hz: np.ndarray
    """Fundamental frequency in Hz (60–500) where voiced, 0 elsewhere."""
    spectral_centroid_hz: np.ndarray
    """Magnitude-weighted mean frequency in Hz; 0 in digital silence."""
    low_band_ratio: np.ndarray
    """Share of power below 1 kHz, 0–1: high for vowels and nasals, low for fricatives."""
    high_band_ratio: np.ndarray
    """Share of power above 3.5 kHz, 0–1: high for sibilants (s, sh, f)."""
    zero_crossing_rate: np.ndarray
    """Sign changes per sample, 0–1: high for noise-like sounds."""

    def __len__(self) -> int:
        return len(self.loudness_db)


def prosody_features(audio: Audio, fps: float) -> Prosody:
    """Measure prosody and spectral shape for every video frame of `audio` at `fps`.

    Returns a `Prosody` whose arrays have `frame_count(audio.duration_s, fps)` entries. Frame i
    is centred at (i + 0.5) / fps seconds over a Hann window of max(2 / fps, 40 ms); audio
    beyond either end of the clip counts as silence.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, not {fps}")
    sample_rate = audio.sample_rate
    n_frames = frame_count(audio.duration_s, fps)
    window_len = int(round(max(2.0 / fps, MIN_WINDOW_S) * sample_rate))
    frames = _frame_windows(audio.samples, sample_rate, fps, n_frames, window_len)
    # A DC offset is not sound: it would count as low-band power and hide zero crossings.
    frames = frames - frames.mean(axis=1, keepdims=True)

    hann = np.hanning(window_len + 2)[1:-1].astype(np.float32)  # no zero end points
    windowed = frames * hann
    rms = np.sqrt(np.sum(windowed**2, axis=1) / np.sum(hann**2))
    loudness_db = np.maximum(20.0 * np.log10(np.maximum(rms, 1e-12)), LOUDNESS_FLOOR_DB)
    energy = _relative_energy(loudness_db)

    n_fft = 1 << (window_len - 1).bit_length()
    magnitude = np.abs(scipy.fft.rfft(windowed, n=n_fft, axis=1))
    power = magnitude**2
    bin_hz = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    total_power = power.sum(axis=1)
    has_sound = total_power > 1e-20
    safe_power = np.where(has_sound, total_power, 1.0)
    low_band_ratio = np.where(has_sound, power[:, bin_hz < LOW_BAND_HZ].sum(1) / safe_power, 0)
    high_band_ratio = np.where(has_sound, power[:, bin_hz > HIGH_BAND_HZ].sum(1) / safe_power, 0)
    magnitude_sum = magnitude.sum(axis=1)
    spectral_centroid_hz = np.where(
        has_sound, (magnitude @ bin_hz) / np.where(has_sound, magnitude_sum, 1.0), 0.0
    )

    signs = np.signbit(frames)
    zero_crossing_rate = np.mean(signs[:, 1:] != signs[:, :-1], axis=1)
    zero_crossing_rate = np.where(has_sound, zero_crossing_rate, 0.0)

    # Pitch glides within a long window smear its period, so YIN sees only the central 40 ms.
    pitch_len = min(window_len, int(round(MIN_WINDOW_S * sample_rate)))
    pitch_start = (window_len - pitch_len) // 2
    pitch_hz, periodicity = _yin_pitch(
        frames[:, pitch_start : pitch_start + pitch_len], sample_rate
    )
    # Periodicity in the noise floor is hum or room tone, not a voice.
    voicing = np.where(energy > 0, periodicity, 0.0)
    pitch_hz = np.where(energy > 0, pitch_hz, 0.0)

    def as_f32(values: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(values, dtype=np.float32)

    return Prosody(
        fps=float(fps),
        loudness_db=as_f32(loudness_db),
        energy=as_f32(energy),
        voicing=as_f32(voicing),
        pitch_hz=as_f32(pitch_hz),
        spectral_centroid_hz=as_f32(spectral_centroid_hz),
        low_band_ratio=as_f32(low_band_ratio),
        high_band_ratio=as_f32(high_band_ratio),
        zero_crossing_rate=as_f32(zero_crossing_rate),
    )


def _frame_windows(
    samples: np.ndarray, sample_rate: int, fps: float, n_frames: int, window_len: int
) -> np.ndarray:
    """(n_frames, window_len) float32 windows centred on each video frame's mid time."""
    centres = np.round((np.arange(n_frames) + 0.5) / fps * sample_rate).astype(np.int64)
    starts = centres - window_len // 2
    pad_before = max(0, -int(starts[0]))
    pad_after = max(0, int(starts[-1]) + window_len - len(samples))
    padded = np.pad(samples.astype(np.float32, copy=False), (pad_before, pad_after))
    windows = np.lib.stride_tricks.sliding_window_view(padded, window_len)
    return windows[starts + pad_before]


def _relative_energy(loudness_db: np.ndarray) -> np.ndarray:
    """Loudness mapped to 0–1 between the clip's noise floor and its speech level.

    The speech level is the 95th percentile of loudness (robust to a few peaks); the floor is
    a little above the 10th percentile (the pauses), kept between 20 and 50 dB below the
    speech level so that a clip without pauses still spans a range.
    """
    # A near-silent clip has no speech level; -60 dBFS keeps its hiss at zero energy.
    speech_db = max(float(np.percentile(loudness_db, 95)), -60.0)
    noise_db = float(np.percentile(loudness_db, 10)) + 6.0
    floor_db = float(
        np.clip(noise_db, speech_db - ENERGY_RANGE_DB, speech_db - MIN_ENERGY_RANGE_DB)
    )
    return np.clip((loudness_db - floor_db) / (speech_db - floor_db), 0.0, 1.0)


def _yin_pitch(frames: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """YIN fundamental frequency (de Cheveigné & Kawahara 2002) for every frame at once.

    `frames` has shape (n_frames, window_len). Returns (pitch_hz, periodicity), each of shape
    (n_frames,): pitch in Hz, 0 where no lag dips below `YIN_THRESHOLD`; periodicity 0–1,
    from the lowest normalised difference (1 for clean vowels, 0 for fricatives and noise).
    """
    n_frames, window_len = frames.shape
    max_lag = int(np.ceil(sample_rate / PITCH_MIN_HZ))
    min_lag = int(np.floor(sample_rate / PITCH_MAX_HZ))
    integration_len = window_len - max_lag - 1
    if integration_len < max_lag // 2:
        raise ValueError(f"window of {window_len} samples is too short for {PITCH_MIN_HZ} Hz")

    # Difference d(τ) = Σ_j (x_j − x_{j+τ})² over j < integration_len, for τ = 0..max_lag,
    # expanded as energy(head) + energy(shifted) − 2·correlation, the correlation by FFT.
    n_fft = 1 << (window_len - 1).bit_length()
    head_spectrum = scipy.fft.rfft(frames[:, :integration_len], n=n_fft, axis=1)
    full_spectrum = scipy.fft.rfft(frames, n=n_fft, axis=1)
    correlation = scipy.fft.irfft(np.conj(head_spectrum) * full_spectrum, n=n_fft, axis=1)
    correlation = correlation[:, : max_lag + 1]
    squares_cumsum = np.concatenate(
        [np.zeros((n_frames, 1)), np.cumsum(frames.astype(np.float64) ** 2, axis=1)], axis=1
    )
    lags = np.arange(max_lag + 1)
    shifted_energy = squares_cumsum[:, lags + integration_len] - squares_cumsum[:, lags]
    head_energy = shifted_energy[:, :1]
    difference = np.maximum(head_energy + shifted_energy - 2.0 * correlation, 0.0)

    # Cumulative mean normalised difference d'(τ) = d(τ) · τ / Σ_{k≤τ} d(k); d'(0) = 1.
    running_sum = np.cumsum(difference[:, 1:], axis=1)
    normalised = np.ones_like(difference)
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised[:, 1:] = difference[:, 1:] * lags[1:] / running_sum
    normalised[~np.isfinite(normalised)] = 1.0

    # YIN picks the first local minimum below the threshold; if none, the frame is unvoiced.
    inner = normalised[:, min_lag:max_lag]
    is_local_min = (inner <= normalised[:, min_lag - 1 : max_lag - 1]) & (
        inner <= normalised[:, min_lag + 1 : max_lag + 1]
    )
    candidates = is_local_min & (inner < YIN_THRESHOLD)
    voiced = candidates.any(axis=1)
    best_lag = np.where(voiced, candidates.argmax(axis=1), inner.argmin(axis=1)) + min_lag

    # Parabolic interpolation around the chosen lag for sub-sample precision.
    rows = np.arange(n_frames)
    before = normalised[rows, best_lag - 1]
    at = normalised[rows, best_lag]
    after = normalised[rows, best_lag + 1]
    curvature = before - 2.0 * at + after
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(curvature > 1e-12, 0.5 * (before - after) / curvature, 0.0)
    refined_lag = best_lag + np.clip(offset, -1.0, 1.0)

    pitch_hz = np.where(voiced, sample_rate / refined_lag, 0.0)
    lowest = inner.min(axis=1)
    periodicity = np.clip(
        (UNVOICED_DIFFERENCE - lowest) / (UNVOICED_DIFFERENCE - FULLY_VOICED_DIFFERENCE), 0.0, 1.0
    )
    return pitch_hz, periodicity
