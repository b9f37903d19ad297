"""Lip sync of a motion checkpoint on held-out speech, against the procedural teacher.

    python tools/eval_motion_model.py CHECKPOINT

Speaks sentences in languages the shipped model never heard (it, pt, nl) and in a voice,
pitch and tempo outside the corpus's ranges, makes motion with the teacher (which knows the
phonemes) and with the diffusion model (which hears only the audio), and prints the
correlation of their jawOpen, the onset lag in frames, how different two seeds' heads are, and
how both rest the mouth and blink in the 2 s pauses around each sentence.
"""

import sys

import numpy as np

from openvasa.audio import synthesize_speech
from openvasa.latent.motion import MotionFrame
from openvasa.motion.diffusion.engine import DiffusionEngine, DiffusionSettings
from openvasa.motion.diffusion.sampler import Guidance
from openvasa.motion.teacher import TeacherEngine
from openvasa.settings import Controls

HELD_OUT = [
    ("it", "Buongiorno a tutti, oggi parliamo del mare, del sole e delle montagne.", {}),
    ("pt", "O menino comprou pão e leite na padaria ao lado da praça.", {}),
    ("nl", "Morgen gaan wij met de fiets naar het strand bij de grote duinen.", {}),
    # Outside the corpus's voice ranges (rate 125–215 wpm, pitch 25–80).
    (
        "en",
        "Please remember to bring the maps, the boots and a warm blanket.",
        {"rate_wpm": 240, "pitch": 90},
    ),
]


PAUSE_S = 2.0  # silence before and after each sentence
AUDIO_CFG = float(sys.argv[2]) if len(sys.argv) > 2 else Guidance().audio


def lag_of(a: np.ndarray, b: np.ndarray, max_lag: int = 5) -> int:
    """Frames by which b trails a (positive: b is late)."""
    scores = [
        np.corrcoef(a[max_lag:-max_lag], np.roll(b, -lag)[max_lag:-max_lag])[0, 1]
        for lag in range(-max_lag, max_lag + 1)
    ]
    return int(np.argmax(scores)) - max_lag


def blinks_per_min(motion) -> float:
    lid = motion.channel("eyeBlinkLeft")
    return float(np.sum((lid[1:] > 0.5) & (lid[:-1] <= 0.5)) / motion.duration_s * 60.0)


def main(checkpoint: str) -> None:
    engine = DiffusionEngine(checkpoint, DiffusionSettings(guidance=Guidance(audio=AUDIO_CFG)))
    teacher = TeacherEngine()
    rows = []
    quiet = {"model jaw": [], "teacher jaw": [], "model blinks": [], "teacher blinks": []}
    for lang, text, voice in HELD_OUT:
        clip = synthesize_speech(text, lang=lang, **voice).with_silence(PAUSE_S, PAUSE_S)
        reference = teacher.generate(
            clip.audio, 25.0, MotionFrame.neutral(), Controls(seed=0), phonemes=clip.phonemes
        )
        a = engine.generate(clip.audio, 25.0, MotionFrame.neutral(), Controls(seed=1))
        b = engine.generate(clip.audio, 25.0, MotionFrame.neutral(), Controls(seed=2))
        jaw_t, jaw_a, jaw_b = (m.channel("jawOpen") for m in (reference, a, b))
        n = min(len(jaw_t), len(jaw_a))
        speech = slice(int(PAUSE_S * 25), n - int(PAUSE_S * 25))  # lip sync: the speech only
        r = np.corrcoef(jaw_t[speech], jaw_a[speech])[0, 1]
        lag = lag_of(jaw_t[speech], jaw_a[speech])
        head = np.abs(a.pose[:, :3] - b.pose[:, :3]).mean()
        lips = np.corrcoef(jaw_a, jaw_b)[0, 1]
        rows.append((lang, r, lag, head, lips))
        pause = int(PAUSE_S * 25) - 5  # frames well inside the pauses
        for name, motion in (("model", a), ("teacher", reference)):
            jaw = motion.channel("jawOpen")
            quiet[f"{name} jaw"].append(np.median(np.r_[jaw[:pause], jaw[-pause:]]))
            quiet[f"{name} blinks"].append(blinks_per_min(motion))
        print(
            f"{lang}{' (voice out of range)' if voice else '':<22} jawOpen r={r:.3f} "
            f"lag={lag:+d} frames | two seeds: head differs {head:.2f} deg, jaw r={lips:.3f}"
        )
    print(
        f"mean jawOpen r={np.mean([r[1] for r in rows]):.3f}, "
        f"max |lag|={max(abs(r[2]) for r in rows)} frames"
    )
    print(
        f"in {PAUSE_S:g} s pauses around the speech: median jawOpen model "
        f"{np.mean(quiet['model jaw']):.3f}, teacher {np.mean(quiet['teacher jaw']):.3f}; "
        f"blinks/min model {np.mean(quiet['model blinks']):.1f}, "
        f"teacher {np.mean(quiet['teacher blinks']):.1f}"
    )


if __name__ == "__main__":
    main(sys.argv[1])
