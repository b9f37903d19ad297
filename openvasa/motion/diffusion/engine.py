"""The diffusion motion engine (`--engine diffusion`): audio → motion window by window.

Audio features (Whisper-base encoder, 50 Hz) are pooled to the video rate; each window of W
frames is denoised with the last K frames of the previous window as context, so audio of any
length — or a live stream — is generated without seams.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import torch

from openvasa.audio import Audio
from openvasa.errors import OpenvasaError
from openvasa.latent.motion import MotionFrame, MotionSequence
from openvasa.motion.diffusion.model import MOTION_DIM
from openvasa.motion.diffusion.sampler import Guidance, SamplerConfig, sample
from openvasa.motion.diffusion.train import build_model, load_checkpoint
from openvasa.motion.emotion import emotion_offset
from openvasa.settings import Controls
from openvasa.timing import frame_count

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
DEFAULT_CHECKPOINT = "motion_diffusion.pt"


def default_checkpoint() -> Path:
    """The shipped checkpoint (see openvasa/weights/README.md for how it was trained)."""
    path = WEIGHTS_DIR / DEFAULT_CHECKPOINT
    if not path.exists():
        raise OpenvasaError(
            f"The motion model {path} is missing: reinstall openvasa or pass --checkpoint."
        )
    return path


def pool_to_frames(
    features: np.ndarray, feature_rate: float, fps: float, n_frames: int
) -> np.ndarray:
    """Average (T, A) features at `feature_rate` Hz over each video frame's time span."""
    edges = np.round(np.arange(n_frames + 1) / fps * feature_rate).astype(int)
    edges = np.clip(edges, 0, len(features))
    out = np.zeros((n_frames, features.shape[1]), np.float32)
    cumulative = np.concatenate([np.zeros((1, features.shape[1])), np.cumsum(features, 0)])
    for i in range(n_frames):
        a, b = edges[i], max(edges[i + 1], edges[i] + 1)
        b = min(b, len(features))
        a = min(a, b - 1)
        out[i] = (cumulative[b] - cumulative[a]) / max(b - a, 1)
    return out


@cache
def _whisper():
    from openvasa.audio.whisper import WhisperEncoder

    return WhisperEncoder()


def audio_features(audio: Audio, fps: float) -> np.ndarray:
    """(frames, 512) Whisper-base encoder features pooled to the video rate."""
    features = _whisper().features(audio)
    return pool_to_frames(features, 50.0, fps, frame_count(audio.duration_s, fps))


@dataclass
class DiffusionSettings:
    steps: int = 10
    overlap: int = 4  # frames by which neighbouring windows overlap and crossfade
    guidance: Guidance = field(default_factory=Guidance)


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

    def generate_from_features(
        self, features: np.ndarray, start: MotionFrame, controls: Controls
    ) -> MotionSequence:
        """Motion for (T, A) audio features at the model's frame rate, window by window."""
        w, k = self.config.window, self.config.context
        n = len(features)
        generator = torch.Generator().manual_seed(controls.seed)
        audio = (torch.as_tensor(features, device=self.device) - self._audio_mean) / self._audio_std
        out = torch.zeros(n, MOTION_DIM, device=self.device)
        condition = {
            "gaze": torch.tensor([controls.gaze_deg], device=self.device) / 30.0,
            "distance": torch.tensor([[controls.head_distance - 1.0]], device=self.device),
            "emotion": torch.as_tensor(
                emotion_offset(controls.emotion, controls.emotion_strength), device=self.device
            )[None],
        }
        sampler = SamplerConfig(self.settings.steps, self.settings.guidance)
        # Windows overlap by a few frames, crossfaded: the context tokens carry the motion
        # across the join and the crossfade removes what little step is left.
        overlap = min(self.settings.overlap, w // 4)
        first, made = 0, 0
        while made < n:
            last = min(first + w, n)
            window_audio = torch.zeros(1, w, audio.shape[1], device=self.device)
            window_audio[0, : last - first] = audio[first:last]
            context_motion = torch.zeros(1, k, MOTION_DIM, device=self.device)
            context_audio = torch.zeros(1, k, audio.shape[1], device=self.device)
            has_context = first >= k
            if has_context:
                context_motion[0] = out[first - k : first]
                context_audio[0] = audio[first - k : first]
            noise = torch.randn(1, w, MOTION_DIM, generator=generator).to(self.device)
            inputs = {
                "audio": window_audio,
                "context_motion": context_motion,
                "context_audio": context_audio,
                **condition,
            }
            window = sample(
                self.model, inputs, noise, sampler, torch.tensor([has_context], device=self.device)
            )[0, : last - first]
            shared = made - first  # frames already made that this window covers again
            if shared > 0:
                ramp = torch.linspace(0.0, 1.0, shared + 2, device=self.device)[1:-1, None]
                window[:shared] = out[first:made] * (1 - ramp) + window[:shared] * ramp
            out[first:last] = window
            made = last
            first = last - overlap if last < n else last
        motion = (out * self._std + self._mean).cpu().numpy()
        # The model makes pose relative to the rest pose: the portrait's own.
        pose = motion[:, :6] + start.pose[None]
        return MotionSequence(self.fps, pose, np.clip(motion[:, 6:58], 0.0, 1.0), motion[:, 58:60])


def _resample(motion: MotionSequence, fps: float, n: int) -> MotionSequence:
    """Linear interpolation of a motion sequence to another frame rate."""
    source_t = np.arange(len(motion)) / motion.fps
    target_t = np.arange(n) / fps

    def interp(values: np.ndarray) -> np.ndarray:
        return np.stack(
            [np.interp(target_t, source_t, values[:, j]) for j in range(values.shape[1])], 1
        )

    return MotionSequence(fps, interp(motion.pose), interp(motion.blendshapes), interp(motion.gaze))
