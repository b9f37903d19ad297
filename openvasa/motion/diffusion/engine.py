"""The diffusion motion engine (`--engine diffusion`): audio → motion window by window.

Audio features (Whisper-base encoder, 50 Hz) are pooled to the video rate; each window of W
frames is denoised with the last K frames of the previous window as context, so audio of any
length — or a live stream — is generated without seams.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import torch

from openvasa.audio import Audio
from openvasa.audio.load import SAMPLE_RATE
from openvasa.errors import OpenvasaError
from openvasa.latent.motion import MotionFrame, MotionSequence
from openvasa.motion.diffusion.checkpoint import build_model, default_checkpoint, load_checkpoint
from openvasa.motion.diffusion.features import audio_features, pool_to_frames
from openvasa.motion.diffusion.model import MOTION_DIM
from openvasa.motion.diffusion.sampler import Guidance, SamplerConfig, sample
from openvasa.motion.emotion import emotion_offset
from openvasa.settings import Controls
from openvasa.timing import frame_count


@dataclass
class DiffusionSettings:
    steps: int = 10
    overlap: int = 4  # frames by which neighbouring windows overlap and crossfade
    guidance: Guidance = field(default_factory=Guidance)
    # Live streams (`DiffusionEngine.open`): each window commits `live_stride` frames and sees
    # `live_lookahead` frames of audio past them (the rest of its audio is blank), so a frame
    # leaves (live_stride + live_lookahead) / fps after its start; Whisper encodes the last
    # `live_audio_s` seconds of audio for each window. See DiffusionMotionStream. Each window
    # continues the last, so shorter commits let the motion drift: with 4 the clip's median
    # gaze strayed up to 6° from the request, with 8 up to 5° (offline: 2.5°).
    live_stride: int = 8
    live_lookahead: int = 2
    live_steps: int = 5
    live_audio_s: float = 2.0
    # Diffusion streams at once; more use the energy engine. None: one per 4 CPU cores (a
    # stream keeps about a core busy with Whisper and the sampler; on 2 cores one beside
    # three energy streams fell behind), so small machines stream with energy.
    live_streams: int | None = None

    def live_stream_slots(self) -> int:
        if self.live_streams is not None:
            return max(0, self.live_streams)
        return (os.cpu_count() or 1) // 4


class _Conditions:
    """The condition tensors of the model for one set of controls."""

    def __init__(self, controls: Controls, device: torch.device):
        self.tensors = {
            "gaze": torch.tensor([controls.gaze_deg], device=device) / 30.0,
            "distance": torch.tensor([[controls.head_distance - 1.0]], device=device),
            "emotion": torch.as_tensor(
                emotion_offset(controls.emotion, controls.emotion_strength), device=device
            )[None],
        }


class MotionWindows:
    """The window step that offline generation and live streams share.

    Each `advance` denoises one window of W frames from its audio (normalised features,
    blank = 0 where audio is not known yet), the last K committed frames as context and the
    conditions; its first frames are crossfaded with what the previous window predicted for
    them (`overlap` frames), the first `commit` frames are committed and the rest kept as
    the prediction the next window fades from. Offline: windows commit W − overlap frames;
    live: a few frames each, with a short look-ahead of audio.
    """

    def __init__(self, engine: DiffusionEngine, controls: Controls, steps: int, overlap: int):
        self.engine = engine
        self.window, self.context = engine.config.window, engine.config.context
        self.device = engine.device
        self.generator = torch.Generator().manual_seed(controls.seed)
        self.sampler = SamplerConfig(steps, engine.settings.guidance)
        self.overlap = overlap
        self.conditions = _Conditions(controls, self.device)
        self.committed = 0  # frames committed so far
        self._recent = torch.zeros(0, MOTION_DIM, device=self.device)  # last K committed
        self._recent_audio = torch.zeros(0, engine.config.audio_dim, device=self.device)
        self._predicted = torch.zeros(0, MOTION_DIM, device=self.device)

    def set_controls(self, controls: Controls) -> None:
        """Conditions for the windows made from now on (the seed stays)."""
        self.conditions = _Conditions(controls, self.device)

    def advance(self, audio: torch.Tensor, commit: int) -> torch.Tensor:
        """Make the next window and commit its first `commit` frames (normalised, returned).

        audio: (W, A) normalised features of the frames from the first uncommitted one on,
        zero where the audio is not known. The context audio is that of the committed frames.
        """
        w, k = self.window, self.context
        has_context = self.committed > 0
        context_motion = torch.zeros(1, k, MOTION_DIM, device=self.device)
        context_audio = torch.zeros(1, k, audio.shape[1], device=self.device)
        if has_context:
            # Fewer than K frames so far (a live stream's start): the head was still before.
            pad = k - len(self._recent)
            context_motion[0] = torch.cat([self._recent[:1].expand(pad, -1), self._recent])
            context_audio[0] = torch.cat(
                [self._recent_audio[:1].expand(pad, -1), self._recent_audio]
            )
        noise = torch.randn(1, w, MOTION_DIM, generator=self.generator).to(self.device)
        inputs = {
            "audio": audio[None],
            "context_motion": context_motion,
            "context_audio": context_audio,
            **self.conditions.tensors,
        }
        keep_context = torch.tensor([has_context], device=self.device)
        window = sample(self.engine.model, inputs, noise, self.sampler, keep_context)[0]
        # Windows overlap by a few frames, crossfaded: the context tokens carry the motion
        # across the join and the crossfade removes what little step is left.
        shared = min(self.overlap, len(self._predicted))
        if shared > 0:
            ramp = torch.linspace(0.0, 1.0, shared + 2, device=self.device)[1:-1, None]
            window[:shared] = self._predicted[:shared] * (1 - ramp) + window[:shared] * ramp
        made = window[:commit]
        self._predicted = window[commit:]
        self._recent = torch.cat([self._recent, made])[-k:]
        self._recent_audio = torch.cat([self._recent_audio, audio[:commit]])[-k:]
        self.committed += commit
        return made


class DiffusionEngine:
    """Generates MotionSequences with a trained motion diffusion transformer."""

    name = "diffusion"

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        settings: DiffusionSettings | None = None,
        device: str = "cpu",
    ):
        state = load_checkpoint(checkpoint or default_checkpoint())
        self.model = build_model(state).float().to(device).eval()
        self.config = self.model.config
        stats = state["stats"]
        self.fps = float(stats["fps"])
        self.device = torch.device(device)
        self._mean = torch.tensor(stats["motion_mean"], device=self.device)
        self._std = torch.tensor(stats["motion_std"], device=self.device)
        self._audio_mean = torch.tensor(stats["audio_mean"], device=self.device)
        self._audio_std = torch.tensor(stats["audio_std"], device=self.device)
        self.settings = settings or DiffusionSettings()

    def generate(
        self, audio: Audio, fps: float, start: MotionFrame, controls: Controls | None = None
    ) -> MotionSequence:
        controls = controls or Controls()
        if abs(fps - self.fps) > 1e-3:
            features = audio_features(audio, self.fps)
            motion = self.generate_from_features(features, start, controls)
            return _resample(motion, fps, frame_count(audio.duration_s, fps))
        return self.generate_from_features(audio_features(audio, fps), start, controls)

    def open(
        self, fps: float, start: MotionFrame, controls: Controls | None = None
    ) -> DiffusionMotionStream:
        """A motion stream for live audio at the model's frame rate (see
        DiffusionMotionStream). start: the portrait's own motion latents (its pose is the
        rest pose of the head)."""
        if abs(fps - self.fps) > 1e-3:
            raise OpenvasaError(
                f"The diffusion engine streams at {self.fps:g} fps, not {fps:g}: use "
                f"--fps {self.fps:g} or --engine energy."
            )
        return DiffusionMotionStream(self, start, controls or Controls())

    def normalise_audio(self, features: np.ndarray) -> torch.Tensor:
        """(T, A) raw pooled features → normalised tensor, as the model was trained."""
        return (torch.as_tensor(features, device=self.device) - self._audio_mean) / self._audio_std

    def to_motion(self, normalised: torch.Tensor, start: MotionFrame) -> MotionSequence:
        """(T, 60) normalised model output → MotionSequence at the model's frame rate."""
        motion = (normalised * self._std + self._mean).cpu().numpy()
        # The model makes pose relative to the rest pose: the portrait's own.
        pose = motion[:, :6] + np.asarray(start.pose)[None]
        return MotionSequence(self.fps, pose, np.clip(motion[:, 6:58], 0.0, 1.0), motion[:, 58:60])

    def generate_from_features(
        self, features: np.ndarray, start: MotionFrame, controls: Controls
    ) -> MotionSequence:
        """Motion for (T, A) audio features at the model's frame rate, window by window, each
        window seeing all of its audio."""
        w = self.config.window
        n = len(features)
        audio = self.normalise_audio(features)
        overlap = min(self.settings.overlap, w // 4)
        windows = MotionWindows(self, controls, self.settings.steps, overlap)
        parts = []
        while windows.committed < n:
            first = windows.committed
            window_audio = torch.zeros(w, audio.shape[1], device=self.device)
            window_audio[: min(w, n - first)] = audio[first : first + w]
            commit = w - overlap if first + w < n else n - first
            parts.append(windows.advance(window_audio, commit))
        return self.to_motion(torch.cat(parts), start)


@cache
def _live_whisper():
    """The Whisper encoder of live streams: one thread per encoding, so that concurrent
    streams and the render threads share the cores without the thread pool's spin-waits
    (on a busy 2-core machine the all-core encoder took 10–30× longer for 1 s of audio)."""
    from openvasa.audio.whisper import WhisperEncoder

    return WhisperEncoder(threads=1)


class DiffusionMotionStream:
    """Diffusion motion for audio that arrives piece by piece (16 kHz mono float32).

    The same window step as offline generation (`MotionWindows`), with little look-ahead:
    the window for frames f… is made once the audio up to frame f + stride + lookahead has
    arrived; Whisper encodes the last `live_audio_s` seconds up to there, the window's audio
    past that point is blank (the model was trained with blank audio tails for this), and
    only its first `stride` frames are committed. Each window uses exactly the audio up to
    its own point, so the motion is the same however the audio is cut into pieces.

    `push(samples)` returns the frames now complete; `end()` the rest, up to
    `frame_count(duration, fps)` in all; `set_controls` changes gaze, emotion and head
    distance from the next window on.
    """

    def __init__(self, engine: DiffusionEngine, start: MotionFrame, controls: Controls):
        settings = engine.settings
        self.engine = engine
        self.fps = engine.fps
        self.start = start
        self.controls = controls
        self.stride = max(1, settings.live_stride)
        self.ahead = max(0, settings.live_lookahead)
        overlap = min(settings.overlap, self.stride)
        self.windows = MotionWindows(engine, controls, settings.live_steps, overlap)
        self._frame_samples = SAMPLE_RATE / self.fps
        self._buffer_samples = int(settings.live_audio_s * SAMPLE_RATE)
        self._audio = np.zeros(0, np.float32)  # the recent audio
        self._audio_start = 0  # absolute sample index of _audio[0]
        self.samples_in = 0
        self._ended = False

    @property
    def lookahead_s(self) -> float:
        """Audio needed past a frame's start time before the frame can be made, in seconds
        (the first frame of a window waits longest)."""
        return (self.stride + self.ahead) / self.fps

    def set_controls(self, controls: Controls) -> None:
        """New gaze, emotion and head distance from the next window on (the seed stays)."""
        self.controls = controls
        self.windows.set_controls(controls)

    def push(self, samples: np.ndarray) -> MotionSequence:
        """Add audio; returns the motion of the frames it completes (maybe zero frames)."""
        if self._ended:
            raise OpenvasaError("The motion stream has ended.")
        samples = np.asarray(samples, np.float32).reshape(-1)
        self._audio = np.concatenate([self._audio, samples])
        self.samples_in += len(samples)
        parts = []
        while self.samples_in >= self._sample_at(self.windows.committed + self.stride + self.ahead):
            parts.append(self._next_window(self.stride))
        self._forget_old_audio()
        return self._motion(parts)

    def end(self) -> MotionSequence:
        """No more audio: the remaining frames, the last ones over silence."""
        self._ended = True
        total = frame_count(self.samples_in / SAMPLE_RATE, self.fps)
        parts = []
        while self.windows.committed < total:
            parts.append(self._next_window(min(self.stride, total - self.windows.committed)))
        return self._motion(parts)

    def _sample_at(self, frame: int) -> int:
        return int(round(frame * self._frame_samples))

    def _next_window(self, commit: int) -> torch.Tensor:
        first = self.windows.committed
        w = self.windows.window
        # The audio this window hears: up to its look-ahead point (less at the stream's end),
        # from a frame boundary a few seconds before.
        heard = min(self._sample_at(first + self.stride + self.ahead), self.samples_in)
        begin_frame = max(
            0,
            min(
                first - self.windows.context,
                int((heard - self._buffer_samples) / self._frame_samples),
            ),
        )
        begin = self._sample_at(begin_frame)
        clip = self._audio[begin - self._audio_start : heard - self._audio_start]
        n_frames = frame_count(len(clip) / SAMPLE_RATE, self.fps) if len(clip) else 0
        audio = torch.zeros(w, self.engine.config.audio_dim, device=self.engine.device)
        if n_frames > first - begin_frame:
            features = _live_whisper().features(clip)
            pooled = pool_to_frames(features, 50.0, self.fps, n_frames)[first - begin_frame :]
            known = min(w, len(pooled))
            audio[:known] = self.engine.normalise_audio(pooled[:known])
        return self.windows.advance(audio, commit)

    def _forget_old_audio(self) -> None:
        keep_from = (
            self._sample_at(max(0, self.windows.committed - self.windows.context - 2))
            - self._buffer_samples
        )
        drop = max(0, keep_from - self._audio_start)
        if drop:
            self._audio = self._audio[drop:]
            self._audio_start += drop

    def _motion(self, parts: list[torch.Tensor]) -> MotionSequence:
        if not parts:
            return MotionSequence(self.fps, np.zeros((0, 6)), np.zeros((0, 52)), np.zeros((0, 2)))
        return self.engine.to_motion(torch.cat(parts), self.start)


def _resample(motion: MotionSequence, fps: float, n: int) -> MotionSequence:
    """Linear interpolation of a motion sequence to another frame rate."""
    source_t = np.arange(len(motion)) / motion.fps
    target_t = np.arange(n) / fps

    def interp(values: np.ndarray) -> np.ndarray:
        return np.stack(
            [np.interp(target_t, source_t, values[:, j]) for j in range(values.shape[1])], 1
        )

    return MotionSequence(fps, interp(motion.pose), interp(motion.blendshapes), interp(motion.gaze))
