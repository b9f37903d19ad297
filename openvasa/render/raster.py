"""The renderer's two per-frame kernels, compiled with Numba.

`rasterize` draws the moved mesh into per-pixel attribute maps (where each output pixel comes
from in the appearance image, plus mouth coordinates) with a depth test; `composite` samples
the appearance through those maps, paints the mouth interior and the irises, and lays the
moved person over the still background.
"""

import numpy as np
from numba import njit, prange

SURFACE, MOUTH, EYE_RIGHT, EYE_LEFT = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def rasterize(xy, depth, attrs, triangles, triangle_label, which, tex_map, mouth_map, label, zbuf):
    """Draw triangles `which` of the mesh.

    xy: (V, 2) output positions; depth: (V,) larger is farther; attrs: (V, 5) per-vertex
    [tex_x, tex_y, mouth_u, mouth_v, mouth_gap_px]; triangles: (T, 3); triangle_label: (T,).
    Writes tex_map (H, W, 2), mouth_map (H, W, 3), label (H, W), zbuf (H, W) in place.
    """
    height, width = zbuf.shape
    for k in range(which.shape[0]):
        t = which[k]
        a, b, c = triangles[t, 0], triangles[t, 1], triangles[t, 2]
        ax, ay = xy[a, 0], xy[a, 1]
        bx, by = xy[b, 0], xy[b, 1]
        cx, cy = xy[c, 0], xy[c, 1]
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if abs(area) < 1e-9:
            continue
        inv_area = 1.0 / area
        x0 = max(int(np.ceil(min(ax, bx, cx) - 1e-6)), 0)
        x1 = min(int(np.floor(max(ax, bx, cx) + 1e-6)), width - 1)
        y0 = max(int(np.ceil(min(ay, by, cy) - 1e-6)), 0)
        y1 = min(int(np.floor(max(ay, by, cy) + 1e-6)), height - 1)
        lab = triangle_label[t]
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                wa = ((bx - x) * (cy - y) - (by - y) * (cx - x)) * inv_area
                wb = ((cx - x) * (ay - y) - (cy - y) * (ax - x)) * inv_area
                wc = 1.0 - wa - wb
                if wa < -1e-6 or wb < -1e-6 or wc < -1e-6:
                    continue
                z = wa * depth[a] + wb * depth[b] + wc * depth[c]
                if z >= zbuf[y, x]:
                    continue
                zbuf[y, x] = z
                label[y, x] = lab
                tex_map[y, x, 0] = wa * attrs[a, 0] + wb * attrs[b, 0] + wc * attrs[c, 0]
                tex_map[y, x, 1] = wa * attrs[a, 1] + wb * attrs[b, 1] + wc * attrs[c, 1]
                if lab == MOUTH:
                    for j in range(3):
                        mouth_map[y, x, j] = (
                            wa * attrs[a, 2 + j] + wb * attrs[b, 2 + j] + wc * attrs[c, 2 + j]
                        )


@njit(inline="always")
def _sample(image, x, y, channel):
    """Bilinear sample of image[..., channel] at (x, y), clamped to the border."""
    height, width = image.shape[0], image.shape[1]
    x = min(max(x, 0.0), width - 1.001)
    y = min(max(y, 0.0), height - 1.001)
    x0 = int(x)
    y0 = int(y)
    fx = x - x0
    fy = y - y0
    top = image[y0, x0, channel] * (1 - fx) + image[y0, x0 + 1, channel] * fx
    bottom = image[y0 + 1, x0, channel] * (1 - fx) + image[y0 + 1, x0 + 1, channel] * fx
    return top * (1 - fy) + bottom * fy


# Layout of the mouth shading constants (`Renderer._prepare_mouth`).
M_FACE_WIDTH, M_TEETH_ACROSS, M_TEETH, M_CAVITY, M_TONGUE, M_SEAM = 0, 1, 2, 5, 8, 11
M_SOFT, M_GRAIN, M_SEAM_PX, M_RATIO = 14, 15, 16, 17
M_SIZE = 18


