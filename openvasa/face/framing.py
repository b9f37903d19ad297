"""Framing: where the face sits in the output frame, and how the photo maps there.

Two framings (`FRAMINGS`):

- *native*: the output keeps the photo's own framing. The whole photo is scaled to the
  requested size (its longer side, aspect kept) and the animated face is composited back
  into it, so a close-up stays a close-up. `head_distance` scales about the face: 2.0 shows
  the photo half as large around the face, 0.5 magnifies it.
- *square*: the face is re-framed in a square: its canonical centre (the middle of its
  midline, about the root of the nose) at `FACE_CENTRE`, `FACE_WIDTH_FRACTION` of the frame
  wide at head distance 1. `head_distance` acts like the camera distance.

"auto" (the default) keeps the native framing for head-and-shoulders photos and closer (the
face at least `NATIVE_FACE_FRACTION` of the photo's width) and re-frames wider shots, whose
small face would otherwise be a few dozen pixels of the video.

Where the output reaches past the photo's edge (a far head distance, a tall photo made
square), the missing part is a soft extension of the photo (`extend_photo`): its edge colours
continued outward, coarser the farther they reach. It is never a reflection of the photo,
and it is made once per portrait, so it stays still over time.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from openvasa.latent import topology as topo
from openvasa.latent.geometry import similarity_align
from openvasa.settings import FRAMINGS

FACE_WIDTH_FRACTION = 0.40
FACE_CENTRE = (0.5, 0.45)
# Face width over photo width from which "auto" keeps the photo's own framing: a
# head-and-shoulders shot (GRID 0.28, grace_hopper 0.37) or closer; the astronaut (0.18)
# is re-framed.
NATIVE_FACE_FRACTION = 0.25
# Fraction of the frame over which the photo fades into its extension at a cut edge.
EDGE_FEATHER = 0.03


@dataclass(frozen=True)
class Framing:
    """Where the face sits in the output frame, and how the source photo maps there.

    size: (width, height) of the output in pixels.
    face_width_px: face width (cheek to cheek, MediaPipe points 234–454) at pose scale 1.
    centre_px: (2,) output position of the face centre at pose translation 0.
    crop: (2, 3) affine taking source-photo pixels to output pixels (scale and shift).
    mode: "native" or "square" (see the module docstring).
    """

    size: tuple[int, int]
    face_width_px: float
    centre_px: np.ndarray
    crop: np.ndarray
    head_distance: float
    mode: str = "square"


def face_similarity(landmarks: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Fit the reference face to (≥468, 3) landmarks: (scale px per face width, R, t px)."""
    return similarity_align(
        topo.template(), np.asarray(landmarks[: topo.N_FACE_VERTICES], np.float64)
    )


def choose_framing(landmarks: np.ndarray, photo_size: tuple[int, int], framing: str) -> str:
    """Resolve "auto" to "native" or "square" for a face with `landmarks` in a photo of
    `photo_size` (width, height) pixels; "native" and "square" are returned as they are."""
    if framing not in FRAMINGS:
        raise ValueError(f"framing must be one of {', '.join(FRAMINGS)}, got {framing!r}")
    if framing != "auto":
        return framing
    scale, _, _ = face_similarity(landmarks)
    return "native" if scale >= NATIVE_FACE_FRACTION * photo_size[0] else "square"


def _even(value: float) -> int:
    return max(2, int(round(value / 2.0)) * 2)


def native_size(photo_size: tuple[int, int], size: int) -> tuple[int, int]:
    """Output (width, height) of the native framing: the photo's aspect, longer side `size`,
    both even (H.264's 4:2:0 chroma needs even sides)."""
    width, height = photo_size
    k = size / max(width, height)
    return (_even(width * k), _even(height * k))


