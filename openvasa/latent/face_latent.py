"""The face latent space: FaceLatent (appearance, identity, pose₀, dynamics₀) and the encoder.

A face in the output frame is
    points_px = s · R · (identity + Σ dᵢ · basisᵢ) + t
with (s, R, t) from the pose [yaw, pitch, roll, tx, ty, scale] and the framing, dᵢ the ARKit
blendshape coefficients, and the irises placed on eyeballs by the gaze angles. Encoding a frame
inverts this: a rigid fit for the pose, bounded least squares for the blendshapes and the
iris positions for the gaze, so that render → re-encode returns the latents.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares, lsq_linear

from openvasa.face.framing import Framing
from openvasa.latent import topology as topo
from openvasa.latent.blendshapes import authored_blendshapes, blendshape_basis
from openvasa.latent.geometry import rotation_angles, rotation_matrix, similarity_align
from openvasa.latent.motion import BLENDSHAPE_INDEX, MotionFrame

# Gap between the inner lip points of a relaxed closed mouth, in face widths.
REST_LIP_SLIVER = 0.01
# Eyeball radius over iris radius: 12 mm over 5.9 mm in adults.
EYEBALL_PER_IRIS_RADIUS = 2.05
# Depth is MediaPipe's least reliable coordinate; it counts for less in the fits.
DEPTH_WEIGHT = 0.3
# How much more the inner lips count when the photo's own mouth is explained by blendshapes.
LIP_FIT_WEIGHT = 6.0
# Small ridge keeps the blendshape solve stable where two fields look alike.
RIDGE = 1e-3
# Still vertices nearest each eye that place its eyeball when gaze is read.
EYE_ANCHORS = 12
# The face mesh moves its points a little along with the iris (real lids do follow it), so
# the eyeball centre inferred from them moves too and gaze reads short: (yaw, pitch) read /
# commanded, measured by tools/gaze_calibration.py on 10 rendered H.264 clips (256–512 px,
# head distance 0.8–1.25, swaying head) read as the evaluation reads video: 0.864 ± 0.020
# and 0.63 ± 0.05. Measured on renders of one face; real faces may differ.
GAZE_READ_GAIN = np.array([0.864, 0.63])


def _stable_vertices() -> np.ndarray:
    """Vertices that move with the skull only: upper face and nose, not lids, brows, lips, jaw."""
    ref = topo.template()
    below_nose = ref[:, 1] > ref[2, 1] - 0.01
    mobile = np.zeros(len(ref), bool)
    for ids in (topo.RIGHT_BROW, topo.LEFT_BROW, topo.RIGHT_EYE_LOOP, topo.LEFT_EYE_LOOP):
        centre = ref[list(ids)].mean(0)
        radius = np.linalg.norm(ref[list(ids), :2] - centre[:2], axis=1).max()
        mobile |= np.linalg.norm(ref[:, :2] - centre[:2], axis=1) < radius + 0.05
    stable = ~below_nose & ~mobile
    stable[list(topo.RIGHT_EYE_LOOP[:1] + topo.LEFT_EYE_LOOP[:1])] = True  # outer eye corners
    return np.nonzero(stable)[0]


STABLE_VERTICES = _stable_vertices()


def head_matrix(
    yaw_deg: float,
    pitch_deg: float,
    roll_deg: float,
    relief: float = 1.0,
    relief_from_deg: float = 0.0,
) -> np.ndarray:
    """(3, 3) linear map from the canonical head frame to the camera frame (before scale).

    With relief 1 this is the rotation roll · pitch · yaw. With relief k, the part of the tilt
    beyond `relief_from_deg` acts on a face whose depth is k times deeper (see the renderer's
    PITCH_RELIEF for why).
    """
    yaw = rotation_matrix(yaw_deg, 0.0, 0.0)
    roll = rotation_matrix(0.0, 0.0, roll_deg)
    if relief == 1.0:
        return roll @ rotation_matrix(0.0, pitch_deg, 0.0) @ yaw
    # deepen⁻¹ · R · deepen, with deepen = diag(1, 1, relief), element by element.
    deepen = np.array([1.0, 1.0, relief])
    extra = rotation_matrix(0.0, pitch_deg - relief_from_deg, 0.0) * (deepen / deepen[:, None])
    return roll @ extra @ rotation_matrix(0.0, relief_from_deg, 0.0) @ yaw


@dataclass
class HeadPlacement:
    """Where the head is: angles in degrees, scale in pixels per face width, translation in
    pixels (see `head_matrix` for relief). Maps canonical points to output pixels and back."""

    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    scale: float
    translation: np.ndarray
    relief: float = 1.0
    relief_from_deg: float = 0.0

    def __post_init__(self) -> None:
        self.matrix = head_matrix(
            self.yaw_deg, self.pitch_deg, self.roll_deg, self.relief, self.relief_from_deg
        )
        self._inverse = np.linalg.inv(self.matrix)

    @property
    def rotation(self) -> np.ndarray:
        """The head's pure rotation (for directions such as gaze)."""
        return rotation_matrix(self.yaw_deg, self.pitch_deg, self.roll_deg)

    def apply(self, points: np.ndarray) -> np.ndarray:
        return self.scale * points @ self.matrix.T + self.translation

    def invert(self, points: np.ndarray) -> np.ndarray:
        return ((points - self.translation) / self.scale) @ self._inverse.T


