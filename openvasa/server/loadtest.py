"""Load test: several live streams through a real server on loopback, memory watched.

`run_load_test` starts `openvasa serve` in a child process on 127.0.0.1, opens `streams`
WebSocket sessions at once and feeds each speech in 40 ms chunks at the pace of real time for
`seconds`, then ends them and waits for every frame. It samples the server's resident memory
(VmRSS) twice a second. Each stream must get exactly the frames the server says it made, and
those must cover the audio; memory must level off (the growth after the warm-up stays
small), or `LoadResult.problems` says what went wrong.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from openvasa.timing import frame_count

WARM_UP_S = 10.0  # memory growth is measured from this long after the streams start
MAX_GROWTH_MB = 64.0


@dataclass
class StreamStats:
    frames: int = 0
    server_frames: int = -1
    audio_sent_s: float = 0.0
    server_audio_s: float = 0.0
    first_frame_ms: float = float("nan")
    latency_ms: list[float] = field(default_factory=list)
    fps: float = 0.0
    error: str | None = None


@dataclass
class LoadResult:
    streams: int
    seconds: float
    wall_s: float
    stats: list[StreamStats]
    rss_mb: list[tuple[float, float]]  # (seconds since streams started, MB)

    @property
    def rss_at_warm_up_mb(self) -> float:
        after = [mb for t, mb in self.rss_mb if t >= WARM_UP_S]
        return after[0] if after else float("nan")

    @property
    def rss_peak_mb(self) -> float:
        return max(mb for _, mb in self.rss_mb) if self.rss_mb else float("nan")

    @property
    def growth_mb(self) -> float:
        after = [mb for t, mb in self.rss_mb if t >= WARM_UP_S]
        return max(after) - after[0] if len(after) > 1 else 0.0

    @property
    def problems(self) -> list[str]:
        found = []
        for i, s in enumerate(self.stats):
            if s.error:
                found.append(f"stream {i}: {s.error}")
            elif s.frames != s.server_frames:
                found.append(f"stream {i}: got {s.frames} frames, server made {s.server_frames}")
            elif s.frames < frame_count(s.audio_sent_s, 25.0):
                found.append(f"stream {i}: {s.frames} frames do not cover {s.audio_sent_s:.1f} s")
        if self.growth_mb > MAX_GROWTH_MB:
            found.append(
                f"server memory grew {self.growth_mb:.0f} MB after the first {WARM_UP_S:g} s "
                f"(limit {MAX_GROWTH_MB:g} MB)"
            )
        return found

    def table(self) -> str:
        rows = [
            f"load test: {self.streams} live streams at once over WebSocket on 127.0.0.1, "
            f"{self.seconds:g} s of speech each at real-time pace (wall {self.wall_s:.1f} s)",
            f"{'stream':<8}{'frames':>8}{'fps':>8}{'first ms':>10}{'lat p50':>9}{'lat p95':>9}",
        ]
        for i, s in enumerate(self.stats):
            lat = np.array(s.latency_ms) if s.latency_ms else np.array([np.nan])
            rows.append(
                f"{i:<8}{s.frames:>8}{s.fps:>8.1f}{s.first_frame_ms:>10.0f}"
                f"{np.median(lat):>9.0f}{np.percentile(lat, 95):>9.0f}"
            )
        rows.append(
            f"server memory: {self.rss_mb[0][1]:.0f} MB at start, {self.rss_at_warm_up_mb:.0f} MB "
            f"after {WARM_UP_S:g} s, peak {self.rss_peak_mb:.0f} MB, growth after warm-up "
            f"{self.growth_mb:.1f} MB"
        )
        rows.append("result: " + ("ok" if not self.problems else "; ".join(self.problems)))
        return "\n".join(rows)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _wait_until_up(port: int, process: subprocess.Popen, timeout_s: float = 120.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info", timeout=1.0):
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {timeout_s:g} s")


async def _one_stream(
    port: int, seed: int, pcm: bytes, seconds: float, stats: StreamStats, chunk_ms: float
) -> None:
    import websockets

    from openvasa.server.live import unpack_frame

    chunk = int(chunk_ms * 16) * 2  # bytes of 16 kHz int16
    url = f"ws://127.0.0.1:{port}/api/stream"
    async with websockets.connect(url, max_size=2**22, compression=None) as ws:
        await ws.send(json.dumps({"type": "start", "portrait": "astronaut", "seed": seed}))
        ready = json.loads(await ws.recv())
        if ready.get("type") != "ready":
            stats.error = ready.get("message", str(ready))
            return
        fps = float(ready["fps"])
        sent_at: list[float] = []
        arrivals: list[float] = []

        async def receive() -> None:
            expected = 0
            async for message in ws:
                if isinstance(message, str):
                    reply = json.loads(message)
                    if reply.get("type") == "end":
                        stats.server_frames = int(reply["frames"])
                        stats.server_audio_s = float(reply["audio_s"])
                    else:
                        stats.error = reply.get("message", message)
                    return
                index, _, jpeg, _ = unpack_frame(message)
                if index != expected or not jpeg.startswith(b"\xff\xd8"):
                    stats.error = f"frame {index} came where frame {expected} was due"
                    return
                expected += 1
                now = time.perf_counter()
                arrivals.append(now)
                # The chunk that completed this frame: audio up to its window's end.
                needed = (index + 0.5) / fps + 0.04
                k = min(int(needed * 1000 / chunk_ms), len(sent_at) - 1)
                if k >= 0:
                    stats.latency_ms.append(1000 * (now - sent_at[k]))

        receiver = asyncio.create_task(receive())
        total = int(seconds * 16000) * 2
        start = time.perf_counter()
        for k, first in enumerate(range(0, total, chunk)):
            due = start + k * chunk_ms / 1000
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            piece = pcm[first % len(pcm) : first % len(pcm) + chunk]
            sent_at.append(time.perf_counter())
            await ws.send(piece)
            stats.audio_sent_s += len(piece) / 32000
        await ws.send(json.dumps({"type": "end"}))
        await receiver
        stats.frames = len(arrivals)
        if arrivals:
            stats.first_frame_ms = 1000 * (arrivals[0] - start)
            if len(arrivals) > 1:
                stats.fps = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])


async def _all_streams(port, pid, pcm, streams, seconds, chunk_ms, stats, rss) -> None:
    start = time.perf_counter()
    tasks = [
        asyncio.create_task(_one_stream(port, i, pcm, seconds, stats[i], chunk_ms))
        for i in range(streams)
    ]
    while not all(t.done() for t in tasks):
        rss.append((time.perf_counter() - start, _rss_mb(pid)))
        await asyncio.sleep(0.5)
    for task in tasks:
        if task.exception() is not None:
            stats[tasks.index(task)].error = repr(task.exception())


def run_load_test(seconds: float = 60.0, streams: int = 4, chunk_ms: float = 40.0) -> LoadResult:
    """Run the load test (see the module's docstring) and return what was measured."""
    from openvasa.audio import synthesize_speech

    text = "We trained for many months, and every day we learned something new. " * 3
    speech = synthesize_speech(text).audio.samples
    pcm = (np.clip(speech, -1, 1) * 32767).astype("<i2").tobytes()
    port = _free_port()
    env = dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "openvasa.cli", "serve", "--port", str(port)]
    command += ["--max-sessions", str(streams)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    stats = [StreamStats() for _ in range(streams)]
    rss: list[tuple[float, float]] = []
    try:
        _wait_until_up(port, server)
        t0 = time.perf_counter()
        asyncio.run(_all_streams(port, server.pid, pcm, streams, seconds, chunk_ms, stats, rss))
        wall = time.perf_counter() - t0
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    return LoadResult(streams, seconds, wall, stats, rss)
