"""The renderer: FaceLatent + one frame of motion → an RGB frame.

It moves a dense mesh — the 468-point face mesh, three rings around it over hair, ears and neck,
and anchors on the frame border that never move — to the frame's pose and expression, draws
where every output pixel comes from in the photo (one rasterised coordinate map), and samples
the photo through it. What the photo never showed is painted: the mouth interior (teeth,
cavity, tongue) as far as the lips part, the sclera behind a moved iris, and the moved iris
itself. The background stays still under the person mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from openvasa.latent import topology as topo
from openvasa.latent.face_latent import FaceLatent, HeadPlacement, pose_to_placement
from openvasa.latent.geometry import points_in_polygon
from openvasa.latent.motion import BLENDSHAPE_INDEX, MotionFrame
from openvasa.render import raster

# Rings around the face: distance from the face centre relative to the face outline, and how
# much of the outline's motion each ring follows (hair and ears move with the head; the far
# background does not).
RING_SPREAD = (1.22, 1.5, 1.85)
RING_FOLLOW = (0.92, 0.45, 0.0)
BORDER_STEP_PX = 64
# Warping one photo cannot show what a real tilt shows (the underside of the nose and chin,
# shading), and a tilt of the mesh's own depth re-reads as about 0.6 of itself when the
# frame is analysed again by the face mesh (measured on the astronaut portrait), while a turn
# reads true. Tilts beyond the photo's own therefore act on a face with deeper relief, so that
# a commanded pitch looks like that pitch.
PITCH_RELIEF = 1.5
# How far the upper lid follows a vertical gaze: a 20° downward look lowers it by ~30 % of the
# opening (eyeBlink 0.3).
LID_PER_GAZE_DEG = 0.015
# Lid gap (fraction of the photo's) at which a closing eye starts to fade to its lash line, and
# at which only the lash line is left.
LID_SEAM = 0.35
LID_SHUT = 0.1
IRIS_VISIBLE_SCALE = 1.15
# Painted mouth interior: luma weights (Rec. 601), and the mean distance of a face's pixels
# from grey at which it takes its full colour.
LUMA = np.array([0.299, 0.587, 0.114])
CHROMA_FULL = 12.0


@dataclass
class _Mesh:
    """The renderer's mesh, fixed per portrait: vertex roles and triangles."""

    n_face: int
    ring_source: np.ndarray  # (R, 2) photo positions of ring vertices
    ring_anchor: np.ndarray  # (R,) face-outline vertex each ring vertex follows
    ring_follow: np.ndarray  # (R,)
    ring_depth: np.ndarray  # (R,) how far behind its anchor, in face widths
    border_source: np.ndarray  # (B, 2)
    triangles: np.ndarray  # (T, 3)
    triangle_label: np.ndarray  # (T,) int8
    mouth_loop: np.ndarray  # face vertices of the inner-lip loop
    eye_loops: tuple[np.ndarray, np.ndarray]  # right, left
    first_ring: int
    first_border: int
    first_mouth: int
    first_eye: tuple[int, int]
    n_vertices: int


