"""Render docs/emotions_diffusion.png and measure how the emotion presets differ.

The default engine (the motion diffusion transformer) animates the astronaut on the demo
speech once per emotion preset; the sheet shows four moments of each (rows: emotions). The
rendered frames are then read back with the face mesh and the latent-space encoder, and the
mean re-analysed blendshapes of each emotion are compared with neutral's, against how far two
seeds of the same emotion lie apart.

python tools/emotion_sheet.py [OUT.png]
"""

import sys
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from openvasa.audio import demo_speech
from openvasa.face.detect import default_analyzer
from openvasa.face.iris import IrisTracker
from openvasa.latent.face_latent import MotionEncoder
from openvasa.latent.motion import ARKIT_BLENDSHAPES
from openvasa.motion.emotion import EMOTIONS, emotion_offset
from openvasa.pipeline import Generator
from openvasa.settings import Controls

TILE = 256
SHOWN_S = (0.6, 1.8, 3.0, 4.2)  # moments shown per emotion
READ_EVERY = 3  # re-analyse every third frame


def reanalysed_blendshapes(generator, portrait, motion) -> np.ndarray:
    """(52,) mean blendshapes the face mesh reads from the rendered clip."""
    latent = portrait.latent
    encoder = MotionEncoder(latent.identity, latent.eyes, latent.framing, latent.basis)
    irises = IrisTracker(latent.image, latent.landmarks)
    rows = []
    for i in range(0, len(motion), READ_EVERY):
        frame = portrait.renderer.render(motion.frame(i)).copy()
        landmarks = default_analyzer().detect(frame).landmarks
        rows.append(encoder.encode(irises.refine(frame, landmarks)).blendshapes)
    return np.mean(rows, 0)


def main(out: Path) -> None:
    generator = Generator()
    portrait = generator.prepare_portrait(data.astronaut())
    speech = demo_speech().audio
    # Tiles show the face: the portrait's landmark box, widened by a third.
    box = portrait.latent.landmarks[:, :2]
    centre, half = box.mean(0), 0.67 * (box.max(0) - box.min(0)).max()
    (x0, y0), (x1, y1) = np.round(centre - half).astype(int), np.round(centre + half).astype(int)
    tiles, means = [], {}
    for emotion in EMOTIONS:
        for seed in (0, 1):
            controls = Controls(emotion=emotion, seed=seed)
            motion = generator.motion(portrait, speech, controls)
            means[emotion, seed] = reanalysed_blendshapes(generator, portrait, motion)
            if seed:
                continue
            for t in SHOWN_S:
                frame = portrait.renderer.render(motion.frame(int(t * motion.fps))).copy()
                face = frame[max(y0, 0) : y1, max(x0, 0) : x1]
                tile = cv2.resize(face, (TILE, TILE), interpolation=cv2.INTER_AREA)
                cv2.rectangle(tile, (0, 0), (TILE, 22), (0, 0, 0), -1)
                label = f"{emotion}  t={t:.1f}s"
                cv2.putText(tile, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
                tiles.append(tile)
    columns = len(SHOWN_S)
    rows = [np.concatenate(tiles[i : i + columns], 1) for i in range(0, len(tiles), columns)]
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))
    print(f"wrote {out}")

    print("\nre-analysed mean blendshapes, emotion minus neutral (seed 0), preset's shapes:")
    for emotion in EMOTIONS[1:]:
        preset = np.nonzero(emotion_offset(emotion))[0]
        shift = means[emotion, 0] - means["neutral", 0]
        named = ", ".join(f"{ARKIT_BLENDSHAPES[j]} {shift[j]:+.2f}" for j in preset)
        print(f"  {emotion:10s} {named}")
    seeds = np.mean([np.linalg.norm(means[e, 0] - means[e, 1]) for e in EMOTIONS])
    print(f"\nmean distance between two seeds of one emotion: {seeds:.3f}")
    for emotion in EMOTIONS[1:]:
        apart = np.linalg.norm(means[emotion, 0] - means["neutral", 0])
        print(f"  {emotion:10s} from neutral: {apart:.3f} ({apart / seeds:.1f}× the seed distance)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/emotions_diffusion.png"))
