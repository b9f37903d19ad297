"""Frames as numbered PNG files (``frame_000000.png``, ...) for editors and compositing tools."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

import numpy as np

try:
    import cv2
except ImportError:  # PIL is slower but always there
    cv2 = None

# zlib level 1: ~2.7x faster than level 6 (14 vs 39 ms at 512x512), files only ~4% larger.
PNG_COMPRESSION_LEVEL = 1


def temporary_sibling(path: Path) -> Path:
    """A fresh hidden name beside `path` (``.name.tmp-1a2b3c4d.ext``) to write to, then rename.

    Not `tempfile.mkstemp`: its files are mode 0600, which would survive the rename and hide
    outputs from other users (a web server, a teammate); a file created by name honours umask.
    """
    return path.with_name(f".{path.stem}.tmp-{secrets.token_hex(4)}{path.suffix}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary sibling, so a reader never sees half a file."""
    tmp_path = temporary_sibling(path)
    try:
        with open(tmp_path, "xb") as file:
            file.write(data)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def frame_filename(index: int) -> str:
    """The file name of frame `index`: ``frame_000042.png``."""
    return f"frame_{index:06d}.png"


def _encode_png(frame: np.ndarray) -> bytes:
    if cv2 is not None:
        # OpenCV stores channels as BGR(A); swap so that the file holds RGB(A).
        if frame.ndim == 3 and frame.shape[2] == 3:
            frame = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        elif frame.ndim == 3 and frame.shape[2] == 4:
            frame = cv2.cvtColor(frame, cv2.COLOR_RGBA2BGRA)
        ok, encoded = cv2.imencode(
            ".png", frame, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION_LEVEL]
        )
        if not ok:
            raise ValueError(f"PNG encoding failed for a frame of shape {frame.shape}")
        return encoded.tobytes()
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG", compress_level=PNG_COMPRESSION_LEVEL)
    return buffer.getvalue()


def write_png_frames(
    frames: Iterable[np.ndarray], directory: str | os.PathLike[str], *, start: int = 0
) -> int:
    """Write frames as ``frame_{start:06d}.png``, ``frame_{start+1:06d}.png``, ... in `directory`.

    Args:
        frames: uint8 arrays, RGB (H, W, 3), RGBA (H, W, 4) or grey (H, W).
        directory: made if missing; existing files of the same names are replaced.
        start: index of the first frame's file name.

    Returns:
        The number of frames written. Each file is written under a temporary name and then
        renamed, so a reader never sees half a PNG.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for count, frame in enumerate(frames, start=1):
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or not (
            frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (3, 4))
        ):
            raise ValueError(
                f"frame {start + count - 1} must be uint8 (H, W), (H, W, 3) or (H, W, 4), "
                f"got {frame.dtype} {frame.shape}"
            )
        encoded = _encode_png(np.ascontiguousarray(frame))
        atomic_write_bytes(directory / frame_filename(start + count - 1), encoded)
    return count
