"""Per-clip plots of the real and the generated mouth opening, from grid_val_table.py's JSON.

    .venv/bin/python tools/grid_mouth_plots.py new.json --compare old.json --label "v3" \
        --clips s26/bgbsza s31/bgix9s mixed/lbax4n --out docs

GRID corpus: Cooke et al. 2006, CC BY 4.0 (the real speaker's track in each plot is measured
from a GRID clip).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from openvasa.evaluation.lipsync import ClipLipSync, plot_mouths

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, help="lipsync JSON of the model to show")
    parser.add_argument("--compare", type=Path, help="lipsync JSON of another model")
    parser.add_argument("--label", default="other model", help="label of --compare")
    parser.add_argument("--clips", nargs="+", required=True, help="GROUP/NAME of each clip")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    def by_name(path):
        return {f"{c['group']}/{c['name']}": c for c in json.loads(path.read_text())["clips"]}

    results = by_name(args.results)
    other = by_name(args.compare) if args.compare else {}
    args.out.mkdir(parents=True, exist_ok=True)
    for key in args.clips:
        clip = ClipLipSync(**results[key])
        title = (
            f"GRID {key} (CC BY 4.0): generated r = {clip.correlation:.2f} at lag "
            f"{clip.lag_frames:+d}"
        )
        extra = {}
        if key in other:
            title += f"; {args.label} r = {other[key]['correlation']:.2f}"
            extra[f"generated, {args.label}"] = other[key]["generated_mouth"]
        path = args.out / f"grid_mouth_{key.replace('/', '_')}.png"
        plot_mouths(clip, path, title=title, others=extra)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
