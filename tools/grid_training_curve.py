"""Plot GRID val lip sync against training steps for fine-tuning runs.

    .venv/bin/python tools/grid_training_curve.py RUN_DIR… --out docs/grid_training_curve.png

Each RUN_DIR holds proxy_val.jsonl (EMA weights) and proxy_val_raw.jsonl (raw weights), one
line per checkpoint as tools/grid_motion_proxy.py writes it (checkpoints named step<N>.pt);
the shipped model before fine-tuning is step 0 (`--base FIGURE`). Labels come from each
run's train_config. GRID corpus: Cooke et al. 2006, CC BY 4.0.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--base", type=float, help="the shipped model's figure (step 0)")
    parser.add_argument(
        "--figure",
        choices=("gap", "mean"),
        default="gap",
        help="gap: the inner-lip gap's correlation (what the rendered table tracks); "
        "mean: jawOpen's",
    )
    parser.add_argument("--from-model", default="v3", help="what the runs were fine-tuned from")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    for index, run in enumerate(args.runs):
        config = torch.load(run / "last.pt", map_location="cpu", weights_only=False)["train_config"]
        label = (
            f"{run.name}: real share {config['real_fraction']}, "
            f"mouth weight {config['mouth_weight']:g}, "
            f"lip-gap weight {config.get('lip_gap_weight', 0.0):g}"
        )
        # The shipped model's figure is step 0 of a run from the start, not of a resumed leg.
        log = run / "log.jsonl"
        first_step = json.loads(log.read_text().splitlines()[0])["step"] if log.is_file() else 0
        from_start = args.base is not None and first_step <= config.get("log_every", 50)
        for file, style, kind in (
            ("proxy_val_raw.jsonl", "-", "raw"),
            ("proxy_val.jsonl", ":", "EMA"),
        ):
            if not (run / file).is_file():
                continue
            lines = [json.loads(x) for x in (run / file).read_text().splitlines()]
            points = sorted(
                {
                    int(re.search(r"step(\d+)", line["checkpoint"]).group(1)): line[args.figure]
                    for line in lines
                }.items()
            )
            if from_start:
                points.insert(0, (0, args.base))
            ax.plot(
                *zip(*points, strict=True),
                style,
                marker="o",
                color=f"C{index}",
                label=f"{label} ({kind} weights)",
            )
    ax.set_xlabel(f"fine-tuning steps (batch 32) from {args.from_model}")
    what = "inner-lip gap" if args.figure == "gap" else "jawOpen"
    ax.set_ylabel(f"val: model vs tracked {what}, r", fontsize=8)
    ax.set_title("Fine-tuned on GRID s1 + the synthetic corpus; val speakers unseen", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="upper left")
    fig.text(0.01, 0.01, "GRID corpus (Cooke et al. 2006), CC BY 4.0", fontsize=6, color="gray")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.stem}.tmp.png")
    fig.savefig(tmp)
    tmp.replace(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
