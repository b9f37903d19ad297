"""The inner lip line of an open mouth, read from the photo's pixels (for the renderer).

On a mouth open mid-speech the face mesh often draws its inner lip points on the teeth (the
edge of the dark cavity), not where the lips end. Texture between those points and the
outer lip line then carries teeth, and a mouth brought to rest shows a band of teeth on each
lip. `refine_inner_lips` moves each inner lip point outwards, along the line to its outer
lip point, to where the photo stops looking like the inside of the mouth and starts looking
like lip: so that the lips carry lip texture and the teeth belong to the mouth interior.
"""

from __future__ import annotations

import cv2
import numpy as np

from openvasa.latent import topology as topo

# A mouth whose inner lips are less far apart than this (face widths) is closed: left as is.
OPEN_GAP = 0.03
# Farthest an inner lip point moves, as a fraction of the way to its outer lip point.
MAX_SHIFT = 0.6
SAMPLES = 24


def refine_inner_lips(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(478, 3) landmarks with the inner lip points of an open mouth moved onto the lips'
    visible inner edge in `image` (H, W, 3) uint8; a closed mouth's are returned as they are.
    Depth is kept."""
    points = np.array(landmarks, np.float64, copy=True)
    width = np.linalg.norm(points[234, :2] - points[454, :2])
    inner_upper = np.array(topo.LIPS_INNER_UPPER[2:-2])
    inner_lower = np.array(topo.LIPS_INNER_LOWER[2:-2])
    gap = np.mean(points[inner_lower, 1] - points[inner_upper, 1]) / max(width, 1e-6)
    if gap < OPEN_GAP:
        return points
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    interior = np.zeros(image.shape[:2], np.uint8)
    loop = np.round(points[list(topo.LIPS_INNER_LOOP), :2]).astype(np.int32)
    cv2.fillPoly(interior, [loop], 1)
    inside = lab[cv2.erode(interior, np.ones((3, 3), np.uint8)) > 0]
    if len(inside) < 10:
        return points
    chains = (
        (topo.LIPS_INNER_UPPER, topo.LIPS_OUTER_UPPER),
        (topo.LIPS_INNER_LOWER, topo.LIPS_OUTER_LOWER),
    )
    for inner_ids, outer_ids in chains:
        inner_ids, outer_ids = list(inner_ids[2:-2]), list(outer_ids[2:-2])
        start, end = points[inner_ids, :2], points[outer_ids, :2]
        t = np.linspace(0.0, 1.0, SAMPLES)
        line = start[:, None] + t[None, :, None] * (end - start)[:, None]  # (n, S, 2)
        colours = cv2.remap(
            lab, line[..., 0].astype(np.float32), line[..., 1].astype(np.float32),
            cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE,
        )  # fmt: skip
        lip = np.median(colours[:, int(0.55 * SAMPLES) : int(0.85 * SAMPLES)].reshape(-1, 3), 0)
        # What the interior looks like: teeth, tongue and cavity, several kinds; a pixel is
        # interior when it is nearer any of them than the lip.
        kinds = _kinds(inside)
        to_lip = np.linalg.norm(colours - lip, axis=-1)
        to_inside = np.min([np.linalg.norm(colours - k, axis=-1) for k in kinds], axis=0)
        is_lip = to_lip < to_inside
        shifts = np.zeros(len(inner_ids))
        for i, row in enumerate(is_lip):
            # The first sample from which the next three are all lip.
            run = np.convolve(row.astype(int), np.ones(3, int), mode="valid") == 3
            first = int(np.argmax(run)) if run.any() else 0
            shifts[i] = min(t[first], MAX_SHIFT)
        shifts = _median3(shifts)
        points[inner_ids, :2] = start + shifts[:, None] * (end - start)
    return points


def _kinds(pixels: np.ndarray, k: int = 3) -> np.ndarray:
    """Up to k typical colours of the interior pixels (k-means in Lab)."""
    k = min(k, len(pixels))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, _, centres = cv2.kmeans(
        pixels.astype(np.float32), k, None, criteria, 3, cv2.KMEANS_PP_CENTERS
    )
    return centres


def _median3(values: np.ndarray) -> np.ndarray:
    padded = np.concatenate([values[:1], values, values[-1:]])
    return np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