def pose_to_placement(
    pose: np.ndarray,
    framing: Framing,
    depth_px: float = 0.0,
    relief: float = 1.0,
    relief_from_deg: float = 0.0,
) -> HeadPlacement:
    """Pose [yaw, pitch, roll, tx, ty, scale] → the canonical-to-pixel placement."""
    yaw, pitch, roll, tx, ty, scale = (float(v) for v in pose)
    translation = np.array(
        [
            framing.centre_px[0] + tx * framing.face_width_px,
            framing.centre_px[1] + ty * framing.face_width_px,
            depth_px,
        ]
    )
    return HeadPlacement(
        yaw, pitch, roll, scale * framing.face_width_px, translation, relief, relief_from_deg
    )


def placement_to_pose(placement: HeadPlacement, framing: Framing) -> np.ndarray:
    tx, ty = (placement.translation[:2] - framing.centre_px) / framing.face_width_px
    return np.array(
        [
            placement.yaw_deg,
            placement.pitch_deg,
            placement.roll_deg,
            tx,
            ty,
            placement.scale / framing.face_width_px,
        ],
        np.float32,
    )


def gaze_direction(yaw_deg: np.ndarray | float, pitch_deg: np.ndarray | float) -> np.ndarray:
    """Unit gaze vector(s) in the head frame; (0, 0) looks straight out of the face (−z)."""
    a, b = np.radians(yaw_deg), np.radians(pitch_deg)
    return np.stack([np.sin(a) * np.cos(b), -np.sin(b), -np.cos(a) * np.cos(b)], -1)


@dataclass
class Eye:
    """One eyeball in the canonical frame: centre (3,) and radius, in face widths.

    corners: the two eye-corner vertices; corner_mid (3,) their midpoint in the identity.
    """

    centre: np.ndarray
    radius: float
    iris_radius: float
    corners: tuple[int, int]
    corner_mid: np.ndarray
    # The gaze (yaw, pitch) in degrees that this eyeball was fitted to show (the photo's).
    fitted_gaze_deg: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def centre_px(self, placement: HeadPlacement) -> np.ndarray:
        """(3,) eyeball centre in output pixels for a head placement."""
        return placement.apply(self.centre[None])[0]


def _eye_rest(points: np.ndarray, corner_a: int, corner_b: int, iris_radius: float) -> np.ndarray:
    """Where the iris centre rests at gaze (0, 0): between the eye corners, and a third of an
    iris radius above the line joining them, as in straight-ahead gaze."""
    return 0.5 * (points[corner_a] + points[corner_b]) - np.array([0.0, 0.3 * iris_radius, 0.0])


EYE_CORNERS = topo.EYE_CORNERS
IRIS = topo.IRIS


