"""The renderer's two per-frame kernels, compiled with Numba.

`rasterize` draws the moved mesh into per-pixel attribute maps (where each output pixel comes
from in the appearance image, plus mouth coordinates) with a depth test; `composite` samples
the appearance through those maps, paints the mouth interior and the irises, and lays the
moved person over the still background.
"""

import numpy as np
from numba import njit, prange

SURFACE, MOUTH, EYE_RIGHT, EYE_LEFT = 0, 1, 2, 3
# Lip gap (output pixels) below which the mouth interior fades to a closed seam: gone at this
# gap, fully shown at twice it.
LIP_SEAM_PX = 1.0


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


@njit(inline="always")
def _blend(image, y0, x0, channel, w00, w01, w10, w11):
    """The four pixels from (y0, x0) of image[..., channel], weighted (bilinear taps)."""
    return (
        w00 * image[y0, x0, channel]
        + w01 * image[y0, x0 + 1, channel]
        + w10 * image[y0 + 1, x0, channel]
        + w11 * image[y0 + 1, x0 + 1, channel]
    )


@njit(inline="always")
def _smoothstep(edge0, edge1, x):
    t = min(max((x - edge0) / (edge1 - edge0), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


@njit(inline="always")
def _grain(x, y):
    """Fixed per-pixel noise in [-1, 1] (a hash of the pixel's position)."""
    h = np.sin(x * 12.9898 + y * 78.233) * 43758.5453
    return 2.0 * (h - np.floor(h)) - 1.0


@njit(inline="always")
def _mouth_colour(u, v, gap, x, y, mouth, channel):
    """Colour of the mouth interior at mouth coordinates (u across, v from upper to lower lip).

    mouth: [face_width_px, tooth_width_px, teeth (3), cavity (3), tongue (3), seam (3),
    edge_px, grain]. Every boundary (tooth tips, the lower teeth, the tongue) is a ramp of
    edge_px (scaled with the face), and the paint carries the skin's grain.
    """
    face_width = mouth[0]
    soft = mouth[14]
    across = abs(2.0 * u - 1.0)
    # Teeth are tallest in front and hide behind the cheeks towards the corners.
    front = max(0.0, 1.0 - across * across) ** 1.5
    from_upper = v * gap
    from_lower = (1.0 - v) * gap
    # Deeper in the mouth and towards its corners less light reaches.
    depth_shade = 1.0 - across**3
    cavity_colour = mouth[5 + channel]
    teeth_colour = mouth[2 + channel]
    # The cavity: darkest at the back, in the middle of the opening.
    middle = 1.0 - 0.3 * np.sin(np.pi * min(max(v, 0.0), 1.0))
    colour = cavity_colour * (0.6 + 0.4 * depth_shade) * middle
    # The tongue fills the bottom middle of an open mouth, in shadow under the teeth.
    tongue = _smoothstep(0.55, 0.8, v) * _smoothstep(0.8, 0.55, across)
    colour += (mouth[8 + channel] * depth_shade * 0.8 - colour) * tongue
    # Each tooth: a soft dark seam between neighbours and a rounded tip.
    phase = (x / mouth[1]) % 1.0
    side = 2.0 * phase - 1.0
    seam = np.exp(-(((1.0 - abs(side)) / 0.09) ** 2))
    # Lower teeth: their tops, in the lower lip's shadow, once the jaw has dropped.
    lower_teeth = 0.02 * face_width * front * (1.0 - 0.15 * side * side)
    shown = _smoothstep(0.06 * face_width, 0.09 * face_width, gap) * _smoothstep(0.6, 0.35, across)
    cover = (1.0 - _smoothstep(lower_teeth - soft, lower_teeth + soft, from_lower)) * shown
    light = 0.45 * depth_shade * (0.7 + 0.3 * _smoothstep(0.0, 0.01 * face_width, from_lower))
    lower = cavity_colour + (teeth_colour - cavity_colour) * light * (1.0 - 0.25 * seam)
    colour += (lower - colour) * cover
    # Upper teeth: lit from the front, shaded under the lip, their tips a little translucent.
    upper_teeth = 0.045 * face_width * front * (1.0 - 0.12 * side * side)
    cover = 1.0 - _smoothstep(upper_teeth - soft, upper_teeth + soft, from_upper)
    cover *= _smoothstep(0.92, 0.7, across)  # the side teeth turn away into the dark
    light = depth_shade * (0.75 + 0.25 * _smoothstep(0.0, 0.01 * face_width, from_upper))
    light *= 1.0 - 0.12 * _smoothstep(0.5, 1.0, from_upper / max(upper_teeth, 1e-6))
    light *= 1.0 - 0.3 * seam
    upper = cavity_colour + (teeth_colour - cavity_colour) * light
    colour += (upper - colour) * cover
    return colour + mouth[15] * _grain(x, y)


@njit(cache=True, parallel=True, nogil=True)
def composite(
    mask,
    eyeball,
    plate,
    tex_map,
    mouth_map,
    label,
    drawn,
    mouth,
    mouth_synth,
    irises,
    iris_patches,
    lashes,
    image_u8,
    out,
):
    """Sample and shade every output pixel into `out` (H, W, 3) uint8.

    eyeball, plate: (H, W, 3) float32 appearance without irises, still background; mask:
    (H, W, 1) float32 person mask; drawn: (H, W) bool, pixels the mesh
    moved; mouth: shading constants (see _mouth_colour); mouth_synth: 0 shows the photo's own
    mouth interior, 1 the painted one; irises: (2, 5) [x, y, radius_px, patch_scale, shown]
    per eye (right, left), shown in [0, 1] fading a nearly shut eye to its lash colour
    (lashes: (2, 3) float32); iris_patches: (2, P, P, 4) RGBA float32 centred on the photo's
    irises; image_u8: the appearance (H, W, 3) uint8, sampled as it is (a quarter of the
    memory traffic of a float copy, for the same values) and copied where nothing moved.
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
            alpha = _blend(mask, y0, x0, 0, w00, w01, w10, w11)
            if lab == SURFACE and alpha >= 0.999:
                # Most pixels: skin, hair or clothes well inside the person, only sampled
                # (the same values as the general path below, in 60 % of its time).
                for ch in range(3):
                    value = _blend(image_u8, y0, x0, ch, w00, w01, w10, w11)
                    out[y, x, ch] = np.uint8(min(max(value + 0.5, 0.0), 255.0))
                continue
            eye = lab == EYE_RIGHT or lab == EYE_LEFT
            for ch in range(3):
                if eye:
                    shown = irises[lab - EYE_RIGHT, 4]
                    value = _blend(eyeball, y0, x0, ch, w00, w01, w10, w11) * shown
                    value += lashes[lab - EYE_RIGHT, ch] * (1.0 - shown)
                else:
                    value = _blend(image_u8, y0, x0, ch, w00, w01, w10, w11)
                if lab == MOUTH and mouth_synth > 0.0:
                    v, gap = mouth_map[y, x, 1], mouth_map[y, x, 2]
                    painted = _mouth_colour(mouth_map[y, x, 0], v, gap, x, y, mouth, ch)
                    # The paint fades into the lips' own edge over a pixel or two: no
                    # stair-stepped outline where the interior meets the lips.
                    edge = _smoothstep(0.0, 0.75 * mouth[14], min(v, 1.0 - v) * gap)
                    painted = value + (painted - value) * edge
                    value = value * (1.0 - mouth_synth) + painted * mouth_synth
                if lab == MOUTH:
                    # Lips a pixel or two apart meet in a dark seam, not a squeezed strip
                    # of the photo's teeth (which the face mesh reads as a parted mouth).
                    parted = min(max((mouth_map[y, x, 2] - LIP_SEAM_PX) / LIP_SEAM_PX, 0.0), 1.0)
                    value = value * parted + mouth[11 + ch] * (1.0 - parted)
                if alpha < 0.999:
                    # Matting: replace the background that moved with the background that stays.
                    moved_plate = _blend(plate, y0, x0, ch, w00, w01, w10, w11)
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