def plan_framing(
    landmarks: np.ndarray,
    size: int | tuple[int, int],
    head_distance: float = 1.0,
    *,
    framing: str = "square",
    photo_size: tuple[int, int] | None = None,
) -> Framing:
    """The framing for a face with `landmarks` in source-photo pixels.

    size: output side (int: square frame, or the native frame's longer side) or an exact
    (width, height). framing: "square", "native" or "auto" (`choose_framing`); native and
    auto need `photo_size`, the photo's (width, height).
    """
    if not 0.25 <= head_distance <= 4.0:
        raise ValueError(f"head_distance must lie between 0.25 and 4.0, got {head_distance}")
    if framing != "square":
        if photo_size is None:
            raise ValueError(f"the {framing} framing needs the photo's size")
        framing = choose_framing(landmarks, photo_size, framing)
    scale, _, translation = face_similarity(landmarks)
    if framing == "native":
        return _plan_native(scale, translation, size, head_distance, photo_size)
    width, height = (size, size) if isinstance(size, int) else size
    face_width_px = FACE_WIDTH_FRACTION * width / head_distance
    centre = np.array([FACE_CENTRE[0] * width, FACE_CENTRE[1] * height])
    k = face_width_px / scale
    shift = centre - k * translation[:2]
    crop = np.array([[k, 0.0, shift[0]], [0.0, k, shift[1]]])
    return Framing((width, height), face_width_px, centre, crop, head_distance, "square")


def _plan_native(
    scale: float,
    translation: np.ndarray,
    size: int | tuple[int, int],
    head_distance: float,
    photo_size: tuple[int, int],
) -> Framing:
    photo_w, photo_h = photo_size
    width, height = native_size(photo_size, size) if isinstance(size, int) else size
    # Cover the frame with the photo (an exact size of another aspect crops it), then scale
    # about the face for the head distance.
    k_cover = max(width / photo_w, height / photo_h)
    face = np.asarray(translation[:2], np.float64)
    # At distance 1 the photo fills the frame; a crop of another aspect is centred on the
    # face as far as the photo allows.
    shift = np.array([width, height]) / 2.0 - k_cover * face
    shift = np.clip(shift, [width - k_cover * photo_w, height - k_cover * photo_h], [0.0, 0.0])
    centre = k_cover * face + shift
    k = k_cover / head_distance
    shift = centre - k * face
    crop = np.array([[k, 0.0, shift[0]], [0.0, k, shift[1]]])
    return Framing((width, height), k * scale, centre, crop, head_distance, "native")


def map_points(framing: Framing, points: np.ndarray) -> np.ndarray:
    """Source-photo landmarks (N, 3) → output-frame landmarks (z scaled like x)."""
    k = framing.crop[0, 0]
    out = np.asarray(points, np.float64) * k
    out[:, :2] += framing.crop[:, 2]
    return out


