"""Render docs/contact_sheet.png: the astronaut portrait under each control, labelled.

python tools/contact_sheet.py [OUT.png]
"""

import sys
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from openvasa.latent.motion import BLENDSHAPE_INDEX
from openvasa.pipeline import Generator

TILE = 320


def main(out: Path) -> None:
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
    tiles = []
    for label, image in shots:
        tile = cv2.resize(image, (TILE, TILE), interpolation=cv2.INTER_AREA)
        cv2.rectangle(tile, (0, 0), (TILE, 26), (0, 0, 0), -1)
        cv2.putText(
            tile, label, (8, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA
        )
        tiles.append(tile)
    rows = [np.concatenate(tiles[i : i + 4], 1) for i in range(0, len(tiles), 4)]
    sheet = np.concatenate(rows, 0)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/contact_sheet.png"))
