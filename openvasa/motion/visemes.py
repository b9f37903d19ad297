"""Phonemes → visemes → ARKit mouth targets, with coarticulation.

A phoneme name (IPA as eSpeak NG writes it, or CMU ARPAbet as many TTS engines and aligners
write it) is split into its sounds (`aɪ` → a, ɪ; `ts` → t, s), each sound maps to one of the 15
visemes of Meta's Oculus Lipsync set (sil, PP, FF, TH, DD, kk, CH, SS, nn, RR, aa, E, ih, oh,
ou), and each sound to target values of the ARKit mouth blendshapes (jawOpen, mouthClose,
mouthFunnel, mouthPucker, mouthLowerDown…) measured on a real speaker
(`openvasa.motion.articulation`): the speaker's own for the sounds they said, the viseme's for
the others, with each vowel's jaw set by its height and rounding added to rounded vowels.

Coarticulation follows Cohen & Massaro's dominance model (1993, "Modeling coarticulation in
synthetic visual speech"): every sound pulls each articulator towards its target with a
dominance that decays exponentially away from the sound, and the mouth is the dominance-
weighted mean of the targets. The jaw and the lips have separate dominances, so that /s/ keeps
the teeth together while its lips are free to anticipate the rounding of a following /u/
(anticipatory rounding spreads over several consonants before a rounded vowel: Benguerel &
Cowan 1974, Phonetica 30:41). Lip closures of /p b m/ are exact constraints applied on top by
the teacher, not averages.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from openvasa.latent.motion import ARKIT_BLENDSHAPES
from openvasa.motion.articulation import VOWEL_HEIGHTS, articulation

VISEMES: tuple[str, ...] = (
    "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou",
)  # fmt: skip

# The mouth targets themselves are a real speaker's, measured on GRID (see
# `openvasa.motion.articulation`): per sound where the speaker said it, per viseme for the
# sounds of other languages, with the jaw set by vowel height and rounding added for rounded
# vowels that English lacks. Targets are changes from the mouth at rest; the rest ("sil") is the
# neutral face, and the teacher closes the lips in pauses and for /p b m/ on top.
_TABLE = articulation()

# IPA base symbol → (viseme, rounding 0–1). Diacritics are removed before the look-up.
_IPA: dict[str, tuple[str, float]] = {}
for _symbols, _viseme, _round in (
    ("pbm", "PP", 0.0),
    ("fvɱʋ", "FF", 0.0),
    ("ɸβ", "PP", 0.0),  # bilabial fricatives narrow the lips without closing them (see below)
    ("θð", "TH", 0.0),
    ("tdʈɖɗ", "DD", 0.0),
    ("kgɡqɢcɟxɣχħʕ", "kk", 0.0),
    ("ʁʀ", "kk", 0.0),  # uvular r (French, German) does not round the lips
    ("ʃʒ", "CH", 0.0),
    ("ʂʐɕʑç", "CH", 0.0),
    ("szʦʣ", "SS", 0.0),
    ("nɲŋɳɴlɫɬɮʎʟ", "nn", 0.0),
    ("ɹɻ", "RR", 0.0),  # English /r/: the lips round and narrow (measured)
    ("rɾɽ", "DD", 0.0),  # trills and taps: the tongue tip, lips free
    ("aäɑɐæɶ", "aa", 0.0),
    ("ʌ", "aa", 0.0),
    ("eɛəɜɘɚɝ", "E", 0.0),
    ("iɪɨɯ", "ih", 0.0),
    ("yʏʉ", "ih", 0.8),
    ("øɵ", "E", 0.7),
    ("œ", "E", 0.5),
    ("oɔɒɤ", "oh", 0.0),
    ("uʊ", "ou", 0.0),
    ("w", "ou", 0.0),
    ("ɥ", "ih", 0.8),
    ("j", "ih", 0.0),
    ("hɦʔ", "sil", 0.0),
):
    for _s in _symbols:
        _IPA[_s] = (_viseme, _round)

# CMU ARPAbet (as used by the CMU dictionary, Montreal Forced Aligner, many TTS engines) → IPA.
ARPABET_TO_IPA: dict[str, str] = {
    "AA": "ɑ", "AE": "æ", "AH": "ʌ", "AO": "ɔ", "AW": "aʊ", "AX": "ə", "AXR": "ɚ", "AY": "aɪ",
    "EH": "ɛ", "ER": "ɝ", "EY": "eɪ", "IH": "ɪ", "IX": "ɨ", "IY": "i", "OW": "oʊ", "OY": "ɔɪ",
    "UH": "ʊ", "UW": "u", "UX": "ʉ", "B": "b", "CH": "tʃ", "D": "d", "DH": "ð", "DX": "ɾ",
    "EL": "l", "EM": "m", "EN": "n", "F": "f", "G": "ɡ", "HH": "h", "H": "h", "JH": "dʒ",
    "K": "k", "L": "l", "M": "m", "N": "n", "NG": "ŋ", "NX": "ŋ", "P": "p", "Q": "ʔ", "R": "ɹ",
    "S": "s", "SH": "ʃ", "T": "t", "TH": "θ", "V": "v", "W": "w", "WH": "w", "Y": "j",
    "Z": "z", "ZH": "ʒ",
}  # fmt: skip

# Names that mean silence in aligners' and TTS engines' outputs.
SILENCE_NAMES = frozenset({"", "_", "sil", "sp", "spn", "pau", "pause", "#", "<sil>", "SIL"})

BILABIAL_STOPS_AND_NASALS = frozenset("pbm")
VOWEL_VISEMES = frozenset({"aa", "E", "ih", "oh", "ou"})

# Modifier letters that eSpeak NG writes as phonemes of their own.
_MODIFIER_SOUNDS = {"ʲ": "j", "ʷ": "w"}
_DROPPED = set("ːˑ-'ˈˌ.ʰʼ˞ᵝ")


@dataclass(frozen=True)
class Sound:
    """One articulatory sound inside a phoneme: its IPA symbol, viseme and lip rounding."""

    symbol: str
    viseme: str
    rounding: float = 0.0

    @property
    def is_vowel(self) -> bool:
        return self.viseme in VOWEL_VISEMES and self.symbol not in "wjɥ"

    @property
    def closes_lips(self) -> bool:
        """True for /p b m/: the lips must meet."""
        return self.symbol in BILABIAL_STOPS_AND_NASALS


def arpabet_to_ipa(name: str) -> tuple[str, int] | None:
    """'AA1' → ('ɑ', 1); stress digits 1 (primary), 2 (secondary), 0 (none). None if the
    name is not ARPAbet."""
    base = name.rstrip("012")
    if base not in ARPABET_TO_IPA or base != base.upper():
        return None
    digit = name[len(base) :]
    return ARPABET_TO_IPA[base], {"1": 1, "2": 2}.get(digit, 0)


def phoneme_sounds(phoneme: str) -> list[Sound]:
    """The sounds of one phoneme name, in order; [] for silence or unknown names.

    Accepts IPA (with any diacritics, length and stress marks) and ARPAbet. Diphthongs and
    affricates give two sounds (`aɪ`, `tʃ`, `pf`); symbols that no viseme covers are skipped.
    """
    name = phoneme.strip()
    if name in SILENCE_NAMES or (name.startswith("(") and name.endswith(")")):
        return []  # "(en)": eSpeak NG's mark for a switch of language, not a sound
    arpa = arpabet_to_ipa(name)
    if arpa is not None:
        name = arpa[0]
    if name in _MODIFIER_SOUNDS:
        name = _MODIFIER_SOUNDS[name]
    sounds = []
    for char in unicodedata.normalize("NFD", name):
        if unicodedata.category(char) == "Mn" or char in _DROPPED:
            continue
        char = {"g": "ɡ", "ʦ": "s", "ʣ": "z"}.get(char, char)
        if char in _IPA:
            viseme, rounding = _IPA[char]
            sounds.append(Sound(char, viseme, rounding))
    return sounds


VISEME_TARGETS: dict[str, np.ndarray] = {
    "sil": np.zeros(len(ARKIT_BLENDSHAPES), np.float32),
    **{v: np.clip(t, 0.0, 1.0) for v, t in _TABLE.visemes.items() if v != "sil"},
}
"""Viseme name → (52,) ARKit target coefficients (measured; see the module docstring)."""
missing = set(VISEMES) - set(VISEME_TARGETS)
if missing:
    raise RuntimeError(f"The articulation table lacks visemes {sorted(missing)}.")

JAW = ARKIT_BLENDSHAPES.index("jawOpen")
# Every mouth shape the visemes drive; the rest of the face belongs to other parts.
MOUTH_CHANNELS = np.array(
    sorted({i for vector in VISEME_TARGETS.values() for i in np.nonzero(vector)[0]} | {JAW})
)
LIP_CHANNELS = np.array([i for i in MOUTH_CHANNELS if i != JAW])


def sound_targets(sound: Sound) -> np.ndarray:
    """(52,) target coefficients of one sound: the real speaker's for a sound they said, else
    its viseme's, with a vowel's jaw set by its height and rounding added where it rounds."""
    measured = _TABLE.sounds.get(sound.symbol)
    target = (measured if measured is not None else VISEME_TARGETS[sound.viseme]).copy()
    height = VOWEL_HEIGHTS.get(sound.symbol)
    if height is not None and sound.is_vowel:  # one jaw per height, in every language
        target[JAW] = _TABLE.vowel_jaw[height]
    if sound.rounding:
        target = target + sound.rounding * _TABLE.rounding
    if sound.symbol in "ɸβ":  # lips narrowed, not closed
        target = _TABLE.visemes["ou"] * 0.3 + _TABLE.visemes["PP"] * 0.5
    return np.clip(target, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class Dominance:
    """How strongly, and how far in time, one sound pulls the jaw and the lips to its target.

    jaw, lips: strength α; anticipation_per_s, carryover_per_s: decay rates θ of the
    dominance α·exp(−θ·|τ|) before and after the sound's central part.
    """

    jaw: float
    lips: float
    anticipation_per_s: float
    carryover_per_s: float
    lips_anticipation_per_s: float | None = None


_DOMINANCE = {
    "vowel": Dominance(1.4, 1.0, 16.0, 16.0),
    "rounded": Dominance(1.4, 1.8, 16.0, 12.0, lips_anticipation_per_s=6.0),
    "labial": Dominance(0.7, 5.0, 25.0, 25.0),
    "sibilant": Dominance(1.6, 0.35, 22.0, 22.0),
    "postalveolar": Dominance(1.2, 1.3, 20.0, 20.0, lips_anticipation_per_s=10.0),
    "glide": Dominance(0.6, 1.6, 18.0, 18.0, lips_anticipation_per_s=10.0),
    "consonant": Dominance(0.55, 0.25, 22.0, 22.0),
    "weak": Dominance(0.08, 0.08, 30.0, 30.0),
    "silence": Dominance(1.2, 1.2, 20.0, 14.0),
}


def _scaled(d: Dominance, rate: float) -> Dominance:
    lips = d.lips_anticipation_per_s
    return Dominance(
        d.jaw,
        d.lips,
        d.anticipation_per_s * rate,
        d.carryover_per_s * rate,
        None if lips is None else lips * rate,
    )


# The decay rates, as a whole, are those that fit the real speaker best (the table's rate_scale).
_DOMINANCE = {k: _scaled(d, _TABLE.rate_scale) for k, d in _DOMINANCE.items()}


def sound_dominance(sound: Sound | None) -> Dominance:
    """The dominance of a sound; None stands for silence."""
    if sound is None:
        return _DOMINANCE["silence"]
    if sound.symbol in "wɥ":
        return _DOMINANCE["glide"]
    if sound.is_vowel:
        rounded = sound.viseme in ("oh", "ou") or sound.rounding > 0.3
        return _DOMINANCE["rounded" if rounded else "vowel"]
    if sound.viseme in ("PP", "FF"):
        return _DOMINANCE["labial"]
    if sound.viseme == "SS":
        return _DOMINANCE["sibilant"]
    if sound.viseme == "CH":
        return _DOMINANCE["postalveolar"]
    if sound.viseme == "sil":  # h, ʔ: shaped by their neighbours
        return _DOMINANCE["weak"]
    return _DOMINANCE["consonant"]


@dataclass
class Segment:
    """One sound (or silence, sound=None) over [start_s, end_s), with its target (52,);
    jaw_gain: how much stress and loudness scaled the target's jawOpen."""

    sound: Sound | None
    start_s: float
    end_s: float
    target: np.ndarray
    dominance: Dominance
    jaw_gain: float = 1.0


