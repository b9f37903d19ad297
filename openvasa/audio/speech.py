"""Speech synthesis with eSpeak NG, in process, with the time of every phoneme.

The library and its voice data come from the PyPI package `espeakng-loader`, so nothing is
installed system-wide or fetched. eSpeak NG reports each phoneme it speaks (with its IPA name
and its position in the audio in milliseconds) through the synthesis callback, which is what
the procedural motion engine times its visemes with, and what tests and the demo use as a
voice: no recorded voices are shipped.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from openvasa.audio.load import Audio
from openvasa.errors import AudioError

# Values from eSpeak NG's public header, speak_lib.h (API revision 12).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of exiting the process on bad data
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAMETER_RATE = 1
_PARAMETER_PITCH = 3
_EE_OK = 0

RATE_MIN_WPM = 80
RATE_MAX_WPM = 450

# IPA stress marks that eSpeak NG puts in front of a stressed vowel's name.
_PRIMARY_STRESS = "ˈ"
_SECONDARY_STRESS = "ˌ"

DEMO_SENTENCE = "Hello! My name is Vasa. I bring a photo to life, with my voice and a smile."


@dataclass(frozen=True)
class PhonemeEvent:
    """One spoken phoneme: its IPA name without stress marks, and when it sounds, in seconds
    from the start of the clip. `stress` is 1 for a primary-stressed vowel, 2 for secondary,
    0 otherwise."""

    phoneme: str
    start_s: float
    end_s: float
    stress: int = 0

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass
class SpeechClip:
    """Synthesised speech (16 kHz mono) with its phonemes in time order. Phonemes do not
    overlap; the gaps between them are pauses (silence)."""

    audio: Audio
    phonemes: list[PhonemeEvent] = field(default_factory=list)
    text: str = ""

    def with_silence(self, before_s: float, after_s: float) -> SpeechClip:
        """The clip with silence before and after it; phoneme times move with the audio."""
        rate = self.audio.sample_rate
        lead, tail = int(before_s * rate), int(after_s * rate)
        samples = np.concatenate(
            [np.zeros(lead, np.float32), self.audio.samples, np.zeros(tail, np.float32)]
        )
        shift = lead / rate
        phonemes = [
            PhonemeEvent(p.phoneme, p.start_s + shift, p.end_s + shift, p.stress)
            for p in self.phonemes
        ]
        return SpeechClip(Audio(samples, rate), phonemes, self.text)


class _EventId(ctypes.Union):
    _fields_ = [
        ("number", ctypes.c_int),  # WORD and SENTENCE events
        ("name", ctypes.c_char_p),  # MARK and PLAY events
        ("string", ctypes.c_char * 8),  # PHONEME events: UTF-8, NUL-terminated unless 8 bytes
    ]


class _Event(ctypes.Structure):
    """espeak_EVENT; on 64-bit Linux: 40 bytes, with `id` at offset 32 after the pointer."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds from the start of the message
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class _Capture:
    """What the callback collects for the one synthesis running now."""

    def __init__(self) -> None:
        self.pcm_chunks: list[np.ndarray] = []
        # (milliseconds, IPA name); an empty name marks a pause.
        self.phoneme_marks: list[tuple[int, str]] = []


class _Engine:
    """The process's one eSpeak NG instance. eSpeak NG keeps global state and is not thread
    safe, so every use goes through `_ENGINE_LOCK`."""

    def __init__(self) -> None:
        import espeakng_loader

        self.data_path = Path(espeakng_loader.get_data_path())
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,  # text
            ctypes.c_size_t,  # size in bytes, with the terminating NUL
            ctypes.c_uint,  # position
            ctypes.c_int,  # position type
            ctypes.c_uint,  # end position (0: to the end)
            ctypes.c_uint,  # flags
            ctypes.POINTER(ctypes.c_uint),  # unique identifier out
            ctypes.c_void_p,  # user data
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int

        options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA | _INITIALIZE_DONT_EXIT
        sample_rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_path).encode(), options
        )
        if sample_rate <= 0:
            raise AudioError(
                f"eSpeak NG could not start with its voice data in '{self.data_path}'; "
                f"reinstall the espeakng-loader package."
            )
        self.lib = lib
        self.sample_rate = sample_rate
        self.capture = _Capture()
        # Kept on the instance: the C library holds only a raw pointer to this callback.
        self._callback = _SynthCallback(self._on_synth)
        lib.espeak_SetSynthCallback(self._callback)

    def _on_synth(self, pcm, n_samples, events) -> int:
        if n_samples > 0 and pcm:
            self.capture.pcm_chunks.append(np.ctypeslib.as_array(pcm, shape=(n_samples,)).copy())
        if events:
            index = 0
            while events[index].type != _EVENT_LIST_TERMINATED:
                event = events[index]
                if event.type == _EVENT_PHONEME:
                    name = event.id.string.decode("utf-8", errors="ignore")
                    self.capture.phoneme_marks.append((event.audio_position, name))
                index += 1
        return 0  # 0: go on synthesising

    def variants(self) -> list[str]:
        """Voice variants (`f3`, `m2`, `klatt`, …) in the voice data."""
        variant_folder = self.data_path / "voices" / "!v"
        return sorted(p.name for p in variant_folder.iterdir() if p.is_file())


