"""Framing: crop and scale the portrait so that the face sits at a fixed place and size.

The output frame puts the face's canonical centre (the middle of its midline, about the root
of the nose) at `FACE_CENTRE` and makes the face `FACE_WIDTH_FRACTION` of the frame wide at
head distance 1. `head_distance` acts like the camera distance: 2.0 makes the face half as
wide, 0.5 twice as wide. Where the crop leaves the photo, the photo is extended by mirroring
its edge and blurring the mirrored part more the farther it lies, so no black bars appear.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from openvasa.latent import topology as topo
from openvasa.latent.geometry import similarity_align

FACE_WIDTH_FRACTION = 0.40
FACE_CENTRE = (0.5, 0.45)


@dataclass(frozen=True)
class Framing:
    """Where the face sits in the output frame, and how the source photo maps there.

    size: (width, height) of the output in pixels.
    face_width_px: face width (cheek to cheek, MediaPipe points 234–454) at pose scale 1.
    centre_px: (2,) output position of the face centre at pose translation 0.
    crop: (2, 3) affine taking source-photo pixels to output pixels (scale and shift).
    """

    size: tuple[int, int]
    face_width_px: float
    centre_px: np.ndarray
    crop: np.ndarray
    head_distance: float


def face_similarity(landmarks: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Fit the reference face to (≥468, 3) landmarks: (scale px per face width, R, t px)."""
    return similarity_align(
        topo.template(), np.asarray(landmarks[: topo.N_FACE_VERTICES], np.float64)
    )


def plan_framing(
    landmarks: np.ndarray, size: int | tuple[int, int], head_distance: float = 1.0
) -> Framing:
    """The framing for a face with `landmarks` in source-photo pixels."""
    if not 0.25 <= head_distance <= 4.0:
        raise ValueError(f"head_distance must lie between 0.25 and 4.0, got {head_distance}")
    width, height = (size, size) if isinstance(size, int) else size
    scale, _, translation = face_similarity(landmarks)
    face_width_px = FACE_WIDTH_FRACTION * width / head_distance
    centre = np.array([FACE_CENTRE[0] * width, FACE_CENTRE[1] * height])
    k = face_width_px / scale
    shift = centre - k * translation[:2]
    crop = np.array([[k, 0.0, shift[0]], [0.0, k, shift[1]]])
    return Framing((width, height), face_width_px, centre, crop, head_distance)


def map_points(framing: Framing, points: np.ndarray) -> np.ndarray:
    """Source-photo landmarks (N, 3) → output-frame landmarks (z scaled like x)."""
    k = framing.crop[0, 0]
    out = np.asarray(points, np.float64) * k
    out[:, :2] += framing.crop[:, 2]
    return out


def crop_image(image: np.ndarray, framing: Framing) -> np.ndarray:
    """Cut the output frame out of the source photo (H, W, C) with edge-aware padding."""
    width, height = framing.size
    k = framing.crop[0, 0]
    shift = framing.crop[:, 2]
    # Source rectangle that the output covers, with a margin for interpolation.
    x0, y0 = (-shift) / k - 2
    x1, y1 = (np.array([width, height]) - shift) / k + 2
    h, w = image.shape[:2]
    ix0, iy0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
    ix1, iy1 = min(int(np.ceil(x1)), w), min(int(np.ceil(y1)), h)
    if ix1 - ix0 < 2 or iy1 - iy0 < 2:
        raise ValueError("the framing does not overlap the photo")
    region = image[iy0:iy1, ix0:ix1]
    offset = np.array([ix0, iy0], np.float64)
    if k < 0.5:
        # Shrink with area averaging first: bilinear warping alone would alias a large photo.
        factor = 2.0 * k
        small = cv2.resize(region, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        sx = small.shape[1] / region.shape[1]
        sy = small.shape[0] / region.shape[0]
        matrix = np.array(
            [[k / sx, 0, shift[0] + k * offset[0]], [0, k / sy, shift[1] + k * offset[1]]]
        )
        region = small
    else:
        matrix = np.array([[k, 0, shift[0] + k * offset[0]], [0, k, shift[1] + k * offset[1]]])
    interpolation = cv2.INTER_CUBIC if k > 1.0 else cv2.INTER_LINEAR
    out = cv2.warpAffine(
        region, matrix, (width, height), flags=interpolation, borderMode=cv2.BORDER_REFLECT_101
    )
    touches_border = (
        ix0 == 0 and x0 < 0 or iy0 == 0 and y0 < 0 or ix1 == w and x1 > w or iy1 == h and y1 > h
    )
    if not touches_border:
        return out
    valid = cv2.warpAffine(
        np.full(region.shape[:2], 255, np.uint8),
        matrix,
        (width, height),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    distance = cv2.distanceTransform((valid == 0).astype(np.uint8), cv2.DIST_L2, 3)
    # The mirrored band turns into a soft continuation of the edge within ~1/8 of the frame.
    reach = 0.125 * max(width, height)
    blend = np.clip(distance / reach, 0, 1)[..., None]
    blurred = cv2.GaussianBlur(out, (0, 0), sigmaX=0.04 * max(width, height))
    smooth = out * (1 - blend) + blurred * blend
    return np.clip(smooth + 0.5, 0, 255).astype(np.uint8)
