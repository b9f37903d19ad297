"""`openvasa bench`: per-stage times of one generation run, and the resulting frame rates."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class BenchResult:
    size: int
    fps: float
    seconds: float
    n_frames: int
    analysis_s: float
    audio_s: float
    motion_s: float
    render_s: float
    encode_s: float
    peak_rss_mb: float
    watermark_s: float = 0.0  # provenance mark on every frame (Generator.finish_frame)

    def table(self) -> str:
        n = self.n_frames
        per = lambda s: 1000.0 * s / n  # noqa: E731 — ms per frame
        streaming = self.audio_s + self.motion_s + self.render_s + self.encode_s
        streaming += self.watermark_s
        rows = [
            f"openvasa bench: {self.seconds:.1f} s of speech, {n} frames at {self.fps:g} fps, "
            f"{self.size}x{self.size}",
            f"{'stage':<24}{'total s':>10}{'ms/frame':>10}{'frames/s':>10}",
            f"{'analysis (once)':<24}{self.analysis_s:>10.3f}{'':>10}{'':>10}",
        ]
        for name, s in (
            ("audio (load+features)", self.audio_s),
            ("motion", self.motion_s),
            ("render", self.render_s),
            ("watermark", self.watermark_s),
            ("encode (H.264+AAC)", self.encode_s),
        ):
            rows.append(f"{name:<24}{s:>10.3f}{per(s):>10.2f}{n / max(s, 1e-9):>10.0f}")
        rows.append(
            f"{'end to end':<24}{streaming:>10.3f}{per(streaming):>10.2f}{n / streaming:>10.0f}"
        )
        total = streaming + self.analysis_s
        rows.append(
            f"{'end to end + analysis':<24}{total:>10.3f}{per(total):>10.2f}{n / total:>10.0f}"
        )
        rows.append(
            f"real-time factor: {self.seconds / total:.1f}x faster than playback; "
            f"peak memory {self.peak_rss_mb:.0f} MB"
        )
        return "\n".join(rows)


def run_benchmark(seconds: float = 10.0, size: int = 512, fps: float = 25.0) -> BenchResult:
    """Generate `seconds` of video from the astronaut portrait and synthesised speech."""
    import resource

    from skimage import data

    from openvasa.audio import Audio, save_wav, synthesize_speech
    from openvasa.pipeline import Generator, StageTimes
    from openvasa.settings import Controls, OutputSettings

    text = (
        "Good morning. Today I will tell you about the stars, the moon and the long way home. "
        "We trained for many months, and every day we learned something new. "
    )
    clip = synthesize_speech(text * max(1, int(seconds // 8) + 1)).audio
    samples = clip.samples[: int(seconds * clip.sample_rate)]
    generator = Generator(OutputSettings(fps=fps, size=size))
    # Warm up: compile the render kernels and create the MediaPipe graphs outside the timing.
    warm = generator.prepare_portrait(data.astronaut(), size=size)
    generator.finish_frame(warm.renderer.render(warm.latent.motion0))  # and the watermark's
    # ... and load the motion engine (the diffusion model, the Whisper encoder) on 1 s of audio.
    generator.motion(warm, Audio(samples[: clip.sample_rate], clip.sample_rate), Controls())
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        save_wav(Audio(samples, clip.sample_rate), wav)
        times = StageTimes()
        t0 = time.perf_counter()
        portrait = generator.prepare_portrait(data.astronaut(), size=size)
        times.analysis_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        audio = generator.load_audio(wav)
        times.audio_s = time.perf_counter() - t0
        motion = generator.animate_motion(portrait, audio, Controls(), times)
        generator.write_outputs(portrait, motion, audio, Path(tmp) / "bench.mp4", None, None, times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return BenchResult(
        size,
        fps,
        len(samples) / clip.sample_rate,
        len(motion),
        times.analysis_s,
        times.audio_s,
        times.motion_s,
        times.render_s,
        times.encode_s,
        float(np.round(peak)),
        watermark_s=times.watermark_s,
    )
