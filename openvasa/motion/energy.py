"""The energy engine: a first audio-driven motion source (`--engine energy`).

Loudness and spectral shape drive the mouth (jawOpen, mouthFunnel, mouthPucker, mouthClose)
through attack/release smoothing; the head sways idly and nods with the voice; the eyes blink
at random and make small gaze shifts around the requested direction; the head rises and falls
a little with breathing. Silence closes the mouth but keeps the face alive.

The engine is causal with a bounded look-ahead: frame i depends on the audio up to the end of
its analysis window (`lookahead_s` after the frame's start, 60 ms at 25 fps) and on nothing
later. `EnergyEngine.open` gives a stream that takes audio piece by piece, as a live session
does; `EnergyEngine.generate` runs the very same stream over a whole clip, so offline and live
motion are equal frame by frame for the same seed and audio. Everything random comes from one
seed, split into independent generators per purpose, so a run is repeatable however the audio
is cut into pieces.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from scipy.signal import lfilter

from openvasa.audio import Audio
from openvasa.audio.load import SAMPLE_RATE
from openvasa.audio.prosody import Prosody
from openvasa.audio.prosody_stream import ProsodyStream
from openvasa.latent.motion import BLENDSHAPE_INDEX, MotionFrame, MotionSequence
from openvasa.motion.emotion import emotion_offset, motion_energy
from openvasa.settings import Controls

# Mouth dynamics: the jaw opens fast and closes a little slower (time constants in seconds).
ATTACK_S = 0.02
RELEASE_S = 0.06
# Spontaneous blinking during conversation: about 17 per minute, rarely closer than 1.2 s
# apart (Bentivoglio et al. 1997, Movement Disorders 12:1028); one blink lasts ~250 ms, the
# lid closing in ~100 ms and reopening in ~150 ms.
BLINKS_PER_MIN = 17.0
BLINK_MIN_GAP_S = 1.2
BLINK_CLOSE_S = 0.10
BLINK_OPEN_S = 0.15
# Head motion while talking: a few degrees of slow drift (standard deviations, degrees).
SWAY_DEG = {"yaw": 3.0, "pitch": 2.0, "roll": 1.5}
# The drift is a sum of smooth random processes at log-spaced time scales (seconds) with equal
# weights, roughly a 1/f spectrum from 0.1 to 10 s; the mean head-angle change per frame at
# 25 fps (ΔP, VASA-1's motion-intensity measure) comes to about 0.3 degrees in speech.
SWAY_TIME_SCALES_S = (0.12, 0.4, 1.3, 4.0)
SWAY_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
# The drift is already under way when a clip starts; the head eases from the portrait's own
# pose into it over about this long (seconds).
SWAY_SETTLE_S = 1.0
# Small gaze shifts around the main direction every 1–3 s.
SACCADE_DEG = 2.5
# Quiet breathing: 12–17 breaths a minute; on each breath in, the head rises a little.
BREATH_PERIOD_S = (3.5, 5.0)
BREATH_PITCH_DEG = 0.6
BREATH_RISE = 0.005  # face widths
# A changed control (gaze, emotion) glides to its new value with this time constant.
CONTROL_GLIDE_S = 0.3


def _attack_release(
    target: np.ndarray, level: float, attack: float, release: float
) -> tuple[np.ndarray, float]:
    """One-pole smoothing with a faster rise than fall. Returns (smoothed (n,), last level)."""
    out = np.empty(len(target), np.float64)
    for i, value in enumerate(target.tolist()):
        level += (attack if value > level else release) * (value - level)
        out[i] = level
    return out, level


class _Smoother:
    """Causal attack/release filter with its state, for audio that arrives in pieces."""

    def __init__(self, fps: float, attack_s: float, release_s: float):
        self.attack = 1.0 - np.exp(-1.0 / (fps * attack_s))
        self.release = 1.0 - np.exp(-1.0 / (fps * release_s))
        self.level = 0.0

    def __call__(self, target: np.ndarray) -> np.ndarray:
        out, self.level = _attack_release(target, self.level, self.attack, self.release)
        return out


class _SwayNoise:
    """Smooth unit-variance random drift for `n_axes` axes: a weighted sum of white noise run
    through two cascaded one-pole low-pass filters per time scale. Causal and stateful."""

    def __init__(self, fps: float, rng: np.random.Generator, n_axes: int = 3):
        self.rng = rng
        self.n_axes = n_axes
        self.filters = []
        gains = []
        for tau, weight in zip(SWAY_TIME_SCALES_S, SWAY_WEIGHTS, strict=True):
            a = 1.0 - np.exp(-1.0 / (fps * tau))
            b, den = [a * a], [1.0, -2.0 * (1.0 - a), (1.0 - a) ** 2]
            # Stationary variance of the filter's output for unit white noise in.
            impulse = np.zeros(int(40 * tau * fps) + 10)
            impulse[0] = 1.0
            variance = float(np.sum(lfilter(b, den, impulse) ** 2))
            self.filters.append((b, den))
            gains.append(weight / np.sqrt(variance))
        total = np.sqrt(sum(w * w for w in SWAY_WEIGHTS))
        self.gains = np.array(gains) / total
        self.state = [np.zeros((2, n_axes)) for _ in self.filters]
        self.settle = np.exp(-1.0 / (fps * SWAY_SETTLE_S))
        # Run the filters until they forget their zero start, then ease out of where they are,
        # so that the first frame shows the portrait's own pose.
        warm_up = self._filtered(int(10 * max(SWAY_TIME_SCALES_S) * fps))
        self.offset = warm_up[-1].copy()

    def _filtered(self, n: int) -> np.ndarray:
        white = self.rng.standard_normal((n, len(self.filters), self.n_axes))
        out = np.zeros((n, self.n_axes))
        for k, ((b, den), gain) in enumerate(zip(self.filters, self.gains, strict=True)):
            filtered, self.state[k] = lfilter(b, den, white[:, k], axis=0, zi=self.state[k])
            out += gain * filtered
        return out

    def __call__(self, n: int) -> np.ndarray:
        """(n, n_axes) drift for the next n frames."""
        out = self._filtered(n)
        for j in range(n):
            out[j] -= self.offset
            self.offset *= self.settle
        return out


class _Blinks:
    """Blinks at random times (a renewal process with a minimum gap), evaluated per frame."""

    def __init__(self, fps: float, rng: np.random.Generator, per_min: float = BLINKS_PER_MIN):
        self.fps = fps
        self.rng = rng
        self.mean_gap = 60.0 / per_min
        self.next_s = float(rng.uniform(0.3, self.mean_gap))
        self.pending: deque[float] = deque()

    def __call__(self, first_frame: int, n: int) -> np.ndarray:
        """(n,) eyelid closure in [0, 1] for frames first_frame … first_frame + n - 1."""
        out = np.zeros(n, np.float32)
        for j in range(n):
            t = (first_frame + j) / self.fps
            # Schedule blinks whose closing phase has begun by time t.
            while self.next_s - BLINK_CLOSE_S <= t:
                self.pending.append(self.next_s)
                gap = BLINK_MIN_GAP_S + self.rng.exponential(self.mean_gap - BLINK_MIN_GAP_S)
                self.next_s += gap
            while self.pending and self.pending[0] + BLINK_OPEN_S < t:
                self.pending.popleft()
            closure = 0.0
            for blink_s in self.pending:
                dt = t - blink_s
                if dt <= 0:
                    value = min(max(1.0 + dt / BLINK_CLOSE_S, 0.0), 1.0)
                else:
                    value = min(max(1.0 - dt / BLINK_OPEN_S, 0.0), 1.0)
                closure = max(closure, value)
            out[j] = closure
        return out


def blink_track(
    n_frames: int, fps: float, rng: np.random.Generator, per_min: float = BLINKS_PER_MIN
) -> np.ndarray:
    """(n_frames,) eyelid closure in [0, 1] with blinks at random times."""
    return _Blinks(fps, rng, per_min)(0, n_frames)


class _Saccades:
    """Small gaze shifts held for 1–3 s each: (n, 2) offsets in degrees from the main gaze."""

    def __init__(self, fps: float, rng: np.random.Generator):
        self.fps = fps
        self.rng = rng
        self.next_s = float(rng.uniform(0.5, 2.0))
        self.offset = np.zeros(2)

    def __call__(self, first_frame: int, n: int) -> np.ndarray:
        out = np.empty((n, 2))
        for j in range(n):
            while int(self.next_s * self.fps) <= first_frame + j:
                self.offset = self.rng.normal(0.0, SACCADE_DEG, 2)
                self.next_s += float(self.rng.uniform(1.0, 3.0))
            out[j] = self.offset
        return out


class _Breathing:
    """Breath cycles of random length: (n,) inhale depth in [0, 1] per frame."""

    def __init__(self, fps: float, rng: np.random.Generator):
        self.fps = fps
        self.rng = rng
        self.phase = float(rng.uniform(0.0, 1.0))  # fraction of the current breath
        self.period_s = float(rng.uniform(*BREATH_PERIOD_S))

    def __call__(self, n: int) -> np.ndarray:
        out = np.empty(n)
        for j in range(n):
            out[j] = 0.5 - 0.5 * np.cos(2.0 * np.pi * self.phase)
            self.phase += 1.0 / (self.period_s * self.fps)
            if self.phase >= 1.0:
                self.phase -= 1.0
                self.period_s = float(self.rng.uniform(*BREATH_PERIOD_S))
        return out


class EnergyMotionStream:
    """Causal motion for audio that arrives piece by piece (16 kHz mono float32).

    `push(samples)` returns the motion of the frames that the audio so far completes (frame i
    needs audio up to i / fps + `lookahead_s`); `end()` returns the rest, up to
    `frame_count(duration, fps)` frames in all. `set_controls` changes gaze and emotion from
    the next frame on, gliding there over ~`CONTROL_GLIDE_S`.
    """

    def __init__(self, fps: float, start: MotionFrame, controls: Controls):
        self.fps = float(fps)
        self.start_pose = np.asarray(start.pose, np.float64).copy()
        self.prosody = ProsodyStream(fps, SAMPLE_RATE)
        self.frames_done = 0
        head_rng, blink_rng, gaze_rng, breath_rng = (
            np.random.default_rng(seed) for seed in np.random.SeedSequence(controls.seed).spawn(4)
        )
        self._sway = _SwayNoise(fps, head_rng)
        self._blinks = _Blinks(fps, blink_rng)
        self._saccades = _Saccades(fps, gaze_rng)
        self._breathing = _Breathing(fps, breath_rng)
        self._jaw = _Smoother(fps, ATTACK_S, RELEASE_S)
        self._rounded = _Smoother(fps, 0.04, 0.08)
        self._envelope = _Smoother(fps, 0.01, 0.25)
        self._closure = _Smoother(fps, 0.015, 0.05)
        self._emphasis = _Smoother(fps, 0.05, 0.3)
        self._voice = _Smoother(fps, 0.1, 0.5)
        self._nod = _Smoother(fps, 0.05, 0.25)
        self._last_speech = 0.0
        self._glide = 1.0 - np.exp(-1.0 / (fps * CONTROL_GLIDE_S))
        self.controls = controls
        self._target = self._control_vector(controls)
        self._current = self._target.copy()

    @property
    def lookahead_s(self) -> float:
        """Audio needed past a frame's start time before the frame can be made, in seconds."""
        return self.prosody.lookahead_s

    @staticmethod
    def _control_vector(controls: Controls) -> np.ndarray:
        """[gaze yaw, gaze pitch, liveliness, 52 emotion offsets]: what glides on a change."""
        return np.concatenate(
            [
                np.asarray(controls.gaze_deg, np.float64),
                [motion_energy(controls.emotion, controls.emotion_strength)],
                emotion_offset(controls.emotion, controls.emotion_strength),
            ]
        )

    def set_controls(self, controls: Controls) -> None:
        """New gaze and emotion, reached smoothly from the next frame on (the seed stays)."""
        self.controls = controls
        self._target = self._control_vector(controls)

    def push(self, samples: np.ndarray, catch_up: bool = False) -> MotionSequence:
        """Add audio; returns the motion of the frames it completes (maybe zero frames).
        catch_up: accepted for the streams' sake; frame by frame, nothing is to be gained."""
        return self._motion(self.prosody.push(samples))

    def end(self) -> MotionSequence:
        """No more audio: the remaining frames, the last ones over silence."""
        return self._motion(self.prosody.end())

    def _controls_per_frame(self, n: int) -> np.ndarray:
        if np.array_equal(self._current, self._target):
            return np.broadcast_to(self._current, (n, len(self._current)))
        out = np.empty((n, len(self._current)))
        for j in range(n):
            self._current += self._glide * (self._target - self._current)
            out[j] = self._current
        if np.abs(self._current - self._target).max() < 1e-4:
            self._current = self._target.copy()
        return out

    def _motion(self, prosody: Prosody) -> MotionSequence:
        n = len(prosody)
        if n == 0:
            # No frame completed: leave every filter's state untouched (lfilter would not).
            return concatenate([], self.fps)
        first = self.frames_done
        self.frames_done += n
        controls = self._controls_per_frame(n)
        gaze_main, liveliness, emotion = controls[:, :2], controls[:, 2], controls[:, 3:]

        speech = prosody.energy.astype(np.float64)
        # Sibilants keep the teeth close; vowels open the jaw.
        openness = (
            speech**0.8
            * (0.55 + 0.45 * prosody.low_band_ratio)
            * (1.0 - 0.6 * prosody.high_band_ratio)
        )
        jaw = self._jaw(np.clip(0.48 * openness * liveliness, 0, 0.85))
        # Rounded vowels (oo, oh, w) have a low spectral centroid.
        rounded = np.clip((1300.0 - prosody.spectral_centroid_hz) / 900.0, 0, 1) * prosody.voicing
        rounded = self._rounded(rounded * speech)
        # Quick dips inside speech are closures (p, b, m): press the lips together.
        envelope = self._envelope(speech)
        closure = self._closure(np.clip(envelope - speech - 0.35, 0, 1) * 2.0)

        blendshapes = np.array(emotion, np.float64)
        blendshapes[:, BLENDSHAPE_INDEX["jawOpen"]] += jaw
        blendshapes[:, BLENDSHAPE_INDEX["mouthFunnel"]] += 0.55 * rounded
        blendshapes[:, BLENDSHAPE_INDEX["mouthPucker"]] += 0.35 * rounded
        blendshapes[:, BLENDSHAPE_INDEX["mouthClose"]] += np.minimum(closure, jaw)
        blink = self._blinks(first, n)
        for side in ("Left", "Right"):
            column = BLENDSHAPE_INDEX[f"eyeBlink{side}"]
            blendshapes[:, column] = np.maximum(blendshapes[:, column], blink)
        # Brows rise a little on loud, emphasised syllables.
        emphasis = self._emphasis(np.clip(speech - 0.7, 0, 1))
        blendshapes[:, BLENDSHAPE_INDEX["browInnerUp"]] += 0.5 * emphasis * liveliness
        np.clip(blendshapes, 0.0, 1.0, out=blendshapes)

        voice = self._voice(speech)
        rises = np.diff(speech, prepend=self._last_speech)
        self._last_speech = float(speech[-1])
        nod = self._nod(np.clip(rises, 0, 1))
        sway = self._sway(n)
        pose = np.tile(self.start_pose, (n, 1))
        pose[:, 0] += SWAY_DEG["yaw"] * liveliness * sway[:, 0]
        pose[:, 1] += SWAY_DEG["pitch"] * liveliness * sway[:, 1] - 4.0 * nod
        pose[:, 2] += SWAY_DEG["roll"] * liveliness * sway[:, 2]
        # Talking heads move more than silent ones.
        pose[:, :3] = self.start_pose[:3] + (pose[:, :3] - self.start_pose[:3]) * (
            0.5 + 0.5 * voice[:, None]
        )
        # Breathing shows most while silent; speech breathing is quick and irregular.
        breath = self._breathing(n) * (1.0 - 0.6 * voice)
        pose[:, 1] += BREATH_PITCH_DEG * breath
        pose[:, 4] -= BREATH_RISE * breath

        gaze = gaze_main + self._saccades(first, n)
        return MotionSequence(self.fps, pose, blendshapes, gaze)


