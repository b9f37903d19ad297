"""Prosody per video frame from audio that arrives piece by piece: causal, bounded look-ahead.

`prosody_features` measures a whole clip at once and scales loudness by the clip's own
percentiles, so it needs the whole clip before the first frame. `ProsodyStream` measures the
same per-frame quantities (same windows, same spectral shape and YIN pitch) as soon as each
frame's window has arrived, and scales loudness by `SpeechLevel`, a running estimate of the
speaker's level and the room's noise floor that only looks back. Audio given in one piece or
in any number of pieces gives the same frames; the motion engine uses this one code path both
offline and live.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import scipy.fft

from openvasa.audio.load import SAMPLE_RATE
from openvasa.audio.prosody import (
    ENERGY_RANGE_DB,
    HIGH_BAND_HZ,
    LOUDNESS_FLOOR_DB,
    LOW_BAND_HZ,
    MIN_ENERGY_RANGE_DB,
    MIN_WINDOW_S,
    Prosody,
    _yin_pitch,
)
from openvasa.timing import frame_count

REFERENCE_SPEECH_DB = -20.0
"""Speech level assumed before any speech is heard, in dBFS (a normalised voice recording)."""
QUIETEST_SPEECH_DB = -60.0
"""The speech level estimate never falls below this: quieter sound is taken as noise."""
SPEECH_ATTACK_S = 0.05
SPEECH_RELEASE_S = 2.5
"""The speech level follows louder syllables within a frame or two and falls back slowly
(time constants in seconds), so it sits near the loud peaks of recent speech, like the
95th percentile that the whole-clip measure uses."""
NOISE_MEMORY_S = 3.0
"""The noise floor is the quietest frame of the last few seconds (the pauses)."""
NOISE_MARGIN_DB = 6.0
"""Energy starts this far above the noise floor, so that room tone keeps the mouth shut."""


class SpeechLevel:
    """Loudness (dBFS) → energy 0–1, relative to a running estimate of the speech level.

    Causal: frame i's energy depends on frames 0..i only. Energy is 0 at the noise floor
    (plus `NOISE_MARGIN_DB`) and 1 at the speech level, with the floor kept between
    `MIN_ENERGY_RANGE_DB` and `ENERGY_RANGE_DB` below the speech level.
    """

    def __init__(self, fps: float):
        self._attack = 1.0 - np.exp(-1.0 / (fps * SPEECH_ATTACK_S))
        self._release = 1.0 - np.exp(-1.0 / (fps * SPEECH_RELEASE_S))
        self.speech_db = REFERENCE_SPEECH_DB
        # Before any pause is heard, assume a quiet room 40 dB below the reference.
        self._recent: deque[float] = deque(
            [REFERENCE_SPEECH_DB - 40.0], maxlen=max(1, int(round(NOISE_MEMORY_S * fps)))
        )

    def update(self, loudness_db: np.ndarray) -> np.ndarray:
        """Energy (n,) float64 in [0, 1] for the next n frames' loudness (n,) in dBFS."""
        energy = np.empty(len(loudness_db), np.float64)
        speech_db = self.speech_db
        for i, level in enumerate(loudness_db.tolist()):
            self._recent.append(level)
            noise_db = min(self._recent)
            floor_db = min(
                max(noise_db + NOISE_MARGIN_DB, speech_db - ENERGY_RANGE_DB),
                speech_db - MIN_ENERGY_RANGE_DB,
            )
            if level > speech_db:
                speech_db += self._attack * (level - speech_db)
            elif level > 0.5 * (speech_db + floor_db):
                # Only the louder half of speech pulls the level down, never the pauses.
                speech_db += self._release * (level - speech_db)
            speech_db = max(speech_db, QUIETEST_SPEECH_DB)
            floor_db = min(floor_db, speech_db - MIN_ENERGY_RANGE_DB)
            energy[i] = min(max((level - floor_db) / (speech_db - floor_db), 0.0), 1.0)
        self.speech_db = speech_db
        return energy


