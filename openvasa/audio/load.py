"""Reading audio into the pipeline's one format: 16 kHz mono float32 samples in [-1, 1]."""

from __future__ import annotations

import math
import os
import wave
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from scipy.signal import resample_poly

from openvasa.errors import AudioError

SAMPLE_RATE = 16000
"""Samples per second of every `Audio` that the pipeline works with (Whisper's rate)."""

SILENCE_PEAK = 1e-3
"""A clip whose absolute peak stays below this (-60 dBFS) is taken to contain no speech."""


@dataclass
class Audio:
    """A mono audio clip.

    `samples` is a 1-D float32 array in [-1, 1], shape (n_samples,); `sample_rate` is in Hz.
    Clips made by `load_audio` or `Audio.from_array` are at `SAMPLE_RATE`.
    """

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        self.samples = np.ascontiguousarray(self.samples, dtype=np.float32).reshape(-1)
        self.sample_rate = int(self.sample_rate)

    @property
    def duration_s(self) -> float:
        """Length of the clip in seconds."""
        return len(self.samples) / self.sample_rate

    @classmethod
    def from_array(cls, samples: np.ndarray, sample_rate: int) -> Audio:
        """Make a 16 kHz mono clip from an array of samples at any rate.

        `samples` has shape (n,), (n, channels) or (channels, n); the shorter axis of a 2-D
        array is taken as the channels, which are averaged. Integer samples are scaled from
        their type's full range (int16: ±32768); float samples are taken as already in [-1, 1]
        and clipped there. Raises AudioError for arrays of another shape or with NaN/inf.
        """
        mono = _downmix(np.asarray(samples))
        if not np.all(np.isfinite(mono)):
            raise AudioError("The audio samples contain NaN or infinite values.")
        return cls(_resample(mono, int(sample_rate), SAMPLE_RATE), SAMPLE_RATE)


def _downmix(samples: np.ndarray) -> np.ndarray:
    """Mono float32 in [-1, 1] from a 1-D or 2-D array of any numeric type."""
    if samples.ndim not in (1, 2):
        raise AudioError(
            f"Audio samples must be a 1-D (samples) or 2-D (samples × channels) array, "
            f"not an array of shape {samples.shape}."
        )
    if samples.dtype == np.bool_ or not np.issubdtype(samples.dtype, np.number):
        raise AudioError(f"Audio samples must be numbers, not {samples.dtype}.")
    if np.issubdtype(samples.dtype, np.unsignedinteger):
        # Unsigned PCM (8-bit WAV) is centred on half its range.
        half = float(np.iinfo(samples.dtype).max) / 2 + 0.5
        scaled = (samples.astype(np.float64) - half) / half
    elif np.issubdtype(samples.dtype, np.signedinteger):
        scaled = samples.astype(np.float64) / -float(np.iinfo(samples.dtype).min)
    else:
        scaled = samples.astype(np.float64)
    if scaled.ndim == 2:
        channel_axis = 0 if scaled.shape[0] <= scaled.shape[1] else 1
        scaled = scaled.mean(axis=channel_axis)
    return np.clip(scaled, -1.0, 1.0).astype(np.float32)


