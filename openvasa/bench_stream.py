"""`openvasa bench --stream`: first-frame latency and frame rate of live streams.

Two measurements, both through `Generator.open_stream` with JPEG frames (what the server
sends):

- latency: audio is pushed in `chunk_ms` pieces at the pace of real time, as a microphone
  delivers it; the first-frame latency is the time from pushing the first chunk to the first
  JPEG frame coming out. Frame 0 needs `lookahead_s` of audio (diffusion engine: 160 ms at
  25 fps, energy engine: 60 ms), so most of the figure is that audio itself arriving in real
  time. Per-frame latency (the chunk that completes a frame pushed → frame out) is
  reported over the whole clip.
- throughput: `streams` sessions at once, each fed its clip as fast as it takes it; frames
  per second per stream is how fast each could go, so ≥ 25 means each can keep up with live
  audio at 25 fps while the others run.
"""

from __future__ import annotations

import resource
import threading
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class StreamBenchResult:
    size: int
    fps: float
    seconds: float
    chunk_ms: float
    streams: int
    lookahead_ms: float
    engine: str = "energy"  # the engine of a lone stream
    open_s: list[float] = field(default_factory=list)
    first_frame_ms: list[float] = field(default_factory=list)
    frame_latency_ms: list[float] = field(default_factory=list)
    stream_fps: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0

    def table(self) -> str:
        first = np.array(self.first_frame_ms)
        lat = np.array(self.frame_latency_ms)
        rows = [
            f"openvasa bench --stream: {self.size}x{self.size} at {self.fps:g} fps, JPEG frames, "
            f"{self.engine} engine, audio look-ahead {self.lookahead_ms:.0f} ms",
            f"session open (warm-up included): median {1000 * np.median(self.open_s):.0f} ms",
            f"first-frame latency ({self.chunk_ms:g} ms chunks at real-time pace, first chunk in "
            f"→ first frame out), {len(first)} runs: median {np.median(first):.1f} ms, "
            f"max {first.max():.1f} ms",
            f"per-frame latency (completing chunk in → frame out): median "
            f"{np.median(lat):.1f} ms, 95th percentile {np.percentile(lat, 95):.1f} ms",
            f"throughput with {self.streams} concurrent streams, {self.seconds:g} s of audio "
            f"each: " + ", ".join(f"{v:.1f}" for v in self.stream_fps) + " frames/s per stream "
            f"(min {min(self.stream_fps):.1f}; live needs {self.fps:g})",
            f"peak memory {self.peak_rss_mb:.0f} MB",
        ]
        return "\n".join(rows)


def _speech(seconds: float):
    from openvasa.audio import synthesize_speech

    text = (
        "Good morning. Today I will tell you about the stars, the moon and the long way home. "
        "We trained for many months, and every day we learned something new. "
    )
    clip = synthesize_speech(text * max(1, int(seconds // 8) + 1)).audio
    return clip.samples[: int(seconds * clip.sample_rate)]


def _paced_run(generator, portrait, samples, chunk: int, result: StreamBenchResult) -> None:
    from openvasa.settings import StreamSettings

    t0 = time.perf_counter()
    session = generator.open_stream(portrait, stream=StreamSettings(frame_format="jpeg"))
    result.open_s.append(time.perf_counter() - t0)
    frames = []
    consumer = threading.Thread(target=lambda: frames.extend(session.frames()), daemon=True)
    consumer.start()
    try:
        start = time.perf_counter()
        for k, first in enumerate(range(0, len(samples), chunk)):
            # Real-time pace: chunk k is complete (and pushed) at (k + 1) · chunk duration.
            due = start + k * chunk / 16000
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            session.push_audio(samples[first : first + chunk], collect=False)
        session.end(collect=False)
        consumer.join()
    finally:
        session.close()
    result.first_frame_ms.append(1000 * (frames[0].ready_at - start))
    result.frame_latency_ms.extend(1000 * (f.ready_at - f.audio_at) for f in frames)


def _throughput(generator, portrait, samples, streams: int) -> list[float]:
    from openvasa.settings import StreamSettings

    sessions = [
        generator.open_stream(portrait, stream=StreamSettings(frame_format="jpeg"), seed=i)
        for i in range(streams)
    ]
    rates = [0.0] * streams
    barrier = threading.Barrier(streams)

    def run(i: int) -> None:
        session = sessions[i]
        count = []
        consumer = threading.Thread(
            target=lambda: count.extend(1 for _ in session.frames()), daemon=True
        )
        barrier.wait()
        t0 = time.perf_counter()
        consumer.start()
        for first in range(0, len(samples), 640):
            session.push_audio(samples[first : first + 640], collect=False)
        session.end(collect=False)
        consumer.join()
        rates[i] = len(count) / (time.perf_counter() - t0)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for session in sessions:
        session.close()
    return rates


def run_stream_benchmark(
    seconds: float = 10.0,
    streams: int = 2,
    chunk_ms: float = 40.0,
    latency_runs: int = 5,
    size: int = 512,
    fps: float = 25.0,
    diffusion_streams: int | None = None,
) -> StreamBenchResult:
    """Measure first-frame latency (paced, one stream) and per-stream frame rate (`streams`
    at once, unpaced) on the astronaut portrait with synthesised speech. diffusion_streams:
    how many streams may use the diffusion engine (None: no limit, the default)."""
    from skimage import data

    from openvasa.pipeline import Generator
    from openvasa.settings import OutputSettings

    samples = _speech(seconds)
    generator = Generator(OutputSettings(fps=fps, size=size))
    if diffusion_streams is not None and generator.settings.engine == "diffusion":
        generator.engine("diffusion").settings.live_streams = diffusion_streams
    portrait = generator.prepare_portrait(data.astronaut(), size=size)
    chunk = int(round(chunk_ms * 16))
    probe = generator.open_stream(portrait)
    result = StreamBenchResult(
        size,
        fps,
        len(samples) / 16000,
        chunk_ms,
        streams,
        1000 * probe.lookahead_s,
        probe.engine_name,
    )
    probe.close()
    # The latency runs use the first 2 s of the clip: enough for a steady state.
    for _ in range(latency_runs):
        _paced_run(generator, portrait, samples[: 2 * 16000], chunk, result)
    result.stream_fps = _throughput(generator, portrait, samples, streams)
    result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return result
