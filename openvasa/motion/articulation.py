"""A real speaker's articulation, measured on GRID, as the teacher's mouth targets and timing.

`articulation.json` beside this file holds what `tools/measure_articulation.py` measured on the
GRID audiovisual sentence corpus (Cooke, Barker, Cunningham & Shao 2006, J. Acoust. Soc. Am.
120:2421, CC BY 4.0), speaker 1, from the mouth tracked in 1,000 real clips and phones
force-aligned with PocketSphinx:

- per sound (IPA symbol) and per viseme: the mouth's ARKit target, as the change from the
  speaker's mouth at rest, fitted through the teacher's own coarticulation model;
- per vowel height: the jaw opening, so that every vowel of every language opens as far as a
  vowel of its height does in real speech;
- lip rounding: what rounding adds to a spread vowel (u minus i), for rounded vowels that
  English lacks (y, ø, œ …);
- timing: how early the mouth moves before the sound, when the lips close and open around
  /p b m/, how long before speech the lips part after a pause and how soon after it they
  close again.

The teacher reads it through `openvasa.motion.visemes`, so eSpeak NG's phonemes in any
language move the mouth the way a real speaker's does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from openvasa.errors import OpenvasaError
from openvasa.latent.motion import ARKIT_BLENDSHAPES, BLENDSHAPE_INDEX

TABLE_PATH = Path(__file__).with_name("articulation.json")

# The mouth channels that the articulation covers; "*" names a Left/Right pair, measured
# and set as one (speech is symmetric; asymmetry belongs to expression).
FIT_CHANNELS: tuple[str, ...] = (
    "jawOpen",
    "mouthClose",
    "mouthFunnel",
    "mouthPucker",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthShrugLower",
    "mouthShrugUpper",
    "mouthPress*",
    "mouthStretch*",
    "mouthSmile*",
    "mouthFrown*",
    "mouthDimple*",
    "mouthLowerDown*",
    "mouthUpperUp*",
)

# IPA vowel height (Handbook of the IPA, 1999): the jaw opens with it.
VOWEL_HEIGHTS: dict[str, str] = {
    **dict.fromkeys("iyɨʉɯu", "close"),
    **dict.fromkeys("ɪʏʊ", "near-close"),
    **dict.fromkeys("eøɘɵɤo", "close-mid"),
    **dict.fromkeys("əɚ", "mid"),
    **dict.fromkeys("ɛœɜɝɞʌɔ", "open-mid"),
    **dict.fromkeys("æɐ", "near-open"),
    **dict.fromkeys("aäɶɑɒ", "open"),
}
HEIGHTS = ("close", "near-close", "close-mid", "mid", "open-mid", "near-open", "open")


def channel_columns(name: str) -> list[int]:
    """ARKit columns of a FIT_CHANNELS name (two for a '*' pair)."""
    if name.endswith("*"):
        return [BLENDSHAPE_INDEX[name[:-1] + "Left"], BLENDSHAPE_INDEX[name[:-1] + "Right"]]
    return [BLENDSHAPE_INDEX[name]]


@lru_cache(maxsize=1)
def lip_gap_per_unit() -> np.ndarray:
    """(52,) how far one unit of each blendshape parts the inner lips, in face widths."""
    from openvasa.latent import topology as topo
    from openvasa.latent.blendshapes import blendshape_basis

    template = topo.template().astype(np.float64)
    basis = blendshape_basis(template)
    upper = list(topo.LIPS_INNER_UPPER[2:-2])
    lower = list(topo.LIPS_INNER_LOWER[2:-2])
    return (basis[:, lower, 1] - basis[:, upper, 1]).mean(1)


def lip_gap(blendshapes: np.ndarray) -> np.ndarray:
    """(T,) how far blendshapes (T, 52) part the inner lips beyond the face's neutral shape,
    in face widths, on the template face (the mesh's own measure of mouth opening, the one
    that `openvasa eval` reads from tracked landmarks; it is linear in the blendshapes)."""
    return np.asarray(blendshapes, np.float64) @ lip_gap_per_unit()


# The blendshapes that open the mouth (jaw down, lips apart or rounded open): what
# `scale_mouth_opening` scales.
MOUTH_OPENING = (
    "jawOpen",
    "mouthFunnel",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
)
_OPENING = [BLENDSHAPE_INDEX[name] for name in MOUTH_OPENING]


def scale_mouth_opening(blendshapes: np.ndarray, gain: float) -> np.ndarray:
    """(T, 52) blendshapes with the mouth-opening ones (`MOUTH_OPENING`) times `gain`, kept
    in [0, 1]; a copy."""
    scaled = np.array(blendshapes, copy=True)
    scaled[..., _OPENING] = np.clip(scaled[..., _OPENING] * gain, 0.0, 1.0)
    return scaled


@dataclass(frozen=True)
class Articulation:
    """The measured table (see the module docstring). Targets are (52,) changes from rest."""

    sounds: dict[str, np.ndarray]
    visemes: dict[str, np.ndarray]
    rounding: np.ndarray
    vowel_jaw: dict[str, float]
    lead_s: float
    rate_scale: float
    closure_onset_s: float
    closure_release_s: float
    closures: dict[str, tuple[float, float]]
    min_closure_s: float
    prepare_s: float
    relax_s: float
    source: str

    def closure_s(self, symbol: str) -> tuple[float, float]:
        """(onset, release) of the lips' closure for a bilabial, in seconds after the phone's
        acoustic start and end."""
        return self.closures.get(symbol, (self.closure_onset_s, self.closure_release_s))


def _vector(values: dict[str, float]) -> np.ndarray:
    vector = np.zeros(len(ARKIT_BLENDSHAPES), np.float32)
    for name, value in values.items():
        for column in channel_columns(name):
            vector[column] = value
    return vector


def load_articulation(path: str | Path = TABLE_PATH) -> Articulation:
    """Read an articulation table (JSON as `tools/measure_articulation.py measure` writes)."""
    path = Path(path)
    try:
        table = json.loads(path.read_text())
        timing = table["timing"]
        return Articulation(
            sounds={k: _vector(v) for k, v in table["sounds"].items()},
            visemes={k: _vector(v) for k, v in table["visemes"].items()},
            rounding=_vector(table["rounding"]),
            vowel_jaw={k: float(v) for k, v in table["vowel_jaw"].items()},
            lead_s=float(timing["lead_s"]),
            rate_scale=float(timing["rate_scale"]),
            closure_onset_s=float(timing["closure_onset_s"]),
            closure_release_s=float(timing["closure_release_s"]),
            closures={k: (float(v[0]), float(v[1])) for k, v in timing.get("closures", {}).items()},
            min_closure_s=float(timing["min_closure_s"]),
            prepare_s=float(timing["prepare_s"]),
            relax_s=float(timing["relax_s"]),
            source=str(table["source"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise OpenvasaError(f"Cannot read the articulation table {path}: {error}") from error


@lru_cache(maxsize=1)
def articulation() -> Articulation:
    """The shipped table."""
    return load_articulation(TABLE_PATH)
