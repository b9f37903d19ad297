"""How much lip sync the audio features carry: a ridge regression from Whisper features to the
inner-lip gap, fitted on preprocessed GRID shards and scored on others as the proxy scores a
model (`tools/grid_motion_proxy.py`'s `gap`: correlation at the best lag within ±3 frames).

    .venv/bin/python tools/grid_ridge_probe.py --train grid/fit6 --val grid/val --context 3

(grid/fit6: the first 6 shards of `openvasa preprocess ../shared/grid/train/s1/*.mp4`, 300 clips.)

A linear readout of ±3 frames fitted on 300 clips of GRID speaker 1 reached 0.80 on val (the
shipped v5 network: 0.74) and 0.94 on held-back clips of speaker 1 (v5: 0.915): the gap says how
much the motion network still leaves in its inputs. GRID corpus: Cooke et al. 2006, CC BY 4.0.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(ROOT))


def windows(clips, context: int):
    """(frames, (2·context+1)·A) each frame's features with its neighbours', the (frames,) lip
    gap, and each clip's (start, end) rows."""
    import numpy as np

    from openvasa.motion.articulation import lip_gap

    features, gaps, spans, row = [], [], [], 0
    for i in range(len(clips.names)):
        a, b = clips.clip_starts[i], clips.clip_starts[i + 1]
        audio = clips.audio[a:b].astype(np.float32)
        padded = np.pad(audio, ((context, context), (0, 0)), mode="edge")
        features.append(
            np.concatenate([padded[j : j + len(audio)] for j in range(2 * context + 1)], 1)
        )
        gaps.append(lip_gap(clips.motion[a:b, 6:58]))
        spans.append((row, row + len(audio)))
        row += len(audio)
    return np.concatenate(features), np.concatenate(gaps), spans


def main() -> int:
    import numpy as np

    from openvasa.evaluation.lipsync import best_lag_correlation
    from openvasa.motion.diffusion.data import load_clips

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", nargs="+", required=True, help="shard folders to fit on")
    parser.add_argument("--val", nargs="+", required=True, help="shard folders to score")
    parser.add_argument("--context", type=int, default=3, help="frames each side")
    parser.add_argument("--ridge", type=float, default=1.0, help="penalty per training frame")
    args = parser.parse_args()

    x, y, _ = windows(load_clips(args.train), args.context)
    mean, scale = x.mean(0), x.std(0) + 1e-3
    x = (x - mean) / scale
    weights = np.linalg.solve(
        x.T @ x + args.ridge * len(x) * np.eye(x.shape[1]), x.T @ (y - y.mean())
    )
    val = load_clips(args.val)
    xv, yv, spans = windows(val, args.context)
    predicted = ((xv - mean) / scale) @ weights
    scores = [best_lag_correlation(predicted[a:b], yv[a:b])[0] for a, b in spans]
    groups: dict[str, list[float]] = {}
    for name, r in zip(val.names, scores, strict=True):
        groups.setdefault(str(name).split("/")[0] if "/" in str(name) else "all", []).append(r)
    text = "  ".join(f"{g} {np.mean(v):.3f}" for g, v in sorted(groups.items()))
    mean_r = float(np.mean(scores))
    print(f"ridge ±{args.context} frames, {len(x)} training frames: {text}  mean {mean_r:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
