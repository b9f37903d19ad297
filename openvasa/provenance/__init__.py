"""Provenance: the invisible watermark in every generated frame, the AI-generated label in
every file, and `openvasa verify` to read both back."""

from openvasa.provenance.label import is_labelled, provenance_metadata
from openvasa.provenance.payload import Payload, key_id
from openvasa.provenance.verify import VerifyReport, verify_file
from openvasa.provenance.watermark import (
    Detection,
    WatermarkDetector,
    Watermarker,
    detect_watermark,
)
from openvasa.version import __version__


def watermarker_for(key: str | None = None) -> Watermarker:
    """The watermarker for this openvasa version and an optional key text."""
    return Watermarker(Payload.for_version(__version__, key))


__all__ = [
    "Detection",
    "Payload",
    "VerifyReport",
    "WatermarkDetector",
    "Watermarker",
    "detect_watermark",
    "is_labelled",
    "key_id",
    "provenance_metadata",
    "verify_file",
    "watermarker_for",
]
