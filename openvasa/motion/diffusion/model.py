"""The motion diffusion transformer, readable top to bottom.

One token per video frame of a window: the noisy motion latent [pose, blendshapes, gaze] plus
that frame's audio features. The previous window's last K frames (motion and audio) come
first as context tokens. Main gaze, head distance and emotion, and the diffusion time, are
added to every token. The network predicts the clean window (x₀), as VASA-1's does.
Every condition can be dropped (replaced by a learned "absent" embedding) so that one
network serves classifier-free guidance per condition.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from openvasa.latent.motion import ARKIT_BLENDSHAPES, GAZE_NAMES, POSE_NAMES

MOTION_DIM = len(POSE_NAMES) + len(ARKIT_BLENDSHAPES) + len(GAZE_NAMES)  # 60
N_EMOTIONS = len(ARKIT_BLENDSHAPES)  # the emotion condition is a blendshape offset vector
CONDITIONS = ("audio", "gaze", "distance", "emotion")


@dataclass
class ModelConfig:
    """Size of the network and of its windows (frames at the video rate)."""

    audio_dim: int = 512  # Whisper-base encoder features, pooled to the video rate
    d_model: int = 256
    layers: int = 4
    heads: int = 4
    window: int = 50  # frames generated per window (2 s at 25 fps)
    context: int = 10  # frames of the previous window seen as context
    dropout: float = 0.1
    # Frames (odd) of a linear path from the audio features straight to the output, beside
    # the transformer (0: none). A ridge regression over ±3 frames of the same features
    # predicts a real speaker's lips better than the transformer learns to alone.
    audio_skip: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of diffusion times t in [0, 1], shape (B,) → (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    angles = 1000.0 * t[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class MotionDiffusionTransformer(nn.Module):
    """H(x_t, t, C) → x̂₀ over a window of motion latents."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.motion_in = nn.Linear(MOTION_DIM, d)
        self.audio_in = nn.Sequential(nn.Linear(config.audio_dim, d), nn.GELU(), nn.Linear(d, d))
        self.time_in = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
        self.gaze_in = nn.Linear(2, d)
        self.distance_in = nn.Linear(1, d)
        self.emotion_in = nn.Linear(N_EMOTIONS, d)
        # Learned stand-ins for absent conditions (classifier-free guidance, context dropout).
        self.no_audio = nn.Parameter(torch.zeros(d))
        self.no_gaze = nn.Parameter(torch.zeros(d))
        self.no_distance = nn.Parameter(torch.zeros(d))
        self.no_emotion = nn.Parameter(torch.zeros(d))
        self.no_context = nn.Parameter(torch.zeros(d))
        self.is_context = nn.Parameter(torch.zeros(d))
        self.position = nn.Parameter(torch.randn(config.context + config.window, d) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d,
            config.heads,
            4 * d,
            config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.motion_out = nn.Linear(d, MOTION_DIM)
        nn.init.zeros_(self.motion_out.weight)
        nn.init.zeros_(self.motion_out.bias)
        if config.audio_skip:
            self.audio_skip = nn.Conv1d(
                config.audio_dim, MOTION_DIM, config.audio_skip, padding=config.audio_skip // 2
            )
            nn.init.zeros_(self.audio_skip.weight)
            nn.init.zeros_(self.audio_skip.bias)
        # The skip path's last term, kept while its inputs stay the same (see _skip).
        self._skip_memo: tuple | None = None

    def forward(
        self,
        noisy: torch.Tensor,
        t: torch.Tensor,
        audio: torch.Tensor,
        context_motion: torch.Tensor,
        context_audio: torch.Tensor,
        gaze: torch.Tensor,
        distance: torch.Tensor,
        emotion: torch.Tensor,
        keep: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """Predict the clean window.

        noisy: (B, W, 60) normalised motion at noise level t (B,); audio: (B, W, A);
        context_motion: (B, K, 60) and context_audio: (B, K, A), the previous window's tail;
        gaze: (B, 2) degrees / 30; distance: (B, 1) head distance − 1; emotion: (B, 52);
        keep: per condition ("audio", "gaze", "distance", "emotion", "context") a (B,) bool
        tensor, False where that condition is dropped. Returns (B, W, 60).
        """
        batch, window, _ = noisy.shape
        k = context_motion.shape[1]

        def choose(name: str, present: torch.Tensor, absent: torch.Tensor) -> torch.Tensor:
            mask = keep[name].view(-1, *([1] * (present.dim() - 1))).to(present.dtype)
            return present * mask + absent * (1 - mask)

        audio_tokens = choose(
            "audio", self.audio_in(audio), self.no_audio.expand(batch, window, -1)
        )
        global_cond = (
            self.time_in(timestep_embedding(t, self.config.d_model))
            + choose("gaze", self.gaze_in(gaze), self.no_gaze.expand(batch, -1))
            + choose("distance", self.distance_in(distance), self.no_distance.expand(batch, -1))
            + choose("emotion", self.emotion_in(emotion), self.no_emotion.expand(batch, -1))
        )
        window_tokens = self.motion_in(noisy) + audio_tokens
        context_tokens = (
            self.motion_in(context_motion) + self.audio_in(context_audio) + self.is_context
        )
        context_tokens = choose("context", context_tokens, self.no_context.expand(batch, k, -1))
        tokens = torch.cat([context_tokens, window_tokens], dim=1)
        tokens = tokens + self.position[: k + window] + global_cond[:, None, :]
        hidden = self.norm(self.encoder(tokens))
        predicted = self.motion_out(hidden[:, k:])
        if self.config.audio_skip:
            predicted = predicted + self._skip(audio, context_audio, keep, choose)
        return predicted

    def _skip(self, audio, context_audio, keep, choose) -> torch.Tensor:
        """The audio skip path's (B, W, 60) term. It does not depend on the noisy motion or
        the time, so a sampler's steps over one window (the same tensors, no gradients)
        compute it once."""
        inputs = (audio, context_audio, keep["audio"], keep["context"])
        inputs += (self.audio_skip.weight, self.audio_skip.bias)
        versions = [tensor._version for tensor in inputs]  # changed in place: not the same
        memo = self._skip_memo
        if (
            memo is not None
            and all(a is b for a, b in zip(memo[0], inputs, strict=True))
            and memo[1] == versions
        ):
            return memo[2]
        # Without context (a stream's first window) the frames before are silent.
        before = choose("context", context_audio, torch.zeros_like(context_audio))
        heard = torch.cat([before, audio], dim=1).transpose(1, 2)
        direct = self.audio_skip(heard).transpose(1, 2)[:, context_audio.shape[1] :]
        term = choose("audio", direct, torch.zeros_like(direct))
        if not torch.is_grad_enabled():
            self._skip_memo = (inputs, versions, term)
        return term
