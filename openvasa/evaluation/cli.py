"""The `openvasa eval` command: `eval --generated PATH… [--reference PATH…] --out DIR` and
`eval suite --pairs FILE --out DIR` and `eval reenact VIDEO… --out DIR`."""

from __future__ import annotations

import argparse
from pathlib import Path

from openvasa.console import gaze_argument as _gaze
from openvasa.console import progress_bar
from openvasa.errors import OpenvasaError


def add_eval_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `eval` (with its `suite` subcommand) to the CLI's subcommands."""
    ev = sub.add_parser(
        "eval",
        help="measure lip sync, motion, control accuracy of videos (and real references)",
        description="Measure talking-face videos: lip sync, head motion (ΔP, ranges), blinks, "
        "jitter, identity drift, control errors, and comparisons with reference videos. "
        "Prints a table; writes metrics.csv, metrics.json and one PNG per video to --out.",
    )
    ev.add_argument("--generated", nargs="+", type=Path, metavar="PATH", help="videos to measure")
    ev.add_argument(
        "--reference",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="one real video per generated video, with the same audio",
    )
    ev.add_argument(
        "--audio",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="audio per generated video (default: each video's own audio track)",
    )
    ev.add_argument("--out", type=Path, metavar="DIR", help="folder for CSV, JSON and plots")
    ev.add_argument(
        "--gaze",
        type=_gaze,
        metavar="YAW,PITCH",
        help="the gaze the videos were made with, to measure the gaze error (degrees)",
    )
    ev.add_argument(
        "--head-distance",
        type=float,
        metavar="D",
        help="the head distance the videos were made with, to measure its error",
    )
    ev.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    suite_sub = ev.add_subparsers(dest="eval_command", metavar="{suite,reenact}")
    suite = suite_sub.add_parser(
        "suite",
        help="generate from a list of (portrait, audio[, reference]) and evaluate in one run",
        description="Generate a video for every line of a pairs file, then evaluate them all "
        "and time the generation. Pairs: text lines `portrait, audio[, reference]` or a JSON "
        'list of {"portrait", "audio", "reference", "gaze", "head_distance", "emotion", '
        '"seed", "name"} objects; paths relative to the file.',
    )
    suite.add_argument("--pairs", type=Path, required=True, metavar="FILE")
    # SUPPRESS: an --out given before `suite` is kept rather than reset to None.
    suite.add_argument("--out", type=Path, metavar="DIR", default=argparse.SUPPRESS)
    suite.add_argument("--size", type=int, default=512, help="frame size of generated videos")
    suite.add_argument("--fps", type=float, default=25.0)
    suite.add_argument("--no-plots", action="store_true", default=argparse.SUPPRESS)
    suite.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS)
    from openvasa.evaluation.reenact_cli import add_reenact_parser

    add_reenact_parser(suite_sub)
    from openvasa.evaluation.lipsync import add_lipsync_parser

    add_lipsync_parser(suite_sub)
    return ev


def _progress_factory(enabled: bool):
    """(make(description) → update, bars): one bar per stage, each closing the one before."""
    if not enabled:
        return None, []
    bars: list = []

    def make(description: str):
        for bar in bars:
            bar.close()
        update, bar = progress_bar(True, description)
        bars.append(bar)
        return update

    return make, bars


def cmd_eval(args: argparse.Namespace) -> int:
    from openvasa.evaluation.suite import Controls, evaluate_videos, run_suite

    if args.eval_command == "lipsync":
        from openvasa.evaluation.lipsync import cmd_lipsync

        return cmd_lipsync(args)
    if args.out is None:
        raise OpenvasaError("Say where to write the results: --out DIR.")
    if args.out.exists() and not args.out.is_dir():
        raise OpenvasaError(f"{args.out} exists and is not a folder.")
    make, bars = _progress_factory(not args.quiet)
    try:
        if args.eval_command == "reenact":
            from openvasa.evaluation.reenact_cli import cmd_reenact

            return cmd_reenact(args, make)
        if args.eval_command == "suite":
            if args.generated:
                raise OpenvasaError("`eval suite` generates its own videos: drop --generated.")
            from openvasa.settings import OutputSettings

            OutputSettings(size=args.size, fps=args.fps)  # checks the values, one clear line
            report = run_suite(
                args.pairs,
                args.out,
                size=args.size,
                fps=args.fps,
                plots=not args.no_plots,
                progress=make,
            )
        else:
            if not args.generated:
                raise OpenvasaError(
                    "Give the videos to evaluate: --generated PATH … (or `eval suite --pairs`)."
                )
            controls = Controls(args.gaze, args.head_distance)
            report = evaluate_videos(
                args.generated,
                args.reference,
                audio=args.audio,
                controls=controls,
                out_dir=args.out,
                plots=not args.no_plots,
                progress=make,
            )
    finally:
        for bar in bars:
            bar.close()
    for warning in report.warnings:
        print(f"openvasa: note: {warning}")
    print(report.table())
    print(f"wrote {args.out}/metrics.csv, metrics.json" + ("" if args.no_plots else " and plots"))
    return 0
