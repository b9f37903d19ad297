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
the previous frames as context, audio heard for only the first 1…`live_known` of them. The
teacher hears each window's audio as it sounds inside the whole clip; the student hears it
as a live stream does (`live_features`: each window's Whisper encoding ends where the stream
has heard up to, and the context frames' features are those of the windows that committed
them), so that it learns to make the teacher's motion from what a stream really has. That
takes one Whisper encoding per training frame, computed once and kept in OUT.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from openvasa.errors import OpenvasaError
from openvasa.motion.articulation import lip_gap, scale_mouth_opening
from openvasa.motion.diffusion.checkpoint import (
    build_model,
    default_checkpoint,
    load_checkpoint,
    load_weights,
)
from openvasa.motion.diffusion.data import (
    MotionClips,
    WindowSampler,
    from_int16,
    load_clips,
    select_clips,
)
from openvasa.motion.diffusion.model import MOTION_DIM
from openvasa.motion.diffusion.sampler import Guidance, SamplerConfig, denoise, sample
from openvasa.motion.diffusion.train import lip_gap_direction, lip_gap_loss

CALIBRATION_CLIPS = 20  # of each kind (real, synthetic)


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
    lip_gap_weight: float = 0.0  # as `train motion --lip-gap-weight`: the inner-lip gap's error
    real_fraction: float | None = 0.5
    live_features: bool = True  # the student hears what a stream hears (else whole-clip audio)
    clips: int | None = None  # at most this many clips of each kind (real, synthetic), at random
    init: str | None = None  # start the student from this checkpoint (default: the teacher)
    # The offline model whose lip-gap spread the stream's mouth gain restores (default: the
    # teacher; the shipped student's is the shipped model its streams stand in for).
    offline: str | None = None
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
    if config.init:
        load_weights(student, load_checkpoint(config.init)["ema"], config.init)
    model_config = teacher.config
    stats = {k: torch.tensor(v) for k, v in state["stats"].items() if k != "fps"}
    clips = load_clips(config.data)
    if config.clips is not None:
        clips = _some_clips(clips, config.clips, config.seed)
    if clips.audio.shape[1] != model_config.audio_dim:
        raise OpenvasaError(
            f"The data's audio features have {clips.audio.shape[1]} values a frame; the "
            f"teacher takes {model_config.audio_dim}."
        )
    for what, values in (("motion", clips.motion), ("audio features", clips.audio)):
        if not np.isfinite(values).all():
            raise OpenvasaError(f"The training data in {config.data} has non-finite {what}.")
    gap = torch.as_tensor(lip_gap_direction(clips, stats["motion_std"].numpy()))
    optimizer = torch.optim.AdamW(student.parameters(), lr=config.lr, weight_decay=0.0)
    step = 0
    last = out / "last.pt"
    if last.exists():
        resumed = load_checkpoint(last)
        student.load_state_dict(resumed["ema"])
        optimizer.load_state_dict(resumed["optimizer"])
        step = int(resumed["step"])
    frames = min(config.live_window, model_config.window)
    heard = _heard_tracks(clips, config, out, progress) if config.live_features else None
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
        inputs, heard_inputs, keep_context = _live_batch(windows, config, stats, rng, heard)
        noise = torch.randn(config.batch, frames, MOTION_DIM)
        target = sample(teacher, inputs, noise, teacher_sampler, keep_context)
        made = denoise(student, heard_inputs, noise, student_sampler, keep_context)
        loss_x0 = ((made - target) ** 2).mean()
        loss_velocity = ((made.diff(dim=1) - target.diff(dim=1)) ** 2).mean()
        loss = loss_x0 + config.velocity_weight * loss_velocity
        if config.lip_gap_weight > 0:
            gap_loss = lip_gap_loss(made - target, gap, config.velocity_weight)
            loss = loss + config.lip_gap_weight * gap_loss
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
    if not last.exists():  # no step to take
        _save(last, student, optimizer, step, state, config)
    calibrated = load_checkpoint(last).get("sampler", {}).get("mouth_gain", 1.0) != 1.0
    if not calibrated and any(voice is not None for voice in clips.voices):
        gain = calibrate_mouth_gain(
            config.offline or config.teacher, last, clips, progress=progress
        )
        _save(last, student, optimizer, step, state, config, gain)
    elif not calibrated and progress:
        print("No clip in the data has its audio: the stream's mouth gain stays 1.")
    return last