@njit(inline="always")
def _smoothstep(edge0, edge1, x):
    t = min(max((x - edge0) / (edge1 - edge0 + 1e-9), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


@njit(inline="always")
def _grain(x, y):
    """A still pseudo-random value in [-1, 1] per output pixel (film grain, sensor noise)."""
    h = (x * 374761393 + y * 668265263) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFF
    return ((h & 0xFFFF) / 32767.5) - 1.0


@njit(inline="always")
def _painted_mouth(u, v, gap, mouth, channel):
    """Painted mouth interior at mouth coordinates (u across from corner to corner, v from
    the upper lip to the lower), `gap` px between the lips here: upper teeth lit under the
    lip's shadow, lower teeth in shadow, the cavity darker towards the back and the corners,
    the tongue low in the middle. Every edge is soft over `mouth[M_SOFT]` px (the portrait's
    own sharpness), so that nothing is sharper than the photo."""
    face_width = mouth[M_FACE_WIDTH]
    soft = mouth[M_SOFT]
    across = abs(2.0 * u - 1.0)
    # Teeth are tallest in front and hide behind the cheeks towards the corners.
    front = max(0.0, 1.0 - across * across) ** 1.5
    upper_teeth = 0.045 * face_width * front
    lower_teeth = 0.025 * face_width * front * _smoothstep(0.05, 0.09, gap / face_width)
    from_upper = v * gap
    from_lower = (1.0 - v) * gap
    depth_shade = 1.0 - across**3
    cavity_colour = mouth[M_CAVITY + channel]
    teeth_colour = mouth[M_TEETH + channel]
    # The back of the mouth, farthest from both lips, gets the least light.
    inside = min(from_upper, from_lower) / max(0.5 * gap, 1e-6)
    back = 1.0 - 0.45 * _smoothstep(0.1, 1.0, inside)
    cavity = cavity_colour * (0.6 + 0.4 * depth_shade) * back
    tongue = min(max((v - 0.55) * 5.0, 0.0), 1.0) * (1.0 - _smoothstep(0.55, 0.8, across))
    value = cavity * (1.0 - tongue) + mouth[M_TONGUE + channel] * depth_shade * tongue
    # Upper teeth: lit, a shadow just under the lip, dark gaps between the teeth.
    upper = 1.0 - _smoothstep(upper_teeth - soft, upper_teeth + soft, from_upper)
    light = depth_shade * (0.7 + 0.3 * _smoothstep(-soft, 0.012 * face_width + soft, from_upper))
    phase = (u - 0.5) * mouth[M_TEETH_ACROSS]
    to_gap = abs(phase - np.floor(phase + 0.5))  # 0 at a gap between teeth, 0.5 mid-tooth
    tooth_px = face_width / max(mouth[M_TEETH_ACROSS], 1.0) * 0.4
    light *= 1.0 - 0.25 * (1.0 - _smoothstep(0.0, 0.12 + soft / max(tooth_px, 1e-6), to_gap))
    # Each tooth is rounded: a little darker towards its edges, and towards its tip.
    light *= 0.9 + 0.1 * _smoothstep(0.0, 0.5, to_gap)
    light *= 1.0 - 0.12 * _smoothstep(0.5 * upper_teeth, upper_teeth, from_upper)
    value = value * (1.0 - upper) + (cavity_colour + (teeth_colour - cavity_colour) * light) * upper
    # Lower teeth: in the upper teeth's and the lip's shadow.
    lower = (1.0 - _smoothstep(lower_teeth - soft, lower_teeth + soft, from_lower)) * (
        1.0 - _smoothstep(0.5, 0.65, across)
    )
    light = 0.75 * depth_shade * _smoothstep(-soft, 0.01 * face_width + soft, from_lower)
    return value * (1.0 - lower) + (cavity_colour + (teeth_colour - cavity_colour) * light) * lower


@njit(inline="always")
def _photo_mouth(image, lips, j, a, tex_x, tex_y, v, v0, channel):
    """The photo at fraction v0 of the way from its upper to its lower inner lip, at column
    j + a, for a pixel whose own texture position (tex_x, tex_y) lies at fraction v: moved
    from there across the mouth, so that v0 = v gives the photo exactly.
    lips: (Nu, 4) photo positions [upper x, upper y, lower x, lower y] per column."""
    v0 = min(max(v0, 0.0), 1.0)
    dx = (lips[j, 2] - lips[j, 0]) * (1 - a) + (lips[j + 1, 2] - lips[j + 1, 0]) * a
    dy = (lips[j, 3] - lips[j, 1]) * (1 - a) + (lips[j + 1, 3] - lips[j + 1, 1]) * a
    return _sample(image, tex_x + (v0 - v) * dx, tex_y + (v0 - v) * dy, channel)


@njit(inline="always")
def _as_open_as_photo(u, gap, mouth, gap0):
    """1 where the lips are as far apart as the photo's own (whatever shows there is the
    photo's, even a sliver at a corner), 0 from 80 % of that down."""
    nu = gap0.shape[0]
    fu = min(max(u, 0.0), 1.0) * (nu - 1.001)
    j = int(fu)
    a = fu - j
    shown = (gap0[j] * (1 - a) + gap0[j + 1] * a) * mouth[M_RATIO]
    if shown < 1e-3:
        return 0.0
    return _smoothstep(0.8, 0.97, gap / shown)


@njit(inline="always")
def _mouth_colour(u, v, gap, x, y, tex_x, tex_y, mouth, image, lips, gap0, split0, channel):
    """Mouth interior at mouth coordinates (u, v) with `gap` px between the lips.

    What the photo's open mouth showed is kept pinned to the lip it belongs to, at the
    photo's own scale: what lies above the photo's split (the dark line between upper and
    lower teeth, or all of it when the teeth meet) hangs from the upper lip, the rest rides
    on the lower lip. A mouth opened less than the photo's hides the middle of the photo's
    interior behind the lips (it is never squeezed); opened more, the painted interior fills
    in between. gap0, split0: (Nu,) the photo's own lip gap per atlas column in the
    portrait's pixels, and where its split lies (fraction of that gap from the upper lip).
    """
    painted = _painted_mouth(u, v, gap, mouth, channel)
    painted += mouth[M_GRAIN] * _grain(x, y)
    nu = gap0.shape[0]
    fu = min(max(u, 0.0), 1.0) * (nu - 1.001)
    j = int(fu)
    a = fu - j
    shown = (gap0[j] * (1 - a) + gap0[j + 1] * a) * mouth[M_RATIO]
    split = split0[j] * (1 - a) + split0[j + 1] * a
    from_upper = v * gap
    from_lower = (1.0 - v) * gap
    # The lips' inner edge as the photo shows it there: the painted interior starts from it.
    upper_edge = _photo_mouth(image, lips, j, a, tex_x, tex_y, v, 0.0, channel)
    lower_edge = _photo_mouth(image, lips, j, a, tex_x, tex_y, v, 1.0, channel)
    soft = mouth[M_SOFT] + 0.5
    lip_edge = upper_edge if from_upper <= from_lower else lower_edge
    edge = _smoothstep(0.0, 2.0 * soft, min(from_upper, from_lower))
    painted = lip_edge * (1.0 - edge) + painted * edge
    shown = max(shown, 1e-3)
    upper_part = split * shown
    lower_part = (1.0 - split) * shown
    # A narrower mouth than the photo's hides both parts in proportion.
    if from_upper * (1.0 - split) <= from_lower * split:
        photo = _photo_mouth(image, lips, j, a, tex_x, tex_y, v, from_upper / shown, channel)
        cover = 1.0 - _smoothstep(upper_part, upper_part + 2.0 * soft, from_upper)
    else:
        photo = _photo_mouth(image, lips, j, a, tex_x, tex_y, v, 1.0 - from_lower / shown, channel)
        cover = 1.0 - _smoothstep(lower_part, lower_part + 2.0 * soft, from_lower)
    cover *= _smoothstep(0.5, 3.0, shown)  # a sliver of a photo mouth shows nothing
    return photo * cover + painted * (1.0 - cover)


@njit(cache=True, parallel=True, nogil=True)
def composite(
    image,
    mask,
    eyeball,
    plate,
    tex_map,
    mouth_map,
    label,
    drawn,
    mouth,
    mouth_lips,
    mouth_gap0,
    mouth_split0,
    irises,
    iris_patches,
    lashes,
    image_u8,
    out,
):
    """Sample and shade every output pixel into `out` (H, W, 3) uint8.

    image, eyeball, plate: (H, W, 3) float32 appearance, appearance without irises, still
    background; mask: (H, W, 1) float32 person mask; drawn: (H, W) bool, pixels the mesh
    moved; mouth: shading constants (M_* above); mouth_lips (Nu, 4), mouth_gap0 and
    mouth_split0 (Nu,): the photo's own inner lips, lip gap and split (see _mouth_colour);
    irises: (2, 5) [x, y, radius_px, patch_scale, shown] per eye (right, left), shown in
    [0, 1] fading a nearly shut eye to its lash colour (lashes: (2, 3) float32);
    iris_patches: (2, P, P, 4) RGBA float32 centred on the photo's irises; image_u8: the
    appearance as uint8, copied where nothing moved.
    """
    height, width = label.shape
    patch_half = (iris_patches.shape[1] - 1) * 0.5
    for y in prange(height):
        for x in range(width):
            if not drawn[y, x]:
                out[y, x, 0] = image_u8[y, x, 0]
                out[y, x, 1] = image_u8[y, x, 1]
                out[y, x, 2] = image_u8[y, x, 2]
                continue
            sx = min(max(tex_map[y, x, 0], 0.0), width - 1.001)
            sy = min(max(tex_map[y, x, 1], 0.0), height - 1.001)
            x0 = int(sx)
            y0 = int(sy)
            fx = sx - x0
            fy = sy - y0
            w00 = (1 - fx) * (1 - fy)
            w01 = fx * (1 - fy)
            w10 = (1 - fx) * fy
            w11 = fx * fy
            lab = label[y, x]
            source = eyeball if (lab == EYE_RIGHT or lab == EYE_LEFT) else image
            alpha = (
                w00 * mask[y0, x0, 0]
                + w01 * mask[y0, x0 + 1, 0]
                + w10 * mask[y0 + 1, x0, 0]
                + w11 * mask[y0 + 1, x0 + 1, 0]
            )
            for ch in range(3):
                value = (
                    w00 * source[y0, x0, ch]
                    + w01 * source[y0, x0 + 1, ch]
                    + w10 * source[y0 + 1, x0, ch]
                    + w11 * source[y0 + 1, x0 + 1, ch]
                )
                if lab == EYE_RIGHT or lab == EYE_LEFT:
                    shown = irises[lab - EYE_RIGHT, 4]
                    value = value * shown + lashes[lab - EYE_RIGHT, ch] * (1.0 - shown)
                if lab == MOUTH:
                    value = _mouth_colour(
                        mouth_map[y, x, 0],
                        mouth_map[y, x, 1],
                        mouth_map[y, x, 2],
                        x,
                        y,
                        sx,
                        sy,
                        mouth,
                        image,
                        mouth_lips,
                        mouth_gap0,
                        mouth_split0,
                        ch,
                    )
                    # Lips a pixel or two apart meet in a dark seam, not a strip of teeth
                    # (which the face mesh reads as a parted mouth).
                    seam = mouth[M_SEAM_PX]
                    parted = _smoothstep(seam, 2.0 * seam, mouth_map[y, x, 2])
                    parted = max(
                        parted,
                        _as_open_as_photo(
                            mouth_map[y, x, 0], mouth_map[y, x, 2], mouth, mouth_gap0
                        ),
                    )
                    value = value * parted + mouth[M_SEAM + ch] * (1.0 - parted)
                if alpha < 0.999:
                    # Matting: replace the background that moved with the background that stays.
                    moved_plate = (
                        w00 * plate[y0, x0, ch]
                        + w01 * plate[y0, x0 + 1, ch]
                        + w10 * plate[y0 + 1, x0, ch]
                        + w11 * plate[y0 + 1, x0 + 1, ch]
                    )
                    value += (1.0 - alpha) * (plate[y, x, ch] - moved_plate)
                out[y, x, ch] = np.uint8(min(max(value + 0.5, 0.0), 255.0))
            if lab == EYE_RIGHT or lab == EYE_LEFT:
                e = lab - EYE_RIGHT
                dx = x - irises[e, 0]
                dy = y - irises[e, 1]
                r = irises[e, 2]
                dist = np.sqrt(dx * dx + dy * dy)
                if dist < r + 1.0:
                    px = dx * irises[e, 3] + patch_half
                    py = dy * irises[e, 3] + patch_half
                    edge = min(max(r + 0.5 - dist, 0.0), 1.0) * irises[e, 4]
                    a = edge * _sample(iris_patches[e], px, py, 3)
                    for ch in range(3):
                        iris = _sample(iris_patches[e], px, py, ch)
                        blended = out[y, x, ch] * (1 - a) + iris * a + 0.5
                        out[y, x, ch] = np.uint8(min(max(blended, 0.0), 255.0))
