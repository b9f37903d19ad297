"""Control accuracy of the default engine: requested gaze and head distance, rendered and read back.

    python tools/control_accuracy.py out/controls [--size 512]

Generates the astronaut (public domain, shipped with scikit-image) speaking eSpeak NG
sentences under a range of gaze directions and head distances with `openvasa eval suite`, then
reads every video back with the face mesh (gaze against the framed portrait's eye model) and
prints requested against measured: the clip's median gaze, and its median head distance.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from openvasa.audio import save_wav, synthesize_speech
from openvasa.evaluation.suite import run_suite

SENTENCES = (
    ("en", "f2", "Look over there: the boats are coming back before the storm."),
    ("it", None, "Il tempo passa piano quando aspetti qualcuno alla stazione."),
)
GAZES = ((-15, 0), (15, 0), (0, -10), (0, 10), (10, 6), (-8, -5))
DISTANCES = (0.7, 0.8, 1.25, 1.6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    media = args.out / "media"
    media.mkdir(parents=True, exist_ok=True)
    Image.fromarray(data.astronaut()).save(media / "astronaut.png")
    for i, (lang, variant, text) in enumerate(SENTENCES):
        clip = synthesize_speech(text, lang=lang, voice_variant=variant).audio
        save_wav(clip, media / f"speech{i}.wav")
    entries = []
    for j, gaze in enumerate(GAZES):
        entries.append(
            {
                "portrait": "astronaut.png",
                "audio": f"speech{j % len(SENTENCES)}.wav",
                "gaze": list(gaze),
                "seed": j,
                "name": f"gaze_{gaze[0]:+d}_{gaze[1]:+d}",
            }
        )
    for j, distance in enumerate(DISTANCES):
        entries.append(
            {
                "portrait": "astronaut.png",
                "audio": f"speech{j % len(SENTENCES)}.wav",
                "head_distance": distance,
                "seed": 10 + j,
                "name": f"distance_{distance:g}",
            }
        )
    pairs = media / "pairs.json"
    pairs.write_text(json.dumps(entries, indent=1))
    report = run_suite(pairs, args.out, size=args.size, plots=False)
    rows = {metrics.name: metrics for group, metrics in report.rows if group == "generated"}
    print("\nclip              requested        measured (median)  error")
    gaze_errors, distance_errors = [], []
    for entry in entries:
        metrics = rows[entry["name"]]
        if "gaze" in entry:
            error = metrics.gaze_median_error_deg
            gaze_errors.append(error)
            print(f"{entry['name']:16s}  gaze {entry['gaze']!s:12s}              {error:5.2f}°")
        else:
            want = entry["head_distance"]
            error = metrics.head_distance_error / want
            distance_errors.append(error)
            print(f"{entry['name']:16s}  distance {want:<5g}  (error {100 * error:4.1f}%)")
    worst = max(gaze_errors)
    print(f"\ngaze: median-gaze error mean {np.mean(gaze_errors):.2f}°, max {worst:.2f}°")
    print(
        f"head distance: error mean {100 * np.mean(distance_errors):.1f}%, "
        f"max {100 * max(distance_errors):.1f}%"
    )


if __name__ == "__main__":
    main()
