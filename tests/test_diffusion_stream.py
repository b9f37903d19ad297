"""Live diffusion motion: the offline window step with a short look-ahead, seamless, on time."""

import numpy as np
import pytest

from openvasa.latent.motion import MotionFrame
from openvasa.motion.energy import concatenate
from openvasa.settings import Controls
from openvasa.timing import frame_count


@pytest.fixture(scope="module")
def engine():
    from openvasa.motion.diffusion.engine import DiffusionEngine

    return DiffusionEngine()


def _live(engine, samples, seed, chunk=None):
    stream = engine.open(25.0, MotionFrame.neutral(), Controls(seed=seed))
    chunk = chunk or len(samples)
    parts = [stream.push(samples[i : i + chunk]) for i in range(0, len(samples), chunk)]
    return concatenate([*parts, stream.end()], 25.0)


def test_same_motion_and_frame_count_however_the_audio_is_cut(engine, speech):
    """Each window hears exactly the audio up to its own look-ahead point."""
    samples = speech.audio.samples[: 16000 * 3 + 123]  # not a whole number of frames
    whole = _live(engine, samples, seed=3)
    pieces = _live(engine, samples, seed=3, chunk=592)  # 37 ms
    assert len(whole) == len(pieces) == frame_count(len(samples) / 16000, 25.0)
    np.testing.assert_array_equal(pieces.pose, whole.pose)
    np.testing.assert_array_equal(pieces.blendshapes, whole.blendshapes)
    np.testing.assert_array_equal(pieces.gaze, whole.gaze)
    assert len(_live(engine, samples[:100], seed=3)) == 1


def test_frames_leave_within_the_lookahead(engine, speech):
    stream = engine.open(25.0, MotionFrame.neutral(), Controls(seed=0))
    assert 0.1 <= stream.lookahead_s <= 0.45
    samples = speech.audio.samples[: 16000 * 2]
    needed = int(round(stream.lookahead_s * 16000))
    assert len(stream.push(samples[: needed - 1])) == 0
    made = len(stream.push(samples[needed - 1 : needed]))
    assert made == stream.stride
    for end in range(needed + 160, len(samples), 160):  # 10 ms pieces
        made += len(stream.push(samples[end - 160 : end]))
        # Every frame whose start lies a look-ahead before the audio's end is out.
        due = int(np.floor((end / 16000 - stream.lookahead_s) * 25 + 1e-9)) + 1
        assert due <= made <= due + stream.stride


def test_no_seam_at_window_joins(engine, speech):
    """The step across a window join is like the steps inside windows (the crossfade)."""
    motion = _live(engine, speech.audio.samples, seed=0)
    stride = engine.open(25.0, MotionFrame.neutral(), Controls()).stride
    channels = np.concatenate([motion.pose, motion.blendshapes], axis=1)
    speed = np.abs(np.diff(channels, axis=0)).sum(axis=1)
    joins = np.arange(stride - 1, len(speed), stride)  # from a window's last frame to the next
    inside = np.setdiff1d(np.arange(len(speed)), joins)
    # Measured 1.03-1.04 over seeds with the crossfade, 1.65 without.
    assert np.median(speed[joins]) < 1.3 * np.median(speed[inside])
    for v in (motion.channel("jawOpen"), motion.pose[:, 0], motion.pose[:, 1]):
        step = np.abs(np.diff(v))
        # Half the steps are joins (2-frame windows): compare the big ones, not one sample.
        assert np.percentile(step[joins], 95) <= 1.3 * np.percentile(step[inside], 95)


