"""What happens to a video after it leaves openvasa, done for real to measure the watermark.

Every function takes and returns (T, H, W, 3) uint8 RGB frames; the encodes run libx264
through PyAV in memory, as `ffmpeg -c:v libx264 -crf N` would.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av
import cv2
import numpy as np


def h264(
    frames: np.ndarray, *, crf: float, preset: str = "medium", fps: float = 25.0
) -> np.ndarray:
    """Encode with H.264 (yuv420p) at `crf` and decode again."""
    height, width = frames.shape[1:3]
    width, height = width - width % 2, height - height % 2
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        for frame in frames:
            picture = np.ascontiguousarray(frame[:height, :width])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode(None))
    buffer.seek(0)
    with av.open(buffer, mode="r") as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def resize(frames: np.ndarray, width: int, height: int | None = None) -> np.ndarray:
    """Rescale every frame (area averaging when shrinking, bilinear when enlarging)."""
    height = height or round(frames.shape[1] * width / frames.shape[2])
    shrink = width < frames.shape[2]
    method = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (width, height), interpolation=method) for f in frames])


def reencode_downscaled(frames: np.ndarray, *, size: int = 256, crf: float = 28) -> np.ndarray:
    """The issue's test: downscale to `size` px wide and re-encode with H.264 at `crf`."""
    return h264(resize(frames, size), crf=crf)


def crop(frames: np.ndarray, fraction: float = 0.1, *, keep_size: bool = False) -> np.ndarray:
    """Cut `fraction` of the width and height away (half on each side, off-centre by a third
    of a chip so the cut does not fall on the mark's grid); `keep_size`: scale back up."""
    height, width = frames.shape[1:3]
    cut_y, cut_x = round(height * fraction), round(width * fraction)
    top, left = cut_y // 2 + 1, cut_x // 2 + 1
    cropped = frames[:, top : top + height - cut_y, left : left + width - cut_x]
    return resize(cropped, width, height) if keep_size else np.ascontiguousarray(cropped)


def screen_recording(
    frames: np.ndarray,
    *,
    scale: float = 1.5,
    screen: tuple[int, int] = (1280, 800),
    offset: tuple[int, int] = (173, 91),
) -> np.ndarray:
    """The video played `scale` times enlarged in a window on a dark desktop of `screen`
    (width, height) pixels at `offset` (x, y), as a screen recorder captures it."""
    height, width = frames.shape[1:3]
    shown = resize(frames, round(width * scale), round(height * scale))
    desktop = np.empty((len(frames), screen[1], screen[0], 3), np.uint8)
    desktop[:] = (32, 34, 40)
    x, y = offset
    h, w = min(shown.shape[1], screen[1] - y), min(shown.shape[2], screen[0] - x)
    desktop[:, y : y + h, x : x + w] = shown[:, :h, :w]
    return desktop
