"""The `openvasa` command line: generate, animate, demo, bench."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from openvasa.console import gaze_argument as _gaze
from openvasa.console import progress_bar as _progress
from openvasa.errors import OpenvasaError
from openvasa.settings import ENGINES, FRAMINGS, Controls, OutputSettings
from openvasa.version import __version__


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    defaults = OutputSettings()
    parser.add_argument("-o", "--output", type=Path, help="output MP4 (H.264 + AAC)")
    parser.add_argument("--fps", type=float, default=defaults.fps, help="frames per second, 20-60")
    parser.add_argument(
        "--size",
        type=int,
        default=defaults.size,
        help="frame side in pixels (native framing: the longer side)",
    )
    parser.add_argument(
        "--framing",
        default=defaults.framing,
        choices=FRAMINGS,
        help="native: keep the photo's own framing (the face composited back into it); "
        "square: re-frame the face in a square; auto (default): native for "
        "head-and-shoulders photos and closer, square for wider shots",
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
    _add_watermark_options(parser)


def _add_watermark_options(parser: argparse.ArgumentParser) -> None:
    """Provenance: the invisible watermark is on unless switched off explicitly."""
    parser.add_argument(
        "--no-watermark",
        action="store_true",
        help="do NOT add the invisible provenance watermark (it is on by default; see README)",
    )
    parser.add_argument(
        "--watermark-key",
        metavar="TEXT",
        help="also carry a 24-bit id of TEXT in the watermark (openvasa verify --key TEXT)",
    )


def _watermark_settings(args: argparse.Namespace) -> dict:
    return {"watermark": not args.no_watermark, "watermark_key": args.watermark_key}


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
    parser.add_argument(
        "--engine",
        default=OutputSettings().engine,
        choices=ENGINES,
        help="motion engine: diffusion (learned, default), energy (loudness), teacher (phonemes)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openvasa", description=__doc__)
    parser.add_argument("--version", action="version", version=f"openvasa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="portrait + audio → talking video")
    gen.add_argument("portrait", type=Path, help="portrait image (jpg, png, webp, tiff, …)")
    gen.add_argument(
        "audio",
        type=Path,
        nargs="?",
        help="speech or singing (wav, mp3, flac, ogg, m4a, …); optional with --text",
    )
    _add_output_options(gen)
    _add_controls(gen)
    _add_speech_options(gen)

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
    _add_live_commands(sub, bench)
    _add_corpus_commands(sub)
    _add_verify_command(sub)
    _add_eval_command(sub)
    _add_diffusion_commands(sub, gen)
    return parser


def _add_verify_command(sub) -> None:
    verify = sub.add_parser(
        "verify",
        help="does a video or image carry the openvasa watermark? (exit 0: found in every file)",
    )
    verify.add_argument("files", type=Path, nargs="+", metavar="FILE", help="videos or images")
    verify.add_argument("--key", metavar="TEXT", help="the --watermark-key the mark may carry")
    verify.add_argument(
        "--max-seconds",
        type=float,
        default=30.0,
        help="read at most this much of each video (more frames, surer answer)",
    )
    verify.add_argument(
        "--no-search",
        action="store_true",
        help="only the frame geometry openvasa writes (faster; misses crops and rescales)",
    )


def _add_speech_options(gen: argparse.ArgumentParser) -> None:
    """--text / --phonemes for the teacher engine (see openvasa/io/phoneme_file.py)."""
    gen.set_defaults(engine=None)  # teacher with --text or --phonemes, else the default
    gen.add_argument("--text", help="speak this text with eSpeak NG (no AUDIO needed)")
    gen.add_argument(
        "--lang", default="en", help="eSpeak NG language of --text: en, de, fr, ja, es, …"
    )
    gen.add_argument("--voice", metavar="VARIANT", help="eSpeak NG voice variant: f1-f5, m1-m7")
    gen.add_argument("--rate", type=int, default=160, metavar="WPM", help="words per minute")
    gen.add_argument(
        "--phonemes",
        type=Path,
        metavar="FILE",
        help="phoneme timings of AUDIO from your own TTS or aligner: JSON or TSV of "
        "phoneme, start, end in seconds (IPA or ARPAbet)",
    )


def _add_corpus_commands(sub) -> None:
    corpus = sub.add_parser("corpus", help="synthetic talking corpus for training")
    corpus_sub = corpus.add_subparsers(dest="corpus_command", required=True)
    build = corpus_sub.add_parser("build", help="speak, animate and store clips in shards")
    build.add_argument("--hours", type=float, required=True, help="hours of speech to make")
    build.add_argument(
        "--langs", default="en,de,fr,es,it,ja", help="comma-separated eSpeak NG languages"
    )
    build.add_argument("--out", type=Path, required=True, help="corpus folder (resumable)")
    build.add_argument("--seed", type=int, default=0, help="the corpus is a function of it")
    build.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    build.add_argument("--fps", type=float, default=25.0, help="motion frame rate")
    build.add_argument(
        "--shard-minutes", type=float, default=10.0, help="minutes of speech per shard"
    )
    build.add_argument(
        "--no-whisper", action="store_true", help="skip the Whisper encoder features"
    )
    build.add_argument("--no-pauses", action="store_true", help="no silence around the utterances")
    build.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    stats = sub.add_parser(
        "motion-stats", help="blink rate, ΔP, head ranges, mouth opening of motion or video"
    )
    stats.add_argument("source", type=Path, help="motion CSV/JSON, a video, or a corpus folder")
    stats.add_argument("--audio", type=Path, help="the audio of a motion file (speech/silence)")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


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
    audio, phonemes, engine = _speech_input(args)
    settings = OutputSettings(
        fps=args.fps,
        size=args.size,
        framing=args.framing,
        engine=engine,
        max_audio_s=args.max_audio_s,
        controls=controls,
        diffusion=_diffusion_options(args),
        **_watermark_settings(args),
    )
    generator = Generator(settings)
    update, bar = _progress(not args.quiet, "rendering")
    try:
        result = generator.generate(
            args.portrait,
            audio,
            args.output,
            frames_dir=args.frames,
            motion_out=args.motion_out,
            progress=update,
            phonemes=phonemes,
        )
    finally:
        if bar is not None:
            bar.close()
    for warning in result.warnings:
        print(f"openvasa: note: {warning}", file=sys.stderr)
    _report(result, args.output or args.frames or args.motion_out)
    return 0


def _speech_input(args: argparse.Namespace):
    """AUDIO, --text or --phonemes → (audio: path, Audio or None; phonemes or None; engine)."""
    from openvasa.audio import synthesize_speech
    from openvasa.io.phoneme_file import read_phonemes

    if args.text is not None and (args.audio is not None or args.phonemes is not None):
        raise OpenvasaError(
            "--text speaks the text itself: give either --text or AUDIO (with --phonemes)."
        )
    if args.text is None and args.audio is None and args.phonemes is None:
        raise OpenvasaError('Give the speech: an AUDIO file, --text "…", or --phonemes FILE.')
    spoken = args.text is not None or args.phonemes is not None
    engine = args.engine or ("teacher" if spoken else OutputSettings().engine)
    if args.text is not None:
        kanji = any("\u4e00" <= c <= "\u9fff" for c in args.text)
        if args.lang.lower().startswith("ja") and kanji:
            print(
                "openvasa: note: eSpeak NG reads Japanese kana, not kanji (it spells them "
                "out); write the text in hiragana or katakana.",
                file=sys.stderr,
            )
        clip = synthesize_speech(
            args.text, lang=args.lang, voice_variant=args.voice, rate_wpm=args.rate
        )
        return clip.audio, clip.phonemes, engine
    phonemes = read_phonemes(args.phonemes) if args.phonemes is not None else None
    if engine == "teacher" and phonemes is None:
        raise OpenvasaError("The teacher engine needs the phonemes: give --text or --phonemes.")
    return args.audio, phonemes, engine


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
        framing=args.framing,
        max_audio_s=args.max_audio_s,
        **_watermark_settings(args),
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
    if getattr(args, "stream", False):
        from openvasa.server.cli import cmd_bench_stream

        return cmd_bench_stream(args)
    from openvasa.bench import run_benchmark

    print(run_benchmark(seconds=args.seconds, size=args.size, fps=args.fps).table())
    return 0


def cmd_corpus(args: argparse.Namespace) -> int:
    from openvasa.corpus import CorpusSpec, build_corpus

    spec = CorpusSpec(
        hours=args.hours,
        langs=tuple(lang.strip() for lang in args.langs.split(",") if lang.strip()),
        seed=args.seed,
        fps=args.fps,
        shard_minutes=args.shard_minutes,
        whisper=not args.no_whisper,
        pauses=not args.no_pauses,
    )
    report = build_corpus(spec, args.out, workers=args.workers, progress=not args.quiet)
    print(report.summary())
    return 0


def cmd_motion_stats(args: argparse.Namespace) -> int:
    from openvasa.motion.stats import statistics_of

    update, bar = _progress(not args.quiet, "measuring")
    try:
        statistics = statistics_of(args.source, audio=args.audio, progress=update)
    finally:
        if bar is not None:
            bar.close()
    print(statistics.to_json() if args.json else statistics.table())
    return 0


COMMANDS = {"generate": cmd_generate, "animate": cmd_animate, "demo": cmd_demo, "bench": cmd_bench}
COMMANDS["corpus"] = cmd_corpus
COMMANDS["motion-stats"] = cmd_motion_stats


def cmd_verify(args: argparse.Namespace) -> int:
    """Exit 0 when every file carries the mark, 1 when one does not, 2 when one is unreadable."""
    from openvasa.provenance import verify_file

    if not args.max_seconds > 0:
        raise OpenvasaError(f"--max-seconds {args.max_seconds:g} must be positive.")
    code = 0
    for path in args.files:
        try:
            report = verify_file(
                path, key=args.key, max_seconds=args.max_seconds, search=not args.no_search
            )
        except OpenvasaError as error:
            print(f"openvasa: error: {error}", file=sys.stderr)
            code = 2
            continue
        print(report.summary())
        if not report.found:
            code = max(code, 1)
    return code


COMMANDS["verify"] = cmd_verify


def _add_eval_command(sub) -> None:
    from openvasa.evaluation.cli import add_eval_parser

    add_eval_parser(sub)


def cmd_eval(args: argparse.Namespace) -> int:
    from openvasa.evaluation.cli import cmd_eval as run_eval

    return run_eval(args)


COMMANDS["eval"] = cmd_eval


def _add_live_commands(sub, bench) -> None:
    """`openvasa serve` and `openvasa bench --stream` (openvasa/server/cli.py)."""
    from openvasa.server.cli import add_serve_parser, add_stream_bench_options

    add_serve_parser(sub)
    add_stream_bench_options(bench)


def cmd_serve(args: argparse.Namespace) -> int:
    from openvasa.server.cli import cmd_serve as run_server

    return run_server(args)


COMMANDS["serve"] = cmd_serve


def _diffusion_options(args: argparse.Namespace):
    from openvasa.settings import DiffusionOptions

    return DiffusionOptions(
        steps=args.steps,
        cfg_audio=args.cfg_audio,
        cfg_gaze=args.cfg_gaze,
        cfg_emotion=args.cfg_emotion,
        checkpoint=args.checkpoint,
    )


def _add_diffusion_commands(sub, gen) -> None:
    """`train motion`, `preprocess` and generate's sampling options (motion/diffusion/cli.py)."""
    from openvasa.motion.diffusion.cli import add_commands, add_generation_options

    add_commands(sub)
    add_generation_options(gen)


def cmd_train(args: argparse.Namespace) -> int:
    from openvasa.motion.diffusion.cli import cmd_train as run

    return run(args)


def cmd_preprocess(args: argparse.Namespace) -> int:
    from openvasa.motion.diffusion.cli import cmd_preprocess as run

    return run(args)


COMMANDS["train"] = cmd_train
COMMANDS["preprocess"] = cmd_preprocess


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        # Many small BLAS calls from several live streams at once: one thread each. A pool
        # thread per core spinning for each of them cost the server a tenth of its frames.
        for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(variable, "1")
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