def test_live_lips_keep_time_with_offline(engine, speech):
    """Only 80 ms of audio past the committed frames, yet the jaw moves as offline."""
    for seed in (0, 1):
        live = _live(engine, speech.audio.samples, seed).channel("jawOpen")
        offline = engine.generate(speech.audio, 25.0, MotionFrame.neutral(), Controls(seed=seed))
        jaw = offline.channel("jawOpen")
        lagged = [
            np.corrcoef(live[2 + lag : len(live) - 2 + lag], jaw[2:-2])[0, 1] for lag in (-1, 0, 1)
        ]
        # Measured 0.85 (the live student is distilled from v5, offline is v6; 0.89-0.90
        # against v5 itself; offline with another seed: 0.99); no shift in time.
        assert lagged[1] > 0.8
        assert lagged[1] > max(lagged[0], lagged[2])


def test_controls_change_from_the_next_window(engine, speech):
    samples = speech.audio.samples
    plain = _live(engine, samples, seed=0)
    stream = engine.open(25.0, MotionFrame.neutral(), Controls(seed=0))
    before = stream.push(samples[:16000])
    stream.set_controls(Controls(seed=0, gaze_deg=(15.0, 0.0)))
    after = concatenate([stream.push(samples[16000:]), stream.end()], 25.0)
    np.testing.assert_array_equal(before.gaze, plain.gaze[: len(before)])
    # The gaze goes where the model sends a 15° request offline (it overshoots there too).
    asked = engine.generate(
        speech.audio, 25.0, MotionFrame.neutral(), Controls(seed=0, gaze_deg=(15.0, 0.0))
    )
    assert np.median(after.gaze[-40:, 0]) > 10.0
    assert abs(np.median(after.gaze[-40:, 0]) - np.median(asked.gaze[-40:, 0])) < 4.0
    assert abs(np.median(plain.gaze[-40:, 0])) < 6.0


def test_streams_use_the_diffusion_engine_when_configured(generator):
    from openvasa.pipeline import Generator
    from openvasa.settings import OutputSettings

    settings = generator.engine("diffusion").settings
    assert settings.live_streams is None  # the learned model on every machine, by default
    assert generator.live_engine().name == "diffusion"
    try:
        settings.live_streams = 0  # diffusion streams turned off
        assert generator.live_engine().name == "energy"
    finally:
        settings.live_streams = None
    energy = Generator(OutputSettings(engine="energy"), analyzer=generator.analyzer)
    assert energy.live_engine().name == "energy"
    other_rate = Generator(OutputSettings(fps=30.0), analyzer=generator.analyzer)
    assert other_rate.live_engine().name == "energy"  # the model makes 25 fps


def test_a_stream_that_fell_behind_catches_up_in_longer_windows(engine, speech):
    samples = speech.audio.samples[: 16000 * 2]
    stream = engine.open(25.0, MotionFrame.neutral(), Controls(seed=0))
    calls = []
    advance = stream.windows.advance
    stream.windows.advance = lambda audio, commit: calls.append(commit) or advance(audio, commit)
    made = stream.push(samples, catch_up=True)
    assert len(made) == stream._frames_ready() == 48  # 2 s, less the 2-frame look-ahead
    assert calls == [8] * 6
    steady = _live(engine, samples, seed=0)
    assert len(steady) == 50
    # Fewer, longer windows: another draw of the same motion, still speaking.
    assert np.corrcoef(made.channel("jawOpen"), steady.channel("jawOpen")[:48])[0, 1] > 0.6