def _reach_s(d: Dominance) -> float:
    """How far from its core a dominance stays above 1 % of its strength."""
    lips_anticipation = d.lips_anticipation_per_s or d.anticipation_per_s
    return 4.6 / min(d.anticipation_per_s, d.carryover_per_s, lips_anticipation)


def _dominances(segment: Segment, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(jaw, lips) dominance of one segment at times t (s): flat over the segment's central
    half, decaying exponentially outside it."""
    d = segment.dominance
    quarter = 0.25 * (segment.end_s - segment.start_s)
    core_start, core_end = segment.start_s + quarter, segment.end_s - quarter
    lips_anticipation = d.lips_anticipation_per_s or d.anticipation_per_s
    before = np.maximum(core_start - t, 0.0)
    after = np.maximum(t - core_end, 0.0)
    jaw = d.jaw * np.exp(-d.anticipation_per_s * before - d.carryover_per_s * after)
    lips = d.lips * np.exp(-lips_anticipation * before - d.carryover_per_s * after)
    return jaw, lips


def _span(segment: Segment, times_s: np.ndarray) -> tuple[int, int]:
    reach = _reach_s(segment.dominance)
    quarter = 0.25 * (segment.end_s - segment.start_s)
    first, last = np.searchsorted(
        times_s, [segment.start_s + quarter - reach, segment.end_s - quarter + reach]
    )
    return int(first), int(last)


def coarticulate(segments: list[Segment], times_s: np.ndarray) -> np.ndarray:
    """(len(times_s), 52) mouth coefficients: at each time the dominance-weighted mean of the
    segments' targets, the jaw and the lips weighted separately. Channels outside
    `MOUTH_CHANNELS` stay 0.

    Each segment's dominance is flat over its central half and decays exponentially outside
    it; segments further than their reach are ignored (their dominance is below 1 %).
    """
    times_s = np.asarray(times_s, np.float64)
    n = len(times_s)
    weighted = np.zeros((n, len(ARKIT_BLENDSHAPES)))
    total_jaw = np.full(n, 1e-9)
    total_lips = np.full(n, 1e-9)
    for segment in segments:
        first, last = _span(segment, times_s)
        if last <= first:
            continue
        jaw, lips = _dominances(segment, times_s[first:last])
        total_jaw[first:last] += jaw
        total_lips[first:last] += lips
        weighted[first:last, JAW] += jaw * segment.target[JAW]
        weighted[first:last, LIP_CHANNELS] += lips[:, None] * segment.target[LIP_CHANNELS]
    mouth = np.zeros_like(weighted)
    mouth[:, JAW] = weighted[:, JAW] / total_jaw
    mouth[:, LIP_CHANNELS] = weighted[:, LIP_CHANNELS] / total_lips[:, None]
    return mouth.astype(np.float32)


def coarticulation_weights(
    segments: list[Segment], times_s: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The weights `coarticulate` gives each segment's target: (jaw, lips), each
    (len(times_s), len(segments)) and summing to 1 over the segments at each time. The mouth
    is then `jaw @ targets[:, JAW]` and `lips @ targets[:, lip channel]` — linear in the
    targets, which is how `tools/measure_articulation.py` fits them to a real speaker."""
    times_s = np.asarray(times_s, np.float64)
    jaw = np.zeros((len(times_s), len(segments)))
    lips = np.zeros_like(jaw)
    for k, segment in enumerate(segments):
        first, last = _span(segment, times_s)
        if last > first:
            jaw[first:last, k], lips[first:last, k] = _dominances(segment, times_s[first:last])
    jaw /= np.maximum(jaw.sum(1, keepdims=True), 1e-9)
    lips /= np.maximum(lips.sum(1, keepdims=True), 1e-9)
    return jaw, lips
