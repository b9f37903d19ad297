"""Audio augmentation for the corpus, so that the generator learns speech, not eSpeak NG.

Speed perturbation (resampling, which changes tempo and pitch together, as Kaldi's speed
perturbation does; the phoneme times scale with it), equalisation (high- and low-pass,
spectral tilt), reverberation (a synthetic room: exponentially decaying noise with a given
RT60), background noise (white, pink, brown or mains hum) at a chosen signal-to-noise ratio,
and level. Every choice is drawn from a seeded generator and recorded with the clip.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from fractions import Fraction

import numpy as np
from scipy.signal import butter, fftconvolve, resample_poly, sosfilt

from openvasa.audio import PhonemeEvent
from openvasa.audio.load import SAMPLE_RATE

SPEEDS = (0.9, 0.95, 1.0, 1.05, 1.1)
SNRS_DB = (0.0, 5.0, 10.0, 15.0, 20.0, 30.0)
NOISES = ("white", "pink", "brown", "hum")


@dataclass(frozen=True)
class Augmentation:
    """What was done to one clip's audio (None / 1.0: not applied)."""

    speed: float = 1.0
    highpass_hz: float | None = None
    lowpass_hz: float | None = None
    tilt_db_per_octave: float = 0.0
    reverb_rt60_s: float | None = None
    reverb_wet: float = 0.0
    noise: str | None = None
    snr_db: float | None = None
    gain_db: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def draw_augmentation(rng: np.random.Generator, clean_share: float = 0.15) -> Augmentation:
    """A random augmentation; with probability clean_share, none at all."""
    if rng.random() < clean_share:
        return Augmentation()
    aug = Augmentation(gain_db=float(np.round(rng.uniform(-12.0, 3.0), 1)))
    if rng.random() < 0.5:
        aug = replace(aug, speed=float(rng.choice(SPEEDS)))
    if rng.random() < 0.5:
        aug = replace(
            aug,
            highpass_hz=float(np.round(rng.uniform(60, 300))) if rng.random() < 0.7 else None,
            lowpass_hz=float(np.round(rng.uniform(3000, 7500))) if rng.random() < 0.6 else None,
            tilt_db_per_octave=float(np.round(rng.uniform(-3.0, 3.0), 1)),
        )
    if rng.random() < 0.4:
        aug = replace(
            aug,
            reverb_rt60_s=float(np.round(rng.uniform(0.15, 0.9), 2)),
            reverb_wet=float(np.round(rng.uniform(0.2, 0.7), 2)),
        )
    if rng.random() < 0.6:
        aug = replace(aug, noise=str(rng.choice(NOISES)), snr_db=float(rng.choice(SNRS_DB)))
    return aug


def change_speed(
    samples: np.ndarray, phonemes: list[PhonemeEvent], speed: float
) -> tuple[np.ndarray, list[PhonemeEvent]]:
    """Play the audio `speed` times faster (resampled: pitch moves with it) and move the
    phoneme times to match."""
    if speed == 1.0:
        return samples, phonemes
    ratio = Fraction(1.0 / speed).limit_denominator(50)
    faster = resample_poly(samples, ratio.numerator, ratio.denominator).astype(np.float32)
    scale = 1.0 / speed
    moved = [
        PhonemeEvent(p.phoneme, p.start_s * scale, p.end_s * scale, p.stress) for p in phonemes
    ]
    return faster, moved


def _coloured_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "hum":
        t = np.arange(n) / SAMPLE_RATE
        mains = float(rng.choice([50.0, 60.0]))
        hum = sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 6.3)) / k for k in (1, 2, 3))
        return hum + 0.05 * rng.normal(size=n)
    white = rng.normal(size=n)
    if kind == "white":
        return white
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    power = 1.0 if kind == "pink" else 2.0  # pink: 1/f power, brown: 1/f²
    spectrum /= np.maximum(freqs, 20.0) ** (power / 2)
    return np.fft.irfft(spectrum, n)


def _room(rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """Impulse response of a synthetic room: a direct path, then noise decaying 60 dB over
    rt60_s."""
    n = int(rt60_s * 1.1 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.normal(size=n) * np.exp(-6.9 * t / rt60_s)
    tail[: int(0.003 * SAMPLE_RATE)] = 0.0  # first reflections arrive after a few ms
    tail /= np.sqrt((tail**2).sum()) + 1e-12
    response = tail
    response[0] = 1.0
    return response


def apply_augmentation(
    samples: np.ndarray, aug: Augmentation, rng: np.random.Generator
) -> np.ndarray:
    """The augmented 16 kHz samples (same length), peak-limited to [-1, 1]. Speed is applied
    separately (`change_speed`), before the motion is made."""
    x = np.asarray(samples, np.float64)
    speech_rms = float(np.sqrt(np.mean(x[np.abs(x) > 1e-4] ** 2))) if np.any(x) else 0.0
    if aug.highpass_hz:
        x = sosfilt(butter(2, aug.highpass_hz, "highpass", fs=SAMPLE_RATE, output="sos"), x)
    if aug.lowpass_hz:
        x = sosfilt(butter(4, aug.lowpass_hz, "lowpass", fs=SAMPLE_RATE, output="sos"), x)
    if aug.tilt_db_per_octave:
        spectrum = np.fft.rfft(x)
        freqs = np.maximum(np.fft.rfftfreq(len(x), 1.0 / SAMPLE_RATE), 50.0)
        spectrum *= 10 ** (aug.tilt_db_per_octave * np.log2(freqs / 1000.0) / 20)
        x = np.fft.irfft(spectrum, len(x))
    if aug.reverb_rt60_s:
        wet = fftconvolve(x, _room(aug.reverb_rt60_s, rng))[: len(x)]
        x = (1 - aug.reverb_wet) * x + aug.reverb_wet * wet
    if aug.noise and aug.snr_db is not None and speech_rms > 0:
        noise = _coloured_noise(aug.noise, len(x), rng)
        noise *= speech_rms / (np.sqrt(np.mean(noise**2)) + 1e-12) / 10 ** (aug.snr_db / 20)
        x = x + noise
    x = x * 10 ** (aug.gain_db / 20)
    peak = float(np.abs(x).max()) if len(x) else 0.0
    if peak > 0.99:
        x *= 0.99 / peak
    return x.astype(np.float32)
