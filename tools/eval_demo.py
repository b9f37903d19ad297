"""Evaluate openvasa on 5 clips generated from synthesized speech (the table of issue 6).

    python tools/eval_demo.py out/eval-demo [--size 512]

Writes the astronaut portrait (public domain, shipped with scikit-image), five eSpeak NG
sentences in four languages and a pairs.json beside them, then runs the suite (`openvasa eval
suite`): generation with stage timings, then every metric, table, CSV/JSON and plots.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image
from skimage import data

from openvasa.audio import save_wav, synthesize_speech
from openvasa.evaluation.suite import run_suite

CLIPS = (
    ("en_stars", "en", "f3", "Good morning. Today I will tell you about the stars, the moon "
     "and the long way home.", {}),
    ("en_training", "en", "m3", "We trained for many months. Every day, we learned something "
     "new, and every night we slept like stones.", {"gaze": [10, -5], "seed": 1}),
    ("de_reise", "de", None, "Guten Tag! Ich erzähle Ihnen heute von einer langen Reise "
     "über das Meer.", {"head_distance": 1.3, "seed": 2}),
    ("fr_musique", "fr", None, "Bonjour. La musique, pour moi, c'est la lumière du matin.",
     {"emotion": "happy", "seed": 3}),
    ("es_ciudad", "es", None, "Hola. Mi ciudad tiene calles estrechas, plazas llenas de sol "
     "y mucho ruido.", {"gaze": [-8, 4], "seed": 4}),
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    media = args.out / "media"
    media.mkdir(parents=True, exist_ok=True)
    Image.fromarray(data.astronaut()).save(media / "astronaut.png")
    entries = []
    for name, lang, variant, text, controls in CLIPS:
        save_wav(
            synthesize_speech(text, lang=lang, voice_variant=variant).audio, media / f"{name}.wav"
        )
        entries.append(
            {"portrait": "astronaut.png", "audio": f"{name}.wav", "name": name, **controls}
        )
    pairs = media / "pairs.json"
    pairs.write_text(json.dumps(entries, indent=1))
    report = run_suite(pairs, args.out, size=args.size)
    print(report.table())


if __name__ == "__main__":
    main()
