"""Live streaming: causal motion, stream equals offline, back-pressure, idle life, controls."""

import threading
import time

import numpy as np
import pytest

from openvasa.audio import Audio
from openvasa.latent.motion import MotionFrame
from openvasa.motion.energy import EnergyEngine, concatenate
from openvasa.settings import Controls, StreamSettings
from openvasa.streaming import StreamError
from openvasa.timing import frame_count


@pytest.fixture(scope="module")
def energy_generator(generator):
    """Streams with the energy engine (`--engine energy`): causal, 60 ms look-ahead."""
    from openvasa.pipeline import Generator
    from openvasa.settings import OutputSettings

    return Generator(OutputSettings(engine="energy"), analyzer=generator.analyzer)


def _chunks(samples: np.ndarray, seed: int) -> list[np.ndarray]:
    """The clip cut at random places: pieces from 1 sample to 0.3 s."""
    rng = np.random.default_rng(seed)
    pieces, i = [], 0
    while i < len(samples):
        n = int(rng.choice([1, 7, 160, 640, 1000, 4800]))
        pieces.append(samples[i : i + n])
        i += n
    return pieces


def test_motion_is_causal_with_bounded_lookahead(speech):
    """Frames already made from some audio never change when different audio follows."""
    samples = speech.audio.samples
    cut = len(samples) // 2
    engine = EnergyEngine()
    a = engine.open(25.0, MotionFrame.neutral(), Controls(seed=2))
    b = engine.open(25.0, MotionFrame.neutral(), Controls(seed=2))
    first_a = a.push(samples[:cut])
    first_b = b.push(samples[:cut])
    rest_a = concatenate([a.push(samples[cut:]), a.end()], 25.0)
    rest_b = concatenate([b.push(np.zeros(16000, np.float32)), b.end()], 25.0)
    np.testing.assert_array_equal(first_a.blendshapes, first_b.blendshapes)
    # The frames made so far reach to within the look-ahead of the audio's end.
    assert len(first_a) == int((cut / 16000 - a.lookahead_s) * 25) + 1
    # …and what follows depends on what followed.
    assert np.abs(rest_a.channel("jawOpen")[:10] - rest_b.channel("jawOpen")[:10]).max() > 0.05


def test_first_frame_needs_only_the_lookahead():
    stream = EnergyEngine().open(25.0, MotionFrame.neutral(), Controls())
    needed = int(round(stream.lookahead_s * 16000))
    assert stream.lookahead_s == pytest.approx(0.06)
    tone = 0.3 * np.sin(np.arange(needed) * 2 * np.pi * 200 / 16000).astype(np.float32)
    assert len(stream.push(tone[:-1])) == 0
    assert len(stream.push(tone[-1:])) == 1


def test_engine_motion_is_the_same_however_the_audio_is_cut(speech):
    engine = EnergyEngine()
    whole = engine.generate(speech.audio, 25.0, MotionFrame.neutral(), Controls(seed=9))
    stream = engine.open(25.0, MotionFrame.neutral(), Controls(seed=9))
    parts = [stream.push(piece) for piece in _chunks(speech.audio.samples, 1)]
    pieces = concatenate([*parts, stream.end()], 25.0)
    np.testing.assert_array_equal(pieces.pose, whole.pose)
    np.testing.assert_array_equal(pieces.blendshapes, whole.blendshapes)
    np.testing.assert_array_equal(pieces.gaze, whole.gaze)


