"""MediaPipe face-mesh topology: triangles, named contours, mirror pairs and the reference shape.

Index lists follow MediaPipe's 478-point face mesh (468 face points + 10 iris points). "Right"
and "left" are the subject's: the subject's right eye appears on the image's left.
The arrays in data/face_topology.npz are derived by tools/build_topology.py.
"""

from functools import cache
from pathlib import Path

import numpy as np

N_FACE_VERTICES = 468
N_LANDMARKS = 478

LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
MOUTH_CORNERS = (61, 291)

RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LEFT_EYE_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)

RIGHT_BROW = (70, 63, 105, 66, 107, 46, 53, 52, 65, 55)
LEFT_BROW = (300, 293, 334, 296, 336, 276, 283, 282, 295, 285)

# Iris: centre then four boundary points.
RIGHT_IRIS = (468, 469, 470, 471, 472)
LEFT_IRIS = (473, 474, 475, 476, 477)

FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
# Points at the widest part of the face; their distance defines one "face width".
FACE_WIDTH_PAIR = (234, 454)
NOSE_TIP = 1
CHIN = 152
FOREHEAD = 10


def loop(upper: tuple[int, ...], lower: tuple[int, ...]) -> tuple[int, ...]:
    """A closed contour from an upper and a lower chain that share their end points."""
    return tuple(upper) + tuple(reversed(lower[1:-1]))


LIPS_INNER_LOOP = loop(LIPS_INNER_UPPER, LIPS_INNER_LOWER)
RIGHT_EYE_LOOP = loop(RIGHT_EYE_UPPER, RIGHT_EYE_LOWER)
LEFT_EYE_LOOP = loop(LEFT_EYE_UPPER, LEFT_EYE_LOWER)

# Per eye ("right", "left" — the subject's): iris points, corners (outer, inner), the closed
# outline, and the upper and lower lid points facing each other (corners left out).
IRIS = {"right": RIGHT_IRIS, "left": LEFT_IRIS}
EYE_CORNERS = {"right": (33, 133), "left": (263, 362)}
EYE_LOOPS = {"right": RIGHT_EYE_LOOP, "left": LEFT_EYE_LOOP}
EYE_LIDS = {
    "right": (RIGHT_EYE_UPPER[2:-2], RIGHT_EYE_LOWER[2:-2]),
    "left": (LEFT_EYE_UPPER[2:-2], LEFT_EYE_LOWER[2:-2]),
}


@cache
def _table() -> dict[str, np.ndarray]:
    path = Path(__file__).with_name("data") / "face_topology.npz"
    with np.load(path) as table:
        return {name: table[name] for name in table.files}


def triangles() -> np.ndarray:
    """(852, 3) int32 vertex indices of the face-mesh surface (holes at eyes and mouth)."""
    return _table()["triangles"]


def mirror() -> np.ndarray:
    """(468,) int32: the index of each vertex's left-right mirror partner."""
    return _table()["mirror"]


def template() -> np.ndarray:
    """(468, 3) float32 symmetric reference face in the canonical head frame, in face widths:
    x to the image's right, y down, z away from the camera, centred on the midline."""
    return _table()["template"]
