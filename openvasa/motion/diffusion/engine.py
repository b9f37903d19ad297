"""The diffusion motion engine (`--engine diffusion`): audio → motion window by window.

Audio features (Whisper-base encoder, 50 Hz) are pooled to the video rate; each window of W
frames is denoised with the last K frames of the previous window as context, so audio of any
length — or a live stream — is generated without seams.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import torch

from openvasa.audio import Audio
from openvasa.audio.load import SAMPLE_RATE
from openvasa.cores import one_thread_per_call
from openvasa.errors import OpenvasaError
from openvasa.latent.motion import MotionFrame, MotionSequence
from openvasa.motion.articulation import scale_mouth_opening
from openvasa.motion.diffusion.checkpoint import (
    build_model,
    default_checkpoint,
    default_live_checkpoint,
    load_checkpoint,
)
from openvasa.motion.diffusion.features import audio_features
from openvasa.motion.diffusion.live_features import heard_features
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
    # Live streams (`DiffusionEngine.open`, see DiffusionMotionStream). A window is made as
    # soon as the audio reaches `live_lookahead` frames past `live_stride` new frames, and
    # commits those; when the audio has run ahead (a busy machine, a big push) one window
    # commits up to `live_max_commit` frames, so a stream that falls behind catches up with
    # fewer, longer windows instead of falling further behind. Live windows are
    # `live_window` frames (the model is trained for them: `train --live-fraction`), denoised
    # in `live_steps` steps; Whisper (`live_compute_type`) encodes the last `live_audio_s`
    # seconds for each. Chosen on GRID val with the live proxy (weights README): a longer
    # audio context, more steps or a full 50-frame window gained nothing; look-ahead did.
    live_stride: int = 2
    live_lookahead: int = 2
    live_max_commit: int = 8
    live_window: int = 14
    live_steps: int = 2
    live_audio_s: float = 0.6
    live_compute_type: str = "int8"
    # Diffusion streams at once (None: no limit but the server's sessions); more use the
    # energy engine.
    live_streams: int | None = None

    def live_stream_slots(self) -> int | None:
        return None if self.live_streams is None else max(0, self.live_streams)


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

    def __init__(
        self,
        engine: DiffusionEngine,
        controls: Controls,
        steps: int,
        overlap: int,
        window: int | None = None,
        model: torch.nn.Module | None = None,
        sampler: SamplerConfig | None = None,
    ):
        """model, sampler: another network for the same motion space (the live student) and
        how to sample it; default the engine's model, `steps` with the engine's guidance."""
        self.engine = engine
        self.model = model or engine.model
        self.window = min(window or engine.config.window, engine.config.window)
        self.context = engine.config.context
        self.device = engine.device
        self.generator = torch.Generator().manual_seed(controls.seed)
        self.sampler = sampler or SamplerConfig(steps, engine.settings.guidance)
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
        window = sample(self.model, inputs, noise, self.sampler, keep_context)[0]
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
        live_checkpoint: str | Path | None = None,
    ):
        """live_checkpoint: the few-step student that live streams sample (`openvasa train
        live`); default the shipped one when `checkpoint` is the shipped model, else none
        (streams then sample the model itself in `live_steps` steps)."""
        if live_checkpoint is None and checkpoint is None:
            live_checkpoint = default_live_checkpoint()
        self._live_checkpoint = live_checkpoint
        self._live: tuple[torch.nn.Module, SamplerConfig] | None = None
        self._live_mouth_gain = 1.0
        state = load_checkpoint(checkpoint or default_checkpoint())
        self._stats = state["stats"]
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

    def live_sampler(self) -> tuple[torch.nn.Module, SamplerConfig]:
        """The network and sampling of live windows: the live student if there is one (its
        own steps, guidance folded in), else the model in `live_steps` steps."""
        if self._live is None:
            path = self._live_checkpoint
            if path is None or not Path(path).exists():
                self._live = (
                    TracedNetwork(self.model),
                    SamplerConfig(self.settings.live_steps, self.settings.guidance),
                )
            else:
                state = load_checkpoint(path)
                if state["stats"] != self._stats:
                    raise OpenvasaError(
                        f"The live model {path} was not distilled from this motion model "
                        "(their normalisation differs): pass its teacher's checkpoint."
                    )
                model = build_model(state).float().to(self.device).eval()
                how = state.get("sampler", {})
                steps = int(how.get("steps", self.settings.live_steps))
                self._live_mouth_gain = float(how.get("mouth_gain", 1.0))
                self._live = (
                    TracedNetwork(model),
                    SamplerConfig(steps, Guidance(audio=float(how.get("guidance", 0.0)))),
                )
        return self._live

    @property
    def live_mouth_gain(self) -> float:
        """How much live streams scale the mouth opening (`scale_mouth_opening`): the live
        student's calibrated gain (`distill.calibrate_mouth_gain`), else 1."""
        self.live_sampler()
        return self._live_mouth_gain

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


