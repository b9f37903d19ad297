"""The Generator: portrait + audio → talking-face video, the whole job in one object.

    generator = openvasa.Generator()
    result = generator.generate("portrait.jpg", "speech.wav", "out.mp4", emotion="happy")

Stages (each a typed value, see DESIGN.md): face analysis → FaceLatent; audio → motion
(MotionSequence); renderer(FaceLatent, motion_t) → frames; video writer → MP4.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from openvasa.audio import Audio, PhonemeEvent, SpeechClip, load_audio
from openvasa.audio.load import SAMPLE_RATE
from openvasa.errors import OpenvasaError
from openvasa.face.detect import FaceAnalyzer, default_analyzer
from openvasa.face.framing import crop_image, map_points, plan_framing
from openvasa.face.image import load_image
from openvasa.latent.face_latent import encode_portrait
from openvasa.latent.motion import MotionFrame, MotionSequence
from openvasa.motion.energy import EnergyEngine, concatenate
from openvasa.motion.teacher import TeacherEngine
from openvasa.render.portrait import Portrait
from openvasa.render.renderer import Renderer
from openvasa.settings import FRAMINGS, Controls, OutputSettings, StreamSettings

if TYPE_CHECKING:
    from openvasa.streaming import StreamSession

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
    watermark_s: float = 0.0  # the provenance mark added to every frame (finish_frame)

    @property
    def total_s(self) -> float:
        return (
            self.analysis_s
            + self.audio_s
            + self.motion_s
            + self.render_s
            + self.encode_s
            + self.watermark_s
        )


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
        # MediaPipe's graphs must not run in two threads at once (server jobs, live streams).
        self._analysis_lock = threading.Lock()
        self._engines = {"energy": EnergyEngine()}
        self._engines["teacher"] = TeacherEngine()  # needs phoneme timings (text or a file)
        self._diffusion_slots: threading.Semaphore | None = None  # live diffusion streams

    def engine(self, name: str):
        """The motion engine called `name`; the diffusion model is loaded on first use."""
        if name == "diffusion" and name not in self._engines:
            from openvasa.motion.diffusion.engine import DiffusionEngine, DiffusionSettings
            from openvasa.motion.diffusion.sampler import Guidance

            options = self.settings.diffusion
            guidance = Guidance(
                audio=options.cfg_audio, gaze=options.cfg_gaze, emotion=options.cfg_emotion
            )
            settings = DiffusionSettings(options.steps, guidance=guidance)
            self._engines[name] = DiffusionEngine(options.checkpoint, settings)
        return self._engines[name]

    def live_engine(self):
        """The engine live streams use: the configured one if it can stream at the output's
        frame rate (diffusion: sliding windows with a short audio look-ahead), else the causal
        energy engine."""
        engine = self.engine(self.settings.engine)
        fps = getattr(engine, "fps", self.settings.fps)  # the diffusion model's own rate
        if not hasattr(engine, "open") or abs(fps - self.settings.fps) > 1e-3:
            return self.engine("energy")
        if engine.name == "diffusion" and engine.settings.live_stream_slots() == 0:
            return self.engine("energy")  # diffusion streams turned off (live_streams = 0)
        return engine

    def live_motion(self, portrait: Portrait, audio: Audio, controls: Controls) -> MotionSequence:
        """The motion a live stream of all of `audio` shows when it keeps up with real time,
        made in one call: the live engine's stream fed the whole clip (a stream's motion does
        not depend on how its audio is cut into pieces unless it catches up)."""
        if audio.sample_rate != SAMPLE_RATE:
            audio = Audio.from_array(audio.samples, audio.sample_rate)
        stream = self.live_engine().open(self.settings.fps, portrait.latent.motion0, controls)
        samples = audio.samples
        return concatenate([stream.push(samples), stream.end()], self.settings.fps)

    @property
    def analyzer(self) -> FaceAnalyzer:
        if self._analyzer is None:
            self._analyzer = default_analyzer()
        return self._analyzer

    # --- stages ---------------------------------------------------------------------------
    def prepare_portrait(
        self,
        image: PathLike | np.ndarray,
        *,
        head_distance: float = 1.0,
        size: int | tuple[int, int] | None = None,
        framing: str | None = None,
    ) -> Portrait:
        """Analyse a portrait and frame it: face mesh, person mask, latent and renderer.

        size: output side in pixels (the square frame's side, or the native frame's longer
        side), or an exact (width, height); default `settings.size`. framing: "auto",
        "native" or "square" (see `openvasa.face.framing`); default `settings.framing`.
        """
        size = size or self.settings.size
        mode = framing or self.settings.framing
        if mode not in FRAMINGS:
            raise OpenvasaError(f"Unknown framing {mode!r}: choose one of {', '.join(FRAMINGS)}.")
        name = Path(image).name if isinstance(image, (str, os.PathLike)) else "the portrait"
        pixels = load_image(image)
        with self._analysis_lock:
            detection = self.analyzer.detect(pixels, name=name)
        photo_size = (pixels.shape[1], pixels.shape[0])
        plan = plan_framing(
            detection.landmarks, size, head_distance, framing=mode, photo_size=photo_size
        )
        framed = crop_image(pixels, plan)
        with self._analysis_lock:
            mask = self.analyzer.segment(framed)
        latent = encode_portrait(framed, mask, map_points(plan, detection.landmarks), plan)
        return Portrait(latent, Renderer(latent), list(detection.warnings))

    def load_audio(self, audio: PathLike | Audio) -> Audio:
        if isinstance(audio, Audio):
            return audio
        return load_audio(audio, max_duration_s=self.settings.max_audio_s)

    def motion(
        self,
        portrait: Portrait,
        audio: Audio | None,
        controls: Controls,
        phonemes: Sequence[PhonemeEvent] | None = None,
    ) -> MotionSequence:
        """Motion for the clip from the configured engine. phonemes: timed phonemes for the
        teacher engine (then audio may be None: motion from the phonemes alone)."""
        engine = self.engine(self.settings.engine)
        if getattr(engine, "needs_phonemes", False):
            return engine.generate(
                audio, self.settings.fps, portrait.latent.motion0, controls, phonemes=phonemes
            )
        if audio is None:
            raise OpenvasaError(f"The {self.settings.engine} engine needs audio.")
        return engine.generate(audio, self.settings.fps, portrait.latent.motion0, controls)

    def render_frame(self, portrait: Portrait, motion: MotionFrame) -> np.ndarray:
        """One finished output frame: rendered, then post-processed (every path that emits
        frames — files, PNGs, live streams — goes through here). The array is reused."""
        return self.finish_frame(portrait.renderer.render(motion))

    def finish_frame(self, frame: np.ndarray) -> np.ndarray:
        """Post-processing applied to every emitted frame, in place: the provenance watermark
        (unless `settings.watermark` is off; see openvasa/provenance)."""
        if self.settings.watermark:
            self.watermarker.apply(frame)
        return frame

    @property
    def watermarker(self):
        """The invisible watermark this generator adds to every frame (openvasa.provenance)."""
        if getattr(self, "_watermarker", None) is None:
            from openvasa.provenance import watermarker_for

            self._watermarker = watermarker_for(self.settings.watermark_key)
        return self._watermarker

    def open_stream(
        self,
        portrait: Portrait,
        *,
        source: PathLike | np.ndarray | None = None,
        stream: StreamSettings | None = None,
        **controls,
    ) -> StreamSession:
        """A live session: push audio as it arrives, get frames back as soon as it allows.

        controls: gaze_deg, head_distance, emotion, emotion_strength, seed (as `generate`);
        all but the seed can change mid-stream with `session.set_controls`. source: the
        original image, to re-frame it sharply when head_distance changes. See
        `openvasa.streaming.StreamSession`. From the first stream on, torch, numpy's BLAS and
        OpenCV compute each call in one thread, for the whole process (`openvasa.cores`).
        """
        from openvasa.streaming import StreamSession

        engine = self.live_engine()
        release = None
        slots = engine.settings.live_stream_slots() if engine.name == "diffusion" else None
        if slots is not None:
            # Beyond `live_streams` diffusion streams at once, streams use the energy engine.
            if self._diffusion_slots is None:
                self._diffusion_slots = threading.Semaphore(slots)
            if self._diffusion_slots.acquire(blocking=False):
                release = self._diffusion_slots.release
            else:
                engine = self.engine("energy")
        # Unless asked otherwise, the stream shows the portrait as it was framed.
        controls.setdefault("head_distance", portrait.latent.framing.head_distance)
        ctl = replace(self.settings.controls, **controls)
        try:
            session = StreamSession(self, portrait, engine, ctl, stream or StreamSettings(), source)
        except BaseException:
            if release:
                release()
            raise
        session.on_close = release
        return session

    def frames(self, portrait: Portrait, motion: MotionSequence) -> Iterator[np.ndarray]:
        """Finished RGB frames; each array is reused by the next one (copy to keep it)."""
        for i in range(len(motion)):
            yield self.render_frame(portrait, motion.frame(i))

    # --- the whole job ---------------------------------------------------------------------
    def generate(
        self,
        portrait: PathLike | np.ndarray,
        audio: PathLike | Audio | SpeechClip | None,
        output: PathLike | None = None,
        *,
        frames_dir: PathLike | None = None,
        motion_out: PathLike | None = None,
        progress: ProgressFn | None = None,
        phonemes: Sequence[PhonemeEvent] | None = None,
        **controls,
    ) -> GenerationResult:
        """Make a talking-face video.

        portrait: image path or (H, W, 3) RGB array; audio: path, Audio, or a SpeechClip
        (synthesised speech whose phonemes then drive the teacher engine), or None with
        `phonemes` for the teacher engine (a silent video).
        phonemes: timed phonemes for the teacher engine (`--engine teacher`).
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
        if isinstance(audio, SpeechClip):  # synthesised speech carries its phoneme times
            phonemes = audio.phonemes if phonemes is None else phonemes
            audio = audio.audio
        clip = self.load_audio(audio) if audio is not None else None
        times.audio_s = time.perf_counter() - t0
        motion = self.animate_motion(prepared, clip, ctl, times, phonemes)
        self.write_outputs(prepared, motion, clip, output, frames_dir, motion_out, times, progress)
        return GenerationResult(
            motion, len(motion), times, prepared.warnings, Path(output) if output else None
        )

    def animate_motion(
        self,
        portrait: Portrait,
        audio: Audio | None,
        controls: Controls,
        times: StageTimes,
        phonemes: Sequence[PhonemeEvent] | None = None,
    ) -> MotionSequence:
        t0 = time.perf_counter()
        motion = self.motion(portrait, audio, controls, phonemes)
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
        from openvasa.provenance import provenance_metadata

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
                metadata=provenance_metadata(self.settings.watermark, self.settings.watermark_key),
            )
            if output is not None
            else None
        )
        try:
            png_frames: list[np.ndarray] = []
            for i in range(len(motion)):
                t0 = time.perf_counter()
                frame = portrait.renderer.render(motion.frame(i))
                t1 = time.perf_counter()
                times.render_s += t1 - t0
                frame = self.finish_frame(frame)  # as render_frame does, timed on its own
                times.watermark_s += time.perf_counter() - t1
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
