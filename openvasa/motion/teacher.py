"""The teacher engine: speech with exact phoneme timings → holistic facial motion.

`--engine teacher` drives a face when the phonemes and their times are known (text spoken by
eSpeak NG, or a TTS engine's own timings), and makes the motion of the synthetic training
corpus for the learned generator. Everything is a function of time evaluated at each frame's
mid time, (i + 0.5) / fps, so that the same clip gives the same motion at any frame rate.

- Mouth: visemes with coarticulation (`openvasa.motion.visemes`), their targets and timing a
  real speaker's (measured on GRID: `openvasa.motion.articulation`); jaw amplitude from stress
  and loudness; the lips close exactly for /p b m/ (mouthClose = jawOpen, lips pressed) and in
  pauses.
- Head: slow drift with a 1/f spectrum, nods on prominent stressed syllables, a rise with
  the voice's pitch, a new resting orientation at each phrase; each clip a talker of its own,
  some moving more than others.
- Brows rise on the most prominent accents; blinks at phrase boundaries and at random;
  gaze fixations around the main gaze direction with saccades and looks away at phrase starts.
- Emotion presets offset the blendshapes and scale how much everything moves.

Statistics are tuned to published measurements of real talkers, cited where they are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from openvasa.audio import Audio, PhonemeEvent, prosody_features
from openvasa.errors import OpenvasaError
from openvasa.latent.motion import BLENDSHAPE_INDEX, MotionFrame, MotionSequence
from openvasa.motion.articulation import articulation
from openvasa.motion.emotion import emotion_offset, motion_energy
from openvasa.motion.visemes import (
    JAW,
    VISEME_TARGETS,
    Segment,
    coarticulate,
    phoneme_sounds,
    sound_dominance,
    sound_targets,
)
from openvasa.settings import Controls
from openvasa.timing import frame_count

# --- lips ---------------------------------------------------------------------------------
# Timing measured on a real speaker (GRID speaker 1, `openvasa.motion.articulation`): how early
# the mouth's shapes lead the sound, when the lips close and part around /p b m/ relative to the
# phone's acoustic start and end, and how long a closure lasts at least. A closure is widened
# evenly to that length and always covers one frame's time, so that it shows in a frame.
_TIMING = articulation()
LEAD_S = _TIMING.lead_s
MIN_CLOSURE_S = _TIMING.min_closure_s
# The lips need about 60 ms to close from a vowel and 50 ms to part again; with straight
# ramps they touch about 10 ms before the full press and part about 6 ms after it ends
# (measured on the rendered mesh: inner-lip gap under 0.5 % of the face width).
CLOSING_S = 0.06
OPENING_S = 0.05
LIPS_TOUCH_EARLY_S = 0.010
LIPS_PART_LATE_S = 0.006
# Lips are closed in every pause at least PAUSE_MIN_S long (silence between phonemes, or a
# stretch of quiet audio inside one), from PAUSE_RELAX_S after the sound stops until
# PAUSE_PREPARE_S before it resumes (both measured on the real speaker, whose lips are shut
# by the time the sound ends; the closing ramp still takes one 25 fps frame at least).
PAUSE_MIN_S = 0.15
PAUSE_RELAX_S = max(_TIMING.relax_s, 0.04)
PAUSE_PREPARE_S = _TIMING.prepare_s
QUIET_ENERGY = 0.03
# Pressing the lips together as far as the neutral face's sliver needs, and a firmer press for
# /p b m/ (values of mouthPressLeft/Right).
REST_PRESS = 0.35
CLOSURE_PRESS = 0.5
# Shapes that part the lips and must yield while the lips are closed.
_LIP_OPENERS = (
    "mouthFunnel",
    "mouthShrugUpper",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
)
# --- jaw ----------------------------------------------------------------------------------
# Stressed vowels open the jaw wider and loud ones more than quiet ones.
STRESS_GAIN = {0: 0.9, 1: 1.15, 2: 1.0}
LOUDNESS_GAIN = (0.7, 0.55)  # gain = a + b · energy (energy 0–1 over the phoneme)
# --- blinks -------------------------------------------------------------------------------
# Spontaneous blinking: a mean of 26/min in conversation, 17/min at rest and 4.5/min while
# reading, with wide differences between people (Bentivoglio et al. 1997, Movement Disorders
# 12:1028, 150 healthy adults). Talking is conversation; the real speakers of issue 13's clips
# blink 0–75 a minute (median 27). Each clip is one talker: its rate is drawn around the
# conversational mean with a lognormal spread of BLINK_RATE_SPREAD (90 % of talkers within
# 0.5–2× the mean). Speakers blink preferably at the ends of phrases and sentences (Nakano &
# Kitazawa 2010, Exp Brain Res 205:577).
BLINKS_PER_MIN = 26.0
BLINK_RATE_SPREAD = 0.42
BOUNDARY_BLINK_PROBABILITY = 0.55
BLINK_MIN_GAP_S = 0.6
# One blink: the lid closes in ~90 ms, stays shut ~30 ms and reopens in ~150 ms (VanderWerf
# et al. 2003, J Neurophysiol 89:2784: blink durations of 200–300 ms, the downphase faster).
BLINK_CLOSE_S = 0.09
BLINK_SHUT_S = 0.03
BLINK_OPEN_S = 0.15
# --- gaze ---------------------------------------------------------------------------------
# Fixations while talking last about 0.3–2 s (lognormal around 0.8 s); small saccades keep
# within a few degrees of the listener's face. Speakers look away at the start of an utterance
# and back towards its end (Kendon 1967, Acta Psychologica 26:22); a speaker looks at the
# listener about 40 % of the time (Argyle & Cook 1976), a presenter facing a camera far more.
FIXATION_MEDIAN_S = 0.8
FIXATION_SIGMA = 0.5
SACCADE_DEG = 1.6
LOOK_AWAY_PROBABILITY = 0.35
LOOK_AWAY_DEG = (4.0, 9.0)
LOOK_AWAY_S = (0.4, 1.3)
# --- head ---------------------------------------------------------------------------------
# Head rotation while talking: a few degrees of drift, nods of 1–4° on accented syllables and
# pitch rising with the voice's F0 (Hadar et al. 1983, Language and Speech 26:117; Graf et al.
# 2002, IEEE FG "Visual prosody"; Munhall et al. 2004, Psychological Science 15:133). Real
# talking-head video moves 0.41–0.51° per frame at 25 fps (ΔP of the real VoxCeleb2 and
# OneMin-32 videos in the VASA-1 paper, Xu et al. 2024); the amplitudes below give the middle
# of that, 0.45 (see `motion_statistics`), for the median talker. Talkers differ: the real
# clips of issue 13 turn their heads over yaw ranges (5th–95th percentile) of 4–46°, so each
# clip's head motion is scaled by a lognormal talker factor of spread HEAD_SPREAD (90 % of
# talkers within 0.4–2.3× the median).
HEAD_SPREAD = 0.5
DRIFT_DEG = {"yaw": 2.9, "pitch": 1.75, "roll": 1.4}
DRIFT_SLOWEST_S = 10.0
DRIFT_FASTEST_S = 0.35
PHRASE_TURN_DEG = {"yaw": 2.5, "pitch": 1.2, "roll": 1.5}
PHRASE_TURN_S = 0.6
NOD_DEG = (1.5, 3.5)
NOD_MIN_GAP_S = 0.5
NOD_SHARE = 0.45  # nods on this share of the most prominent stressed syllables
NOD_RISE_S = 0.12
NOD_FALL_S = 0.35
F0_PITCH_DEG = 1.0  # head pitch per standard deviation of the voice's F0
SILENT_HEAD = 0.55  # head motion in pauses, relative to speech
LEAN_PER_ACCENT = 0.012  # scale: the head comes a little closer on emphasis
# --- brows --------------------------------------------------------------------------------
# Brows rise with F0 rises on emphasised words (Cavé et al. 1996, ICSLP "About the
# relationship between eyebrow movements and F0 variations").
BROW_SHARE = 0.25
BROW_RAISE = 0.45
BROW_RISE_S = 0.12
BROW_FALL_S = 0.4

CONTROL_RATE_HZ = 100.0  # grid on which random drift is drawn, then read at frame times


def _ramp(x: np.ndarray) -> np.ndarray:
    """Smooth step from 0 (x ≤ 0) to 1 (x ≥ 1)."""
    x = np.clip(x, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


def _hold_envelope(
    times_s: np.ndarray,
    start_s: float,
    end_s: float,
    rise_s: float,
    fall_s: float,
    *,
    smooth: bool = True,
) -> np.ndarray:
    """1 on [start_s, end_s], ramps of rise_s before and fall_s after, 0 elsewhere.

    smooth: cosine ramps (limbs that ease in and out); False for straight ramps, as the lips
    that meet and part still moving fast (they press together on contact).
    """
    shape = _ramp if smooth else (lambda x: np.clip(x, 0.0, 1.0))
    rising = shape((times_s - (start_s - rise_s)) / rise_s)
    falling = shape(((end_s + fall_s) - times_s) / fall_s)
    return np.minimum(rising, falling)


def _pulse(times_s: np.ndarray, peak_s: float, rise_s: float, fall_s: float) -> np.ndarray:
    return _hold_envelope(times_s, peak_s, peak_s, rise_s, fall_s)


def _pink_noise(
    rng: np.random.Generator, n: int, rate_hz: float, slowest_s: float, fastest_s: float
) -> np.ndarray:
    """(n,) unit-variance noise with a 1/f power spectrum between two time scales."""
    size = max(n, int(2 * slowest_s * rate_hz))
    spectrum = rng.normal(size=size // 2 + 1) + 1j * rng.normal(size=size // 2 + 1)
    freqs = np.fft.rfftfreq(size, 1.0 / rate_hz)
    band = (freqs >= 1.0 / slowest_s) & (freqs <= 1.0 / fastest_s)
    spectrum *= np.where(band, 1.0 / np.sqrt(np.maximum(freqs, 1e-6)), 0.0)
    noise = np.fft.irfft(spectrum, size)[:n]
    std = noise.std()
    return noise / std if std > 0 else noise


@dataclass
class Phrase:
    """A stretch of speech between pauses, in seconds."""

    start_s: float
    end_s: float


@dataclass
class _Voice:
    """Prosody sampled on the control grid, for the parts of the teacher that follow it."""

    times_s: np.ndarray
    energy: np.ndarray
    pitch_z: np.ndarray  # F0 in standard deviations from the clip's mean, 0 where unvoiced

    def energy_over(self, start_s: float, end_s: float) -> float:
        first, last = np.searchsorted(self.times_s, [start_s, end_s])
        if last <= first:
            last = min(first + 1, len(self.energy))
            first = max(last - 1, 0)
        return float(self.energy[first:last].mean()) if last > first else 1.0

    def pitch_over(self, start_s: float, end_s: float) -> float:
        first, last = np.searchsorted(self.times_s, [start_s, end_s])
        return float(self.pitch_z[first:last].max()) if last > first else 0.0


def _voice(audio: Audio | None, duration_s: float) -> _Voice | None:
    if audio is None:
        return None
    prosody = prosody_features(audio, CONTROL_RATE_HZ)
    times = (np.arange(len(prosody)) + 0.5) / CONTROL_RATE_HZ
    voiced = prosody.pitch_hz > 0
    pitch_z = np.zeros(len(prosody), np.float32)
    if voiced.sum() > 10:
        semitones = 12 * np.log2(prosody.pitch_hz[voiced])
        pitch_z[voiced] = (semitones - semitones.mean()) / max(semitones.std(), 0.5)
    return _Voice(times, prosody.energy.astype(np.float64), pitch_z)


def _check_phonemes(phonemes: Sequence[PhonemeEvent], duration_s: float) -> list[PhonemeEvent]:
    events = sorted(phonemes, key=lambda p: p.start_s)
    for event in events:
        if not (np.isfinite(event.start_s) and np.isfinite(event.end_s)):
            raise OpenvasaError(f"Phoneme {event.phoneme!r} has a time that is not a number.")
        if event.start_s < 0 or event.end_s < event.start_s:
            raise OpenvasaError(
                f"Phoneme {event.phoneme!r} at {event.start_s:.3f} s ends before it starts "
                f"({event.end_s:.3f} s) or starts before 0."
            )
    if events and events[0].start_s >= duration_s:
        raise OpenvasaError(
            f"The phonemes start at {events[0].start_s:.2f} s, after the audio ends "
            f"({duration_s:.2f} s): are the times in seconds?"
        )
    return events


class TeacherEngine:
    """Phoneme timings + audio prosody → MotionSequence (`--engine teacher`)."""

    name = "teacher"
    needs_phonemes = True

    def generate(
        self,
        audio: Audio | None,
        fps: float,
        start: MotionFrame,
        controls: Controls | None = None,
        *,
        phonemes: Sequence[PhonemeEvent] | None,
        duration_s: float | None = None,
    ) -> MotionSequence:
        """Motion for the whole clip, one frame per 1/fps.

        audio: the speech the phonemes time (16 kHz Audio), or None to move from the phonemes
            alone (loudness then counts as constant and the voice's pitch as flat).
        phonemes: the spoken phonemes with start/end times in seconds (IPA or ARPAbet names;
            see `openvasa.motion.visemes.phoneme_sounds`); gaps between them are pauses.
        start: the portrait's own motion latents; its pose is the head's rest pose.
        duration_s: length of the clip when there is no audio (default: last phoneme + 0.5 s).
        Returns a MotionSequence of `frame_count(duration, fps)` frames whose frame i shows
        the face at (i + 0.5) / fps seconds.
        """
        if phonemes is None:
            raise OpenvasaError(
                "The teacher engine needs the phonemes and their times: give --text "
                "(speech made by eSpeak NG) or --phonemes FILE with the audio."
            )
        controls = controls or Controls()
        if audio is not None:
            duration_s = audio.duration_s
        elif duration_s is None:
            duration_s = (max(p.end_s for p in phonemes) if phonemes else 0.0) + 0.5
        events = _check_phonemes(phonemes, duration_s)
        n = frame_count(duration_s, fps)
        times = (np.arange(n) + 0.5) / fps
        rng = np.random.default_rng(controls.seed)
        voice = _voice(audio, duration_s)
        liveliness = motion_energy(controls.emotion, controls.emotion_strength)

        segments, closures, pauses = _articulation(events, duration_s, voice, liveliness, times)
        phrases = _phrases(pauses, events, duration_s)
        accents = _accents(events, voice)

        blendshapes = coarticulate(_lead(segments, LEAD_S), times)
        blendshapes += emotion_offset(controls.emotion, controls.emotion_strength)
        _brows(blendshapes, times, accents, rng, liveliness)
        _close_lips(blendshapes, times, closures, pauses)
        blink = _blink_track(times, _blink_times(duration_s, phrases, rng))
        for side in ("Left", "Right"):
            column = BLENDSHAPE_INDEX[f"eyeBlink{side}"]
            blendshapes[:, column] = np.maximum(blendshapes[:, column], blink)
        np.clip(blendshapes, 0.0, 1.0, out=blendshapes)

        pose = _head(start.pose, times, duration_s, phrases, accents, voice, rng, liveliness)
        gaze = _gaze(times, duration_s, phrases, np.asarray(controls.gaze_deg), rng)
        return MotionSequence(fps, pose, blendshapes, gaze)


# --- mouth ------------------------------------------------------------------------------------
def _articulation(
    events: list[PhonemeEvent],
    duration_s: float,
    voice: _Voice | None,
    liveliness: float,
    times: np.ndarray,
) -> tuple[list[Segment], list[tuple[float, float]], list[tuple[float, float]]]:
    """Segments to coarticulate, bilabial closure holds and pauses, all in seconds; times:
    the frame times (s) that the motion will be read at."""
    segments: list[Segment] = []
    closures: list[tuple[float, float]] = []
    pauses: list[tuple[float, float]] = []
    silence = sound_dominance(None)
    rest = VISEME_TARGETS["sil"]
    cursor = 0.0
    for event in events:
        start_s, end_s = event.start_s, min(event.end_s, duration_s)
        if start_s - cursor > 1e-6:
            segments.append(Segment(None, cursor, start_s, rest, silence))
            if start_s - cursor >= PAUSE_MIN_S or cursor == 0.0:
                pauses.append((cursor, start_s))
        sounds = phoneme_sounds(event.phoneme)
        if not sounds:
            # Silence names ("sil", "sp") and unknown symbols: a pause of their own.
            segments.append(Segment(None, start_s, end_s, rest, silence))
            if end_s - start_s >= PAUSE_MIN_S:
                pauses.append((start_s, end_s))
            cursor = max(cursor, end_s)
            continue
        gain = STRESS_GAIN.get(event.stress, 1.0) * liveliness**0.5
        if voice is not None:
            energy = voice.energy_over(start_s, end_s)
            gain *= LOUDNESS_GAIN[0] + LOUDNESS_GAIN[1] * energy
        share = (end_s - start_s) / len(sounds)
        for k, sound in enumerate(sounds):
            s0, s1 = start_s + k * share, start_s + (k + 1) * share
            target = sound_targets(sound)
            jaw_gain = gain if sound.is_vowel else 1.0
            if sound.is_vowel:
                target = target.copy()
                target[JAW] = min(target[JAW] * gain, 0.85)
            segments.append(Segment(sound, s0, s1, target, sound_dominance(sound), jaw_gain))
            if sound.closes_lips:
                closures.append(_closure_hold(s0, s1, times, *_TIMING.closure_s(sound.symbol)))
        cursor = max(cursor, end_s)
    if duration_s - cursor > 1e-6:
        segments.append(Segment(None, cursor, duration_s, rest, silence))
        pauses.append((cursor, duration_s + 1.0))
    if voice is not None:
        pauses.extend(_quiet_stretches(voice))
    return segments, closures, pauses


def _lead(segments: list[Segment], lead_s: float) -> list[Segment]:
    """The segments moved lead_s earlier: the mouth shapes a sound before it sounds."""
    return [replace(s, start_s=s.start_s - lead_s, end_s=s.end_s - lead_s) for s in segments]


def _closure_hold(
    start_s: float,
    end_s: float,
    times_s: np.ndarray,
    onset_s: float = 0.0,
    release_s: float = 0.0,
) -> tuple[float, float]:
    """Full-closure interval of a bilabial over [start_s, end_s): the lips touch onset_s
    after the phone starts and part release_s after it ends (the real speaker's timing,
    `Articulation.closure_s`), widened evenly on both sides to MIN_CLOSURE_S. They touch a little
    before the full press is reached and part a little after it is let go, so the hold of
    the full press sits that much inside. The hold always takes in the frame time (of
    times_s) nearest the phone's middle, so that every closure shows in a frame."""
    # Whatever an aligner or synthesiser counts as the phone (closure and burst, or the burst
    # alone), its middle falls inside the closure.
    touch_s = min(start_s + onset_s, 0.5 * (start_s + end_s))
    part_s = max(end_s + release_s, 0.5 * (start_s + end_s))
    widen = max(MIN_CLOSURE_S - (part_s - touch_s), 0.0) / 2
    hold_start = touch_s - widen + LIPS_TOUCH_EARLY_S
    hold_end = max(part_s + widen - LIPS_PART_LATE_S, hold_start)
    if len(times_s):
        middle = 0.5 * (start_s + end_s)
        nearest = float(times_s[np.abs(times_s - middle).argmin()])
        hold_start, hold_end = min(hold_start, nearest), max(hold_end, nearest)
    return hold_start, hold_end


def _quiet_stretches(voice: _Voice) -> list[tuple[float, float]]:
    """Stretches of the audio quieter than QUIET_ENERGY for at least PAUSE_MIN_S + margins:
    silence inside a phoneme's span (user timings, a last phoneme that runs to the end)."""
    quiet = np.concatenate([[False], voice.energy < QUIET_ENERGY, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    stretches = []
    step = 1.0 / CONTROL_RATE_HZ
    for first, last in zip(edges[::2], edges[1::2], strict=True):
        start_s, end_s = first * step, last * step
        if end_s - start_s >= PAUSE_MIN_S + 0.1:
            stretches.append((start_s, end_s))
    return stretches


def _close_lips(
    blendshapes: np.ndarray,
    times: np.ndarray,
    closures: list[tuple[float, float]],
    pauses: list[tuple[float, float]],
) -> None:
    """Close the lips over the bilabial holds and the pauses, in place.

    With the lips closed, mouthClose equals jawOpen (the lower lip rides back up against the
    upper one however far the jaw is open) and the lips are pressed; shapes that would part
    them yield.
    """
    closed = np.zeros(len(times))
    press = np.zeros(len(times))
    for start_s, end_s in closures:
        envelope = _hold_envelope(times, start_s, end_s, CLOSING_S, OPENING_S, smooth=False)
        closed = np.maximum(closed, envelope)
        press = np.maximum(press, CLOSURE_PRESS * envelope)
    for start_s, end_s in pauses:
        hold_start, hold_end = start_s + PAUSE_RELAX_S, end_s - PAUSE_PREPARE_S
        if start_s <= 0.0:
            hold_start = -1.0  # the clip starts with closed lips
        if hold_end <= hold_start:
            continue
        envelope = _hold_envelope(times, hold_start, hold_end, PAUSE_RELAX_S, OPENING_S)
        closed = np.maximum(closed, envelope)
        press = np.maximum(press, REST_PRESS * envelope)
    jaw = blendshapes[:, JAW]
    close = BLENDSHAPE_INDEX["mouthClose"]
    blendshapes[:, close] = np.minimum(
        np.maximum(blendshapes[:, close], closed * jaw), np.maximum(jaw, 0.0)
    )
    for side in ("Left", "Right"):
        column = BLENDSHAPE_INDEX[f"mouthPress{side}"]
        blendshapes[:, column] = np.maximum(blendshapes[:, column], press)
    for name in _LIP_OPENERS:
        blendshapes[:, BLENDSHAPE_INDEX[name]] *= 1.0 - closed


# --- prosodic structure ------------------------------------------------------------------------
def _phrases(
    pauses: list[tuple[float, float]], events: list[PhonemeEvent], duration_s: float
) -> list[Phrase]:
    """Speech between pauses (pauses of at least PAUSE_MIN_S)."""
    if not events:
        return []
    spoken_start = min(e.start_s for e in events)
    spoken_end = min(max(e.end_s for e in events), duration_s)
    breaks = sorted((s, e) for s, e in pauses if e > spoken_start + 1e-6 and s < spoken_end - 1e-6)
    phrases, cursor = [], spoken_start
    for start_s, end_s in breaks:
        if start_s > cursor + 0.05:
            phrases.append(Phrase(cursor, start_s))
        cursor = max(cursor, end_s)
    if spoken_end > cursor + 0.05:
        phrases.append(Phrase(cursor, spoken_end))
    return phrases


@dataclass
class Accent:
    """A stressed syllable's vowel, with how prominent it is (larger is more)."""

    start_s: float
    end_s: float
    prominence: float


def _accents(events: list[PhonemeEvent], voice: _Voice | None) -> list[Accent]:
    accents = []
    for event in events:
        sounds = phoneme_sounds(event.phoneme)
        if event.stress != 1 or not any(s.is_vowel for s in sounds):
            continue
        prominence = 1.0 + 0.25 * min(event.duration_s, 0.3) / 0.1
        if voice is not None:
            prominence += voice.energy_over(event.start_s, event.end_s)
            prominence += 0.5 * voice.pitch_over(event.start_s, event.end_s)
        accents.append(Accent(event.start_s, event.end_s, prominence))
    return accents


def _strongest(accents: list[Accent], share: float, min_gap_s: float) -> list[Accent]:
    """The most prominent `share` of the accents, at least min_gap_s apart."""
    if not accents:
        return []
    threshold = np.quantile([a.prominence for a in accents], 1.0 - share)
    chosen: list[Accent] = []
    for accent in sorted(accents, key=lambda a: -a.prominence):
        if accent.prominence < threshold:
            break
        if all(abs(accent.start_s - c.start_s) >= min_gap_s for c in chosen):
            chosen.append(accent)
    return sorted(chosen, key=lambda a: a.start_s)


# --- face and eyes ------------------------------------------------------------------------
def _brows(
    blendshapes: np.ndarray,
    times: np.ndarray,
    accents: list[Accent],
    rng: np.random.Generator,
    liveliness: float,
) -> None:
    raise_track = np.zeros(len(times))
    for accent in _strongest(accents, BROW_SHARE, 1.2):
        amount = BROW_RAISE * liveliness * rng.uniform(0.6, 1.0)
        envelope = _hold_envelope(times, accent.start_s, accent.end_s, BROW_RISE_S, BROW_FALL_S)
        raise_track = np.maximum(raise_track, amount * envelope)
    blendshapes[:, BLENDSHAPE_INDEX["browInnerUp"]] += raise_track
    for side in ("Left", "Right"):
        blendshapes[:, BLENDSHAPE_INDEX[f"browOuterUp{side}"]] += 0.7 * raise_track


def _blink_times(duration_s: float, phrases: list[Phrase], rng: np.random.Generator) -> np.ndarray:
    """Times (s) of blink closure for one talker: a Poisson number of blinks at the talker's
    rate (BLINKS_PER_MIN, spread by BLINK_RATE_SPREAD), first at phrase ends (each with
    BOUNDARY_BLINK_PROBABILITY), the rest at random times; never closer than BLINK_MIN_GAP_S."""
    rate_per_min = BLINKS_PER_MIN * float(np.exp(BLINK_RATE_SPREAD * rng.normal()))
    wanted = rng.poisson(rate_per_min / 60.0 * duration_s)
    boundary = [
        p.end_s + rng.uniform(0.05, 0.3)
        for p in phrases
        if rng.random() < BOUNDARY_BLINK_PROBABILITY
    ]
    chosen: list[float] = []

    def fits(t: float) -> bool:
        return 0.0 < t < duration_s and all(abs(t - c) >= BLINK_MIN_GAP_S for c in chosen)

    # Boundary blinks first: they are the ones that carry meaning.
    for t in boundary:
        if len(chosen) < wanted and fits(t):
            chosen.append(t)
    for t in rng.uniform(0.3, max(duration_s, 0.31), 20 * wanted + 20):
        if len(chosen) >= wanted:
            break
        if fits(t):
            chosen.append(t)
    return np.sort(np.asarray(chosen))


def _blink_track(times: np.ndarray, blink_times: np.ndarray) -> np.ndarray:
    track = np.zeros(len(times), np.float32)
    for t in blink_times:
        envelope = _hold_envelope(times, t, t + BLINK_SHUT_S, BLINK_CLOSE_S, BLINK_OPEN_S)
        track = np.maximum(track, envelope)
    return track


def _gaze(
    times: np.ndarray,
    duration_s: float,
    phrases: list[Phrase],
    main_deg: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """(T, 2) gaze: fixations near the main direction, saccades between them, and looks away
    at some phrase starts."""
    gaze = np.tile(main_deg.astype(np.float32), (len(times), 1))
    t, target = 0.0, np.zeros(2)
    while t < duration_s:
        length = FIXATION_MEDIAN_S * float(np.exp(FIXATION_SIGMA * rng.normal()))
        length = float(np.clip(length, 0.25, 3.0))
        target = rng.normal(0.0, SACCADE_DEG, 2) * np.array([1.0, 0.6])
        gaze[(times >= t) & (times < t + length)] = main_deg + target
        t += length
    for phrase in phrases:
        if rng.random() >= LOOK_AWAY_PROBABILITY:
            continue
        angle = rng.uniform(*LOOK_AWAY_DEG)
        direction = rng.choice([-1.0, 1.0]) * np.array([1.0, 0.0])
        if rng.random() < 0.4:  # down and to the side: thinking, not distraction
            direction = np.array([direction[0] * 0.7, -0.7])
        away_start = phrase.start_s + rng.uniform(-0.1, 0.2)
        away_end = min(away_start + rng.uniform(*LOOK_AWAY_S), phrase.end_s)
        inside = (times >= away_start) & (times < away_end)
        gaze[inside] = main_deg + angle * direction
    return gaze


def _head(
    pose0: np.ndarray,
    times: np.ndarray,
    duration_s: float,
    phrases: list[Phrase],
    accents: list[Accent],
    voice: _Voice | None,
    rng: np.random.Generator,
    liveliness: float,
) -> np.ndarray:
    """(T, 6) head pose around the rest pose pose0."""
    liveliness = liveliness * float(np.exp(HEAD_SPREAD * rng.normal()))  # this talker's
    n_grid = int(np.ceil(duration_s * CONTROL_RATE_HZ)) + 2
    grid = np.arange(n_grid) / CONTROL_RATE_HZ
    drift = np.stack(
        [
            DRIFT_DEG[axis]
            * _pink_noise(rng, n_grid, CONTROL_RATE_HZ, DRIFT_SLOWEST_S, DRIFT_FASTEST_S)
            for axis in ("yaw", "pitch", "roll")
        ],
        1,
    )
    # Each phrase settles into an orientation of its own: the head turns during the phrase's
    # first PHRASE_TURN_S and holds there through the pause after it (talkers move their heads
    # while they speak, far less in pauses: Hadar et al. 1983).
    offsets = np.zeros((n_grid, 3))
    previous = np.zeros(3)
    for phrase in phrases:
        turn = rng.normal(0.0, 1.0, 3) * [PHRASE_TURN_DEG[a] for a in ("yaw", "pitch", "roll")]
        offsets += (turn - previous) * _ramp((grid - phrase.start_s) / PHRASE_TURN_S)[:, None]
        previous = turn
    speaking = np.zeros(n_grid)
    for phrase in phrases:
        speaking = np.maximum(
            speaking, _hold_envelope(grid, phrase.start_s, phrase.end_s, 0.15, 0.3)
        )
    motion = drift * (SILENT_HEAD + (1 - SILENT_HEAD) * speaking)[:, None] + offsets

    nod = np.zeros(n_grid)
    lean = np.zeros(n_grid)
    for accent in _strongest(accents, NOD_SHARE, NOD_MIN_GAP_S):
        # The head leads the voice a little: the nod is deepest just after the vowel starts.
        amount = rng.uniform(*NOD_DEG)
        nod += amount * _pulse(grid, accent.start_s + 0.04, NOD_RISE_S, NOD_FALL_S)
        lean += LEAN_PER_ACCENT * _pulse(grid, accent.start_s + 0.04, 0.2, 0.5)
    motion[:, 1] -= nod
    if voice is not None:
        pitch_z = np.interp(grid, voice.times_s, voice.pitch_z)
        kernel = np.hanning(int(0.3 * CONTROL_RATE_HZ))
        pitch_z = np.convolve(pitch_z, kernel / kernel.sum(), mode="same")
        motion[:, 1] += F0_PITCH_DEG * pitch_z

    pose = np.tile(np.asarray(pose0, np.float64), (len(times), 1))
    for axis in range(3):
        pose[:, axis] += liveliness * np.interp(times, grid, motion[:, axis])
    # Small translation that follows the turns (the head pivots on the neck, not its centre).
    pose[:, 3] += 0.004 * np.interp(times, grid, motion[:, 0])
    pose[:, 4] -= 0.003 * np.interp(times, grid, motion[:, 1])
    pose[:, 5] *= 1.0 + liveliness * np.interp(times, grid, lean)
    return pose.astype(np.float32)