def concatenate(parts: list[MotionSequence], fps: float) -> MotionSequence:
    """One MotionSequence from consecutive pieces (an empty list gives zero frames)."""
    if not parts:
        return MotionSequence(fps, np.zeros((0, 6)), np.zeros((0, 52)), np.zeros((0, 2)))
    return MotionSequence(
        fps,
        np.concatenate([p.pose for p in parts]),
        np.concatenate([p.blendshapes for p in parts]),
        np.concatenate([p.gaze for p in parts]),
    )


class EnergyEngine:
    """Audio loudness and spectrum → MotionSequence, causally."""

    name = "energy"

    def open(
        self, fps: float, start: MotionFrame, controls: Controls | None = None
    ) -> EnergyMotionStream:
        """A motion stream for live audio. start: the portrait's own motion latents (its pose
        is the rest pose of the head)."""
        return EnergyMotionStream(fps, start, controls or Controls())

    def generate(
        self, audio: Audio, fps: float, start: MotionFrame, controls: Controls | None = None
    ) -> MotionSequence:
        """Motion for the whole clip: one frame per 1/fps of audio, `frame_count` frames.

        The clip must be at 16 kHz (`Audio.from_array` and `load_audio` make it so).
        start: the portrait's own motion latents (its pose is the rest pose of the head).
        """
        if audio.sample_rate != SAMPLE_RATE:
            audio = Audio.from_array(audio.samples, audio.sample_rate)
        stream = self.open(fps, start, controls)
        return concatenate([stream.push(audio.samples), stream.end()], fps)
