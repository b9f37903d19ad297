"""Noise schedule, training corruption and the DDIM sampler with per-condition guidance.

Kept apart from the network: the sampler only calls `model(...)` and knows nothing of its
insides. Times are continuous in [0, 1]; ᾱ(t) follows the cosine schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from openvasa.motion.diffusion.model import CONDITIONS


def alpha_bar(t: torch.Tensor, s: float = 0.008) -> torch.Tensor:
    """Signal fraction ᾱ(t) of the cosine schedule; ᾱ(0) ≈ 1, ᾱ(1) ≈ 0."""
    return torch.cos((t + s) / (1 + s) * math.pi / 2).clamp(min=1e-5) ** 2


def corrupt(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """x_t = √ᾱ x₀ + √(1−ᾱ) ε, for x0 (B, W, D) and t (B,)."""
    a = alpha_bar(t)[:, None, None]
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


@dataclass
class Guidance:
    """Classifier-free guidance scales per condition (VASA-1: audio 0.5, gaze 1.0; see
    `openvasa.settings.DiffusionOptions`, whose defaults these are, for the choice)."""

    audio: float = 0.25
    gaze: float = 0.0
    emotion: float = 0.0
    distance: float = 0.0

    def active(self) -> list[tuple[str, float]]:
        return [(name, getattr(self, name)) for name in CONDITIONS if getattr(self, name) > 0]


@dataclass
class SamplerConfig:
    steps: int = 10
    guidance: Guidance = field(default_factory=Guidance)


@torch.no_grad()
def sample(
    model,
    inputs: dict[str, torch.Tensor],
    noise: torch.Tensor,
    config: SamplerConfig,
    keep_context: torch.Tensor,
) -> torch.Tensor:
    """`denoise` without gradients: what generation uses."""
    return denoise(model, inputs, noise, config, keep_context)


def denoise(
    model,
    inputs: dict[str, torch.Tensor],
    noise: torch.Tensor,
    config: SamplerConfig,
    keep_context: torch.Tensor,
) -> torch.Tensor:
    """Denoise `noise` (B, W, D) into motion with DDIM (η = 0) and per-condition guidance:

        x̂₀ = (1 + Σ λ_c) · H(x_t, t, C) − Σ λ_c · H(x_t, t, C without c)

    inputs: the model's condition tensors (audio, context_motion, context_audio, gaze,
    distance, emotion); keep_context: (B,) bool, False where there is no previous window.
    """
    batch = noise.shape[0]
    guided = config.guidance.active()
    # One forward pass for all variants: the full conditions, then each with one dropped.
    variants = 1 + len(guided)
    expanded = {
        name: value.repeat(variants, *([1] * (value.dim() - 1))) for name, value in inputs.items()
    }
    keep = {
        name: torch.ones(variants * batch, dtype=torch.bool, device=noise.device)
        for name in CONDITIONS
    }
    keep["context"] = keep_context.repeat(variants)
    for i, (name, _) in enumerate(guided, start=1):
        keep[name][i * batch : (i + 1) * batch] = False
    times = torch.linspace(1.0, 0.0, config.steps + 1, device=noise.device)
    x = noise
    for step in range(config.steps):
        t, t_next = times[step], times[step + 1]
        t_batch = t.expand(variants * batch)
        predicted = model(x.repeat(variants, 1, 1), t_batch, keep=keep, **expanded)
        x0 = predicted[:batch] * (1 + sum(scale for _, scale in guided))
        for i, (_, scale) in enumerate(guided, start=1):
            x0 = x0 - scale * predicted[i * batch : (i + 1) * batch]
        a, a_next = alpha_bar(t), alpha_bar(t_next)
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt().clamp(min=1e-4)
        x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps if step < config.steps - 1 else x0
    return x
