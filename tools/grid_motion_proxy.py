"""A quick lip-sync figure for choosing training settings: the motion model's jawOpen against
the jawOpen tracked from the real speaker, on preprocessed shards (`openvasa preprocess`).

    .venv/bin/python tools/grid_motion_proxy.py --shards /work/data/grid/val \
        --checkpoint runs/a/last.pt runs/b/last.pt
    .venv/bin/python tools/grid_motion_proxy.py --shards /work/data/grid/val --live \
        --checkpoint runs/distill/last.pt          # live students, fed each clip's voice

No video is rendered or tracked (about 0.1 s a clip, where tools/grid_val_table.py takes
about 10 s): the figure ranks checkpoints; the table of record is grid_val_table.py's.
Prints, per checkpoint, the jawOpen correlation at the best lag within ±3 frames (mean over
clips, per speaker group), the mean lag, `gap`: the same correlation for the gap between the
inner lips that the blendshapes make on the reference face (jawOpen less mouthClose, funnel,
lips up and down…: what the rendered table tracks), and `lips`: how far the lips move apart
(mouthLowerDown + mouthUpperUp) against the real speaker's, median ratio of spreads. With
--live the checkpoints are live students, each clip's voice (kept in its shard) fed to a live
stream of the shipped model. GRID corpus: Cooke et al. 2006, CC BY 4.0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# One BLAS thread: the face encoder's many small least-squares fits run several times slower
# when a thread per core spins for each of them on a busy machine.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
sys.path.insert(0, str(ROOT))


LIP_CHANNELS = (
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
)


def proxy(
    checkpoint: str | None,
    shards: list[str],
    seed: int = 0,
    live: bool = False,
    cfg_audio: float | None = None,
    steps: int | None = None,
) -> dict:
    import numpy as np
    import torch

    from openvasa.evaluation.lipsync import best_lag_correlation
    from openvasa.latent.motion import BLENDSHAPE_INDEX, MotionFrame
    from openvasa.motion.articulation import lip_gap
    from openvasa.motion.diffusion.data import from_int16, load_clips
    from openvasa.motion.diffusion.engine import DiffusionEngine, DiffusionSettings
    from openvasa.motion.diffusion.sampler import Guidance
    from openvasa.settings import Controls, DiffusionOptions

    options = DiffusionOptions()
    if cfg_audio is not None or steps is not None:
        options = DiffusionOptions(
            steps=steps or options.steps,
            cfg_audio=options.cfg_audio if cfg_audio is None else cfg_audio,
        )
    guidance = Guidance(audio=options.cfg_audio, gaze=options.cfg_gaze, emotion=options.cfg_emotion)
    torch.set_num_threads(1)
    settings = DiffusionSettings(options.steps, guidance=guidance)
    if live:
        engine = DiffusionEngine(None, settings, live_checkpoint=checkpoint)
    else:
        engine = DiffusionEngine(checkpoint, settings)
    clips = load_clips(shards)
    jaw = 6 + BLENDSHAPE_INDEX["jawOpen"]
    lips = [6 + BLENDSHAPE_INDEX[n] for n in LIP_CHANNELS]
    per_clip = {}
    for i, name in enumerate(clips.names):
        a, b = clips.clip_starts[i], clips.clip_starts[i + 1]
        controls = Controls(seed=seed)
        if live:
            voice = clips.voices[i]
            if voice is None:
                raise SystemExit(f"{name}: its shard keeps no voice; preprocess it again.")
            stream = engine.open(clips.fps, MotionFrame.neutral(), controls)
            parts = [stream.push(from_int16(voice)), stream.end()]
            made = np.concatenate([np.concatenate([p.pose, p.blendshapes], 1) for p in parts])
        else:
            features = clips.audio[a:b].astype(np.float32)
            motion = engine.generate_from_features(features, MotionFrame.neutral(), controls)
            made = np.concatenate([motion.pose, motion.blendshapes], 1)
        real = clips.motion[a:b]
        n = min(len(made), len(real))
        r, lag, _ = best_lag_correlation(made[:n, jaw], real[:n, jaw])
        gap_r, _, _ = best_lag_correlation(lip_gap(made[:n, 6:58]), lip_gap(real[:n, 6:58]))
        spread = made[:n, lips].sum(1).std() / max(real[:n, lips].sum(1).std(), 1e-6)
        per_clip[str(name)] = (r, lag, spread, gap_r)
    groups: dict[str, list] = {}
    for name, value in per_clip.items():
        groups.setdefault(name.split("/")[0] if "/" in name else "all", []).append(value)
    summary = {g: float(np.nanmean([v[0] for v in vs])) for g, vs in sorted(groups.items())}
    summary["mean"] = float(np.nanmean([v[0] for v in per_clip.values()]))
    summary["lag"] = float(np.mean([v[1] for v in per_clip.values()]))
    summary["gap"] = float(np.nanmean([v[3] for v in per_clip.values()]))
    summary["lips"] = float(np.median([v[2] for v in per_clip.values()]))
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shards", nargs="+", required=True)
    parser.add_argument("--checkpoint", nargs="+", default=[None])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="append one JSON line per checkpoint")
    parser.add_argument("--live", action="store_true", help="checkpoints are live students")
    parser.add_argument("--cfg-audio", type=float, help="audio guidance (default: the engine's)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: the engine's)")
    args = parser.parse_args()
    for checkpoint in args.checkpoint:
        summary = proxy(checkpoint, args.shards, args.seed, args.live, args.cfg_audio, args.steps)
        text = "  ".join(
            f"{k} {v:+.3f}" if k == "lag" else f"{k} {v:.3f}" for k, v in summary.items()
        )
        label = checkpoint or ("the shipped student" if args.live else "shipped")
        print(f"{label}: {text}", flush=True)
        if args.json:
            with open(args.json, "a") as out:
                out.write(json.dumps({"checkpoint": checkpoint, **summary}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
