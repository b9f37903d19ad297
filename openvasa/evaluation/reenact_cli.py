"""`openvasa eval reenact VIDEO… [--from-frame K | --from-open] --out DIR`: the command line of
self-reenactment (openvasa/evaluation/reenact.py), kept apart so that building the parser
imports nothing heavy."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_reenact_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `reenact` to `openvasa eval`'s subcommands."""
    reenact = sub.add_parser(
        "reenact",
        help="self-reenactment: animate a real video's frame with the video's own motion",
        description="Track and encode every frame of each real video, animate one of its "
        "frames (frame K, or the most open-mouthed) with that motion in the video's own "
        "framing, track the result again and compare it with the real frames: face and mouth "
        "PSNR/SSIM, mouth-opening correlation, pose error, blink agreement, and the same for "
        "frame K held still. Prints a table; writes reenact.csv, reenact.json and a "
        "side-by-side MP4 (real | rendered) per video to --out.",
    )
    reenact.add_argument("videos", nargs="+", type=Path, metavar="VIDEO")
    start = reenact.add_mutually_exclusive_group()
    start.add_argument(
        "--from-frame", type=int, metavar="K", help="animate frame K (0-based; default 0)"
    )
    start.add_argument(
        "--from-open", action="store_true", help="animate each clip's most open-mouthed frame"
    )
    reenact.add_argument(
        "--absolute-motion",
        action="store_true",
        help="drive with every frame's encoded latents as they are (default: frame K's own "
        "latents plus each frame's change from frame K)",
    )
    reenact.add_argument(
        "--credit",
        metavar="TEXT",
        help="the videos' attribution (e.g. their licence), written into every side-by-side "
        "MP4 and reenact.json",
    )
    # SUPPRESS: an --out or -q given before `reenact` is kept rather than reset.
    reenact.add_argument("--out", type=Path, metavar="DIR", default=argparse.SUPPRESS)
    reenact.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS)
    return reenact


def cmd_reenact(args: argparse.Namespace, progress) -> int:
    """Run `eval reenact`; progress: a bar factory (description → update(done, total))."""
    from openvasa.errors import OpenvasaError
    from openvasa.evaluation.reenact import reenact_videos

    if args.generated or args.reference:
        raise OpenvasaError("`eval reenact` takes real videos only: drop --generated/--reference.")
    report = reenact_videos(
        args.videos,
        args.out,
        from_frame=args.from_frame,
        from_open=args.from_open,
        absolute=args.absolute_motion,
        credit=args.credit,
        progress=progress,
    )
    for warning in report.warnings:
        print(f"openvasa: note: {warning}")
    print(report.table())
    print(f"wrote {args.out}/reenact.csv, reenact.json and {len(report.clips)} side-by-side MP4s")
    return 0
