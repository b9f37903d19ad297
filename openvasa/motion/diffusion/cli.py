"""Command-line parts of the motion generator: `train motion`, `preprocess`, and the sampling
options of `generate` (--steps, --cfg-audio, --cfg-gaze, --cfg-emotion, --checkpoint)."""

from __future__ import annotations

import argparse
import os


def add_generation_options(parser: argparse.ArgumentParser) -> None:
    """--steps and the guidance scales, defaulting to `DiffusionOptions`'s values."""
    from openvasa.settings import DiffusionOptions

    defaults = DiffusionOptions()
    group = parser.add_argument_group("diffusion engine")
    group.add_argument(
        "--steps",
        type=int,
        default=defaults.steps,
        help=f"denoising steps (more: slower; default {defaults.steps})",
    )
    for name, what in (("audio", "audio"), ("gaze", "gaze"), ("emotion", "emotion")):
        default = getattr(defaults, f"cfg_{name}")
        group.add_argument(
            f"--cfg-{name}",
            type=float,
            default=default,
            help=f"guidance scale for the {what} (default {default:g})",
        )
    group.add_argument("--checkpoint", help="motion model checkpoint (default: the shipped one)")


def add_commands(sub) -> None:
    from openvasa.motion.diffusion.train import add_arguments

    train = sub.add_parser("train", help="train a model")
    train_sub = train.add_subparsers(dest="train_what", required=True)
    motion = train_sub.add_parser(
        "motion", help="the motion diffusion transformer (also under torchrun for many GPUs)"
    )
    add_arguments(motion)
    motion.add_argument(
        "--export", metavar="FILE", help="also write a slim half-precision copy for inference"
    )
    motion.add_argument(
        "--export-weights",
        choices=("ema", "raw"),
        default="ema",
        help="weights to export: the EMA (default) or the last raw weights (short fine-tuning)",
    )

    from openvasa.motion.diffusion.distill import add_arguments as add_distill_arguments

    live = train_sub.add_parser(
        "live", help="distil the motion model into the few-step student of live streams"
    )
    add_distill_arguments(live)

    pre = sub.add_parser("preprocess", help="talking videos → training shards (motion + audio)")
    pre.add_argument("videos", nargs="+", help="video files with a talking face and its voice")
    pre.add_argument("--out", required=True, help="folder for the shards")
    pre.add_argument(
        "--worker-index",
        type=int,
        default=int(os.environ.get("SLURM_ARRAY_TASK_ID", "0")),
        help="this worker's index (default: $SLURM_ARRAY_TASK_ID or 0)",
    )
    pre.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("SLURM_ARRAY_TASK_COUNT", "1")),
        help="how many workers share the list",
    )
    pre.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="processes on this machine (default: one per core)",
    )
    pre.add_argument(
        "--augment",
        type=int,
        default=0,
        help="also write this many copies of each clip with its voice re-recorded: "
        "other speeds, equalisation, rooms, noise and levels (default: none)",
    )
    pre.add_argument("--seed", type=int, default=0, help="seed of the augmentation")


def cmd_train(args: argparse.Namespace) -> int:
    from openvasa.motion.diffusion.train import config_from_args, export_checkpoint, train

    if args.train_what == "live":
        from openvasa.motion.diffusion import distill

        last = distill.distill(distill.config_from_args(args))
        if args.export:
            export_checkpoint(last, args.export, "ema")
        print(f"wrote {last}")
        return 0
    last = train(config_from_args(args))
    if args.export:
        export_checkpoint(last, args.export, args.export_weights)
    print(f"wrote {last}")
    return 0


def cmd_preprocess(args: argparse.Namespace) -> int:
    from openvasa.console import progress_bar
    from openvasa.motion.diffusion.preprocess import preprocess

    update, bar = progress_bar(True, "preprocessing", unit="clip")
    log = print if bar is None else bar.write
    try:
        shards = preprocess(
            args.videos,
            args.out,
            args.worker_index,
            args.workers,
            update,
            jobs=args.jobs,
            augment=args.augment,
            seed=args.seed,
            log=log,
        )
    finally:
        if bar is not None:
            bar.close()
    print(f"wrote {len(shards)} shard(s) in {args.out}")
    return 0