def test_live_students_train_on_what_a_stream_hears(engine, speech, tmp_path):
    """`train live` gives the student each window's audio as the stream computes it: the
    window's known frames from an encoding that ends where the stream has heard up to, the
    context frames as the windows that committed them heard them."""
    from openvasa.motion.diffusion.data import MotionClips, to_int16
    from openvasa.motion.diffusion.distill import DistillConfig, _heard_tracks, heard_window_audio

    samples = speech.audio.samples[: 16000 * 2]
    stream = engine.open(25.0, MotionFrame.neutral(), Controls(seed=0))
    heard_by_stream = []
    advance = stream.windows.advance

    def recording(audio, commit):
        windows = stream.windows
        recent = windows._recent_audio.clone()
        heard_by_stream.append((windows.committed, audio.clone(), recent))
        return advance(audio, commit)

    stream.windows.advance = recording
    stream.push(to_int16(samples).astype(np.float32) / 32767)
    n = frame_count(len(samples) / 16000, 25.0)
    clips = MotionClips(
        np.zeros((n, 60), np.float32),
        np.zeros((n, 512), np.float16),
        np.array([0, n]),
        np.zeros((1, 2), np.float32),
        np.ones(1, np.float32),
        np.zeros((1, 52), np.float32),
        25.0,
        voices=[to_int16(samples)],
    )
    config = DistillConfig(data="", out=str(tmp_path))
    tracks = _heard_tracks(clips, config, tmp_path, progress=False)
    assert (tmp_path / "live_features.npz").is_file()
    k = engine.config.context
    compared = 0
    for first, audio, recent in heard_by_stream:
        known = int((audio.abs().sum(1) > 0).sum())
        if first < k or known != stream.stride + stream.ahead:
            continue
        window, context = heard_window_audio(tracks, np.array([first]), np.array([known]), 14, k)
        np.testing.assert_allclose(
            engine.normalise_audio(window[0, :known]), audio[:known], atol=0.01, rtol=0
        )
        np.testing.assert_allclose(engine.normalise_audio(context[0]), recent, atol=0.01, rtol=0)
        compared += 1
    assert compared >= 10


def test_streams_open_the_mouth_as_far_as_offline(engine, speech, tmp_path):
    """The live student's mouth gain is calibrated so that a stream's lip gap spreads as far
    as the offline model's: without it the stream opens the mouth about half as far."""
    import torch

    from openvasa.audio.speech import synthesize_speech
    from openvasa.motion.articulation import lip_gap
    from openvasa.motion.diffusion.checkpoint import default_live_checkpoint, load_checkpoint
    from openvasa.motion.diffusion.data import MotionClips, to_int16
    from openvasa.motion.diffusion.distill import calibrate_mouth_gain
    from openvasa.motion.diffusion.engine import DiffusionEngine

    shipped = load_checkpoint(default_live_checkpoint())
    assert shipped["sampler"]["mouth_gain"] > 1.2
    uncalibrated = {**shipped, "sampler": {**shipped["sampler"], "mouth_gain": 1.0}}
    torch.save(uncalibrated, tmp_path / "student.pt")
    # Voices the calibration has not heard: another sentence, another eSpeak voice.
    other = synthesize_speech("Please bring me the blue paper by nine.", voice_variant="m3")
    voices = [to_int16(speech.audio.samples), to_int16(other.audio.samples)]
    n = [frame_count(len(v) / 16000, 25.0) for v in voices]
    clips = MotionClips(
        np.zeros((sum(n), 60), np.float32),
        np.zeros((sum(n), 512), np.float16),
        np.array([0, n[0], sum(n)]),
        np.zeros((2, 2), np.float32),
        np.ones(2, np.float32),
        np.zeros((2, 52), np.float32),
        25.0,
        voices=voices,
    )
    gain = calibrate_mouth_gain(None, tmp_path / "student.pt", clips)
    assert 1.2 < gain < 2.5  # measured 1.73 on these two voices; shipped 1.53 (train clips)

    def spreads(student_engine):
        live = _live(student_engine, speech.audio.samples, seed=7)
        offline = engine.generate(speech.audio, 25.0, MotionFrame.neutral(), Controls(seed=7))
        return lip_gap(live.blendshapes).std(), lip_gap(offline.blendshapes).std()

    plain_live, offline = spreads(DiffusionEngine(live_checkpoint=tmp_path / "student.pt"))
    calibrated_live, _ = spreads(engine)
    # Measured: 0.66x offline without the gain, 0.92x with the shipped one.
    assert plain_live < 0.8 * offline
    assert calibrated_live == pytest.approx(offline, rel=0.25)