def crop_image(image: np.ndarray, framing: Framing) -> np.ndarray:
    """Cut the output frame out of the source photo (H, W, C); what lies past the photo's
    edge is its soft extension (`extend_photo`), never a mirror image."""
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
        region, matrix, (width, height), flags=interpolation, borderMode=cv2.BORDER_REPLICATE
    )
    touches_border = (
        ix0 == 0 and x0 < 0 or iy0 == 0 and y0 < 0 or ix1 == w and x1 > w or iy1 == h and y1 > h
    )
    if not touches_border:
        return out
    # Where the photo is: its pixels lie at least half a pixel inside its edge.
    inside = cv2.warpAffine(
        np.full(region.shape[:2], 255, np.uint8),
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return extend_photo(out, inside >= 255)


def extend_photo(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill the pixels of (H, W, 3) uint8 `image` where `known` (H, W) bool is False with a
    soft extension of the known part: a pull-push pyramid that carries the colours at the
    edge outward, smoother the farther from it (no copied detail, so nothing reads as a
    mirror or a repeat), then blended in over a few pixels so that no seam shows."""
    if known.all():
        return image
    if not known.any():
        raise ValueError("nothing of the photo is in the frame")
    weight = known.astype(np.float32)
    colour = image.astype(np.float32) * weight[..., None]
    levels = [(colour, weight)]
    while min(levels[-1][1].shape) > 4:
        c, w = levels[-1]
        levels.append((cv2.pyrDown(c), cv2.pyrDown(w)))
    c, w = levels[-1]
    filled = c.sum((0, 1)) / max(float(w.sum()), 1e-6) * np.ones_like(c)
    filled = np.where(w[..., None] > 1e-3, c / np.maximum(w, 1e-6)[..., None], filled)
    for c, w in reversed(levels[:-1]):
        up = cv2.pyrUp(filled, dstsize=(w.shape[1], w.shape[0]))
        # Trust a level where enough of its footprint was known; elsewhere the coarser fill.
        trust = np.clip(w * 2.0, 0.0, 1.0)[..., None]
        filled = c / np.maximum(w, 1e-6)[..., None] * trust + up * (1.0 - trust)
    # Outside: the extension. Inside: the photo, fading towards the extension over the last
    # few percent of the frame so that the photo's rectangle does not show as a hard box.
    outside = cv2.distanceTransform((~known).astype(np.uint8), cv2.DIST_L2, 3)
    inside = cv2.distanceTransform(known.astype(np.uint8), cv2.DIST_L2, 3)
    feather = EDGE_FEATHER * max(image.shape[:2])
    mix = np.where(known, 0.6 * np.clip(1.0 - inside / feather, 0.0, 1.0), 1.0)
    mix = np.maximum(mix, np.clip(outside / 2.0, 0.0, 1.0))[..., None]
    out = image.astype(np.float32) * (1.0 - mix) + filled * mix
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# Detail scales of `reflected_detail`: (finer Gaussian sigma, coarser sigma, band width px).
# The coarse ones catch a reflection that was blurred, as the old mirrored borders were.
REFLECTION_SCALES = ((0.0, 1.5, 12), (1.5, 4.0, 24), (4.0, 10.0, 48))
# Bands whose detail (RMS, grey levels) is below this hold nothing to reflect (flat walls).
REFLECTION_DETAIL_FLOOR = 0.8


def reflected_detail(image: np.ndarray, reach: float = 0.3) -> float:
    """How much of a frame's border looks like a mirror image: in [-1, 1], about 0.1–0.35
    on photos and their native framings, 0.9–1.0 on a border filled by reflection.

    For each border of the (H, W, 3) uint8 image and each candidate mirror line parallel to
    it within `reach` of the frame's size, the band-pass detail of the band on one side of
    the line is correlated with the mirrored band on the other side; the largest
    correlation over lines, sides and detail scales is returned. What runs straight across
    both bands (a line crossing the mirror line) is its own mirror image in any picture, so
    only detail that varies across the bands counts.
    """
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    best = 0.0
    for fine, coarse, band in REFLECTION_SCALES:
        sharp = cv2.GaussianBlur(grey, (0, 0), fine) if fine else grey
        detail = sharp - cv2.GaussianBlur(grey, (0, 0), coarse)
        for view in (detail, detail[::-1], detail.T, detail.T[::-1]):
            for line in range(4 + band, int(reach * view.shape[0])):
                for parity in (0, 1):  # mirror about a pixel row, or between two rows
                    outer = view[line - 1 - band : line - 1][::-1]
                    inner = view[line + parity + 1 : line + parity + 1 + band]
                    across = 0.5 * (outer.mean(0) + inner.mean(0))
                    outer, inner = outer - across, inner - across
                    energy = np.sqrt(min((outer**2).mean(), (inner**2).mean()))
                    if energy < REFLECTION_DETAIL_FLOOR:
                        continue
                    norm = np.sqrt((outer**2).sum() * (inner**2).sum())
                    best = max(best, float((outer * inner).sum() / norm))
    return best
