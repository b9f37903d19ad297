"""ARKit blendshapes authored as displacement fields on the face-mesh topology.

`blendshape_basis(identity)` returns, for one person's neutral face shape, the displacement of
every mesh vertex at coefficient 1 for each of the 52 ARKit names: (52, 468, 3) in face widths,
in the canonical head frame (x to the image's right, y down, z away from the camera). A face is
`identity + Σ coefficient · basis`. The fields are authored from the person's own geometry
(eyelids close onto that person's lower lid, the jaw turns about a hinge placed from that
person's face), so the same coefficients mean the same expression on every face.

The eyeLook* names are not geometric here (gaze moves the irises, see the renderer) and
tongueOut is not authored yet: their fields are zero.
"""

import numpy as np

from openvasa.latent import topology as topo
from openvasa.latent.geometry import points_in_polygon, rotation_matrix
from openvasa.latent.motion import ARKIT_BLENDSHAPES, BLENDSHAPE_INDEX

# Largest jaw rotation (jawOpen = 1). Maximal human mouth opening is about 40–50 mm on a face
# about 140 mm wide; the hinge sits about 0.6 face widths behind and above the chin.
JAW_OPEN_MAX_DEG = 24.0


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _gaussian(points: np.ndarray, centre: np.ndarray, sigma: float) -> np.ndarray:
    """A bell of width `sigma` that falls to exactly zero at 2.5 sigma, so that a field stays
    local: the nose and upper face do not move when the lips do."""
    d2 = ((points[:, :2] - centre[:2]) ** 2).sum(1)
    return np.exp(-0.5 * d2 / sigma**2) * np.clip(1 - d2 / (2.5 * sigma) ** 2, 0, 1) ** 2


def _side(points: np.ndarray, sign: float, softness: float = 0.04) -> np.ndarray:
    """Weight 1 on one half of the face (sign +1: the subject's left, the image's right)."""
    return _smoothstep(-softness, softness, sign * points[:, 0])


def spread_moves(
    points: np.ndarray, anchors: np.ndarray, moves: np.ndarray, reach: float
) -> np.ndarray:
    """Carry the displacements `moves` of the vertices `anchors` to their neighbourhood: each
    vertex takes the move of its nearest anchor, fading with distance over `reach`."""
    d = np.linalg.norm(points[:, None, :2] - points[None, anchors, :2], axis=2)
    nearest = d.argmin(1)
    fade = np.clip(1 - d.min(1) / reach, 0, 1) ** 2
    return moves[nearest] * fade[:, None]