def _build_mesh(latent: FaceLatent) -> _Mesh:
    width, height = latent.framing.size
    face_xy = latent.landmarks[: topo.N_FACE_VERTICES, :2]
    oval = np.array(topo.FACE_OVAL)
    centre = face_xy[oval].mean(0)
    ring_xy, ring_anchor, ring_follow, ring_depth = [], [], [], []
    for level, (spread, follow) in enumerate(zip(RING_SPREAD, RING_FOLLOW, strict=True)):
        points = centre + spread * (face_xy[oval] - centre)
        # The neck below the chin turns less than the head.
        below_chin = points[:, 1] > face_xy[topo.CHIN, 1]
        ring_xy.append(points)
        ring_anchor.append(oval)
        ring_follow.append(np.where(below_chin, follow * 0.6, follow))
        ring_depth.append(np.full(len(oval), 0.15 * (level + 1)))
    ring_xy = np.concatenate(ring_xy)
    ring_anchor = np.concatenate(ring_anchor)
    ring_follow = np.concatenate(ring_follow)
    ring_depth = np.concatenate(ring_depth)
    # Rings outside the frame are of no use; keep those inside with a margin.
    inside = (
        (ring_xy[:, 0] > 2)
        & (ring_xy[:, 0] < width - 3)
        & (ring_xy[:, 1] > 2)
        & (ring_xy[:, 1] < height - 3)
    )
    ring_xy, ring_anchor = ring_xy[inside], ring_anchor[inside]
    ring_follow, ring_depth = ring_follow[inside], ring_depth[inside]
    xs = np.unique(np.append(np.arange(-1, width, BORDER_STEP_PX), width))
    ys = np.unique(np.append(np.arange(-1, height, BORDER_STEP_PX), height))
    border = np.unique(
        np.concatenate(
            [
                np.stack([xs, np.full_like(xs, -1)], 1),
                np.stack([xs, np.full_like(xs, height)], 1),
                np.stack([np.full_like(ys, -1), ys], 1),
                np.stack([np.full_like(ys, width), ys], 1),
            ]
        ).astype(np.float64),
        axis=0,
    )

    n_face = topo.N_FACE_VERTICES
    first_ring = n_face
    first_border = first_ring + len(ring_xy)
    outer_points = np.concatenate([face_xy[oval], ring_xy, border])
    outer_ids = np.concatenate(
        [oval, first_ring + np.arange(len(ring_xy)), first_border + np.arange(len(border))]
    )
    outer = Delaunay(outer_points).simplices
    centroids = outer_points[outer].mean(1)
    keep = ~points_in_polygon(centroids, face_xy[oval])
    outer_triangles = outer_ids[outer[keep]]

    mouth_loop = np.array(topo.LIPS_INNER_LOOP)
    first_mouth = first_border + len(border)
    eye_loops = (np.array(topo.RIGHT_EYE_LOOP), np.array(topo.LEFT_EYE_LOOP))
    first_eye = (
        first_mouth + len(mouth_loop) + 1,
        first_mouth + len(mouth_loop) + 1 + len(eye_loops[0]) + 1,
    )

    def fan(first: int, count: int) -> np.ndarray:
        ring = first + np.arange(count)
        return np.stack([ring, np.roll(ring, -1), np.full(count, first + count)], 1)

    triangles = [
        topo.triangles(),
        outer_triangles,
        fan(first_mouth, len(mouth_loop)),
        fan(first_eye[0], len(eye_loops[0])),
        fan(first_eye[1], len(eye_loops[1])),
    ]
    labels = [
        np.full(len(topo.triangles()), raster.SURFACE),
        np.full(len(outer_triangles), raster.SURFACE),
        np.full(len(mouth_loop), raster.MOUTH),
        np.full(len(eye_loops[0]), raster.EYE_RIGHT),
        np.full(len(eye_loops[1]), raster.EYE_LEFT),
    ]
    n_vertices = first_eye[1] + len(eye_loops[1]) + 1
    return _Mesh(
        n_face,
        ring_xy,
        ring_anchor,
        ring_follow,
        ring_depth,
        border,
        np.concatenate(triangles).astype(np.int32),
        np.concatenate(labels).astype(np.int8),
        mouth_loop,
        eye_loops,
        first_ring,
        first_border,
        first_mouth,
        first_eye,
        n_vertices,
    )


