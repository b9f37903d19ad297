"""The energy engine: mouth follows the voice, closes in silence, blinks, repeatable by seed."""

import numpy as np

from openvasa.audio import Audio
from openvasa.latent.motion import MotionFrame
from openvasa.motion.emotion import EMOTIONS, emotion_offset
from openvasa.motion.energy import EnergyEngine
from openvasa.settings import Controls


def _speech_with_pause(speech) -> Audio:
    """Speech, 1.5 s of silence, speech again."""
    rate = speech.audio.sample_rate
    samples = np.concatenate(
        [speech.audio.samples, np.zeros(int(1.5 * rate), np.float32), speech.audio.samples]
    )
    return Audio(samples, rate)


def test_mouth_opens_with_speech_and_closes_in_silence(speech):
    audio = _speech_with_pause(speech)
    motion = EnergyEngine().generate(audio, 25.0, MotionFrame.neutral(), Controls(seed=3))
    jaw = motion.channel("jawOpen")
    first = int(speech.audio.duration_s * 25)
    silence = jaw[first + 8 : first + 30]
    talking = jaw[5 : first - 5]
    assert silence.max() < 0.02
    assert talking.mean() > 0.12 and talking.max() > 0.3
    assert len(motion) == int(np.ceil(audio.duration_s * 25 - 1e-6))


def test_same_seed_same_motion_other_seed_other_head(speech):
    engine = EnergyEngine()
    a = engine.generate(speech.audio, 25.0, MotionFrame.neutral(), Controls(seed=7))
    b = engine.generate(speech.audio, 25.0, MotionFrame.neutral(), Controls(seed=7))
    c = engine.generate(speech.audio, 25.0, MotionFrame.neutral(), Controls(seed=8))
    np.testing.assert_array_equal(a.pose, b.pose)
    np.testing.assert_array_equal(a.blendshapes, b.blendshapes)
    assert np.abs(a.pose - c.pose).max() > 0.5
    # The lips follow the audio, not the seed.
    np.testing.assert_allclose(a.channel("jawOpen"), c.channel("jawOpen"))


def test_blinks_at_a_human_rate():
    minute = Audio(np.random.default_rng(0).normal(0, 0.05, 16000 * 60).astype(np.float32), 16000)
    rates = []
    for seed in range(4):
        motion = EnergyEngine().generate(minute, 25.0, MotionFrame.neutral(), Controls(seed=seed))
        closed = motion.channel("eyeBlinkLeft") > 0.5
        rates.append(int((np.diff(closed.astype(int)) == 1).sum()))
    assert 10 <= np.mean(rates) <= 25


def test_gaze_follows_the_control_and_emotions_offset(speech):
    motion = EnergyEngine().generate(
        speech.audio, 25.0, MotionFrame.neutral(), Controls(gaze_deg=(12.0, -6.0), emotion="happy")
    )
    np.testing.assert_allclose(np.median(motion.gaze, axis=0), (12.0, -6.0), atol=3.0)
    assert motion.channel("mouthSmileLeft").min() > 0.5
    for name in EMOTIONS[1:]:
        assert np.abs(emotion_offset(name)).sum() > 0.5
