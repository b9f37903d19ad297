"""Where the motion model's weights live and how a checkpoint becomes a model: the shipped
default under openvasa/weights/, `torch.load`, and the network built from the checkpoint's
own configuration. Sampling (engine) and training (train) both start here."""

from __future__ import annotations

from pathlib import Path

import torch

from openvasa.errors import OpenvasaError
from openvasa.motion.diffusion.model import ModelConfig, MotionDiffusionTransformer

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
DEFAULT_CHECKPOINT = "motion_diffusion.pt"
LIVE_CHECKPOINT = "motion_diffusion_live.pt"  # its few-step student for live streams


def default_checkpoint() -> Path:
    """The shipped checkpoint (see openvasa/weights/README.md for how it was trained)."""
    path = WEIGHTS_DIR / DEFAULT_CHECKPOINT
    if not path.exists():
        raise OpenvasaError(
            f"The motion model {path} is missing: reinstall openvasa or pass --checkpoint."
        )
    return path


def default_live_checkpoint() -> Path | None:
    """The shipped live student of the default model (None if it is not installed)."""
    path = WEIGHTS_DIR / LIVE_CHECKPOINT
    return path if path.exists() else None


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    return torch.load(path, map_location=map_location, weights_only=False)


def load_weights(model: MotionDiffusionTransformer, weights: dict, source) -> None:
    """Load `weights` (from `source`, named in errors) into `model`. Weights made before the
    model had an audio skip path leave it at zero, where it changes nothing."""
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or any(not key.startswith("audio_skip.") for key in missing):
        raise OpenvasaError(
            f"{source} does not fit this model: missing {missing}, unexpected {unexpected}."
        )
    if missing:
        with torch.no_grad():
            model.audio_skip.weight.zero_()
            model.audio_skip.bias.zero_()


def build_model(checkpoint: dict, weights: str = "ema") -> MotionDiffusionTransformer:
    model = MotionDiffusionTransformer(ModelConfig(**checkpoint["model_config"]))
    model.load_state_dict(checkpoint[weights])
    return model
