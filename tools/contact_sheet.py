"""Render the contact sheets under docs/.

python tools/contact_sheet.py [OUT.png]          the astronaut under each control
python tools/contact_sheet.py --mouths [OUT.png]  portrait | closed | open, for the astronaut,
    grace_hopper.jpg, a painting-like image, a greyscale photo and GRID frames taken mid-speech
    (GRID corpus, Cooke et al. 2006, CC BY 4.0; read from ../shared/grid when it is there)
"""

import sys
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from openvasa.latent.motion import BLENDSHAPE_INDEX
from openvasa.pipeline import Generator

TILE = 320
GRID = Path(__file__).resolve().parents[1].parent / "shared" / "grid"
# Training-speaker clips whose most open frame makes a mid-speech portrait (train/, not val/).
GRID_CLIPS = ("train/s1/bwbg8n.mp4", "train/s1/pbav2n.mp4")
GRID_CREDIT = "GRID corpus (Cooke, Barker, Cunningham, Shao 2006), CC BY 4.0"


def _label(image: np.ndarray, label: str, width: int = TILE) -> np.ndarray:
    height = int(round(image.shape[0] * width / image.shape[1]))
    tile = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    cv2.rectangle(tile, (0, 0), (width, 26), (0, 0, 0), -1)
    cv2.putText(
        tile, label, (8, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA
    )
    return tile


def controls_sheet(out: Path) -> None:
    generator = Generator()
    portrait = generator.prepare_portrait(data.astronaut())
    latent = portrait.latent

    def frame(pose=None, gaze=None, distance=None, rest=False, **weights):
        target = portrait
        if distance is not None:
            target = generator.prepare_portrait(data.astronaut(), head_distance=distance)
        motion = target.latent.motion0
        if rest:  # the photo's own expression taken out: every blendshape at 0
            motion.blendshapes[:] = 0.0
        for name, value in weights.items():
            motion.blendshapes[BLENDSHAPE_INDEX[name]] = value
        for axis, value in (pose or {}).items():
            motion.pose[axis] = value
        if gaze is not None:
            motion.gaze[:] = gaze
        return target.renderer.render(motion).copy()

    shots = [
        ("photo", latent.image),
        ("at rest (blendshapes 0)", frame(rest=True)),
        ("jawOpen 0.5", frame(rest=True, jawOpen=0.5)),
        ("blink", frame(eyeBlinkLeft=1.0, eyeBlinkRight=1.0)),
        ("yaw -20", frame(pose={0: -20.0})),
        ("yaw +20", frame(pose={0: 20.0})),
        ("pitch +15", frame(pose={1: 15.0})),
        ("pitch -15", frame(pose={1: -15.0})),
        ("gaze left 15", frame(gaze=(-15.0, 0.0))),
        ("gaze right 15", frame(gaze=(15.0, 0.0))),
        ("head distance 0.8", frame(distance=0.8)),
        ("head distance 1.25", frame(distance=1.25)),
    ]
    tiles = [_label(image, label) for label, image in shots]
    rows = [np.concatenate(tiles[i : i + 4], 1) for i in range(0, len(tiles), 4)]
    _write(np.concatenate(rows, 0), out)


def _grid_open_frame(path: Path, analyzer) -> np.ndarray:
    """The most open-mouthed frame of a GRID clip (inner-lip gap over face width)."""
    import av

    from openvasa.latent import topology as topo

    best, best_gap = None, -1.0
    analyzer.reset_tracking()
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            found = analyzer.detect_video_frame(rgb)
            if found is None:
                continue
            points = found.landmarks
            upper = points[list(topo.LIPS_INNER_UPPER[2:-2]), 1]
            lower = points[list(topo.LIPS_INNER_LOWER[2:-2]), 1]
            gap = float(np.mean(lower - upper)) / found.face_width_px
            if gap > best_gap:
                best, best_gap = rgb, gap
    return best


def _mouth_crop(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The lower face around the mouth: half a face width each way."""
    width = np.linalg.norm(landmarks[234, :2] - landmarks[454, :2])
    centre = landmarks[[61, 291, 0, 17], :2].mean(0)
    x0, y0 = (centre - 0.55 * width).astype(int)
    x1, y1 = (centre + 0.55 * width).astype(int)
    padded = cv2.copyMakeBorder(image, 200, 200, 200, 200, cv2.BORDER_CONSTANT)
    return padded[y0 + 200 : y1 + 200, x0 + 200 : x1 + 200]


def mouths_sheet(out: Path) -> None:
    from matplotlib import cbook
    from PIL import Image

    from openvasa.face.detect import default_analyzer

    generator = Generator()
    astronaut = data.astronaut()
    with cbook.get_sample_data("grace_hopper.jpg") as file:
        hopper = np.asarray(Image.open(file).convert("RGB"))
    portraits = [
        ("astronaut", astronaut),
        ("grace_hopper.jpg", hopper),
        ("painting-like (oil filter)", cv2.xphoto.oilPainting(astronaut, 4, 1)),
        ("greyscale", np.repeat(cv2.cvtColor(hopper, cv2.COLOR_RGB2GRAY)[..., None], 3, 2)),
    ]
    credit = False
    if GRID.is_dir():
        for clip in GRID_CLIPS:
            if (GRID / clip).exists():
                frame = _grid_open_frame(GRID / clip, default_analyzer())
                portraits.append((f"GRID {Path(clip).stem}, mid-speech", frame))
                credit = True
    rows = []
    for name, photo in portraits:
        prepared = generator.prepare_portrait(np.ascontiguousarray(photo))
        latent = prepared.latent
        closed = latent.motion0
        closed.blendshapes[:] = 0.0
        opened = latent.motion0
        opened.blendshapes[:] = 0.0
        opened.blendshapes[BLENDSHAPE_INDEX["jawOpen"]] = 0.6
        shots = [
            (name, latent.image),
            ("closed (blendshapes 0)", prepared.renderer.render(closed).copy()),
            ("open (jawOpen 0.6)", prepared.renderer.render(opened).copy()),
        ]
        full = [_label(image, label, 300) for label, image in shots]
        zoom = [_label(_mouth_crop(image, latent.landmarks), "mouth", 200) for _, image in shots]
        height = max(t.shape[0] for t in full + zoom)
        row = [
            cv2.copyMakeBorder(t, 0, height - t.shape[0], 0, 0, cv2.BORDER_CONSTANT)
            for pair in zip(full, zoom, strict=True)
            for t in pair
        ]
        rows.append(np.concatenate(row, 1))
    sheet = np.concatenate(rows, 0)
    if credit:
        footer = np.zeros((28, sheet.shape[1], 3), np.uint8)
        cv2.putText(
            footer, GRID_CREDIT, (8, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1,
            cv2.LINE_AA,
        )  # fmt: skip
        sheet = np.concatenate([sheet, footer], 0)
    _write(sheet, out)


def _write(sheet: np.ndarray, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".part" + out.suffix)
    cv2.imwrite(str(tmp), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--mouths":
        mouths_sheet(Path(args[1]) if len(args) > 1 else Path("docs/contact_sheet_mouths.png"))
    else:
        controls_sheet(Path(args[0]) if args else Path("docs/contact_sheet.png"))
