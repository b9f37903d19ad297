"""Training the motion generator: one process on a CPU, or many GPUs/nodes with torchrun.

    openvasa train motion --data DIR --out runs/motion           # one process
    torchrun --nproc_per_node 8 -m openvasa.cli train motion --data DIR --out runs/motion

Each rank draws its own random windows; DDP averages the gradients so all ranks hold the same
weights. Rank 0 writes checkpoints (with EMA weights, the typed configs and the data
statistics) and logs (JSON lines, and TensorBoard when it is installed). Training resumes
from `OUT/last.pt` when it exists.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from openvasa.errors import OpenvasaError
from openvasa.latent.motion import ARKIT_BLENDSHAPES
from openvasa.motion.diffusion.checkpoint import (
    default_checkpoint,
    load_checkpoint,
    load_weights,
)
from openvasa.motion.diffusion.data import MotionClips, WindowSampler, load_clips
from openvasa.motion.diffusion.model import CONDITIONS, ModelConfig, MotionDiffusionTransformer
from openvasa.motion.diffusion.sampler import corrupt

CHECKPOINT_VERSION = 1

# Motion columns [pose 6, blendshapes 52, gaze 2] by what they move.
_N_POSE = 6
HEAD_AND_EYE_DIMS = [
    *range(_N_POSE),
    *(_N_POSE + i for i, name in enumerate(ARKIT_BLENDSHAPES) if name.startswith("eye")),
    _N_POSE + len(ARKIT_BLENDSHAPES),
    _N_POSE + len(ARKIT_BLENDSHAPES) + 1,
]
MOUTH_DIMS = [
    _N_POSE + i for i, name in enumerate(ARKIT_BLENDSHAPES) if name.startswith(("jaw", "mouth"))
]


@dataclass
class TrainConfig:
    """Settings of one training run."""

    data: str | list[str] = "corpus"  # folder(s) of *.npz shards, joined
    out: str = "runs/motion"  # checkpoints and logs
    steps: int = 20_000
    batch: int = 64  # windows per step per rank
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 500
    ema: float = 0.999
    velocity_weight: float = 1.0  # extra loss on frame-to-frame motion, against jitter
    drop_condition: float = 0.1  # each of audio, gaze, distance, emotion (VASA-1: 0.1)
    drop_context: float = 0.5  # previous-window context (VASA-1: 0.5)
    drop_audio_tail: float = 0.1  # chance to blank a random tail of the window's audio
    seed: int = 0
    log_every: int = 50
    save_every: int = 1000
    init: str | None = None  # checkpoint to fine-tune from (personal style)
    real_fraction: float | None = None  # share of windows from real clips (None: by frames)
    # Loss weight of head pose, eyes (blinks, eye looks) and gaze on real clips: 0 keeps
    # them from the synthetic corpus (GRID's readers hold still and look at a script).
    real_head_weight: float = 1.0
    mouth_weight: float = 1.0  # loss weight of the jaw and mouth blendshapes, all clips
    # Loss weight of the gap between the inner lips (linear in the blendshapes: jawOpen less
    # mouthClose, funnel, the lips' own moves), in units of its spread over the data. What a
    # viewer and the face tracker see is this gap, not any one blendshape: a jaw that opens
    # while mouthClose holds the lips shut is right for /p b m/.
    lip_gap_weight: float = 0.0
    # The same on synthetic clips when set: below mouth_weight, the mouth learns more from
    # real faces while the corpus still teaches head, eyes and other voices.
    synthetic_mouth_weight: float | None = None
    keep_checkpoints: bool = False  # also keep OUT/step<N>.pt at every save (for curves)
    # Live streams (DiffusionMotionStream) make short windows that hear only their first few
    # frames' audio: this share of steps trains that case, windows of `live_window` frames
    # with the audio of the first 1…`live_known` frames, the rest blank.
    live_fraction: float = 0.0
    live_window: int = 14
    live_known: int = 8
    model: ModelConfig = field(default_factory=ModelConfig)


def _distributed() -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def loss_weights(
    config: TrainConfig, clips: MotionClips, std: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension loss weights (D,) of synthetic and of real clips; `std` is the motion's
    normalisation."""
    synthetic = np.ones(len(std), np.float32)
    synthetic[MOUTH_DIMS] = config.mouth_weight
    real = synthetic.copy()
    real[HEAD_AND_EYE_DIMS] = config.real_head_weight
    if config.synthetic_mouth_weight is not None:
        synthetic[MOUTH_DIMS] = config.synthetic_mouth_weight
    if clips.real.any():
        # Real faces move dimensions that the teacher hardly moves (jawForward, mouthDimple…):
        # in the teacher's units their errors would swamp the rest. On real clips each
        # dimension's error counts in the real data's own spread where that is the wider.
        frames = np.repeat(clips.real, np.diff(clips.clip_starts))
        real_std = np.maximum(clips.motion[frames].std(0), 1e-6)
        real *= np.minimum(1.0, (std / real_std) ** 2).astype(np.float32)
    return synthetic, real


