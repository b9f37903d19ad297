"""Derive openvasa's face-mesh topology table from MediaPipe and one public-domain portrait.

Writes openvasa/latent/data/face_topology.npz with
- triangles (852, 3): MediaPipe's face-mesh tessellation as triangles (it ships only edges);
- mirror (468,): for each vertex its left-right mirror partner (midline vertices map to
  themselves), found on the astronaut portrait of scikit-image after removing its head pose;
- template (468, 3): that face's shape made exactly symmetric, in the canonical frame, in
  face widths; the reference for the canonical head frame.

Run it again with `python tools/build_topology.py` after a MediaPipe upgrade.
"""

import collections
from pathlib import Path

import mediapipe as mp
import numpy as np
from scipy.optimize import linear_sum_assignment
from skimage import data

OUT = Path(__file__).resolve().parents[1] / "openvasa" / "latent" / "data" / "face_topology.npz"
# Vertices on the face's midline in MediaPipe's topology (forehead to chin).
MIDLINE = [10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 164, 0, 11, 12, 13, 14, 15,
           16, 17, 18, 200, 199, 175, 152]  # fmt: skip


def tessellation_triangles() -> np.ndarray:
    edges = {tuple(sorted(e)) for e in mp.solutions.face_mesh.FACEMESH_TESSELATION}
    neighbours = collections.defaultdict(set)
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    triangles = {tuple(sorted((a, b, c))) for a, b in edges for c in neighbours[a] & neighbours[b]}
    # A 3-cycle whose three edges each border three cycles is not a face but a hole between faces.
    uses = collections.Counter()
    for t in triangles:
        uses.update([(t[0], t[1]), (t[0], t[2]), (t[1], t[2])])
    faces = [
        t
        for t in triangles
        if not all(uses[e] == 3 for e in ((t[0], t[1]), (t[0], t[2]), (t[1], t[2])))
    ]
    return np.array(sorted(faces), np.int32)


def astronaut_landmarks() -> np.ndarray:
    image = data.astronaut()
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as mesh:
        found = mesh.process(image).multi_face_landmarks[0].landmark
    h, w = image.shape[:2]
    return np.array([[p.x * w, p.y * h, p.z * w] for p in found[:468]], np.float64)


def rough_frame(points: np.ndarray) -> np.ndarray:
    """Rows: x (subject's left → image right), y (down), z (away from camera)."""
    right_to_left = points[263] - points[33]  # outer eye corners
    x = right_to_left / np.linalg.norm(right_to_left)
    mid = points[MIDLINE] - points[MIDLINE].mean(0)
    down = np.linalg.svd(mid)[2][0]
    down = down if down @ (points[152] - points[10]) > 0 else -down
    y = down - (down @ x) * x
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    # Pitch 0 is the facial plane (outer eye corners and mouth corners) facing the camera.
    eyes = 0.5 * (points[33] + points[263])
    mouth = 0.5 * (points[61] + points[291])
    tilt = np.arctan2((mouth - eyes) @ z, (mouth - eyes) @ y)
    y, z = np.cos(tilt) * y + np.sin(tilt) * z, -np.sin(tilt) * y + np.cos(tilt) * z
    return np.stack([x, y, z])


def main() -> None:
    triangles = tessellation_triangles()
    points = astronaut_landmarks()
    frame = rough_frame(points)
    canonical = (points - points[MIDLINE].mean(0)) @ frame.T
    mirrored = canonical * [-1, 1, 1]
    cost = np.linalg.norm(canonical[:, None, :2] - mirrored[None, :, :2], axis=2)
    _, mirror = linear_sum_assignment(cost)
    mirror = mirror.astype(np.int32)
    # Keep only consistent pairs: i ↔ j both ways; the rest become self-mirrors (midline).
    inconsistent = mirror[mirror] != np.arange(len(mirror))
    mirror[inconsistent] = np.nonzero(inconsistent)[0]
    template = 0.5 * (canonical + mirrored[mirror])
    template /= np.linalg.norm(template[454] - template[234])
    template -= template[MIDLINE].mean(0)
    np.savez_compressed(
        OUT, triangles=triangles, mirror=mirror, template=template.astype(np.float32)
    )
    pair_error = np.linalg.norm(canonical - mirrored[mirror], axis=1).mean()
    print(
        f"{len(triangles)} triangles, {int((mirror == np.arange(468)).sum())} midline vertices, "
        f"{int(inconsistent.sum())} inconsistent, mean pair error {pair_error:.2f} px -> {OUT}"
    )


if __name__ == "__main__":
    main()
