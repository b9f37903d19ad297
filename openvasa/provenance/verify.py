"""`openvasa verify`: does a video or image carry the openvasa watermark?"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import av

from openvasa.errors import OpenvasaError
from openvasa.provenance.label import is_labelled
from openvasa.provenance.watermark import Detection, WatermarkDetector

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".jp2", ".ppm", ".pgm"}
)
# Frames are averaged, so more help, with diminishing returns; 30 s bounds the time taken.
DEFAULT_MAX_SECONDS = 30.0


@dataclass(frozen=True)
class VerifyReport:
    """The verdict on one file: the watermark detection and the file's own label."""

    path: Path
    kind: str  # "video" or "image"
    detection: Detection
    labelled: bool  # container metadata says AI-generated (videos only)

    @property
    def found(self) -> bool:
        return self.detection.found

    def summary(self) -> str:
        """One line for people: the verdict, the payload and the confidence."""
        d = self.detection
        if d.found:
            what = "openvasa watermark FOUND"
            details = []
            if d.payload is not None:
                key = f"key id {d.payload.key_id:06x}" if d.payload.key_id else "no key"
                if d.key_matched:
                    key += " (matches --key)"
                details.append(f"openvasa {d.payload.version}, {key}, {d.bits_read}/64 bits")
            else:
                details.append("payload unreadable")
            details.append(f"confidence {_percent(d.confidence)}, z {d.z:.1f}")
            if (d.scale, d.shift) != (1.0, (0, 0)):
                details.append(f"mark at {d.scale:.3f}x its size in the frame: cropped or rescaled")
        else:
            what = "no openvasa watermark found"
            details = [f"z {d.z:.1f}, chance of this score without a mark {d.p_false:.2g}"]
        details.append(f"{d.n_frames} frame{'s' if d.n_frames != 1 else ''}")
        if self.kind == "video":
            details.append("labelled AI-generated" if self.labelled else "no AI-generated label")
        return f"{self.path}: {what} ({'; '.join(details)})"


def _percent(confidence: float) -> str:
    if confidence >= 1.0 - 1e-12:
        return "> 99.9999999999%"
    digits = max(1, min(12, int(-math.log10(1.0 - confidence)) + 1))
    return f"{100 * confidence:.{digits}f}%"


def verify_file(
    path: str | os.PathLike[str],
    *,
    key: str | None = None,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    search: bool = True,
) -> VerifyReport:
    """Look for the openvasa watermark in a video (its first `max_seconds`) or an image."""
    from openvasa.face.image import load_image

    path = Path(path)
    if not path.exists():
        raise OpenvasaError(f"{path}: no such file.")
    if path.is_dir():
        raise OpenvasaError(f"{path}: is a folder, not a video or image.")
    detector = WatermarkDetector(search=search)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        detector.add(load_image(path))
        return VerifyReport(path, "image", detector.result(key), False)
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as error:
        raise OpenvasaError(f"{path}: is neither a readable video nor an image.") from error
    with container:
        if not container.streams.video:
            raise OpenvasaError(f"{path}: has no video stream.")
        labelled = is_labelled(dict(container.metadata))
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        max_frames = max(1, int(round(max_seconds * rate)))
        try:
            for frame in container.decode(stream):
                detector.add(frame.to_ndarray(format="rgb24"))
                if detector.n_frames >= max_frames:
                    break
        except av.FFmpegError as error:
            if detector.n_frames == 0:
                raise OpenvasaError(f"{path}: its video cannot be decoded ({error}).") from error
    if detector.n_frames == 0:
        raise OpenvasaError(f"{path}: has no video frames.")
    return VerifyReport(path, "video", detector.result(key), labelled)
