"""Head-pose geometry: rotations from yaw/pitch/roll and similarity alignment.

Frames: x to the image's right, y down, z away from the camera (MediaPipe's convention).
Angles in degrees: yaw > 0 turns the nose to the image's right, pitch > 0 tilts the face up,
roll > 0 turns the head counter-clockwise as the viewer sees it.
"""

import math

import numpy as np


def rotation_matrix(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """(3, 3) rotation taking head-frame points to camera-frame points: roll · pitch · yaw."""
    # The product written out, in scalars: this runs several times per rendered frame.
    ca, sa = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    cb, sb = math.cos(math.radians(pitch_deg)), math.sin(math.radians(pitch_deg))
    cc, sc = math.cos(math.radians(roll_deg)), math.sin(math.radians(roll_deg))
    # pitch · yaw
    p = ((ca, 0.0, -sa), (sb * sa, cb, sb * ca), (cb * sa, -sb, cb * ca))
    return np.array(
        [
            [cc * p[0][j] + sc * p[1][j] for j in range(3)],
            [-sc * p[0][j] + cc * p[1][j] for j in range(3)],
            list(p[2]),
        ]
    )


def rotation_angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """Inverse of `rotation_matrix`: (yaw_deg, pitch_deg, roll_deg)."""
    r = rotation
    # With R = roll·pitch·yaw: R[2] = (cos b sin a, -sin b, cos b cos a) … see rotation_matrix.
    pitch = np.arcsin(np.clip(-r[2, 1], -1.0, 1.0))
    yaw = np.arctan2(r[2, 0], r[2, 2])
    roll = np.arctan2(r[0, 1], r[1, 1])
    return float(np.degrees(yaw)), float(np.degrees(pitch)), float(np.degrees(roll))


def similarity_align(
    source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (Umeyama) with target ≈ scale · source @ R.T + translation.

    source, target: (N, 3). Returns (scale, R (3, 3), translation (3,)).
    """
    w = np.ones(len(source)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    mu_s = w @ source
    mu_t = w @ target
    s0 = source - mu_s
    t0 = target - mu_t
    covariance = (t0 * w[:, None]).T @ s0
    u, sigma, vt = np.linalg.svd(covariance)
    d = np.sign(np.linalg.det(u @ vt))
    correction = np.diag([1.0, 1.0, d])
    rotation = u @ correction @ vt
    variance = (w * (s0**2).sum(1)).sum()
    scale = float((sigma * np.diag(correction)).sum() / variance)
    translation = mu_t - scale * rotation @ mu_s
    return scale, rotation, translation


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Which (N, 2) points lie inside a closed (M, 2) polygon (even-odd rule)."""
    x, y = points[:, 0:1], points[:, 1:2]
    x0, y0 = polygon[:, 0], polygon[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    crosses = (y0 > y) != (y1 > y)
    x_at = x0 + (y - y0) * (x1 - x0) / np.where(y1 == y0, 1e-12, y1 - y0)
    return (crosses & (x < x_at)).sum(1) % 2 == 1
