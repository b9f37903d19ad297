"""Print the GRID lip-sync table: real speakers re-made from their first frame and voice.

    .venv/bin/python tools/grid_val_table.py                    # all 30 val clips
    .venv/bin/python tools/grid_val_table.py --clips 9          # 3 per speaker group (CI)
    .venv/bin/python tools/grid_val_table.py --split heldout    # 50 train clips never trained on

GRID audiovisual sentence corpus: Cooke, Barker, Cunningham and Shao (2006), J. Acoust. Soc.
Am. 120(5), 2421-2424; CC BY 4.0. The clips are read from ../shared/grid beside the repository
(or --grid); nothing of them is stored in the repository. `val/` holds speakers 26, 31 and ten
others, never trained on; `heldout` is the last 50 of train/s1 in `openvasa preprocess`'s
order (its last shard, `videos_0000_of_0001_0019.npz`), which the shipped model was not
trained on (see openvasa/weights/README.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# One BLAS thread: the face encoder's many small least-squares fits run several times slower
# when a thread per core spins for each of them on a busy machine.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
HELDOUT_CLIPS = 50


def val_clips(grid: Path, clips: int | None) -> list[Path]:
    groups = sorted(p for p in (grid / "val").iterdir() if p.is_dir())
    per_group = [sorted(g.glob("*.mp4")) for g in groups]
    if clips is None:
        return [v for g in per_group for v in g]
    # Evenly from each group: the first k of each, then one more from the first groups.
    chosen: list[Path] = []
    k = 0
    while len(chosen) < clips and any(k < len(g) for g in per_group):
        for g in per_group:
            if k < len(g) and len(chosen) < clips:
                chosen.append(g[k])
        k += 1
    return sorted(chosen)


def heldout_clips(grid: Path, clips: int | None) -> list[Path]:
    from openvasa.motion.diffusion.preprocess import my_share

    share = my_share([str(p) for p in (grid / "train" / "s1").glob("*.mp4")], 0, 1)
    return [Path(p) for p in share[-HELDOUT_CLIPS:][: clips or HELDOUT_CLIPS]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", type=Path, default=ROOT.parent / "shared" / "grid")
    parser.add_argument("--split", choices=("val", "heldout"), default="val")
    parser.add_argument("--clips", type=int, default=None, help="at most this many clips")
    parser.add_argument("--checkpoint", default=None, help="motion model (default: shipped)")
    parser.add_argument("--engine", default="diffusion")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cfg-audio", type=float, help="audio guidance (default: the engine's)")
    parser.add_argument(
        "--live", action="store_true", help="the motion of a live stream fed the voice"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    parser.add_argument("--summary", action="store_true", help="groups and mean only")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from openvasa.evaluation.lipsync import LipSyncEvaluator, LipSyncReport

    if not (args.grid / "val").is_dir():
        print(f"GRID clips not found in {args.grid}: pass --grid.", file=sys.stderr)
        return 2
    if args.split == "val":
        videos = val_clips(args.grid, args.clips)
    else:
        videos = heldout_clips(args.grid, args.clips)
    evaluator = LipSyncEvaluator(
        args.checkpoint, args.engine, args.seed, live=args.live, cfg_audio=args.cfg_audio
    )
    started = time.perf_counter()
    results = []
    for i, video in enumerate(videos, 1):
        results.append(evaluator.clip(video))
        print(
            f"[{i}/{len(videos)}] {video.parent.name}/{video.stem}: "
            f"r = {results[-1].correlation:.3f} ({time.perf_counter() - started:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    report = LipSyncReport(results)
    model = args.checkpoint or f"the shipped model ({args.engine})"
    model += ", live stream" if args.live else ""
    print(f"GRID {args.split}: {len(videos)} clips, motion from {model}, seed {args.seed}")
    print("(GRID corpus, Cooke et al. 2006, CC BY 4.0)\n")
    print(report.table(per_clip=not args.summary))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report.write(args.json.parent)
        written = args.json.parent / "lipsync.json"
        if written != args.json:
            written.replace(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