def _background_plate(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The photo with the person removed (inpainted), for what a moving head uncovers."""
    height, width = mask.shape
    person = (mask > 0.15).astype(np.uint8)
    person = cv2.dilate(person, np.ones((9, 9), np.uint8))
    factor = 4
    small = cv2.resize(image, (width // factor, height // factor), interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(
        person, (width // factor, height // factor), interpolation=cv2.INTER_NEAREST
    )
    filled = cv2.inpaint(small, small_mask, 5, cv2.INPAINT_TELEA)
    filled = cv2.GaussianBlur(filled, (0, 0), 2.0)
    filled = cv2.resize(filled, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.where(person[..., None] > 0, filled, image)


def _saturate(colour: np.ndarray, amount: float) -> np.ndarray:
    """`colour` (3,) with its distance from grey scaled by `amount` (0: grey)."""
    grey = float(colour @ LUMA)
    return grey + amount * (colour - grey)


def _eye_opening_mask(latent: FaceLatent, loop: np.ndarray) -> np.ndarray:
    height, width = latent.image.shape[:2]
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(latent.landmarks[loop, :2] * 4).astype(np.int32)], 255, shift=2)
    return mask


class Renderer:
    """Renders frames of one portrait. Build once per FaceLatent; `render` per frame."""

    def __init__(self, latent: FaceLatent):
        self.latent = latent
        self.mesh = _build_mesh(latent)
        width, height = latent.framing.size
        self._mask = latent.mask.astype(np.float32)[..., None]
        self._plate = _background_plate(latent.image, latent.mask).astype(np.float32)
        self._placement0 = pose_to_placement(latent.pose0, latent.framing, latent.depth_px)
        self._eyeball, self._iris_patches, self._iris_radius_px, self._lashes = self._prepare_eyes()
        self._lid_gap0 = self._lid_gaps(latent.landmarks)
        self._mouth = self._prepare_mouth()
        # Texture coordinates of the face, rings and border never change: they are the photo.
        tex = np.zeros((self.mesh.n_vertices, 5), np.float64)
        tex[: self.mesh.n_face, :2] = latent.landmarks[: topo.N_FACE_VERTICES, :2]
        tex[self.mesh.first_ring : self.mesh.first_border, :2] = self.mesh.ring_source
        tex[self.mesh.first_border : self.mesh.first_mouth, :2] = self.mesh.border_source
        self._tex = tex
        self._still_xy = tex[:, :2].copy()
        # Per-pixel maps of the mesh drawn. tex_map, mouth_map and label are read only where
        # the depth buffer says a triangle was drawn this frame, so only the depth buffer and
        # `drawn` are cleared between frames, and only over the rows the last frame drew.
        self._tex_map = np.zeros((height, width, 2), np.float32)
        self._mouth_map = np.zeros((height, width, 3), np.float32)
        self._label = np.zeros((height, width), np.int8)
        self._zbuf = np.full((height, width), np.inf, np.float32)
        self._drawn = np.zeros((height, width), bool)
        self._drawn_rows = (0, 0)  # rows [first, last) that the last frame drew in
        self._out = np.empty((height, width, 3), np.uint8)
        mouth_upper = np.isin(self.mesh.mouth_loop, topo.LIPS_INNER_UPPER)
        left = latent.identity[topo.MOUTH_CORNERS[0], 0]
        right = latent.identity[topo.MOUTH_CORNERS[1], 0]
        self._mouth_u = (latent.identity[self.mesh.mouth_loop, 0] - left) / (right - left)
        self._mouth_v = np.where(mouth_upper, 0.0, 1.0)
        self._mouth_v[[0, len(topo.LIPS_INNER_UPPER) - 1]] = 0.5
        self._mouth_gap0 = self._lip_gap(self.latent.landmarks)

    # --- once per portrait ---------------------------------------------------------------
    def _prepare_eyes(self):
        latent = self.latent
        eyeball = latent.image.copy()
        patches, radii, lashes = [], [], []
        for side, loop in (("right", self.mesh.eye_loops[0]), ("left", self.mesh.eye_loops[1])):
            opening = _eye_opening_mask(latent, loop)
            # A shut eye shows its lash line: the darkest tenth of the eye and its rim.
            rim = cv2.dilate(opening, np.ones((5, 5), np.uint8)) > 0
            around = latent.image[rim].astype(np.float32)
            darkness = around.sum(1)
            lashes.append(around[darkness <= np.percentile(darkness, 10)].mean(0))
            iris_ids = latent.landmarks[
                list(topo.RIGHT_IRIS if side == "right" else topo.LEFT_IRIS)
            ]
            centre = iris_ids[0, :2]
            # MediaPipe's iris points sit a little inside the limbus: the visible iris is ~15 %
            # wider, and all of it must move with the gaze (or a ghost ring stays behind).
            radius = IRIS_VISIBLE_SCALE * float(
                np.linalg.norm(iris_ids[1:, :2] - centre, axis=1).mean()
            )
            radii.append(radius)
            iris_disk = np.zeros_like(opening)
            cv2.circle(
                iris_disk,
                tuple(np.round(centre * 4).astype(int)),
                int(round((radius + 1.5) * 4)),
                255,
                -1,
                shift=2,
            )
            # Sclera behind the iris: the white of this eye, shaded darker towards the lids.
            hole = cv2.dilate(cv2.bitwise_and(iris_disk, opening), np.ones((3, 3), np.uint8))
            white = (opening > 0) & (iris_disk == 0)
            pixels = latent.image[white].astype(np.float32)
            if len(pixels) >= 4:
                bright = pixels[pixels.sum(1) >= np.percentile(pixels.sum(1), 60)]
                sclera = bright.mean(0)
            else:
                sclera = np.array([215.0, 205.0, 200.0])
            top = latent.landmarks[loop, 1].min()
            bottom = latent.landmarks[loop, 1].max()
            rows = (np.arange(eyeball.shape[0], dtype=np.float32) - top) / max(bottom - top, 1.0)
            # The upper lid and lashes shade the top of the eyeball.
            shade = (0.72 + 0.28 * np.clip(rows * 1.6, 0, 1))[:, None, None]
            fill = np.broadcast_to(sclera * shade, eyeball.shape)
            soft = cv2.GaussianBlur(hole.astype(np.float32) / 255.0, (0, 0), 0.8)[..., None]
            eyeball = (eyeball * (1 - soft) + fill * soft).astype(np.uint8)
            # Iris texture: what the photo shows of it; hidden parts (under the lid) take its mean.
            half = int(np.ceil(radius * 1.6)) + 2
            size = 2 * half + 1
            xs = np.arange(size) - half + centre[0]
            ys = np.arange(size) - half + centre[1]
            map_x, map_y = np.meshgrid(xs.astype(np.float32), ys.astype(np.float32))
            rgb = cv2.remap(
                latent.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
            )
            seen = cv2.remap(opening, map_x, map_y, cv2.INTER_LINEAR) / 255.0
            seen = cv2.erode(seen.astype(np.float32), np.ones((2, 2), np.uint8))
            dist = np.hypot(map_x - centre[0], map_y - centre[1])
            inside = dist < radius
            visible = inside & (seen > 0.5)
            mean = rgb[visible].mean(0) if visible.any() else np.array([70.0, 55.0, 45.0])
            filled = np.where(seen[..., None] > 0.5, rgb.astype(np.float32), mean)
            patch = np.concatenate([filled, np.ones((size, size, 1), np.float32)], -1)
            patches.append(patch)
        size = max(p.shape[0] for p in patches)
        stacked = np.zeros((2, size, size, 4), np.float32)
        for i, p in enumerate(patches):
            pad = (size - p.shape[0]) // 2
            stacked[i, pad : pad + p.shape[0], pad : pad + p.shape[0]] = p
        return eyeball.astype(np.float32), stacked, np.array(radii), np.array(lashes, np.float32)

    def _prepare_mouth(self) -> np.ndarray:
        latent = self.latent
        lips = latent.landmarks[list(topo.LIPS_OUTER_UPPER + topo.LIPS_OUTER_LOWER), :2]
        samples = np.array(
            [
                cv2.getRectSubPix(latent.image, (3, 3), tuple(map(float, p))).reshape(-1, 3).mean(0)
                for p in lips
            ]
        )
        lip = np.median(samples, 0)
        cheeks = latent.landmarks[[50, 280, 36, 266], :2]  # below each eye, beside the nose
        skin = np.median(
            [
                cv2.getRectSubPix(latent.image, (5, 5), tuple(map(float, p))).reshape(-1, 3).mean(0)
                for p in cheeks
            ],
            0,
        )
        light = np.clip(skin.mean() / 170.0, 0.55, 1.15)
        # Teeth the photo does not show: an ivory a little brighter than the skin, tinted as
        # the photo tints its skin (its light and white balance), not a neutral grey.
        skin_luma = max(float(skin @ LUMA), 1.0)
        teeth = np.array([228.0, 222.0, 208.0]) * light
        teeth = teeth * (1.0 + 0.12 * (skin / skin_luma - 1.0))
        interior = np.zeros(latent.image.shape[:2], np.uint8)
        cv2.fillPoly(
            interior,
            [np.round(latent.landmarks[list(topo.LIPS_INNER_LOOP), :2]).astype(np.int32)],
            1,
        )
        shown = (
            latent.image[cv2.erode(interior, np.ones((3, 3), np.uint8)) > 0]
            .reshape(-1, 3)
            .astype(float)
        )
        if len(shown) > 20:
            # The photo shows teeth: match their colour (the brighter half of the interior).
            bright = shown[shown.sum(1) >= np.median(shown.sum(1))]
            teeth = 0.3 * teeth + 0.7 * bright.mean(0)
        cavity = lip * 0.22 + np.array([8.0, 2.0, 2.0])
        tongue = lip * 0.62 + np.array([30.0, 8.0, 10.0]) * light
        face_width = latent.framing.face_width_px
        tooth_width = 0.055 * face_width
        seam = lip * 0.75  # where closed lips meet: the lip's own colour in shadow
        # The painted interior takes the portrait's range and colour: teeth never whiter than
        # its own highlights, the cavity never blacker than its own shadows (a low-contrast
        # painting has no black), and as grey as the photo is (greyscale, sepia).
        face = np.zeros(latent.image.shape[:2], np.uint8)
        oval = np.round(latent.landmarks[list(topo.FACE_OVAL), :2]).astype(np.int32)
        cv2.fillPoly(face, [oval], 1)
        pixels = latent.image[cv2.erode(face, np.ones((5, 5), np.uint8)) > 0].astype(np.float64)
        luma = pixels @ LUMA
        darkest, brightest = np.percentile(luma, [1.0, 99.5])
        teeth = teeth * min(1.0, brightest / max(float(teeth @ LUMA), 1e-6))
        cavity = cavity + max(0.0, 0.8 * darkest - float(cavity @ LUMA))
        colourful = float(np.clip(np.abs(pixels - luma[:, None]).mean() / CHROMA_FULL, 0.0, 1.0))
        teeth, cavity, tongue, seam = (
            _saturate(c, colourful) for c in (teeth, cavity, tongue, seam)
        )
        # Edges of the paint ramp over a pixel or more (more on a larger face), and the paint
        # is as grainy as the skin.
        grey = cv2.cvtColor(latent.image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        inside = cv2.erode(face, np.ones((9, 9), np.uint8)) > 0
        fine = grey - cv2.GaussianBlur(grey, (0, 0), 1.0)
        grain = float(np.clip(0.5 * np.median(np.abs(fine[inside])) / 0.6745, 0.0, 6.0))
        edge_px = 0.8 + 0.004 * face_width
        return np.concatenate(
            [[face_width, tooth_width], teeth, cavity, tongue, seam, [edge_px, grain]]
        ).astype(np.float64)

    # --- per frame ---------------------------------------------------------------------------
    @staticmethod
    def _lid_gaps(points: np.ndarray) -> np.ndarray:
        """(2,) mean lid gap of the right and left eye, in pixels."""
        gaps = []
        for upper, lower in (
            (topo.RIGHT_EYE_UPPER[2:-2], topo.RIGHT_EYE_LOWER[2:-2]),
            (topo.LEFT_EYE_UPPER[2:-2], topo.LEFT_EYE_LOWER[2:-2]),
        ):
            gap = np.linalg.norm(points[list(upper), :2] - points[list(lower), :2], axis=1)
            gaps.append(gap.mean())
        return np.array(gaps)

    def _lip_gap(self, points: np.ndarray) -> np.ndarray:
        upper = points[list(topo.LIPS_INNER_UPPER), :2]
        lower = points[list(topo.LIPS_INNER_LOWER), :2]
        return np.linalg.norm(lower - upper, axis=1)

    def face_points(self, motion: MotionFrame) -> tuple[np.ndarray, HeadPlacement]:
        """(468, 3) output-pixel face mesh for a frame of motion, and the head placement."""
        placement = pose_to_placement(
            motion.pose,
            self.latent.framing,
            self.latent.depth_px,
            PITCH_RELIEF,
            float(self.latent.pose0[1]),
        )
        return placement.apply(self.latent.shape(self.lids_follow_gaze(motion))), placement

    def lids_follow_gaze(self, motion: MotionFrame) -> np.ndarray:
        """Blendshapes with the upper lids riding on the iris: real lids lower when the eyes
        look down and lift when they look up, so the iris never slides under the lid."""
        tilt = float(motion.gaze[1] - self.latent.gaze0[1])
        if abs(tilt) < 0.1:
            return motion.blendshapes
        shapes = motion.blendshapes.copy()
        for side in ("Left", "Right"):
            if tilt < 0:
                index = BLENDSHAPE_INDEX[f"eyeBlink{side}"]
                shapes[index] = min(1.0, shapes[index] + LID_PER_GAZE_DEG * -tilt)
            else:
                index = BLENDSHAPE_INDEX[f"eyeWide{side}"]
                shapes[index] = min(1.0, shapes[index] + 1.5 * LID_PER_GAZE_DEG * tilt)
        return shapes

    def render(self, motion: MotionFrame) -> np.ndarray:
        """One (H, W, 3) uint8 RGB frame. The returned array is reused by the next call."""
        mesh, latent = self.mesh, self.latent
        face, placement = self.face_points(motion)
        face_width = placement.scale
        xy = self._still_xy.copy()
        depth = np.full(mesh.n_vertices, 1e9)
        xy[: mesh.n_face] = face[:, :2]
        depth[: mesh.n_face] = face[:, 2]
        anchor_move = face[mesh.ring_anchor, :2] - latent.landmarks[mesh.ring_anchor, :2]
        rings = slice(mesh.first_ring, mesh.first_border)
        xy[rings] = mesh.ring_source + mesh.ring_follow[:, None] * anchor_move
        depth[rings] = face[mesh.ring_anchor, 2] + mesh.ring_depth * face_width
        attrs = self._tex.copy()

        # Mouth interior, behind the lips.
        loop = mesh.mouth_loop
        m0, n = mesh.first_mouth, len(loop)
        xy[m0 : m0 + n] = face[loop, :2]
        xy[m0 + n] = face[loop, :2].mean(0)
        depth[m0 : m0 + n + 1] = face[loop, 2].mean() + 0.08 * face_width
        attrs[m0 : m0 + n, :2] = latent.landmarks[loop, :2]
        attrs[m0 + n, :2] = latent.landmarks[loop, :2].mean(0)
        gap = self._lip_gap(face)
        gap_per_vertex = np.concatenate([gap, gap[1:-1][::-1]])
        attrs[m0 : m0 + n, 2] = self._mouth_u
        attrs[m0 : m0 + n, 3] = self._mouth_v
        attrs[m0 : m0 + n, 4] = gap_per_vertex
        attrs[m0 + n, 2:5] = (0.5, 0.5, gap.mean())
        # Paint the interior as far as the lips part beyond what the photo shows.
        mean_gap, mean_gap0 = float(gap[2:-2].mean()), float(self._mouth_gap0[2:-2].mean())
        mouth_synth = float(np.clip((mean_gap - mean_gap0) / (0.5 * mean_gap0 + 2.0), 0.0, 1.0))

        # Eye openings: the eyeball stays with the skull while the lids move over it.
        for eye_loop, e0 in zip(mesh.eye_loops, mesh.first_eye, strict=True):
            k = len(eye_loop)
            corners3d = np.concatenate([face[eye_loop], face[eye_loop].mean(0, keepdims=True)])
            xy[e0 : e0 + k + 1] = corners3d[:, :2]
            depth[e0 : e0 + k + 1] = corners3d[:, 2].mean() + 0.02 * face_width
            attrs[e0 : e0 + k + 1, :2] = self._placement0.apply(placement.invert(corners3d))[:, :2]

        moved = np.abs(xy - self._still_xy).max(1) > 1e-3
        moving = moved[mesh.triangles].any(1) | (mesh.triangle_label != raster.SURFACE)
        which = np.nonzero(moving)[0].astype(np.int32)
        first, last = self._drawn_rows
        self._zbuf[first:last] = np.inf
        self._drawn[first:last] = False
        first = last = 0
        if len(which):
            rows = xy[mesh.triangles[which], 1]
            first = int(np.clip(np.floor(rows.min()), 0, self._zbuf.shape[0]))
            last = int(np.clip(np.ceil(rows.max()) + 1, first, self._zbuf.shape[0]))
        self._drawn_rows = (first, last)
        raster.rasterize(
            xy.astype(np.float64),
            depth.astype(np.float64),
            attrs,
            mesh.triangles,
            mesh.triangle_label,
            which,
            self._tex_map,
            self._mouth_map,
            self._label,
            self._zbuf,
        )
        np.isfinite(self._zbuf[first:last], out=self._drawn[first:last])
        drawn = self._drawn

        irises = np.zeros((2, 5))
        centres = latent.iris_centres(face, placement, motion.gaze)
        ratio = placement.scale / self._placement0.scale
        # Nearly shut lids leave a sliver of eyeball a pixel or two high, which would read as
        # a white seam: below a third of the photo's lid gap the eye fades to its lash line.
        opening = self._lid_gaps(face) / np.maximum(self._lid_gap0 * ratio, 1e-6)
        shown = np.clip((opening - LID_SHUT) / (LID_SEAM - LID_SHUT), 0.0, 1.0)
        for i, side in enumerate(("right", "left")):
            irises[i] = (
                centres[side][0],
                centres[side][1],
                self._iris_radius_px[i] * ratio,
                1.0 / ratio,
                shown[i],
            )
        raster.composite(
            self._mask,
            self._eyeball,
            self._plate,
            self._tex_map,
            self._mouth_map,
            self._label,
            drawn,
            self._mouth,
            mouth_synth,
            irises,
            self._iris_patches,
            self._lashes,
            self.latent.image,
            self._out,
        )
        return self._out