_ENGINE: _Engine | None = None
_ENGINE_LOCK = threading.Lock()


def _engine() -> _Engine:
    """The initialised engine; call with `_ENGINE_LOCK` held."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


def synthesize_speech(
    text: str,
    *,
    lang: str = "en",
    voice_variant: str | None = None,
    rate_wpm: int = 160,
    pitch: int = 50,
) -> SpeechClip:
    """Speak `text` with eSpeak NG and return the audio with the time of every phoneme.

    `lang` is an eSpeak NG language or voice name (`en`, `en-us`, `de`, `fr`, `es`, …);
    `voice_variant` picks a voice variant such as `f3` (female) or `m2`; `rate_wpm` is the
    speaking rate in words per minute (80–450); `pitch` is the base pitch, 0–100 (50 normal).
    Returns a `SpeechClip` whose audio is 16 kHz mono (eSpeak NG speaks at 22.05 kHz) and
    whose phonemes carry IPA names and times in seconds.

    eSpeak NG carries a little waveform state from one utterance to the next, so repeating
    the same call in one process can give audio that differs by a few milliseconds.
    Raises AudioError for an unknown language or variant, settings out of range, or text
    that gives no speech.
    """
    if not text or not text.strip():
        raise AudioError("There is no text to speak.")
    if not RATE_MIN_WPM <= rate_wpm <= RATE_MAX_WPM:
        raise AudioError(
            f"The speaking rate must be {RATE_MIN_WPM}–{RATE_MAX_WPM} words per minute, "
            f"not {rate_wpm}."
        )
    if not 0 <= pitch <= 100:
        raise AudioError(f"The speech pitch must be 0–100 (50 is normal), not {pitch}.")
    text_bytes = text.encode("utf-8")

    with _ENGINE_LOCK:
        engine = _engine()
        voice_name = lang
        if voice_variant:
            if voice_variant not in engine.variants():
                raise AudioError(
                    f"eSpeak NG has no voice variant '{voice_variant}'; "
                    f"use one such as f1, f3, m1, m3 or klatt."
                )
            voice_name = f"{lang}+{voice_variant}"
        if not lang or engine.lib.espeak_SetVoiceByName(voice_name.encode()) != _EE_OK:
            raise AudioError(
                f"eSpeak NG has no voice for the language '{lang}'; "
                f"use a language code such as en, en-us, de, fr, es or it."
            )
        engine.lib.espeak_SetParameter(_PARAMETER_RATE, int(rate_wpm), 0)
        engine.lib.espeak_SetParameter(_PARAMETER_PITCH, int(pitch), 0)

        engine.capture = _Capture()
        status = engine.lib.espeak_Synth(
            text_bytes, len(text_bytes) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        engine.lib.espeak_Synchronize()
        capture, engine.capture = engine.capture, _Capture()
        sample_rate = engine.sample_rate

    if status != _EE_OK:
        raise AudioError(f"eSpeak NG failed to speak the text (error code {status}).")
    if not capture.pcm_chunks:
        raise AudioError(f"eSpeak NG produced no speech for the text {text[:40]!r}.")
    pcm = np.concatenate(capture.pcm_chunks)
    audio = Audio.from_array(pcm, sample_rate)
    return SpeechClip(audio, _phoneme_events(capture.phoneme_marks, audio.duration_s), text)


def _phoneme_events(marks: list[tuple[int, str]], duration_s: float) -> list[PhonemeEvent]:
    """Turn eSpeak's phoneme start marks into phonemes with a start and an end.

    Each phoneme lasts until the next mark (a phoneme or a pause); the last one until the
    end of the audio. Pauses (empty names) are left out, and so are phonemes that eSpeak
    merged into their neighbour (marked at the same millisecond as the next mark).
    """
    events: list[PhonemeEvent] = []
    for index, (position_ms, name) in enumerate(marks):
        if not name:
            continue
        start_s = min(position_ms / 1000.0, duration_s)
        next_ms = marks[index + 1][0] if index + 1 < len(marks) else None
        end_s = duration_s if next_ms is None else min(next_ms / 1000.0, duration_s)
        if end_s <= start_s:
            continue
        stress = 0
        if _PRIMARY_STRESS in name:
            stress = 1
        elif _SECONDARY_STRESS in name:
            stress = 2
        phoneme = name.replace(_PRIMARY_STRESS, "").replace(_SECONDARY_STRESS, "")
        if phoneme:
            events.append(PhonemeEvent(phoneme, start_s, end_s, stress))
    return events


def demo_speech() -> SpeechClip:
    """About 5 s of English speech with pauses and bilabials (m, b, p, v), for the demo and
    tests: "Hello! My name is Vasa. I bring a photo to life, with my voice and a smile." """
    return synthesize_speech(DEMO_SENTENCE, lang="en", voice_variant="f3")


def seed_speech(seed: int) -> None:
    """Seed eSpeak NG's random generator (it varies the voice slightly from run to run).

    With the same seed set at the start of a fresh process, the same sequence of
    `synthesize_speech` calls gives the same audio; the corpus builder relies on this.
    """
    with _ENGINE_LOCK:
        engine = _engine()
        engine.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        engine.lib.espeak_ng_SetRandSeed.restype = None
        engine.lib.espeak_ng_SetRandSeed(int(seed) & 0x7FFFFFFF)
