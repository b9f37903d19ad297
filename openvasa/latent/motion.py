"""Per-frame motion latents: the value that flows from a motion engine to the renderer.

One frame of motion is [pose, dynamics]: head pose (6 numbers), facial expression as the 52
ARKit blendshape coefficients, and gaze (2 angles). A `MotionSequence` stacks them over time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Apple ARKit's 52 blendshape names, in ARKit's documented order. Engines, files and game
# engines (Unreal LiveLink, VRM, Audio2Face) all use these names.
ARKIT_BLENDSHAPES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "noseSneerLeft", "noseSneerRight", "tongueOut",
)  # fmt: skip
BLENDSHAPE_INDEX: dict[str, int] = {name: i for i, name in enumerate(ARKIT_BLENDSHAPES)}

# Head pose: angles in degrees; translation in face widths from the default framing position
# (x right, y down in the image); scale relative to the default framing (2.0 = twice as large).
POSE_NAMES: tuple[str, ...] = ("yaw_deg", "pitch_deg", "roll_deg", "tx", "ty", "scale")
# Gaze of both eyes, in degrees relative to the head: yaw positive to the image's right,
# pitch positive upwards.
GAZE_NAMES: tuple[str, ...] = ("gaze_yaw_deg", "gaze_pitch_deg")


@dataclass
class MotionFrame:
    """One frame of motion: pose (6,), blendshapes (52,), gaze (2,), all float32."""

    pose: np.ndarray
    blendshapes: np.ndarray
    gaze: np.ndarray

    @staticmethod
    def neutral() -> MotionFrame:
        pose = np.zeros(6, np.float32)
        pose[5] = 1.0
        return MotionFrame(
            pose, np.zeros(len(ARKIT_BLENDSHAPES), np.float32), np.zeros(2, np.float32)
        )

    def weight(self, name: str) -> float:
        return float(self.blendshapes[BLENDSHAPE_INDEX[name]])


@dataclass
class MotionSequence:
    """Motion latents over time at `fps` frames per second.

    pose: (T, 6) [yaw_deg, pitch_deg, roll_deg, tx, ty, scale]
    blendshapes: (T, 52) ARKit coefficients in [0, 1], columns in `ARKIT_BLENDSHAPES` order
    gaze: (T, 2) [yaw_deg, pitch_deg]
    """

    fps: float
    pose: np.ndarray
    blendshapes: np.ndarray
    gaze: np.ndarray

    def __post_init__(self) -> None:
        self.pose = np.asarray(self.pose, np.float32).reshape(-1, len(POSE_NAMES))
        self.blendshapes = np.asarray(self.blendshapes, np.float32).reshape(
            -1, len(ARKIT_BLENDSHAPES)
        )
        self.gaze = np.asarray(self.gaze, np.float32).reshape(-1, len(GAZE_NAMES))
        if not len(self.pose) == len(self.blendshapes) == len(self.gaze):
            raise ValueError("pose, blendshapes and gaze must have the same number of frames")

    def __len__(self) -> int:
        return len(self.pose)

    @property
    def duration_s(self) -> float:
        return len(self) / self.fps

    def frame(self, index: int) -> MotionFrame:
        return MotionFrame(self.pose[index], self.blendshapes[index], self.gaze[index])

    def channel(self, name: str) -> np.ndarray:
        """The (T,) trajectory of one named channel: a blendshape, pose or gaze name."""
        if name in BLENDSHAPE_INDEX:
            return self.blendshapes[:, BLENDSHAPE_INDEX[name]]
        if name in POSE_NAMES:
            return self.pose[:, POSE_NAMES.index(name)]
        if name in GAZE_NAMES:
            return self.gaze[:, GAZE_NAMES.index(name)]
        raise KeyError(f"unknown motion channel {name!r}")

    @staticmethod
    def neutral(n_frames: int, fps: float) -> MotionSequence:
        frame = MotionFrame.neutral()
        return MotionSequence(
            fps,
            np.tile(frame.pose, (n_frames, 1)),
            np.tile(frame.blendshapes, (n_frames, 1)),
            np.tile(frame.gaze, (n_frames, 1)),
        )
