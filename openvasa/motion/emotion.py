"""Emotion presets: blendshape offsets and how much they scale motion energy."""

from __future__ import annotations

import numpy as np

from openvasa.latent.motion import ARKIT_BLENDSHAPES, BLENDSHAPE_INDEX

# Offsets at strength 1, after the facial action units that characterise each emotion
# (Ekman & Friesen's FACS: happiness AU6+12, sadness AU1+4+15, anger AU4+5+7+23,
# surprise AU1+2+5+26).
_PRESETS: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {
        "mouthSmileLeft": 0.65,
        "mouthSmileRight": 0.65,
        "cheekSquintLeft": 0.4,
        "cheekSquintRight": 0.4,
        "eyeSquintLeft": 0.25,
        "eyeSquintRight": 0.25,
    },
    "sad": {
        "browInnerUp": 0.7,
        "mouthFrownLeft": 0.55,
        "mouthFrownRight": 0.55,
        "browDownLeft": 0.15,
        "browDownRight": 0.15,
        "mouthShrugLower": 0.3,
    },
    "angry": {
        "browDownLeft": 0.85,
        "browDownRight": 0.85,
        "eyeSquintLeft": 0.35,
        "eyeSquintRight": 0.35,
        "mouthPressLeft": 0.5,
        "mouthPressRight": 0.5,
        "noseSneerLeft": 0.35,
        "noseSneerRight": 0.35,
    },
    "surprised": {
        "browInnerUp": 0.75,
        "browOuterUpLeft": 0.8,
        "browOuterUpRight": 0.8,
        "eyeWideLeft": 0.7,
        "eyeWideRight": 0.7,
        "jawOpen": 0.08,
    },
}
# How lively the head and mouth move under each emotion (1 = as in neutral speech).
MOTION_ENERGY = {"neutral": 1.0, "happy": 1.15, "sad": 0.7, "angry": 1.25, "surprised": 1.2}
EMOTIONS: tuple[str, ...] = tuple(_PRESETS)


def emotion_offset(name: str, strength: float = 1.0) -> np.ndarray:
    """(52,) blendshape offsets for an emotion at `strength` in [0, 1]."""
    offset = np.zeros(len(ARKIT_BLENDSHAPES), np.float32)
    for shape, value in _PRESETS[name].items():
        offset[BLENDSHAPE_INDEX[shape]] = value * strength
    return offset


def motion_energy(name: str, strength: float = 1.0) -> float:
    return 1.0 + (MOTION_ENERGY[name] - 1.0) * strength


def parse_emotion(text: str) -> tuple[str, float]:
    """'happy' or 'happy:0.6' → ('happy', 0.6)."""
    name, _, strength = text.partition(":")
    return name.strip().lower(), float(strength) if strength else 1.0