def blendshape_basis(identity: np.ndarray) -> np.ndarray:
    """(52, 468, 3) float32 displacement per blendshape at coefficient 1, for the neutral
    face shape `identity` (468, 3) in face widths, canonical frame."""
    p = np.asarray(identity, np.float64)[: topo.N_FACE_VERTICES]
    basis = np.zeros((len(ARKIT_BLENDSHAPES), len(p), 3))

    def put(name: str, field: np.ndarray) -> None:
        basis[BLENDSHAPE_INDEX[name]] = field

    corners = list(topo.MOUTH_CORNERS)
    mouth_centre = p[corners + [13, 14]].mean(0)
    mouth_half_width = 0.5 * abs(p[291, 0] - p[61, 0])
    lips_outer = p[list(topo.loop(topo.LIPS_OUTER_UPPER, topo.LIPS_OUTER_LOWER))]
    on_lips = points_in_polygon(p, lips_outer[:, :2] + 0.0) | np.isin(
        np.arange(len(p)), topo.LIPS_OUTER_UPPER + topo.LIPS_OUTER_LOWER
    )
    upper_lip = on_lips & (
        p[:, 1]
        <= np.interp(p[:, 0], p[list(topo.LIPS_INNER_UPPER), 0], p[list(topo.LIPS_INNER_UPPER), 1])
        + 1e-6
    )
    upper_lip |= np.isin(np.arange(len(p)), topo.LIPS_INNER_UPPER + topo.LIPS_OUTER_UPPER)
    lower_lip = on_lips & ~upper_lip
    lower_lip[list(topo.LIPS_INNER_LOWER + topo.LIPS_OUTER_LOWER)] = True
    lower_lip[corners + [78, 308]] = False
    face_height = p[topo.CHIN, 1] - p[topo.FOREHEAD, 1]

    # --- jaw: a rotation about a hinge in front of the ears, weighted over the lower face.
    hinge = np.array([0.0, p[[234, 454], 1].mean() + 0.05, p[[234, 454], 2].mean()])
    jaw_weight = _smoothstep(mouth_centre[1] - 0.01, mouth_centre[1] + 0.07, p[:, 1])
    jaw_weight[upper_lip] = 0.0
    jaw_weight[lower_lip] = 1.0
    jaw_weight[corners + [78, 308]] = 0.5
    # Rotate so that the chin drops (y grows) and moves back a little (z grows).
    turn = rotation_matrix(0.0, -JAW_OPEN_MAX_DEG, 0.0)
    jaw_move = ((p - hinge) @ turn.T + hinge) - p
    if jaw_move[topo.CHIN, 1] < 0:
        turn = rotation_matrix(0.0, JAW_OPEN_MAX_DEG, 0.0)
        jaw_move = ((p - hinge) @ turn.T + hinge) - p
    jaw_open = jaw_move * jaw_weight[:, None]
    put("jawOpen", jaw_open)
    jaw_shift = jaw_weight[:, None] * np.array([0.05, 0.0, 0.0])
    put("jawLeft", jaw_shift)
    put("jawRight", -jaw_shift)
    put("jawForward", jaw_weight[:, None] * np.array([0.0, 0.0, -0.05]))

    # --- lips together while the jaw is open: the lower lip rides up against the jaw.
    lip_band = _smoothstep(0.09, 0.0, np.abs(p[:, 1] - p[14, 1])) * (
        p[:, 1] > mouth_centre[1] - 0.005
    )
    lip_band *= _gaussian(p, mouth_centre, 1.6 * mouth_half_width)
    lip_band[lower_lip] = 1.0
    lip_band[corners + [78, 308]] = 0.5
    put("mouthClose", -jaw_open * lip_band[:, None])

    # Below the nose only: lip shapes must not move the nose.
    around_mouth = _gaussian(p, mouth_centre, 1.3 * mouth_half_width) * _smoothstep(
        p[2, 1] - 0.01, p[0, 1], p[:, 1]
    )
    towards_centre = np.zeros_like(p)
    towards_centre[:, 0] = (mouth_centre[0] - p[:, 0]) / max(mouth_half_width, 1e-6)
    towards_centre[:, 0] = np.clip(towards_centre[:, 0], -1.0, 1.0)
    inner_gap = np.zeros(len(p))
    inner_gap[list(topo.LIPS_INNER_UPPER)] = -1.0
    inner_gap[list(topo.LIPS_INNER_LOWER)] = 1.0
    inner_gap *= 1 - np.abs(towards_centre[:, 0]) ** 2
    inner_gap[corners + [78, 308]] = 0.0
    forward = np.array([0.0, 0.0, -1.0])

    put(
        "mouthFunnel",
        around_mouth[:, None] * (0.10 * mouth_half_width * towards_centre + 0.05 * forward)
        + inner_gap[:, None] * np.array([0.0, 0.035, 0.0]),
    )
    put(
        "mouthPucker",
        around_mouth[:, None] * (0.32 * mouth_half_width * towards_centre + 0.07 * forward),
    )
    mouth_shift = around_mouth[:, None] * np.array([0.05, 0.0, 0.0])
    put("mouthLeft", mouth_shift)
    put("mouthRight", -mouth_shift)

    for suffix, sign, corner in (("Left", 1.0, 291), ("Right", -1.0, 61)):
        near_corner = _gaussian(p, p[corner], 0.11) * _side(p, sign)
        cheek = _gaussian(p, p[corner] + [sign * 0.06, -0.12, 0], 0.10) * _side(p, sign)
        outward = np.array([sign, 0.0, 0.0])
        up = np.array([0.0, -1.0, 0.0])
        put(
            f"mouthSmile{suffix}",
            near_corner[:, None] * (0.055 * up + 0.05 * outward) + cheek[:, None] * (0.025 * up),
        )
        put(f"mouthFrown{suffix}", near_corner[:, None] * (-0.05 * up + 0.005 * outward))
        put(f"mouthStretch{suffix}", near_corner[:, None] * (0.06 * outward - 0.012 * up))
        put(f"mouthDimple{suffix}", near_corner[:, None] * (0.02 * outward + 0.02 * -forward))
        side = _side(p, sign, 0.02) * around_mouth
        upper = (
            side
            * (upper_lip | (p[:, 1] < mouth_centre[1]))
            * _smoothstep(mouth_centre[1] - 0.18, mouth_centre[1] - 0.03, p[:, 1])
        )
        lower = side * lower_lip
        put(
            f"mouthPress{suffix}",
            (upper * (p[:, 1] > p[0, 1] - 0.01))[:, None] * 0.012 * -up
            + lower[:, None] * 0.012 * up,
        )
        put(f"mouthUpperUp{suffix}", upper[:, None] * 0.035 * up)
        put(
            f"mouthLowerDown{suffix}",
            (side * jaw_weight * (p[:, 1] < p[17, 1] + 0.04))[:, None] * 0.035 * -up,
        )
        cheek_high = _gaussian(p, p[corner] + [sign * 0.1, -0.2, 0], 0.09) * _side(p, sign)
        put(f"cheekSquint{suffix}", cheek_high[:, None] * 0.022 * up)
        nose_side = _gaussian(p, p[98 if sign < 0 else 327], 0.06) * _side(p, sign, 0.01)
        put(f"noseSneer{suffix}", nose_side[:, None] * (0.025 * up))

    # Lips roll in: each outer lip contour slides towards its inner contour.
    roll_upper = np.zeros_like(p)
    roll_lower = np.zeros_like(p)
    for outer, inner, field in (
        (topo.LIPS_OUTER_UPPER, topo.LIPS_INNER_UPPER, roll_upper),
        (topo.LIPS_OUTER_LOWER, topo.LIPS_INNER_LOWER, roll_lower),
    ):
        moves = 0.7 * (p[list(inner)] - p[list(outer)]) + [0.0, 0.0, 0.01]
        moves[[0, -1]] = 0.0
        field += spread_moves(p, np.array(outer), moves, reach=0.05)
    put("mouthRollUpper", roll_upper)
    put("mouthRollLower", roll_lower)
    put("mouthShrugUpper", (upper_lip * around_mouth)[:, None] * np.array([0.0, -0.02, -0.01]))
    chin = _gaussian(p, p[topo.CHIN] + [0, -0.08, 0], 0.12)
    put(
        "mouthShrugLower",
        np.maximum(chin, lower_lip * 1.0)[:, None] * np.array([0.0, -0.02, -0.01]),
    )

    cheek_puff = np.zeros_like(p)
    for sign, corner in ((1.0, 291), (-1.0, 61)):
        cheek = _gaussian(p, p[corner] + [sign * 0.14, -0.04, 0], 0.10) * _side(p, sign)
        cheek_puff += cheek[:, None] * np.array([sign * 0.04, 0.0, -0.03])
    put("cheekPuff", cheek_puff)

    # --- brows.
    up = np.array([0.0, -1.0, 0.0])
    inner_brow = np.zeros(len(p))
    for brow, sign in ((topo.RIGHT_BROW, -1.0), (topo.LEFT_BROW, 1.0)):
        brow_pts = p[list(brow)]
        inner_end = brow_pts[np.argmin(np.abs(brow_pts[:, 0]))]
        outer_end = brow_pts[np.argmax(np.abs(brow_pts[:, 0]))]
        inner_brow += _gaussian(p, inner_end, 0.09) * (p[:, 1] < inner_end[1] + 0.05)
        outer = _gaussian(p, outer_end, 0.10) * _side(p, sign) * (p[:, 1] < outer_end[1] + 0.05)
        suffix = "Left" if sign > 0 else "Right"
        put(f"browOuterUp{suffix}", outer[:, None] * 0.05 * up)
        whole = (
            _gaussian(p, brow_pts.mean(0), 0.13)
            * _side(p, sign)
            * (p[:, 1] < brow_pts[:, 1].mean() + 0.06)
        )
        put(f"browDown{suffix}", whole[:, None] * np.array([-sign * 0.015, 0.04, 0.0]))
    put("browInnerUp", np.clip(inner_brow, 0, 1)[:, None] * 0.05 * up)

    # --- eyelids: the upper lid closes onto this person's own lower lid.
    for suffix, upper_ids, lower_ids in (
        ("Left", topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER),
        ("Right", topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER),
    ):
        upper_ids, lower_ids = np.array(upper_ids), np.array(lower_ids)
        gap = p[lower_ids] - p[upper_ids]  # upper lid → lower lid, per column of the eye
        gap[:, 0] = 0.0
        eye_height = max(float(np.abs(gap[:, 1]).max()), 1e-3)
        # Lids meet 85 % of the way down, as real blinks close mostly with the upper lid.
        close_upper = 0.85 * gap
        close_lower = -0.15 * gap
        anchors = np.concatenate([upper_ids[1:-1], lower_ids[1:-1]])
        blink = spread_moves(
            p,
            anchors,
            np.concatenate([close_upper[1:-1], close_lower[1:-1]]),
            reach=2.2 * eye_height,
        )
        eye_top = p[upper_ids, 1].min()
        # Skin far above the lid moves less than the lid itself; below the lower lid, less still.
        blink *= np.where(p[:, 1] < eye_top, 1.0, 1.0)[:, None]
        put(f"eyeBlink{suffix}", blink)
        wide = np.zeros_like(p[anchors])
        wide[: len(upper_ids) - 2] = -0.35 * gap[1:-1]
        put(f"eyeWide{suffix}", spread_moves(p, anchors, wide, reach=2.2 * eye_height))
        squint = np.zeros_like(p[anchors])
        squint[: len(upper_ids) - 2] = 0.12 * gap[1:-1]
        squint[len(upper_ids) - 2 :] = -0.3 * gap[1:-1]
        put(f"eyeSquint{suffix}", spread_moves(p, anchors, squint, reach=2.0 * eye_height))
    del face_height
    return basis.astype(np.float32)


def authored_blendshapes() -> tuple[str, ...]:
    """Names whose displacement field is not zero (those an encoder can measure)."""
    skipped = {"tongueOut"} | {n for n in ARKIT_BLENDSHAPES if n.startswith("eyeLook")}
    return tuple(n for n in ARKIT_BLENDSHAPES if n not in skipped)