def calibrate_mouth_gain(
    offline: str | None,
    student: Path,
    clips: MotionClips,
    most: int = CALIBRATION_CLIPS,
    progress: bool = False,
) -> float:
    """How much a live stream of `student` must scale its mouth opening
    (`scale_mouth_opening`) for its lip gap to spread as far as the motion of the `offline`
    model (None: the shipped one) does, over the voices of up to `most` clips of each kind
    (real, synthetic) of `clips`.

    A live window hears a few frames past what it commits and cannot know how far the next
    syllable opens; matched to its teacher in squared error, and fed its own motion back as
    context, a stream opens the mouth part of the way (on GRID val the shipped student's lips
    spread 0.44x the real speakers' against 0.82x offline), and a face tracker reads many of
    those small openings as a closed mouth. The gain restores the offline spread; it changes
    no correlation.
    """
    from openvasa.audio import Audio
    from openvasa.audio.load import SAMPLE_RATE
    from openvasa.latent.motion import MotionFrame
    from openvasa.motion.diffusion.engine import DiffusionEngine
    from openvasa.motion.energy import concatenate
    from openvasa.settings import Controls

    engine = DiffusionEngine(offline or default_checkpoint(), live_checkpoint=student)
    if engine.live_mouth_gain != 1.0:
        raise OpenvasaError(f"{student} is calibrated already.")
    chosen = _some_clips(clips, most, seed=1)
    voices = [(i, v) for i, v in enumerate(chosen.voices) if v is not None]
    if not voices:
        raise OpenvasaError("No clip in the data has its audio: the gain cannot be calibrated.")
    if progress:
        from tqdm import tqdm

        voices = tqdm(voices, unit="clip", desc="mouth gain", disable=None)
    offline_mouths, live_mouths = [], []
    for i, voice in voices:
        audio = Audio.from_array(from_int16(voice), SAMPLE_RATE)
        controls = Controls(seed=i)
        made = engine.generate(audio, engine.fps, MotionFrame.neutral(), controls)
        stream = engine.open(engine.fps, MotionFrame.neutral(), controls)
        streamed = concatenate([stream.push(audio.samples), stream.end()], engine.fps)
        n = min(len(made), len(streamed))
        offline_mouths.append(made.blendshapes[:n])
        live_mouths.append(streamed.blendshapes[:n])
    target = float(lip_gap(np.concatenate(offline_mouths)).std())
    live = np.concatenate(live_mouths)
    gains = np.linspace(1.0, 3.0, 81)
    spreads = np.array([lip_gap(scale_mouth_opening(live, g)).std() for g in gains])
    return float(gains[np.argmin(np.abs(spreads - target))])


def heard_window_audio(
    heard: np.ndarray, starts: np.ndarray, knowns: np.ndarray, width: int, context: int
) -> tuple[np.ndarray, np.ndarray]:
    """What a live stream hears for windows starting at frames `starts` (indices into the
    `heard` tracks of `_heard_tracks`) that know the audio of their first `knowns` frames:
    ((B, width, A) window audio, blank after the known frames; (B, context, A) context
    audio), raw features. The known frames come from one encoding that ends after the last of
    them; each context frame from the window that committed it (a stream commits
    `live_stride` frames and hears `live_lookahead` past them)."""
    from openvasa.motion.diffusion.engine import DiffusionSettings

    settings = DiffusionSettings()
    stride, ahead = settings.live_stride, settings.live_lookahead
    window = np.zeros((len(starts), width, heard.shape[2]), np.float32)
    for i, (start, known) in enumerate(zip(starts, knowns, strict=True)):
        p = np.arange(known)
        window[i, :known] = heard[start + p, known - p - 1]
    j = np.arange(context, 0, -1)  # context frame start - j
    distance = ahead + 1 + (j - 1) % stride
    before = np.stack([heard[np.maximum(start - j, 0), distance - 1] for start in starts])
    return window, before.astype(np.float32)


def _some_clips(clips: MotionClips, most: int, seed: int) -> MotionClips:
    """At most `most` clips of each kind (real, synthetic), drawn at random."""
    rng = np.random.default_rng(seed)
    chosen = []
    for kind in (True, False):
        of_kind = np.nonzero(clips.real == kind)[0]
        chosen.extend(rng.choice(of_kind, min(most, len(of_kind)), replace=False))
    return select_clips(clips, chosen)