def _resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling (exact rational ratio, anti-aliased) of a 1-D float32 array."""
    if from_rate <= 0:
        raise AudioError(f"The audio sample rate must be positive, not {from_rate} Hz.")
    if from_rate == to_rate or len(samples) == 0:
        return samples.astype(np.float32)
    common = math.gcd(from_rate, to_rate)
    resampled = resample_poly(samples, to_rate // common, from_rate // common)
    return np.clip(resampled, -1.0, 1.0).astype(np.float32)


def load_audio(path: str | os.PathLike[str], *, max_duration_s: float = 600.0) -> Audio:
    """Decode an audio file, or the audio track of a video file, into 16 kHz mono.

    Any container and codec that FFmpeg reads works (WAV, MP3, FLAC, Ogg Vorbis/Opus,
    M4A/AAC, MP4, MKV, WebM, …), at any sample rate and channel count; channels are averaged.
    Returns an `Audio` with float32 samples in [-1, 1], shape (n_samples,), at `SAMPLE_RATE`.

    Raises AudioError, with one sentence naming the file, when the file is missing, a
    directory, empty, not decodable audio, holds no samples, is silent (peak below -60 dBFS)
    or lasts longer than `max_duration_s` seconds.
    """
    name = str(path)
    file_path = Path(path)
    if not file_path.exists():
        raise AudioError(f"Audio file '{name}' does not exist.")
    if file_path.is_dir():
        raise AudioError(f"'{name}' is a folder, not an audio file.")
    if file_path.stat().st_size == 0:
        raise AudioError(f"Audio file '{name}' is empty (0 bytes).")

    samples = _decode_mono_16k(file_path, name, max_duration_s)
    if len(samples) == 0:
        raise AudioError(f"Audio file '{name}' contains no audio samples.")
    duration_s = len(samples) / SAMPLE_RATE
    if duration_s > max_duration_s:
        raise AudioError(_too_long_message(name, duration_s, max_duration_s))
    peak = float(np.max(np.abs(samples)))
    if peak < SILENCE_PEAK:
        peak_dbfs = 20 * math.log10(max(peak, 1e-10))
        raise AudioError(
            f"Audio file '{name}' contains only silence (peak {peak_dbfs:.0f} dBFS); "
            f"a talking face needs audible speech."
        )
    return Audio(samples, SAMPLE_RATE)


def _too_long_message(name: str, duration_s: float | None, max_duration_s: float) -> str:
    """`duration_s` None: decoding stopped at the limit, so the full length is unknown."""
    length = f"{duration_s:.1f} s" if duration_s is not None else "more than that"
    return (
        f"Audio file '{name}' lasts {length}, longer than the limit of "
        f"{max_duration_s:g} s; raise the max_duration_s setting or use a shorter clip."
    )


def _decode_mono_16k(file_path: Path, name: str, max_duration_s: float) -> np.ndarray:
    """All samples of the first audio stream as 16 kHz mono float32."""
    not_audio = f"'{name}' is not a readable audio file (FFmpeg could not decode its audio)."
    try:
        container = av.open(str(file_path), mode="r")
    except PermissionError as error:
        raise AudioError(f"Audio file '{name}' cannot be read (permission denied).") from error
    except (av.FFmpegError, ValueError, UnicodeDecodeError) as error:
        raise AudioError(not_audio) from error
    with container:
        if not container.streams.audio:
            raise AudioError(f"'{name}' has no audio track, so it is not a readable audio file.")
        stream = container.streams.audio[0]
        # The header's duration is only an estimate for some files (VBR MP3 without an index),
        # so it refuses a file only when far too long, before spending time decoding it.
        header_duration_s = None
        if stream.duration is not None and stream.time_base is not None:
            header_duration_s = float(stream.duration * stream.time_base)
        elif container.duration is not None and len(container.streams) == 1:
            header_duration_s = container.duration / av.time_base
        if header_duration_s is not None and header_duration_s > 1.5 * max_duration_s + 1.0:
            raise AudioError(_too_long_message(name, header_duration_s, max_duration_s))

        # Channels are averaged here rather than by FFmpeg, whose stereo downmix adds +3 dB
        # and would clip loud masters; planar float gives one row per channel.
        resampler = av.AudioResampler(format="fltp", rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        n_samples = 0
        # Stop decoding once the file is known to be too long.
        sample_limit = int((max_duration_s + 1.0) * SAMPLE_RATE)
        try:
            for frame in container.decode(stream):
                for resampled in resampler.resample(frame):
                    chunks.append(resampled.to_ndarray().mean(axis=0))
                    n_samples += resampled.samples
                if n_samples > sample_limit:
                    if header_duration_s is None or header_duration_s <= max_duration_s:
                        header_duration_s = None
                    raise AudioError(_too_long_message(name, header_duration_s, max_duration_s))
            # Flushing returns the samples that the resampler still holds in its filter.
            for resampled in resampler.resample(None):
                chunks.append(resampled.to_ndarray().mean(axis=0))
        except (av.FFmpegError, ValueError) as error:
            if not chunks:
                raise AudioError(not_audio) from error
            # A file damaged near its end still gives the audio decoded before the damage.
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    samples = np.concatenate(chunks).astype(np.float32, copy=False)
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"'{name}' decodes to invalid (NaN or infinite) samples.")
    return np.clip(samples, -1.0, 1.0)


def save_wav(audio: Audio, path: str | os.PathLike[str]) -> None:
    """Write `audio` as a mono 16-bit PCM WAV file at the clip's own sample rate."""
    pcm = np.round(np.clip(audio.samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as wav_file:
        wav_file.setnchannels(1)
        wav_file.setsampwidth(2)
        wav_file.setframerate(audio.sample_rate)
        wav_file.writeframes(pcm.tobytes())
