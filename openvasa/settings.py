"""Settings shared by the CLI, the Python API and (later) the server: one source of truth."""

from __future__ import annotations

from dataclasses import dataclass, field

from openvasa.errors import OpenvasaError

ENGINES = ("energy",)


@dataclass(frozen=True)
class Controls:
    """What a user steers in a generated video.

    gaze_deg: main gaze direction (yaw, pitch) in degrees relative to the head; (0, 0) looks
        into the camera; yaw > 0 to the image's right, pitch > 0 up.
    head_distance: apparent camera distance; 1.0 default framing, 2.0 face half as wide.
    emotion: one of `openvasa.motion.emotion.EMOTIONS`; emotion_strength in [0, 1].
    seed: makes head motion, blinks and gaze shifts repeatable.
    """

    gaze_deg: tuple[float, float] = (0.0, 0.0)
    head_distance: float = 1.0
    emotion: str = "neutral"
    emotion_strength: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        from openvasa.motion.emotion import EMOTIONS

        yaw, pitch = self.gaze_deg
        if not (-30.0 <= yaw <= 30.0 and -25.0 <= pitch <= 25.0):
            raise OpenvasaError(
                f"Gaze {yaw:g},{pitch:g} is out of range: yaw must lie in "
                "[-30, 30] and pitch in [-25, 25] degrees."
            )
        if not 0.5 <= self.head_distance <= 2.0:
            raise OpenvasaError(
                f"Head distance {self.head_distance:g} is out of range: use 0.5 "
                "(close) to 2.0 (far); 1.0 is the default framing."
            )
        if self.emotion not in EMOTIONS:
            raise OpenvasaError(
                f"Unknown emotion {self.emotion!r}: choose one of {', '.join(EMOTIONS)}."
            )
        if not 0.0 <= self.emotion_strength <= 1.0:
            raise OpenvasaError(f"Emotion strength {self.emotion_strength:g} must lie in [0, 1].")


@dataclass(frozen=True)
class OutputSettings:
    """How the video is made: frame rate, frame size, engine and limits."""

    fps: float = 25.0
    size: int = 512
    engine: str = "energy"
    max_audio_s: float = 600.0
    crf: int = 20
    controls: Controls = field(default_factory=Controls)

    def __post_init__(self) -> None:
        if not 20 <= self.fps <= 60:
            raise OpenvasaError(f"Frame rate {self.fps:g} is not supported: use 20 to 60 fps.")
        if not 64 <= self.size <= 2048 or self.size % 2:
            raise OpenvasaError(
                f"Size {self.size} is not supported: use an even number of pixels from 64 to 2048."
            )
        if self.engine not in ENGINES:
            raise OpenvasaError(
                f"Unknown engine {self.engine!r}: choose one of {', '.join(ENGINES)}."
            )