def _heard_tracks(clips: MotionClips, config: DistillConfig, out: Path, progress: bool):
    """(T, depth, A) float16: every frame's features as a live stream hears them at each
    distance from the edge of what it has heard (`live_feature_tracks`), kept in
    OUT/live_features.npz for a resumed run."""
    from openvasa.audio.whisper import WhisperEncoder
    from openvasa.motion.diffusion.engine import DiffusionSettings
    from openvasa.motion.diffusion.live_features import live_feature_tracks

    settings = DiffusionSettings()
    depth = max(config.live_known, settings.live_stride + settings.live_lookahead)
    cache = out / "live_features.npz"
    if cache.exists():
        with np.load(cache) as kept:
            if (
                list(kept["names"]) == [str(n) for n in clips.names]
                and kept["tracks"].shape[1] == depth
            ):
                return kept["tracks"]
    missing = [str(n) for n, v in zip(clips.names, clips.voices, strict=True) if v is None]
    if missing:
        raise OpenvasaError(
            f"{len(missing)} clips (first: {missing[0]}) have no audio in their shard, so the "
            "features a live stream hears cannot be computed: run `openvasa preprocess` on "
            "them again, or pass --whole-clip-features."
        )
    whisper = WhisperEncoder(compute_type=settings.live_compute_type)
    lookback = int(round(settings.live_audio_s * clips.fps))
    tracks = np.zeros((len(clips.motion), depth, clips.audio.shape[1]), np.float16)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(clips.motion), unit="frame", desc="live features", disable=None)
    for i, voice in enumerate(clips.voices):
        a, b = clips.clip_starts[i], clips.clip_starts[i + 1]
        tracks[a:b] = live_feature_tracks(
            whisper, from_int16(voice), clips.fps, b - a, depth, lookback
        )
        if bar is not None:
            bar.update(b - a)
    if bar is not None:
        bar.close()
    tmp = cache.with_name(f".{cache.stem}.tmp.npz")
    np.savez(tmp, names=np.array([str(n) for n in clips.names]), tracks=tracks)
    tmp.replace(cache)
    return tracks


def _live_batch(windows: WindowSampler, config: DistillConfig, stats, rng, heard=None):
    """Model inputs for a batch of live windows (normalised): as the teacher hears them, as
    the student does (the same without `heard` tracks), and which windows have context."""
    batch = {k: torch.as_tensor(v) for k, v in windows.batch(config.batch).items()}
    audio = (batch["audio"] - stats["audio_mean"]) / stats["audio_std"]
    knowns = rng.integers(1, config.live_known + 1, config.batch)
    for i, known in enumerate(knowns):
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
    if heard is None:
        return inputs, inputs, keep_context
    window_audio, context_audio = heard_window_audio(
        heard, batch["start"].numpy(), knowns, audio.shape[1], windows.context
    )
    context_audio[~batch["has_context"].numpy()] = 0.0  # as the teacher's: no context
    heard_audio = (torch.as_tensor(window_audio) - stats["audio_mean"]) / stats["audio_std"]
    for i, known in enumerate(knowns):
        heard_audio[i, known:] = 0.0  # blank, as the teacher's
    heard_inputs = {
        **inputs,
        "audio": heard_audio,
        "context_audio": (torch.as_tensor(context_audio) - stats["audio_mean"])
        / stats["audio_std"],
    }
    return inputs, heard_inputs, keep_context


def _save(
    path: Path,
    student,
    optimizer,
    step: int,
    teacher_state: dict,
    config,
    mouth_gain: float = 1.0,
) -> None:
    state = {
        "version": teacher_state["version"],
        "step": step,
        "ema": student.state_dict(),
        "raw": student.state_dict(),
        "optimizer": optimizer.state_dict(),
        "model_config": teacher_state["model_config"],
        "train_config": {**teacher_state.get("train_config", {}), "distill": asdict(config)},
        "stats": teacher_state["stats"],
        # How the engine samples this model: its steps, no guidance (folded in), and the
        # scale of its mouth opening (`calibrate_mouth_gain`; 1 until calibrated).
        "sampler": {"steps": config.student_steps, "guidance": 0.0, "mouth_gain": mouth_gain},
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
    parser.add_argument(
        "--lip-gap-weight",
        type=float,
        default=defaults.lip_gap_weight,
        help="loss weight of the gap between the inner lips (0: none)",
    )
    parser.add_argument(
        "--whole-clip-features",
        action="store_true",
        help="the student hears each window as the teacher does, not as a live stream does",
    )
    parser.add_argument(
        "--clips",
        type=int,
        default=None,
        help="at most this many clips of each kind (real, "
        "synthetic), at random: the live features take one Whisper encoding a frame",
    )
    parser.add_argument("--init", default=None, help="start the student from this checkpoint")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--offline",
        default=None,
        help="the offline model whose mouth-opening spread the student's streams are scaled "
        "to (default: the teacher)",
    )
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
        lip_gap_weight=args.lip_gap_weight,
        live_features=not args.whole_clip_features,
        clips=args.clips,
        init=args.init,
        offline=args.offline,
        seed=args.seed,
    )