def lip_gap_direction(clips: MotionClips, std: np.ndarray) -> np.ndarray:
    """(D,) weights that turn a normalised motion error into the lip gap's error, in units of
    the gap's spread over `clips` (`std`: the motion's normalisation)."""
    from openvasa.motion.articulation import lip_gap_per_unit

    blendshapes = slice(_N_POSE, _N_POSE + len(ARKIT_BLENDSHAPES))
    per_unit = lip_gap_per_unit()
    spread = max(float((clips.motion[:, blendshapes] @ per_unit).std()), 1e-6)
    direction = np.zeros(len(std), np.float32)
    direction[blendshapes] = per_unit * std[blendshapes] / spread
    return direction


def lip_gap_loss(error: torch.Tensor, direction: torch.Tensor, velocity_weight: float):
    """Mean squared lip-gap error of a (B, T, D) normalised motion error (`lip_gap_direction`),
    plus `velocity_weight` times that of its frame-to-frame change."""
    gap_error = error @ direction
    return (gap_error**2).mean() + velocity_weight * (gap_error.diff(dim=1) ** 2).mean()


def train(config: TrainConfig, progress: bool = True) -> Path:
    """Train (or resume, or fine-tune) and return the path of the final checkpoint."""
    rank, world, device = _distributed()
    torch.manual_seed(config.seed)
    out = Path(config.out)
    clips = load_clips(config.data)
    for what, values in (("motion", clips.motion), ("audio features", clips.audio)):
        if not np.isfinite(values).all():
            raise OpenvasaError(f"The training data in {config.data} has non-finite {what}.")
    init = load_checkpoint(config.init) if config.init else None
    model_config = ModelConfig(**init["model_config"]) if init else config.model
    model_config.audio_dim = clips.audio.shape[1]
    if init and config.model.audio_skip and not model_config.audio_skip:
        model_config.audio_skip = config.model.audio_skip  # added to the model fine-tuned
    if init:
        mean, std = (
            np.asarray(init["stats"][k], np.float32) for k in ("motion_mean", "motion_std")
        )
        audio_mean, audio_std = (
            np.asarray(init["stats"][k], np.float32) for k in ("audio_mean", "audio_std")
        )
    else:
        mean, std = clips.stats()
        audio = clips.audio.astype(np.float32)
        audio_mean, audio_std = audio.mean(0), np.maximum(audio.std(0), 1e-3)
    model = MotionDiffusionTransformer(model_config).to(device)
    if init:
        load_weights(model, init["ema"], config.init)
    ema = MotionDiffusionTransformer(model_config).to(device)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    step = 0
    last = out / "last.pt"
    if last.exists():
        state = load_checkpoint(last, map_location=device)
        model.load_state_dict(state["raw"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        step = int(state["step"])
    trained = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    sampler = WindowSampler(
        clips,
        model_config.window,
        model_config.context,
        seed=config.seed * 1000 + rank + step,
        real_fraction=config.real_fraction,
    )
    dim_weight, real_weight = (
        torch.as_tensor(w, device=device) for w in loss_weights(config, clips, std)
    )
    gap = torch.as_tensor(lip_gap_direction(clips, std), device=device)
    rng = np.random.default_rng(config.seed * 7919 + rank + step)
    stats = {
        k: torch.tensor(v, device=device)
        for k, v in (
            ("mean", mean),
            ("std", std),
            ("audio_mean", audio_mean),
            ("audio_std", audio_std),
        )
    }
    writer = _log_writer(out) if rank == 0 else None
    log_path = out / "log.jsonl"
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    bar = None
    if rank == 0 and progress:
        from tqdm import tqdm

        bar = tqdm(total=config.steps, initial=step, unit="step", desc="training", disable=None)
    started = time.perf_counter()
    while step < config.steps:
        batch = sampler.batch(config.batch)
        tensors = {k: torch.as_tensor(v, device=device) for k, v in batch.items()}
        x0 = (tensors["motion"] - stats["mean"]) / stats["std"]
        context = (tensors["context_motion"] - stats["mean"]) / stats["std"]
        audio = (tensors["audio"] - stats["audio_mean"]) / stats["audio_std"]
        context_audio = (tensors["context_audio"] - stats["audio_mean"]) / stats["audio_std"]
        live = rng.random() < config.live_fraction
        if live:
            frames = min(config.live_window, model_config.window)
            x0, audio = x0[:, :frames], audio[:, :frames].clone()
            for i, known in enumerate(rng.integers(1, config.live_known + 1, config.batch)):
                audio[i, known:] = 0.0
        elif config.drop_audio_tail > 0:
            # Streams end mid-window: teach the model that the last frames may have no audio yet.
            cut = rng.random(config.batch) < config.drop_audio_tail
            for i in np.nonzero(cut)[0]:
                audio[i, -int(rng.integers(1, model_config.window // 2)) :] = 0.0
        keep = {
            name: torch.as_tensor(rng.random(config.batch) >= config.drop_condition, device=device)
            for name in CONDITIONS
        }
        keep["context"] = tensors["has_context"] & torch.as_tensor(
            rng.random(config.batch) >= config.drop_context, device=device
        )
        t = torch.rand(config.batch, device=device)
        noisy = corrupt(x0, t, torch.randn_like(x0))
        predicted = trained(
            noisy,
            t,
            audio,
            context,
            context_audio,
            tensors["gaze"],
            tensors["distance"],
            tensors["emotion"],
            keep,
        )
        weight = torch.where(
            torch.as_tensor(batch["real"], device=device)[:, None], real_weight, dim_weight
        )[:, None, :]
        loss_x0 = (weight * (predicted - x0) ** 2).mean()
        loss_velocity = (weight * (predicted.diff(dim=1) - x0.diff(dim=1)) ** 2).mean()
        loss = loss_x0 + config.velocity_weight * loss_velocity
        if config.lip_gap_weight > 0:
            gap_loss = lip_gap_loss(predicted - x0, gap, config.velocity_weight)
            loss = loss + config.lip_gap_weight * gap_loss
        if not torch.isfinite(loss):
            raise OpenvasaError(
                f"Training loss became {loss.item()} at step {step + 1}: check the data for "
                "extreme values, or lower --lr."
            )
        for group in optimizer.param_groups:
            group["lr"] = config.lr * min(1.0, (step + 1) / max(config.warmup_steps, 1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():
            for e, p in zip(ema.parameters(), model.parameters(), strict=True):
                e.lerp_(p, 1 - config.ema)
        step += 1
        if rank == 0:
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}")
            if step % config.log_every == 0 or step == config.steps:
                record = {
                    "step": step,
                    "loss": loss.item(),
                    "loss_x0": loss_x0.item(),
                    "loss_velocity": loss_velocity.item(),
                    "seconds": round(time.perf_counter() - started, 2),
                }
                with open(log_path, "a") as log:
                    log.write(json.dumps(record) + "\n")
                if writer is not None:
                    for key in ("loss", "loss_x0", "loss_velocity"):
                        writer.add_scalar(f"train/{key}", record[key], step)
            if step % config.save_every == 0 or step == config.steps:
                _save(
                    last,
                    model,
                    ema,
                    optimizer,
                    step,
                    model_config,
                    config,
                    mean,
                    std,
                    audio_mean,
                    audio_std,
                    clips.fps,
                )
                if config.keep_checkpoints:
                    shutil.copyfile(last, out / f"step{step}.pt")
    if bar is not None:
        bar.close()
    checksum = float(sum(p.detach().double().sum().item() for p in model.parameters()))
    checksums = [checksum]
    if world > 1:
        gathered = [None] * world
        dist.all_gather_object(gathered, checksum)
        checksums = gathered
        dist.barrier()
    if rank == 0:
        # DDP keeps the ranks' weights identical; record it so that a run can be checked.
        (out / "rank_checksums.json").write_text(json.dumps(checksums))
    return last


def main(argv: list[str] | None = None) -> None:
    """`python -m openvasa.motion.diffusion.train` (what torchrun starts on every rank)."""
    import argparse

    parser = argparse.ArgumentParser(description="Train the motion diffusion transformer.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    train(config_from_args(args))
    if dist.is_initialized():
        dist.destroy_process_group()


def add_arguments(parser) -> None:
    defaults, model = TrainConfig(), ModelConfig()
    parser.add_argument(
        "--data",
        required=True,
        nargs="+",
        help="folder(s) of corpus shards (*.npz): a corpus, `preprocess` output, or both",
    )
    parser.add_argument("--out", default=defaults.out, help="checkpoints and logs")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument(
        "--batch", type=int, default=defaults.batch, help="windows per step per process"
    )
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--save-every", type=int, default=defaults.save_every)
    parser.add_argument(
        "--init", default=None, help="checkpoint to fine-tune from ('default' = the shipped one)"
    )
    parser.add_argument(
        "--real-fraction",
        type=float,
        default=None,
        help="share of training windows drawn from real (preprocessed) clips "
        "(default: their share of the frames)",
    )
    parser.add_argument(
        "--real-head-weight",
        type=float,
        default=defaults.real_head_weight,
        help="loss weight of head pose, eyes and gaze on real clips (0: learn them from "
        "the synthetic corpus only)",
    )
    parser.add_argument(
        "--mouth-weight",
        type=float,
        default=defaults.mouth_weight,
        help="loss weight of the jaw and mouth blendshapes",
    )
    parser.add_argument(
        "--lip-gap-weight",
        type=float,
        default=defaults.lip_gap_weight,
        help="loss weight of the gap between the inner lips, which all the mouth's "
        "blendshapes make together (0: none)",
    )
    parser.add_argument(
        "--synthetic-mouth-weight",
        type=float,
        default=defaults.synthetic_mouth_weight,
        help="loss weight of the jaw and mouth on synthetic clips (default: --mouth-weight); "
        "lower lets real faces teach the mouth",
    )
    parser.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep a copy of the checkpoint at every save (OUT/step<N>.pt)",
    )
    parser.add_argument(
        "--live-fraction",
        type=float,
        default=defaults.live_fraction,
        help="share of steps trained as live streams run: short windows that hear only "
        "their first few frames",
    )
    parser.add_argument(
        "--live-window", type=int, default=defaults.live_window, help="frames of a live window"
    )
    parser.add_argument("--d-model", type=int, default=model.d_model)
    parser.add_argument("--layers", type=int, default=model.layers)
    parser.add_argument("--heads", type=int, default=model.heads)
    parser.add_argument("--window", type=int, default=model.window, help="frames per window")
    parser.add_argument("--context", type=int, default=model.context, help="frames of context")
    parser.add_argument(
        "--audio-skip",
        type=int,
        default=model.audio_skip,
        help="frames (odd) of a linear path from the audio features straight to the motion, "
        "beside the transformer; added when fine-tuning a model without one (0: none)",
    )


def config_from_args(args) -> TrainConfig:
    init = args.init
    if init == "default":
        init = str(default_checkpoint())
    model = ModelConfig(
        d_model=args.d_model,
        layers=args.layers,
        heads=args.heads,
        window=args.window,
        context=args.context,
        audio_skip=args.audio_skip,
    )
    return TrainConfig(
        data=args.data,
        out=args.out,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        seed=args.seed,
        save_every=args.save_every,
        init=init,
        real_fraction=args.real_fraction,
        real_head_weight=args.real_head_weight,
        mouth_weight=args.mouth_weight,
        synthetic_mouth_weight=args.synthetic_mouth_weight,
        lip_gap_weight=args.lip_gap_weight,
        keep_checkpoints=args.keep_checkpoints,
        live_fraction=args.live_fraction,
        live_window=args.live_window,
        model=model,
    )


def _save(
    path: Path,
    model,
    ema,
    optimizer,
    step,
    model_config,
    config,
    mean,
    std,
    audio_mean,
    audio_std,
    fps,
) -> None:
    state = {
        "version": CHECKPOINT_VERSION,
        "step": step,
        "raw": model.state_dict(),
        "ema": ema.state_dict(),
        "optimizer": optimizer.state_dict(),
        "model_config": model_config.to_dict(),
        "train_config": {**asdict(config), "model": model_config.to_dict()},
        "stats": {
            "motion_mean": mean.tolist(),
            "motion_std": std.tolist(),
            "audio_mean": audio_mean.tolist(),
            "audio_std": audio_std.tolist(),
            "fps": fps,
        },
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _log_writer(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # TensorBoard is optional: the JSON-lines log is always written
        return None
    return SummaryWriter(str(out / "tensorboard"))


def export_checkpoint(source: str | Path, target: str | Path, weights: str = "ema") -> None:
    """Keep only what inference needs (weights, configs, statistics) in half precision.

    weights: "ema" (the running average) or "raw" (the optimiser's last weights: after a
    short fine-tuning run the EMA still holds mostly the starting model)."""
    if weights not in ("ema", "raw"):
        raise OpenvasaError(f"Export weights must be 'ema' or 'raw', not {weights!r}.")
    state = load_checkpoint(source)
    keys = ("version", "step", "model_config", "train_config", "stats", "sampler")
    slim = {k: state[k] for k in keys if k in state}
    slim["exported_weights"] = weights
    chosen = state[weights]
    slim["ema"] = {k: v.half() if v.is_floating_point() else v for k, v in chosen.items()}
    tmp = Path(target).with_name(f".{Path(target).name}.tmp")
    torch.save(slim, tmp)
    tmp.replace(target)


if __name__ == "__main__":
    main()
