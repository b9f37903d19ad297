"""The Generator: portrait + audio → talking-face video, the whole job in one object.

    generator = openvasa.Generator()
    result = generator.generate("portrait.jpg", "speech.wav", "out.mp4", emotion="happy")

Stages (each a typed value, see DESIGN.md): face analysis → FaceLatent; audio → motion
(MotionSequence); renderer(FaceLatent, motion_t) → frames; video writer → MP4.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from openvasa.audio import Audio, load_audio
from openvasa.errors import OpenvasaError
from openvasa.face.detect import FaceAnalyzer, default_analyzer
from openvasa.face.framing import crop_image, map_points, plan_framing
from openvasa.face.image import load_image
from openvasa.latent.face_latent import FaceLatent, encode_portrait
from openvasa.latent.motion import MotionFrame, MotionSequence
from openvasa.motion.energy import EnergyEngine
from openvasa.render.renderer import Renderer
from openvasa.settings import Controls, OutputSettings

PathLike = str | os.PathLike[str]
ProgressFn = Callable[[int, int], None]


@dataclass
class StageTimes:
    """Wall-clock seconds spent in each stage of one run."""

    analysis_s: float = 0.0
    audio_s: float = 0.0
    motion_s: float = 0.0
    render_s: float = 0.0
    encode_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.analysis_s + self.audio_s + self.motion_s + self.render_s + self.encode_s


@dataclass
class Portrait:
    """A portrait prepared for one output framing: its latent and its renderer."""

    latent: FaceLatent
    renderer: Renderer
    warnings: list[str] = field(default_factory=list)


@dataclass
class GenerationResult:
    motion: MotionSequence
    n_frames: int
    times: StageTimes
    warnings: list[str]
    output: Path | None = None


class Generator:
    """Makes talking-face videos. Keep one per process: it holds the face analyser."""

    def __init__(
        self, settings: OutputSettings | None = None, *, analyzer: FaceAnalyzer | None = None
    ):
        self.settings = settings or OutputSettings()
        self._analyzer = analyzer
        self._engines = {"energy": EnergyEngine()}

    @property
    def analyzer(self) -> FaceAnalyzer:
        if self._analyzer is None:
            self._analyzer = default_analyzer()
        return self._analyzer

    # --- stages ---------------------------------------------------------------------------
    def prepare_portrait(
        self, image: PathLike | np.ndarray, *, head_distance: float = 1.0, size: int | None = None
    ) -> Portrait:
        """Analyse a portrait and frame it: face mesh, person mask, latent and renderer."""
        size = size or self.settings.size
        name = Path(image).name if isinstance(image, (str, os.PathLike)) else "the portrait"
        pixels = load_image(image)
        detection = self.analyzer.detect(pixels, name=name)
        framing = plan_framing(detection.landmarks, size, head_distance)
        framed = crop_image(pixels, framing)
        mask = self.analyzer.segment(framed)
        latent = encode_portrait(framed, mask, map_points(framing, detection.landmarks), framing)
        return Portrait(latent, Renderer(latent), list(detection.warnings))

    def load_audio(self, audio: PathLike | Audio) -> Audio:
        if isinstance(audio, Audio):
            return audio
        return load_audio(audio, max_duration_s=self.settings.max_audio_s)

    def motion(self, portrait: Portrait, audio: Audio, controls: Controls) -> MotionSequence:
        engine = self._engines[self.settings.engine]
        return engine.generate(audio, self.settings.fps, portrait.latent.motion0, controls)

    def render_frame(self, portrait: Portrait, motion: MotionFrame) -> np.ndarray:
        """One finished output frame: rendered, then post-processed (every path that emits
        frames — files, PNGs, live streams — goes through here). The array is reused."""
        return self.finish_frame(portrait.renderer.render(motion))

    def finish_frame(self, frame: np.ndarray) -> np.ndarray:
        """Post-processing applied to every emitted frame, in place (e.g. provenance marks)."""
        return frame

    def frames(self, portrait: Portrait, motion: MotionSequence) -> Iterator[np.ndarray]:
        """Finished RGB frames; each array is reused by the next one (copy to keep it)."""
        for i in range(len(motion)):
            yield self.render_frame(portrait, motion.frame(i))

    # --- the whole job ---------------------------------------------------------------------
    def generate(
        self,
        portrait: PathLike | np.ndarray,
        audio: PathLike | Audio,
        output: PathLike | None = None,
        *,
        frames_dir: PathLike | None = None,
        motion_out: PathLike | None = None,
        progress: ProgressFn | None = None,
        **controls,
    ) -> GenerationResult:
        """Make a talking-face video.

        portrait: image path or (H, W, 3) RGB array; audio: path or Audio.
        output: MP4 path (H.264 + AAC), or None to skip the video; frames_dir: also write PNG
        frames; motion_out: also write the motion as CSV or JSON (ARKit names).
        controls: gaze_deg=(yaw, pitch), head_distance, emotion, emotion_strength, seed.
        """
        ctl = replace(self.settings.controls, **controls)
        times = StageTimes()
        t0 = time.perf_counter()
        prepared = self.prepare_portrait(portrait, head_distance=ctl.head_distance)
        times.analysis_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        clip = self.load_audio(audio)
        times.audio_s = time.perf_counter() - t0
        motion = self.animate_motion(prepared, clip, ctl, times)
        self.write_outputs(prepared, motion, clip, output, frames_dir, motion_out, times, progress)
        return GenerationResult(
            motion, len(motion), times, prepared.warnings, Path(output) if output else None
        )

    def animate_motion(
        self, portrait: Portrait, audio: Audio, controls: Controls, times: StageTimes
    ) -> MotionSequence:
        t0 = time.perf_counter()
        motion = self.motion(portrait, audio, controls)
        times.motion_s = time.perf_counter() - t0
        return motion

    def write_outputs(
        self,
        portrait: Portrait,
        motion: MotionSequence,
        audio: Audio | None,
        output: PathLike | None,
        frames_dir: PathLike | None,
        motion_out: PathLike | None,
        times: StageTimes,
        progress: ProgressFn | None = None,
    ) -> None:
        """Render every frame of `motion` and write the requested outputs."""
        from openvasa.io.frames import write_png_frames
        from openvasa.io.motion_file import write_motion
        from openvasa.io.video import VideoWriter

        if output is None and frames_dir is None and motion_out is None:
            raise OpenvasaError(
                "Nothing to write: give an output video, a frames folder or a motion file."
            )
        if motion_out is not None:
            write_motion(motion, motion_out)
        if output is None and frames_dir is None:
            return
        size = portrait.latent.framing.size
        writer = (
            VideoWriter(
                output,
                fps=motion.fps,
                size=size,
                audio=audio,
                crf=self.settings.crf,
                metadata={"comment": "Generated by openvasa (AI-generated video)"},
            )
            if output is not None
            else None
        )
        try:
            png_frames: list[np.ndarray] = []
            for i in range(len(motion)):
                t0 = time.perf_counter()
                frame = self.render_frame(portrait, motion.frame(i))
                times.render_s += time.perf_counter() - t0
                t0 = time.perf_counter()
                if writer is not None:
                    writer.write(frame)
                if frames_dir is not None:
                    png_frames.append(frame.copy())
                    if len(png_frames) == 50:
                        write_png_frames(png_frames, frames_dir, start=i + 1 - len(png_frames))
                        png_frames.clear()
                times.encode_s += time.perf_counter() - t0
                if progress is not None:
                    progress(i + 1, len(motion))
            t0 = time.perf_counter()
            if frames_dir is not None and png_frames:
                write_png_frames(png_frames, frames_dir, start=len(motion) - len(png_frames))
            if writer is not None:
                writer.close()
                writer = None
            times.encode_s += time.perf_counter() - t0
        finally:
            if writer is not None:
                writer.abort()