@dataclass
class FaceLatent:
    """One portrait in the latent space, framed for output.

    appearance: the framed photo (H, W, 3) uint8 and its person mask (H, W) float32 in [0, 1].
    identity: (468, 3) neutral face shape, canonical frame, face widths.
    landmarks: (478, 3) the photo's own landmarks in output pixels (texture coordinates).
    pose0, dynamics0, gaze0: the photo's own motion latents.
    eyes: the eyeballs ("right", "left") in the canonical frame, each placed so that the
        photo's own gaze puts its iris exactly where the photo shows it.
    """

    image: np.ndarray
    mask: np.ndarray
    identity: np.ndarray
    landmarks: np.ndarray
    pose0: np.ndarray
    dynamics0: np.ndarray
    gaze0: np.ndarray
    eyes: dict[str, Eye]
    framing: Framing
    depth_px: float
    basis: np.ndarray

    @property
    def motion0(self) -> MotionFrame:
        return MotionFrame(self.pose0.copy(), self.dynamics0.copy(), self.gaze0.copy())

    def shape(self, blendshapes: np.ndarray) -> np.ndarray:
        """(468, 3) canonical face shape for 52 blendshape coefficients."""
        active = np.nonzero(np.abs(blendshapes) > 1e-4)[0]
        shape = self.identity.copy()
        if len(active):
            shape += np.tensordot(blendshapes[active], self.basis[active], axes=1)
        return shape

    def iris_centres(
        self, face_px: np.ndarray, placement: HeadPlacement, gaze_deg: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Output-pixel positions (3,) of both iris centres, for the face's (468, 3) pixel
        points, its placement and the gaze (yaw, pitch) in degrees."""
        direction = gaze_direction(gaze_deg[0], gaze_deg[1])
        return {
            side: eye.centre_px(placement)
            + placement.scale * eye.radius * (placement.matrix @ direction)
            for side, eye in self.eyes.items()
        }


class MotionEncoder:
    """Turns landmarks of a frame (of this person, in output pixels) into motion latents."""

    def __init__(
        self,
        identity: np.ndarray,
        eyes: dict[str, Eye],
        framing: Framing,
        basis: np.ndarray | None = None,
    ):
        self.identity = np.asarray(identity, np.float64)
        self.eyes = eyes
        self.framing = framing
        self.basis = blendshape_basis(identity) if basis is None else basis
        self.active = np.array([BLENDSHAPE_INDEX[n] for n in authored_blendshapes()])
        weights = np.array([1.0, 1.0, DEPTH_WEIGHT])
        columns = (self.basis[self.active] * weights).reshape(len(self.active), -1).T
        self._design = np.vstack([columns, np.sqrt(RIDGE) * np.eye(len(self.active))])
        self._weights = weights
        # Fit the head only to vertices that no expression moves, so that a raised brow or an
        # open jaw is not mistaken for a tilt of the head.
        reach = np.linalg.norm(self.basis[self.active], axis=2).max(0)
        still = np.intersect1d(np.nonzero(reach < 0.004)[0], STABLE_VERTICES)
        self.stable = still if len(still) >= 30 else STABLE_VERTICES
        # Still points around each eye (brow ridge, nose bridge, cheekbone) that place the
        # eyeball: a head pose read 1° off moves a point at the eyeball's depth by ~1.5 px
        # against the whole face (≈5° of gaze), but hardly against its neighbours.
        self._eye_anchors = {}
        for side, eye in eyes.items():
            reach = np.linalg.norm(self.identity[self.stable, :2] - eye.centre[:2], axis=1)
            self._eye_anchors[side] = self.stable[np.argsort(reach)[:EYE_ANCHORS]]

    def placement(self, landmarks: np.ndarray) -> HeadPlacement:
        """Head pose by fitting the identity's stable points to the landmarks.

        The fit uses image x, y only (orthographic projection): MediaPipe's depth reads about
        10 % flat on turned heads, which would bias yaw and pitch.
        """
        points = np.asarray(landmarks[: topo.N_FACE_VERTICES], np.float64)[self.stable]
        reference = self.identity[self.stable]
        scale, rotation, translation = similarity_align(reference, points)
        start = np.array([*rotation_angles(rotation), scale, *translation[:2]])

        def residual(q: np.ndarray) -> np.ndarray:
            moved = q[3] * reference @ rotation_matrix(q[0], q[1], q[2]).T
            return (moved[:, :2] + q[4:6] - points[:, :2]).ravel()

        q = least_squares(residual, start, x_scale=np.array([10, 10, 10, scale, scale, scale])).x
        # Depth is not observed in the image: keep the one the 3D fit gives.
        return HeadPlacement(*(float(v) for v in q[:4]), np.array([q[4], q[5], translation[2]]))

    def encode(self, landmarks: np.ndarray, placement: HeadPlacement | None = None) -> MotionFrame:
        """(478, 3) output-pixel landmarks → MotionFrame (pose, 52 blendshapes, gaze).

        placement: `self.placement(landmarks)` when the caller has it already (the fit is
        most of the cost)."""
        placement = self.placement(landmarks) if placement is None else placement
        canonical = placement.invert(np.asarray(landmarks[: topo.N_FACE_VERTICES], np.float64))
        residual = ((canonical - self.identity) * self._weights).reshape(-1)
        target = np.concatenate([residual, np.zeros(len(self.active))])
        solved = lsq_linear(self._design, target, bounds=(0.0, 1.0), method="bvls").x
        blendshapes = np.zeros(len(BLENDSHAPE_INDEX), np.float32)
        blendshapes[self.active] = solved
        gaze = self.gaze(landmarks, placement)
        return MotionFrame(placement_to_pose(placement, self.framing), blendshapes, gaze)

    def eyeball_px(self, side: str, landmarks: np.ndarray, placement: HeadPlacement) -> np.ndarray:
        """(2,) image position of an eyeball's centre: rotated and scaled with the head,
        shifted with the still points around that eye."""
        anchors = self._eye_anchors[side]
        turn = placement.scale * placement.matrix
        seen = np.asarray(landmarks, np.float64)[anchors, :2]
        shift = (seen - self.identity[anchors] @ turn[:2].T).mean(0)
        return turn[:2] @ self.eyes[side].centre + shift

    def gaze(self, landmarks: np.ndarray, placement: HeadPlacement) -> np.ndarray:
        """Gaze (yaw, pitch) in degrees from the iris centres' image positions."""
        directions = []
        for side, eye in self.eyes.items():
            iris_px = np.asarray(landmarks[IRIS[side][0], :2], np.float64)
            centre_px = self.eyeball_px(side, landmarks, placement)
            # Image offset of the iris from the eyeball centre = radius · (R · d)[:2] · s.
            seen = (iris_px - centre_px) / (placement.scale * eye.radius)
            # Solve (M·d)[:2] = seen for a unit gaze vector d pointing out of the face (d_z < 0).
            inverse = np.linalg.inv(placement.matrix)
            a = inverse @ np.array([seen[0], seen[1], 0.0])
            b = inverse[:, 2]
            qa, qb, qc = b @ b, 2 * a @ b, a @ a - 1.0
            disc = max(qb * qb - 4 * qa * qc, 0.0)
            roots = [(-qb + np.sqrt(disc)) / (2 * qa), (-qb - np.sqrt(disc)) / (2 * qa)]
            d = min((a + w * b for w in roots), key=lambda v: v[2])
            directions.append(d / np.linalg.norm(d))
        d = np.mean(directions, axis=0)
        d /= np.linalg.norm(d)
        seen_deg = np.degrees([np.arctan2(d[0], -d[2]), np.arcsin(np.clip(-d[1], -1, 1))])
        # The eyes were fitted to show their photo's gaze: read departures from it at full size.
        fitted = np.mean([eye.fitted_gaze_deg for eye in self.eyes.values()], axis=0)
        return (fitted + (seen_deg - fitted) / GAZE_READ_GAIN).astype(np.float32)


def _eyes(canonical: np.ndarray, landmarks_px: np.ndarray, scale_px: float) -> dict[str, Eye]:
    eyes = {}
    for side, (a, b) in EYE_CORNERS.items():
        iris = IRIS[side]
        iris_radius_px = np.linalg.norm(
            landmarks_px[list(iris[1:]), :2] - landmarks_px[iris[0], :2], axis=1
        ).mean()
        iris_radius = iris_radius_px / scale_px
        radius = EYEBALL_PER_IRIS_RADIUS * iris_radius
        rest = _eye_rest(canonical, a, b, iris_radius)
        corner_mid = 0.5 * (canonical[a] + canonical[b])
        eyes[side] = Eye(
            rest + np.array([0.0, 0.0, radius]),
            float(radius),
            float(iris_radius),
            (a, b),
            corner_mid,
        )
    return eyes


def jaw_open_of(shape: np.ndarray, basis: np.ndarray) -> float:
    """How far the jaw is open, from the gap between the inner lips (0 closed … 1 widest)."""
    upper = list(topo.LIPS_INNER_UPPER[2:-2])
    lower = list(topo.LIPS_INNER_LOWER[2:-2])
    gap = float(np.mean(shape[lower, 1] - shape[upper, 1]))
    jaw = basis[BLENDSHAPE_INDEX["jawOpen"]]
    per_unit = float(np.mean(jaw[lower, 1] - jaw[upper, 1]))
    # A relaxed closed mouth still shows a sliver between the inner lip points.
    return float(np.clip((gap - REST_LIP_SLIVER) / per_unit, 0.0, 1.0))


# Share of an open mouth's lip gap that the jaw closes when the photo's mouth is brought to
# rest; the lips close the rest (mouthLowerDown / mouthUpperUp undone). Chosen on GRID
# train/s1 (5 clips): the rest render from each clip's most open frame matched the clip's own
# closed frame best over the lower face at 0.5 (26.99 dB; 0.35: 26.82, 0.6: 26.84,
# 1.0: 25.08), although the chin there travels 0.93-1.15 of the jaw field's share.
JAW_SHARE_OF_GAP = 0.5


def _lip_seal(shape: np.ndarray) -> np.ndarray:
    """(468, 3) displacement that closes the gap between the inner lips. Each lip moves as a
    whole (its outer contour with its inner one, so lip texture is carried, not stretched),
    the lower lip doing most of the travel, fading into the skin around."""
    from openvasa.latent.blendshapes import spread_moves

    upper = np.array(topo.LIPS_INNER_UPPER[1:-1])
    lower = np.array(topo.LIPS_INNER_LOWER[1:-1])
    gap = shape[upper] - shape[lower]  # from lower lip up to upper lip
    gap[:, 0] = 0.0
    gap[:, 1] = np.minimum(gap[:, 1], 0.0)  # lips already touching need no closing
    gap[:, 2] = 0.0
    outer_upper = np.array(topo.LIPS_OUTER_UPPER[1:-1])
    outer_lower = np.array(topo.LIPS_OUTER_LOWER[1:-1])

    # Outer lip points take the move of the inner point nearest them across the mouth.
    def carried(outer: np.ndarray, inner: np.ndarray, moves: np.ndarray) -> np.ndarray:
        return np.stack(
            [np.interp(shape[outer, 0], shape[inner, 0], moves[:, k]) for k in range(3)], 1
        )

    up_moves, down_moves = 0.7 * gap, -0.3 * gap
    anchors = np.concatenate([upper, lower, outer_upper, outer_lower])
    moves = np.concatenate(
        [
            down_moves,
            up_moves,
            carried(outer_upper, upper, down_moves),
            carried(outer_lower, lower, up_moves),
        ]
    )
    return spread_moves(shape, anchors, moves, reach=0.06)


def _rest_mouth(canonical: np.ndarray) -> tuple[np.ndarray, float]:
    """The photo's face with its mouth brought to rest: the jaw turned back by its share of
    the lip gap (chin and lower lip rise together, nothing stretches), then the lips sealed.
    Returns the rest shape and the jawOpen that the jaw was turned back by."""
    jaw_field = blendshape_basis(canonical)[BLENDSHAPE_INDEX["jawOpen"]]
    upper = list(topo.LIPS_INNER_UPPER[2:-2])
    lower = list(topo.LIPS_INNER_LOWER[2:-2])
    gap = float(np.mean(canonical[lower, 1] - canonical[upper, 1])) - REST_LIP_SLIVER
    per_unit = float(np.mean(jaw_field[lower, 1] - jaw_field[upper, 1]))
    jaw = float(np.clip(JAW_SHARE_OF_GAP * gap / max(per_unit, 1e-6), 0.0, 1.0))
    closed = canonical - jaw * jaw_field
    return closed + _lip_seal(closed), jaw


def _fit_blendshapes(
    basis: np.ndarray, offset: np.ndarray, fixed: dict[str, float] | None = None
) -> np.ndarray:
    """Bounded least squares: coefficients in [0, 1] whose fields best make `offset`; the
    inner lips count most, since their gap is what a closed mouth must get right. `fixed`
    coefficients are set beforehand and the others fitted to what they leave."""
    fixed = fixed or {}
    names = [n for n in authored_blendshapes() if n not in fixed]
    active = np.array([BLENDSHAPE_INDEX[n] for n in names])
    coefficients = np.zeros(len(BLENDSHAPE_INDEX), np.float32)
    for name, value in fixed.items():
        coefficients[BLENDSHAPE_INDEX[name]] = value
        offset = offset - value * basis[BLENDSHAPE_INDEX[name]]
    weights = np.ones((len(offset), 3)) * np.array([1.0, 1.0, DEPTH_WEIGHT])
    weights[list(topo.LIPS_INNER_UPPER + topo.LIPS_INNER_LOWER)] *= LIP_FIT_WEIGHT
    design = (basis[active] * weights).reshape(len(active), -1).T
    design = np.vstack([design, np.sqrt(RIDGE) * np.eye(len(active))])
    target = np.concatenate([(offset * weights).reshape(-1), np.zeros(len(active))])
    coefficients[active] = lsq_linear(design, target, bounds=(0.0, 1.0), method="bvls").x
    return coefficients


def encode_portrait(
    image: np.ndarray, mask: np.ndarray, landmarks_px: np.ndarray, framing: Framing
) -> FaceLatent:
    """Build the FaceLatent of a framed portrait.

    image: (H, W, 3) uint8 framed photo; mask: (H, W) person mask; landmarks_px: (478, 3) in
    output pixels (see `openvasa.face.framing.map_points`).
    """
    landmarks_px = np.asarray(landmarks_px, np.float64)
    scale, rotation, translation = similarity_align(
        topo.template(), landmarks_px[: topo.N_FACE_VERTICES]
    )
    placement = HeadPlacement(*rotation_angles(rotation), scale, translation)
    canonical = placement.invert(landmarks_px[: topo.N_FACE_VERTICES])
    # The photo's mouth is explained by blendshapes measured against the same face with its
    # lips sealed; the identity is then the photo's own shape minus exactly those blendshapes,
    # so that rendering the photo's own latents gives back exactly the photo's own mesh, and
    # a mouth at rest (all coefficients 0) is closed even when the photo smiles with teeth.
    sealed, jaw = _rest_mouth(canonical)
    basis = blendshape_basis(sealed)
    dynamics0 = _fit_blendshapes(basis, canonical - sealed, {"jawOpen": jaw})
    identity = canonical - np.tensordot(dynamics0, basis, axes=1)
    eyes = _eyes(canonical, landmarks_px, scale)
    encoder = MotionEncoder(identity, eyes, framing, basis)
    gaze0 = encoder.gaze(landmarks_px, placement)
    # Eyes rarely point exactly the same way: move each eyeball so that gaze0 lands its iris
    # on the photo's iris, and rendering the photo's own latents reproduces the photo.
    direction = gaze_direction(gaze0[0], gaze0[1])
    for side, eye in eyes.items():
        # Solve s·M·(c + r·d) + t = iris (image x, y) for the centre's x, y at its depth.
        m = placement.scale * placement.matrix
        iris_px = landmarks_px[IRIS[side][0], :2]
        rest = iris_px - placement.translation[:2] - m[:2] @ (eye.radius * direction)
        rest -= m[:2, 2] * eye.centre[2]
        eye.centre = np.array([*np.linalg.solve(m[:2, :2], rest), eye.centre[2]])
        eye.fitted_gaze_deg = np.array(gaze0, np.float64)
    pose0 = placement_to_pose(placement, framing)
    return FaceLatent(
        image=image,
        mask=mask.astype(np.float32),
        identity=identity.astype(np.float64),
        landmarks=landmarks_px,
        pose0=pose0,
        dynamics0=dynamics0,
        gaze0=gaze0,
        eyes=eyes,
        framing=framing,
        depth_px=float(translation[2]),
        basis=basis,
    )