class ProsodyStream:
    """Per-frame prosody for audio pushed in pieces (16 kHz mono float32).

    Frame i describes the audio around (i + 0.5) / fps seconds over a Hann window of
    max(2 / fps, 40 ms), exactly as `prosody_features` does; it is measured as soon as the
    audio up to the end of its window has been pushed (`lookahead_s` after the frame's start).
    `end()` measures the remaining frames with silence after the last sample, up to
    `frame_count(duration, fps)` frames in all.
    """

    def __init__(self, fps: float, sample_rate: int = SAMPLE_RATE):
        if fps <= 0:
            raise ValueError(f"fps must be positive, not {fps}")
        self.fps = float(fps)
        self.sample_rate = int(sample_rate)
        self.window_len = int(round(max(2.0 / fps, MIN_WINDOW_S) * sample_rate))
        self._hann = np.hanning(self.window_len + 2)[1:-1].astype(np.float32)
        self._hann_power = float(np.sum(self._hann**2))
        self._n_fft = 1 << (self.window_len - 1).bit_length()
        self._bin_hz = np.fft.rfftfreq(self._n_fft, d=1.0 / sample_rate)
        # Bins below LOW_BAND_HZ are a prefix of the spectrum, bins above HIGH_BAND_HZ a suffix.
        self._low_end = int(np.count_nonzero(self._bin_hz < LOW_BAND_HZ))
        self._high_start = int(np.count_nonzero(self._bin_hz <= HIGH_BAND_HZ))
        self._level = SpeechLevel(fps)
        # Samples from absolute index `_buffer_start` on; audio before t = 0 is silence.
        self._buffer = np.zeros(self.window_len, np.float32)
        self._buffer_start = -self.window_len
        self.samples_received = 0
        self.frames_done = 0
        self.ended = False

    @property
    def lookahead_s(self) -> float:
        """How much audio past a frame's start time must arrive before it is measured."""
        return (self._window_start(0) + self.window_len) / self.sample_rate

    def _window_start(self, frame: int) -> int:
        centre = int(round((frame + 0.5) / self.fps * self.sample_rate))
        return centre - self.window_len // 2

    def frames_ready(self) -> int:
        """How many frames in all the audio pushed so far completes."""
        n = int(self.samples_received / self.sample_rate * self.fps) + 2
        while n > 0 and self._window_start(n - 1) + self.window_len > self.samples_received:
            n -= 1
        return n

    def push(self, samples: np.ndarray) -> Prosody:
        """Add audio; returns the prosody of the frames that it completes (maybe none)."""
        if self.ended:
            raise RuntimeError("this prosody stream has ended")
        samples = np.asarray(samples, np.float32).reshape(-1)
        self._buffer = np.concatenate([self._buffer, samples])
        self.samples_received += len(samples)
        return self._measure(self.frames_ready())

    def end(self) -> Prosody:
        """The remaining frames, up to `frame_count(duration, fps)`, with silence after the end."""
        if self.ended:
            raise RuntimeError("this prosody stream has ended")
        self.ended = True
        n_total = max(frame_count(self.samples_received / self.sample_rate, self.fps), 1)
        n_total = max(n_total, self.frames_done)
        needed = self._window_start(n_total - 1) + self.window_len - self._buffer_start
        if needed > len(self._buffer):
            self._buffer = np.pad(self._buffer, (0, needed - len(self._buffer)))
        return self._measure(n_total)

    def _measure(self, until: int) -> Prosody:
        first = self.frames_done
        n = max(0, until - first)
        starts = np.array([self._window_start(i) for i in range(first, first + n)], np.int64)
        if n:
            windows = np.lib.stride_tricks.sliding_window_view(self._buffer, self.window_len)
            frames = windows[starts - self._buffer_start]
        else:
            frames = np.zeros((0, self.window_len), np.float32)
        features = self._features(frames)
        self.frames_done = first + n
        # Keep only what the next frame's window still needs.
        keep_from = self._window_start(self.frames_done) - self._buffer_start
        if keep_from > 0:
            self._buffer = self._buffer[keep_from:].copy()
            self._buffer_start += keep_from
        return features

    def _features(self, frames: np.ndarray) -> Prosody:
        sample_rate = self.sample_rate
        # A DC offset is not sound: it would count as low-band power and hide zero crossings.
        frames = frames - frames.mean(axis=1, keepdims=True)
        windowed = frames * self._hann
        rms = np.sqrt(np.sum(windowed**2, axis=1) / self._hann_power)
        loudness_db = np.maximum(20.0 * np.log10(np.maximum(rms, 1e-12)), LOUDNESS_FLOOR_DB)
        energy = self._level.update(loudness_db)

        magnitude = np.abs(scipy.fft.rfft(windowed, n=self._n_fft, axis=1))
        # Sums over frequency run in order along each row (cumulative sums), so that a frame's
        # value does not depend on how many frames are measured together.
        power_cumsum = np.cumsum(magnitude.astype(np.float64) ** 2, axis=1)
        total_power = power_cumsum[:, -1]
        low_power = power_cumsum[:, self._low_end - 1]
        high_power = total_power - power_cumsum[:, self._high_start - 1]
        has_sound = total_power > 1e-20
        safe_power = np.where(has_sound, total_power, 1.0)
        low_band_ratio = np.where(has_sound, low_power / safe_power, 0)
        high_band_ratio = np.where(has_sound, high_power / safe_power, 0)
        magnitude_sum = np.cumsum(magnitude, axis=1, dtype=np.float64)[:, -1]
        centroid = np.cumsum(magnitude * self._bin_hz, axis=1)[:, -1]
        spectral_centroid_hz = np.where(
            has_sound, centroid / np.where(has_sound, magnitude_sum, 1.0), 0.0
        )

        signs = np.signbit(frames)
        zero_crossing_rate = np.mean(signs[:, 1:] != signs[:, :-1], axis=1)
        zero_crossing_rate = np.where(has_sound, zero_crossing_rate, 0.0)

        if len(frames):
            pitch_len = min(self.window_len, int(round(MIN_WINDOW_S * sample_rate)))
            pitch_start = (self.window_len - pitch_len) // 2
            pitch_hz, periodicity = _yin_pitch(
                frames[:, pitch_start : pitch_start + pitch_len], sample_rate
            )
        else:
            pitch_hz = periodicity = np.zeros(0)
        # Periodicity in the noise floor is hum or room tone, not a voice.
        voicing = np.where(energy > 0, periodicity, 0.0)
        pitch_hz = np.where(energy > 0, pitch_hz, 0.0)

        def as_f32(values: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(values, dtype=np.float32)

        return Prosody(
            fps=self.fps,
            loudness_db=as_f32(loudness_db),
            energy=as_f32(energy),
            voicing=as_f32(voicing),
            pitch_hz=as_f32(pitch_hz),
            spectral_centroid_hz=as_f32(spectral_centroid_hz),
            low_band_ratio=as_f32(low_band_ratio),
            high_band_ratio=as_f32(high_band_ratio),
            zero_crossing_rate=as_f32(zero_crossing_rate),
        )
