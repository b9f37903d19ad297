"""The energy engine: a first audio-driven motion source (`--engine energy`).

Loudness and spectral shape drive the mouth (jawOpen, mouthFunnel, mouthPucker, mouthClose)
through attack/release smoothing; the head sways idly and nods with the voice; the eyes blink
at random and make small gaze shifts around the requested direction. Silence closes the mouth.
Everything random comes from one seed, so a run is repeatable.
"""

from __future__ import annotations

import numpy as np

from openvasa.audio import Audio, prosody_features
from openvasa.latent.motion import BLENDSHAPE_INDEX, MotionFrame, MotionSequence
from openvasa.motion.emotion import emotion_offset, motion_energy
from openvasa.settings import Controls
from openvasa.timing import frame_count

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
# Small gaze shifts around the main direction every 1–3 s.
SACCADE_DEG = 2.5


def _smooth(target: np.ndarray, fps: float, attack_s: float, release_s: float) -> np.ndarray:
    attack = 1.0 - np.exp(-1.0 / (fps * attack_s))
    release = 1.0 - np.exp(-1.0 / (fps * release_s))
    out = np.empty_like(target)
    level = 0.0
    for i, value in enumerate(target):
        level += (attack if value > level else release) * (value - level)
        out[i] = level
    return out


def _pink_noise(
    rng: np.random.Generator, n: int, fps: float, slowest_s: float = 8.0, fastest_s: float = 0.6
) -> np.ndarray:
    """Unit-variance noise with a 1/f spectrum between two time scales: head drift."""
    spectrum = rng.normal(size=n // 2 + 1) + 1j * rng.normal(size=n // 2 + 1)
    freqs = np.fft.rfftfreq(n, 1.0 / fps)
    band = (freqs >= 1.0 / slowest_s) & (freqs <= 1.0 / fastest_s)
    spectrum *= np.where(band, 1.0 / np.sqrt(np.maximum(freqs, 1e-6)), 0.0)
    noise = np.fft.irfft(spectrum, n)
    std = noise.std()
    return noise / std if std > 0 else noise


def blink_track(
    n_frames: int, fps: float, rng: np.random.Generator, per_min: float = BLINKS_PER_MIN
) -> np.ndarray:
    """(n_frames,) eyelid closure in [0, 1] with blinks at random times."""
    track = np.zeros(n_frames, np.float32)
    mean_gap = 60.0 / per_min
    t = rng.uniform(0.3, mean_gap)
    duration = n_frames / fps
    while t < duration:
        times = np.arange(n_frames) / fps - t
        closing = np.clip(1 + times / BLINK_CLOSE_S, 0, 1) * (times <= 0)
        opening = np.clip(1 - times / BLINK_OPEN_S, 0, 1) * (times > 0)
        track = np.maximum(track, closing + opening)
        gap = BLINK_MIN_GAP_S + rng.exponential(mean_gap - BLINK_MIN_GAP_S)
        t += gap
    return track


class EnergyEngine:
    """Audio loudness and spectrum → MotionSequence."""

    name = "energy"

    def generate(
        self, audio: Audio, fps: float, start: MotionFrame, controls: Controls | None = None
    ) -> MotionSequence:
        """Motion for the whole clip: one frame per 1/fps of audio.

        start: the portrait's own motion latents (its pose is the rest pose of the head).
        """
        controls = controls or Controls()
        n = frame_count(audio.duration_s, fps)
        rng = np.random.default_rng(controls.seed)
        prosody = prosody_features(audio, fps)
        liveliness = motion_energy(controls.emotion, controls.emotion_strength)

        speech = prosody.energy
        # Sibilants keep the teeth close; vowels open the jaw.
        openness = (
            speech**0.8
            * (0.55 + 0.45 * prosody.low_band_ratio)
            * (1.0 - 0.6 * prosody.high_band_ratio)
        )
        jaw = _smooth(np.clip(0.48 * openness * liveliness, 0, 0.85), fps, ATTACK_S, RELEASE_S)
        # Rounded vowels (oo, oh, w) have a low spectral centroid.
        rounded = np.clip((1300.0 - prosody.spectral_centroid_hz) / 900.0, 0, 1) * prosody.voicing
        rounded = _smooth(rounded * speech, fps, 0.04, 0.08)
        # Quick dips inside speech are closures (p, b, m): press the lips together.
        envelope = _smooth(speech, fps, 0.01, 0.25)
        closure = _smooth(np.clip(envelope - speech - 0.35, 0, 1) * 2.0, fps, 0.015, 0.05)

        blendshapes = np.tile(emotion_offset(controls.emotion, controls.emotion_strength), (n, 1))
        blendshapes[:, BLENDSHAPE_INDEX["jawOpen"]] += jaw
        blendshapes[:, BLENDSHAPE_INDEX["mouthFunnel"]] += 0.55 * rounded
        blendshapes[:, BLENDSHAPE_INDEX["mouthPucker"]] += 0.35 * rounded
        blendshapes[:, BLENDSHAPE_INDEX["mouthClose"]] += np.minimum(closure, jaw)
        blink = blink_track(n, fps, rng)
        for side in ("Left", "Right"):
            blendshapes[:, BLENDSHAPE_INDEX[f"eyeBlink{side}"]] = np.maximum(
                blendshapes[:, BLENDSHAPE_INDEX[f"eyeBlink{side}"]], blink
            )
        # Brows rise a little on loud, emphasised syllables.
        emphasis = _smooth(np.clip(speech - 0.7, 0, 1), fps, 0.05, 0.3)
        blendshapes[:, BLENDSHAPE_INDEX["browInnerUp"]] += 0.5 * emphasis * liveliness
        np.clip(blendshapes, 0.0, 1.0, out=blendshapes)

        pose = np.tile(start.pose, (n, 1)).astype(np.float32)
        voice = _smooth(speech, fps, 0.1, 0.5)
        nod = _smooth(np.clip(np.diff(speech, prepend=0.0), 0, 1), fps, 0.05, 0.25)
        pose[:, 0] += SWAY_DEG["yaw"] * liveliness * _pink_noise(rng, n, fps)
        pose[:, 1] += SWAY_DEG["pitch"] * liveliness * _pink_noise(rng, n, fps) - 4.0 * nod
        pose[:, 2] += SWAY_DEG["roll"] * liveliness * _pink_noise(rng, n, fps)
        # Talking heads move more than silent ones.
        pose[:, :3] = start.pose[:3] + (pose[:, :3] - start.pose[:3]) * (0.5 + 0.5 * voice[:, None])

        gaze = np.tile(np.asarray(controls.gaze_deg, np.float32), (n, 1))
        t = rng.uniform(0.5, 2.0)
        while t < n / fps:
            first = int(t * fps)
            gaze[first:] = np.asarray(controls.gaze_deg) + rng.normal(0, SACCADE_DEG, 2)
            t += rng.uniform(1.0, 3.0)
        return MotionSequence(fps, pose, blendshapes, gaze)
