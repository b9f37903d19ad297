"""Command-line parts of live streaming: `openvasa serve` and `openvasa bench --stream`."""

from __future__ import annotations

import argparse
from dataclasses import fields

from openvasa.errors import OpenvasaError
from openvasa.settings import ServerSettings


def add_serve_parser(sub) -> None:
    """`openvasa serve`: its options come from ServerSettings (one source of truth)."""
    serve = sub.add_parser(
        "serve", help="web page, REST video jobs and live WebSocket streams (needs [server])"
    )
    defaults = ServerSettings()
    helps = {
        "host": "address to listen on (0.0.0.0: every interface)",
        "port": "TCP port (0: any free one)",
        "max_upload_mb": "largest upload, in MB",
        "max_audio_s": "longest audio of a job or a live stream, in seconds",
        "max_sessions": "live streams at the same time",
        "max_jobs": "video jobs queued or running at the same time",
        "job_workers": "video jobs that run at once",
        "max_portraits": "analysed portraits kept in memory",
        "jpeg_quality": "JPEG quality of live frames, 1-100",
        "idle_after_s": "seconds without audio before a live face goes on idling",
        "max_idle_s": "seconds without audio before a live stream is closed",
        "data_dir": "folder for uploads and videos (default: a temporary one, removed at exit)",
        "job_ttl_s": "seconds a finished video stays available",
        "framing": "auto, native (the photo's own framing) or square",
    }
    for f in fields(ServerSettings):
        default = getattr(defaults, f.name)
        kind = str if f.name in ("host", "data_dir") else type(default)
        serve.add_argument(
            "--" + f.name.replace("_", "-"),
            type=kind,
            default=default,
            help=f"{helps.get(f.name, '')} (default {default})",
        )


def cmd_serve(args: argparse.Namespace) -> int:
    from openvasa.server import serve

    settings = ServerSettings(**{f.name: getattr(args, f.name) for f in fields(ServerSettings)})
    serve(settings)
    return 0


def add_stream_bench_options(bench: argparse.ArgumentParser) -> None:
    bench.add_argument(
        "--stream",
        action="store_true",
        help="live streaming instead: first-frame latency and frames/s per concurrent stream",
    )
    bench.add_argument(
        "--streams", type=int, default=2, help="with --stream: concurrent streams (default 2)"
    )
    bench.add_argument(
        "--chunk-ms", type=float, default=40.0, help="with --stream: audio chunk length, ms"
    )
    bench.add_argument(
        "--load-seconds",
        type=float,
        default=0.0,
        help="with --stream: also run a load test through a real server for this long",
    )
    bench.add_argument(
        "--load-streams", type=int, default=4, help="with --load-seconds: streams (default 4)"
    )
    bench.add_argument(
        "--diffusion-streams",
        type=int,
        default=None,
        help="with --stream: live streams that may use the diffusion engine (default: all; "
        "beyond it they use the energy engine)",
    )
    bench.add_argument(
        "--check",
        action="store_true",
        help="with --load-seconds: exit 1 if a stream lost frames or server memory kept growing",
    )


def cmd_bench_stream(args: argparse.Namespace) -> int:
    from openvasa.bench_stream import run_stream_benchmark

    if not 1 <= args.streams <= 16 or not 1 <= args.load_streams <= 16:
        raise OpenvasaError("--streams and --load-streams must lie in 1-16.")
    if not 10 <= args.chunk_ms <= 1000:
        raise OpenvasaError("--chunk-ms must lie in 10-1000.")
    if not args.seconds > 0:
        raise OpenvasaError("--seconds must be positive.")
    result = run_stream_benchmark(
        seconds=args.seconds,
        streams=args.streams,
        chunk_ms=args.chunk_ms,
        size=args.size,
        fps=args.fps,
        diffusion_streams=args.diffusion_streams,
    )
    print(result.table(), flush=True)
    if args.load_seconds <= 0:
        return 0
    from openvasa.server import _require_server_packages
    from openvasa.server.loadtest import run_load_test

    _require_server_packages()
    load = run_load_test(seconds=args.load_seconds, streams=args.load_streams)
    print(load.table())
    return 1 if args.check and load.problems else 0