def test_stream_equals_offline_frame_by_frame(generator, portrait, speech):
    audio = speech.audio
    offline = generator.live_motion(portrait, audio, Controls(seed=5))
    frames = []
    # catch_up=False: the same motion whether or not the machine keeps up.
    steady = StreamSettings(catch_up=False)
    with generator.open_stream(portrait, stream=steady, seed=5) as session:
        for piece in _chunks(audio.samples, 2):
            frames += session.push_audio(piece)
        frames += session.end()
    assert [f.index for f in frames] == list(range(frame_count(audio.duration_s, 25.0)))
    assert len(frames) == len(offline)
    np.testing.assert_array_equal(np.stack([f.motion.pose for f in frames]), offline.pose)
    np.testing.assert_array_equal(
        np.stack([f.motion.blendshapes for f in frames]), offline.blendshapes
    )
    np.testing.assert_array_equal(np.stack([f.motion.gaze for f in frames]), offline.gaze)
    for i in (0, len(frames) // 2, len(frames) - 1):
        np.testing.assert_array_equal(
            frames[i].image, generator.render_frame(portrait, offline.frame(i))
        )
        assert frames[i].time_s == pytest.approx(i / 25.0)
    # Each frame carries the audio it plays with; together they are the clip (then silence).
    played = np.concatenate([f.audio for f in frames])
    np.testing.assert_array_equal(played[: len(audio.samples)], audio.samples)
    assert not played[len(audio.samples) :].any()


def test_pcm16_bytes_and_jpeg_frames(generator, portrait, speech):
    import cv2

    pcm = (np.clip(speech.audio.samples, -1, 1) * 32767).astype("<i2")
    quantised = Audio(pcm.astype(np.float32) / 32768.0, 16000)
    offline = generator.live_motion(portrait, quantised, Controls(seed=1))
    settings = StreamSettings(frame_format="jpeg", jpeg_quality=85, catch_up=False)
    with generator.open_stream(portrait, stream=settings, seed=1) as session:
        frames = []
        data = pcm.tobytes()
        for i in range(0, len(data), 1280):
            frames += session.push_audio(data[i : i + 1280])
        frames += session.end()
    np.testing.assert_array_equal(np.stack([f.motion.pose for f in frames]), offline.pose)
    assert frames[0].image is None
    image = cv2.imdecode(np.frombuffer(frames[10].jpeg, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    reference = generator.render_frame(portrait, offline.frame(10))
    assert image.shape == (512, 512, 3)
    assert np.abs(image.astype(float) - reference).mean() < 3.0


def test_other_sample_rates_are_resampled(generator, portrait, speech):
    from scipy.signal import resample_poly

    at_48k = resample_poly(speech.audio.samples, 3, 1).astype(np.float32)
    steady = StreamSettings(catch_up=False)
    with generator.open_stream(portrait, stream=steady, seed=1) as session:
        frames = []
        for i in range(0, len(at_48k), 4800):
            frames += session.push_audio(at_48k[i : i + 4800], 48000)
        frames += session.end()
    assert abs(session.audio_s - speech.audio.duration_s) < 0.01
    assert len(frames) == frame_count(session.audio_s, 25.0)
    # The stream hears the voice as it would at 16 kHz: its jaw moves as that one's does.
    at_16k = generator.live_motion(portrait, speech.audio, Controls(seed=1)).channel("jawOpen")
    jaw = np.array([f.motion.weight("jawOpen") for f in frames])
    assert jaw.max() - jaw.min() > 0.1
    assert np.corrcoef(jaw, at_16k[: len(jaw)])[0, 1] > 0.95


def test_back_pressure_bounds_the_frames_in_flight(generator, portrait, speech):
    """Nobody reads the frames: the producer must stall with only a few frames made."""
    depth = 2
    session = generator.open_stream(portrait, stream=StreamSettings(queue_frames=depth))
    samples = np.tile(speech.audio.samples, 2)  # ~11 s, 270 frames
    producer = threading.Thread(
        target=lambda: [
            session.push_audio(samples[i : i + 640], collect=False)
            for i in range(0, len(samples), 640)
        ],
        daemon=True,
    )
    producer.start()
    made = -1
    while made != session._frames_made:  # wait until the pipeline stands still
        made = session._frames_made
        time.sleep(0.3)
    assert producer.is_alive()
    assert session.samples_pushed < len(samples) / 2
    # Frames made: at most one per queue slot and one in each stage's hands.
    assert 1 <= made <= 3 * depth + 3
    frames = []
    while producer.is_alive():
        try:
            frames.append(session.next_frame(timeout=0.2))
        except TimeoutError:
            pass
    producer.join()
    frames += session.end()
    session.close()
    assert [f.index for f in frames] == list(range(frame_count(len(samples) / 16000, 25.0)))


def test_push_without_waiting_takes_audio_only_while_there_is_room(generator, portrait, speech):
    """What the server's event loop does: push directly, never wait; a full pipeline says so
    and keeps nothing of the refused piece."""
    samples = np.tile(speech.audio.samples, 2)
    session = generator.open_stream(portrait, stream=StreamSettings(queue_frames=1))
    taken = 0
    for i in range(0, len(samples), 640):  # nobody reads frames, so the pipeline fills
        if not session.push_audio_nowait(samples[i : i + 640]):
            break
        taken += len(samples[i : i + 640])
    else:
        pytest.fail("the pipeline never filled")
    assert 0 < taken == session.samples_pushed < len(samples)
    frames = session.end()
    session.close()
    assert [f.index for f in frames] == list(range(frame_count(taken / 16000, 25.0)))


def test_idle_face_stays_alive(energy_generator, portrait):
    # The energy engine's idle life. The shipped diffusion model, trained on talking clips,
    # neither blinks nor quite closes the mouth in silence (jawOpen ~0.2), offline as live.
    with energy_generator.open_stream(portrait, seed=4) as session:
        frames = session.push_silence(8.0) + session.end()
    assert len(frames) == 200
    motion = np.stack([f.motion.pose for f in frames])
    blink = np.array([f.motion.weight("eyeBlinkLeft") for f in frames])
    jaw = np.array([f.motion.weight("jawOpen") for f in frames])
    assert jaw.max() < 0.01  # silent mouth stays shut
    assert (np.diff((blink > 0.5).astype(int)) == 1).sum() >= 1  # blinks
    assert motion[:, :3].std(axis=0).max() > 0.3  # the head moves a little (degrees)
    assert motion[:, 4].std() > 5e-4  # and rises and falls with breathing (face widths)
    # Consecutive frames differ: the picture does not freeze.
    still = [
        np.array_equal(a.image, b.image) for a, b in zip(frames[:50], frames[1:51], strict=False)
    ]
    assert not any(still)


def test_controls_change_mid_stream_smoothly(energy_generator, portrait):
    with energy_generator.open_stream(portrait, seed=0) as session:
        frames = session.push_silence(1.0)
        session.set_controls(gaze_deg=(15.0, 0.0), emotion="happy", emotion_strength=0.8)
        frames += session.push_silence(2.0) + session.end()
        # The first frame made from audio pushed after the change.
        change = int((1.0 - session.lookahead_s) * 25) + 1
    smile = np.array([f.motion.weight("mouthSmileLeft") for f in frames])
    gaze = np.array([f.motion.gaze[0] for f in frames])
    assert smile[:change].max() == 0.0
    assert smile[-10:].min() == pytest.approx(0.52, abs=0.01)  # 0.65 · 0.8
    assert np.abs(np.diff(smile)).max() < 0.1  # glides, no jump
    assert abs(np.median(gaze[-20:]) - 15.0) < 4.0
    assert abs(np.median(gaze[:change]) - 0.0) < 4.0


def test_head_distance_change_mid_stream(generator, portrait, astronaut):
    """Farther away: the face gets smaller, gliding there; re-framed from the source photo."""

    def face_width(frame) -> float:
        x = generator.analyzer.detect(frame.image).landmarks[:, 0]
        return float(x.max() - x.min())

    with generator.open_stream(portrait, source=astronaut, seed=0) as session:
        frames = session.push_silence(0.4)
        session.set_controls(head_distance=1.5)
        frames += session.push_silence(3.0)
        session._reframe_thread.join(timeout=60)
        frames += session.push_silence(0.4) + session.end()
        swapped = session._renderer_distance
    before, after = face_width(frames[5]), face_width(frames[-5])
    assert after / before == pytest.approx(1 / 1.5, abs=0.04)
    assert swapped == 1.5  # the re-framed portrait took over
    # No jump: the change between consecutive frames rises and falls with the camera's glide,
    # never spiking above both neighbours (a switch of framing without care would).
    steps = [
        np.abs(a.image.astype(int) - b.image).mean()
        for a, b in zip(frames, frames[1:], strict=False)
    ]
    for before, step, after in zip(steps, steps[1:], steps[2:], strict=False):
        assert step <= 1.5 * max(before, after) + 0.5
    assert max(steps) > 5.0  # the camera did move


def test_head_distance_change_needs_the_source_photo(generator, portrait):
    with generator.open_stream(portrait) as session:
        with pytest.raises(StreamError, match="needs the original photo"):
            session.set_controls(head_distance=1.3)
    with pytest.raises(StreamError, match="needs the original photo"):
        generator.open_stream(portrait, head_distance=0.8)


def test_bad_input_gets_one_clear_error(generator, portrait):
    with generator.open_stream(portrait, seed=3) as session:
        with pytest.raises(StreamError, match="even number of bytes"):
            session.push_audio(b"\x00\x01\x02")
        with pytest.raises(StreamError, match="NaN"):
            session.push_audio(np.array([0.0, np.nan], np.float32))
        with pytest.raises(StreamError, match="1-D array"):
            session.push_audio(np.zeros((2, 100), np.float32))
        with pytest.raises(StreamError, match="int16 or float"):
            session.push_audio(np.zeros(10, np.int64))
        with pytest.raises(StreamError, match="smaller pieces"):
            session.push_audio(np.zeros(11 * 16000, np.float32))
        with pytest.raises(StreamError, match="seed is fixed"):
            session.set_controls(seed=4)
        with pytest.raises(Exception, match="Gaze 50,0 is out of range"):
            session.set_controls(gaze_deg=(50, 0))
        with pytest.raises(StreamError, match="Unknown control 'volume'"):
            session.set_controls(volume=3)
        session.end()
        with pytest.raises(StreamError, match="has ended"):
            session.push_audio(np.zeros(100, np.float32))
    with pytest.raises(StreamError, match="closed"):
        session.push_audio(np.zeros(100, np.float32))
