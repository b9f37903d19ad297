"""`openvasa train live`: distil the motion model into a live student of a few steps.

A live stream makes a window every two frames, so each window must be cheap. The student
starts as a copy of the teacher and learns to reproduce, from the same noise and the same
conditions, what the teacher's full DDIM sampler makes (`teacher_steps` steps with audio
guidance), in `student_steps` steps and one pass per step (the guidance is folded in).
DDIM without added noise maps each noise draw to one motion, so the student learns that map,
blinks and head motion included, rather than the average motion that few steps of the
teacher give (measured on 30 s of speech: 2 teacher steps blink 0 times a minute, 10 steps
20 times).

Training windows are those of live streams (`TrainConfig.live_*`): `live_window` frames,
the previous frames as context, audio heard for only the first 1…`live_known` of them.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from openvasa.errors import OpenvasaError
from openvasa.motion.diffusion.checkpoint import build_model, default_checkpoint, load_checkpoint
from openvasa.motion.diffusion.data import WindowSampler, load_clips
from openvasa.motion.diffusion.model import MOTION_DIM
from openvasa.motion.diffusion.sampler import Guidance, SamplerConfig, denoise, sample


@dataclass
class DistillConfig:
    data: str | list[str]  # folder(s) of shards: the teacher's training data
    teacher: str | None = None  # None: the shipped model
    out: str = "runs/live"
    steps: int = 1000
    batch: int = 32
    lr: float = 1e-4
    teacher_steps: int = 10
    teacher_audio_guidance: float = 0.25
    student_steps: int = 2
    live_window: int = 14
    live_known: int = 8
    drop_context: float = 0.1  # a stream's first window has no context
    velocity_weight: float = 1.0
    real_fraction: float | None = 0.5
    seed: int = 0
    log_every: int = 50
    save_every: int = 250


def distill(config: DistillConfig, progress: bool = True) -> Path:
    """Train the student (or resume it from OUT/last.pt) and return that path."""
    torch.manual_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    state = load_checkpoint(config.teacher or default_checkpoint())
    teacher = build_model(state).float().eval().requires_grad_(False)
    student = build_model(state).float().eval()  # no dropout: it learns a deterministic map
    model_config = teacher.config
    stats = {k: torch.tensor(v) for k, v in state["stats"].items() if k != "fps"}
    clips = load_clips(config.data)
    if clips.audio.shape[1] != model_config.audio_dim:
        raise OpenvasaError(
            f"The data's audio features have {clips.audio.shape[1]} values a frame; the "
            f"teacher takes {model_config.audio_dim}."
        )
    for what, values in (("motion", clips.motion), ("audio features", clips.audio)):
        if not np.isfinite(values).all():
            raise OpenvasaError(f"The training data in {config.data} has non-finite {what}.")
    optimizer = torch.optim.AdamW(student.parameters(), lr=config.lr, weight_decay=0.0)
    step = 0
    last = out / "last.pt"
    if last.exists():
        resumed = load_checkpoint(last)
        student.load_state_dict(resumed["ema"])
        optimizer.load_state_dict(resumed["optimizer"])
        step = int(resumed["step"])
    frames = min(config.live_window, model_config.window)
    windows = WindowSampler(
        clips,
        frames,
        model_config.context,
        seed=config.seed * 1000 + step,
        real_fraction=config.real_fraction,
    )
    rng = np.random.default_rng(config.seed * 7919 + step)
    teacher_sampler = SamplerConfig(
        config.teacher_steps, Guidance(audio=config.teacher_audio_guidance)
    )
    student_sampler = SamplerConfig(config.student_steps, Guidance(audio=0.0))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.steps, initial=step, unit="step", desc="distilling", disable=None)
    started = time.perf_counter()
    while step < config.steps:
        inputs, keep_context = _live_batch(windows, config, stats, rng)
        noise = torch.randn(config.batch, frames, MOTION_DIM)
        target = sample(teacher, inputs, noise, teacher_sampler, keep_context)
        made = denoise(student, inputs, noise, student_sampler, keep_context)
        loss_x0 = ((made - target) ** 2).mean()
        loss_velocity = ((made.diff(dim=1) - target.diff(dim=1)) ** 2).mean()
        loss = loss_x0 + config.velocity_weight * loss_velocity
        if not torch.isfinite(loss):
            raise OpenvasaError(f"The distillation loss became {loss.item()} at step {step + 1}.")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        step += 1
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
            with open(out / "log.jsonl", "a") as log:
                log.write(json.dumps(record) + "\n")
        if step % config.save_every == 0 or step == config.steps:
            _save(last, student, optimizer, step, state, config)
    if bar is not None:
        bar.close()
    return last


def _live_batch(windows: WindowSampler, config: DistillConfig, stats, rng):
    """Model inputs for a batch of live windows (normalised) and which have context."""
    batch = {k: torch.as_tensor(v) for k, v in windows.batch(config.batch).items()}
    audio = (batch["audio"] - stats["audio_mean"]) / stats["audio_std"]
    for i, known in enumerate(rng.integers(1, config.live_known + 1, config.batch)):
        audio[i, known:] = 0.0
    inputs = {
        "audio": audio,
        "context_motion": (batch["context_motion"] - stats["motion_mean"]) / stats["motion_std"],
        "context_audio": (batch["context_audio"] - stats["audio_mean"]) / stats["audio_std"],
        "gaze": batch["gaze"].float(),
        "distance": batch["distance"].float(),
        "emotion": batch["emotion"].float(),
    }
    keep_context = batch["has_context"] & torch.as_tensor(
        rng.random(config.batch) >= config.drop_context
    )
    return inputs, keep_context


def _save(path: Path, student, optimizer, step: int, teacher_state: dict, config) -> None:
    state = {
        "version": teacher_state["version"],
        "step": step,
        "ema": student.state_dict(),
        "raw": student.state_dict(),
        "optimizer": optimizer.state_dict(),
        "model_config": teacher_state["model_config"],
        "train_config": {**teacher_state.get("train_config", {}), "distill": asdict(config)},
        "stats": teacher_state["stats"],
        # How the engine samples this model: its steps, no guidance (folded in).
        "sampler": {"steps": config.student_steps, "guidance": 0.0},
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def add_arguments(parser) -> None:
    defaults = DistillConfig(data="")
    parser.add_argument("--data", required=True, nargs="+", help="folder(s) of shards (*.npz)")
    parser.add_argument("--teacher", default=None, help="the model to distil (default: shipped)")
    parser.add_argument("--out", default=defaults.out, help="checkpoints and log")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch", type=int, default=defaults.batch)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--teacher-steps", type=int, default=defaults.teacher_steps)
    parser.add_argument("--student-steps", type=int, default=defaults.student_steps)
    parser.add_argument("--real-fraction", type=float, default=defaults.real_fraction)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--export", default=None, help="also write the slim half-precision student here"
    )


def config_from_args(args) -> DistillConfig:
    return DistillConfig(
        data=args.data,
        teacher=args.teacher,
        out=args.out,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        teacher_steps=args.teacher_steps,
        student_steps=args.student_steps,
        real_fraction=args.real_fraction,
        seed=args.seed,
    )
