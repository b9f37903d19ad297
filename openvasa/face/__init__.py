"""Face analysis: load a portrait, find its face landmarks and the person mask."""

from openvasa.face.detect import FaceAnalyzer, FaceDetection, default_analyzer
from openvasa.face.image import load_image

__all__ = ["FaceAnalyzer", "FaceDetection", "default_analyzer", "load_image"]