class TracedNetwork:
    """A motion network run as TorchScript, traced once per shape of input: the same numbers
    as the module, and a live window's forward pass runs without Python (1.65 ms rather than
    2.5 on the 2-core machine) and without holding the GIL, which the render and encode
    threads of every stream are waiting for."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self._traced: dict[tuple, torch.jit.ScriptModule] = {}
        self._lock = threading.Lock()

    def __call__(self, noisy, t, *, keep, **inputs):
        shapes = (noisy.shape, t.shape, *(value.shape for value in inputs.values()))
        traced = self._traced.get(shapes)
        if traced is None:
            # TorchScript is deprecated in favour of torch.compile, which needs a C++ compiler
            # on the user's machine; it still runs in the pinned torch.
            with self._lock, torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                example = dict(noisy=noisy, t=t, keep=keep, **inputs)
                traced = torch.jit.trace(
                    self.module, example_kwarg_inputs=example, check_trace=False
                )
                traced = self._traced.setdefault(shapes, torch.jit.freeze(traced.eval()))
        return traced(noisy, t, keep=keep, **inputs)


@cache
def _live_whisper(compute_type: str = "int8"):
    """The Whisper encoder of live streams: one thread per encoding, so that concurrent
    streams and the render threads share the cores without the thread pool's spin-waits
    (on a busy 2-core machine the all-core encoder took 10–30× longer for 1 s of audio).
    int8 weights encode 0.6 s in 10 ms rather than 28, with the same lip sync on GRID val."""
    from openvasa.audio.whisper import WhisperEncoder

    return WhisperEncoder(threads=1, compute_type=compute_type)


class DiffusionMotionStream:
    """Diffusion motion for audio that arrives piece by piece (16 kHz mono float32).

    The window step of offline generation (`MotionWindows`) with little look-ahead: frame f
    can be made once the audio up to frame f + 1 + `lookahead` has arrived. A window is made
    as soon as `stride` new frames can be (`live_stride`) and commits them. Whisper encodes
    the last `live_audio_s` seconds up to the window's look-ahead point, the window's audio
    past that point is blank (the model is trained for it), and its first frames are
    committed. Each window uses exactly the audio up to its own point, so the motion does not
    depend on how the audio is cut into pieces.

    `push(samples, catch_up=True)` is for a stream that has fallen behind: the frames that
    the audio so far allows are made in windows of up to `live_max_commit` frames, fewer and
    cheaper ones (the motion then depends on how much audio each push brings).

    `push(samples)` returns the frames now complete; `end()` the rest, up to
    `frame_count(duration, fps)` in all; `set_controls` changes gaze, emotion and head
    distance from the next window on.
    """

    def __init__(self, engine: DiffusionEngine, start: MotionFrame, controls: Controls):
        # Live motion is computed one thread per call (openvasa.cores) from the first stream
        # on, whoever opens it: a stream and `Generator.live_motion` make the same numbers.
        one_thread_per_call()
        settings = engine.settings
        self.engine = engine
        self.fps = engine.fps
        self.start = start
        self.controls = controls
        self.stride = max(1, settings.live_stride)
        self.max_commit = max(self.stride, settings.live_max_commit)
        self.ahead = max(0, settings.live_lookahead)
        model, sampler = engine.live_sampler()
        self._mouth_gain = engine.live_mouth_gain
        self.windows = MotionWindows(
            engine,
            controls,
            sampler.steps,
            min(settings.overlap, self.stride),
            window=max(settings.live_window, self.max_commit + self.ahead),
            model=model,
            sampler=sampler,
        )
        self._whisper = _live_whisper(settings.live_compute_type)
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

    def push(self, samples: np.ndarray, catch_up: bool = False) -> MotionSequence:
        """Add audio; returns the motion of the frames it completes (maybe zero frames).
        catch_up: commit up to `max_commit` frames a window rather than `stride`."""
        if self._ended:
            raise OpenvasaError("The motion stream has ended.")
        samples = np.asarray(samples, np.float32).reshape(-1)
        self._audio = np.concatenate([self._audio, samples])
        self.samples_in += len(samples)
        parts = []
        while (ready := self._frames_ready() - self.windows.committed) >= self.stride:
            parts.append(
                self._next_window(min(ready, self.max_commit if catch_up else self.stride))
            )
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

    def _frames_ready(self) -> int:
        """How many frames the audio so far allows: frame f needs it up to f + 1 + ahead."""
        frames = int(self.samples_in // self._frame_samples) + 1
        while frames > 0 and self._sample_at(frames) > self.samples_in:
            frames -= 1
        return max(0, frames - self.ahead)

    def _next_window(self, commit: int) -> torch.Tensor:
        first = self.windows.committed
        w = self.windows.window
        # The audio this window hears: up to its look-ahead point (less at the stream's end),
        # from a frame boundary `live_audio_s` before, or before the context if that is earlier.
        heard = min(self._sample_at(first + commit + self.ahead), self.samples_in)
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
            pooled = heard_features(self._whisper, clip, self.fps)[first - begin_frame :]
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
        motion = self.engine.to_motion(torch.cat(parts), self.start)
        if self._mouth_gain != 1.0:
            # Only what is shown is scaled: the windows' context keeps the student's own
            # motion, as it was trained.
            motion.blendshapes = scale_mouth_opening(motion.blendshapes, self._mouth_gain)
        return motion


def _resample(motion: MotionSequence, fps: float, n: int) -> MotionSequence:
    """Linear interpolation of a motion sequence to another frame rate."""
    source_t = np.arange(len(motion)) / motion.fps
    target_t = np.arange(n) / fps

    def interp(values: np.ndarray) -> np.ndarray:
        return np.stack(
            [np.interp(target_t, source_t, values[:, j]) for j in range(values.shape[1])], 1
        )

    return MotionSequence(fps, interp(motion.pose), interp(motion.blendshapes), interp(motion.gaze))
