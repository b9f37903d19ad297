"""The `openvasa` command line: generate, animate, demo, bench."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from openvasa import __version__
from openvasa.errors import OpenvasaError
from openvasa.settings import ENGINES, Controls, OutputSettings


def _gaze(text: str) -> tuple[float, float]:
    try:
        yaw, pitch = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("gaze must be YAW,PITCH in degrees, e.g. 10,-5") from None
    return yaw, pitch


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    defaults = OutputSettings()
    parser.add_argument("-o", "--output", type=Path, help="output MP4 (H.264 + AAC)")
    parser.add_argument("--fps", type=float, default=defaults.fps, help="frames per second, 20-60")
    parser.add_argument(
        "--size", type=int, default=defaults.size, help="frame width and height in pixels"
    )
    parser.add_argument(
        "--frames", type=Path, metavar="DIR", help="also write every frame as PNG here"
    )
    parser.add_argument(
        "--motion-out",
        type=Path,
        metavar="FILE",
        help="also write per-frame ARKit blendshapes, gaze and pose (.csv or .json)",
    )
    parser.add_argument(
        "--max-audio-s",
        type=float,
        default=defaults.max_audio_s,
        help="longest audio accepted, in seconds",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _add_controls(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed for head motion, blinks, gaze"
    )
    parser.add_argument(
        "--gaze",
        type=_gaze,
        default=(0.0, 0.0),
        metavar="YAW,PITCH",
        help="main gaze direction in degrees (yaw > 0 to the image's right, pitch > 0 up)",
    )
    parser.add_argument(
        "--head-distance",
        type=float,
        default=1.0,
        metavar="D",
        help="apparent camera distance: 1.0 default, 2.0 face half as wide, 0.5 twice",
    )
    parser.add_argument(
        "--emotion",
        default="neutral",
        metavar="NAME[:STRENGTH]",
        help="neutral, happy, sad, angry or surprised, optionally with strength 0-1",
    )
    parser.add_argument("--engine", default="energy", choices=ENGINES, help="motion engine")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openvasa", description=__doc__)
    parser.add_argument("--version", action="version", version=f"openvasa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="portrait + audio → talking video")
    gen.add_argument("portrait", type=Path, help="portrait image (jpg, png, webp, tiff, …)")
    gen.add_argument("audio", type=Path, help="speech or singing (wav, mp3, flac, ogg, m4a, …)")
    _add_output_options(gen)
    _add_controls(gen)

    ani = sub.add_parser("animate", help="portrait + motion file (+ audio) → video")
    ani.add_argument("portrait", type=Path)
    ani.add_argument("motion", type=Path, help="motion CSV or JSON (as written by --motion-out)")
    ani.add_argument("--audio", type=Path, help="audio to put in the video")
    ani.add_argument("--head-distance", type=float, default=1.0, metavar="D")
    _add_output_options(ani)

    demo = sub.add_parser("demo", help="the bundled demo: the astronaut portrait speaks a sentence")
    demo.add_argument("-o", "--output", type=Path, default=Path("out/demo.mp4"))
    demo.add_argument("--size", type=int, default=512)
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    bench = sub.add_parser("bench", help="time every stage on a 10 s clip")
    bench.add_argument("--seconds", type=float, default=10.0, help="length of the clip")
    bench.add_argument("--size", type=int, default=512)
    bench.add_argument("--fps", type=float, default=25.0)
    return parser


def _progress(enabled: bool, description: str):
    if not enabled:
        return None, None
    from tqdm import tqdm

    bar = tqdm(
        total=0, unit="frame", desc=description, leave=False, dynamic_ncols=True, disable=None
    )

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update, bar


def _controls(args: argparse.Namespace) -> Controls:
    from openvasa.motion.emotion import parse_emotion

    try:
        emotion, strength = parse_emotion(args.emotion)
    except ValueError:
        raise OpenvasaError(f"Emotion {args.emotion!r} is not NAME or NAME:STRENGTH.") from None
    return Controls(
        gaze_deg=args.gaze,
        head_distance=args.head_distance,
        emotion=emotion,
        emotion_strength=strength,
        seed=args.seed,
    )


def _check_outputs(args: argparse.Namespace) -> None:
    if args.output is None and args.frames is None and args.motion_out is None:
        raise OpenvasaError(
            "Say where to write the result: -o OUT.mp4, --frames DIR or --motion-out FILE."
        )
    if args.output is not None and args.output.suffix.lower() not in (
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
    ):
        raise OpenvasaError(f"Output {args.output.name} must end in .mp4 (or .m4v, .mov, .mkv).")


def cmd_generate(args: argparse.Namespace) -> int:
    from openvasa.pipeline import Generator

    _check_outputs(args)
    controls = _controls(args)
    settings = OutputSettings(
        fps=args.fps,
        size=args.size,
        engine=args.engine,
        max_audio_s=args.max_audio_s,
        controls=controls,
    )
    generator = Generator(settings)
    update, bar = _progress(not args.quiet, "rendering")
    try:
        result = generator.generate(
            args.portrait,
            args.audio,
            args.output,
            frames_dir=args.frames,
            motion_out=args.motion_out,
            progress=update,
        )
    finally:
        if bar is not None:
            bar.close()
    for warning in result.warnings:
        print(f"openvasa: note: {warning}", file=sys.stderr)
    _report(result, args.output or args.frames or args.motion_out)
    return 0


def _report(result, where) -> None:
    t = result.times
    fps = result.n_frames / max(t.total_s, 1e-9)
    print(
        f"wrote {where}: {result.n_frames} frames ({result.motion.duration_s:.2f} s) "
        f"in {t.total_s:.1f} s, {fps:.0f} frames/s"
    )


def cmd_animate(args: argparse.Namespace) -> int:
    from openvasa.io.motion_file import read_motion
    from openvasa.pipeline import Generator, StageTimes

    _check_outputs(args)
    motion = read_motion(args.motion)
    settings = OutputSettings(
        fps=motion.fps if 20 <= motion.fps <= 60 else args.fps,
        size=args.size,
        max_audio_s=args.max_audio_s,
    )
    generator = Generator(settings)
    portrait = generator.prepare_portrait(args.portrait, head_distance=args.head_distance)
    audio = generator.load_audio(args.audio) if args.audio else None
    update, bar = _progress(not args.quiet, "rendering")
    times = StageTimes()
    try:
        generator.write_outputs(
            portrait, motion, audio, args.output, args.frames, args.motion_out, times, update
        )
    finally:
        if bar is not None:
            bar.close()
    print(f"wrote {args.output or args.frames or args.motion_out}: {len(motion)} frames")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from skimage import data

    from openvasa.audio import demo_speech
    from openvasa.pipeline import Generator

    generator = Generator(OutputSettings(size=args.size))
    update, bar = _progress(not args.quiet, "rendering")
    try:
        result = generator.generate(
            data.astronaut(), demo_speech().audio, args.output, progress=update
        )
    finally:
        if bar is not None:
            bar.close()
    _report(result, args.output)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from openvasa.bench import run_benchmark

    print(run_benchmark(seconds=args.seconds, size=args.size, fps=args.fps).table())
    return 0


COMMANDS = {"generate": cmd_generate, "animate": cmd_animate, "demo": cmd_demo, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except OpenvasaError as error:
        print(f"openvasa: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("openvasa: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
