"""A portrait made ready to animate: its face latent and the renderer built over it, for one
output framing. The pipeline makes it (`Generator.prepare_portrait`); offline rendering,
live streams and the server's portrait store use it."""

from __future__ import annotations

from dataclasses import dataclass, field

from openvasa.latent.face_latent import FaceLatent
from openvasa.render.renderer import Renderer


@dataclass
class Portrait:
    """A portrait prepared for one output framing: its latent and its renderer."""

    latent: FaceLatent
    renderer: Renderer
    warnings: list[str] = field(default_factory=list)
