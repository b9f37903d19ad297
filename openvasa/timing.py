"""How audio time maps to video frames, shared by every stage."""

import math


def frame_count(duration_s: float, fps: float) -> int:
    """Number of video frames that cover `duration_s` seconds at `fps`: the video lasts as long
    as the audio, rounded up to whole frames (at least one)."""
    return max(1, math.ceil(duration_s * fps - 1e-6))
