"""openvasa.io: MP4 writing (sync, duration, quality, atomicity), PNG frames, motion files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openvasa.errors import MotionFileError
from openvasa.io import (
    VideoWriter,
    iter_video_frames,
    probe_media,
    read_audio_track,
    read_motion,
    read_video,
    write_motion,
    write_png_frames,
)
from openvasa.latent.motion import ARKIT_BLENDSHAPES, MotionSequence
from openvasa.timing import frame_count

FPS = 25
SIZE = 512
SAMPLE_RATE = 16_000
TONE_HZ = 440.0
TONE_ONSET_S = 1.0
TONE_AMPLITUDE = 0.5


@dataclass
class ToneAudio:
    """Stand-in for openvasa.audio.load.Audio: one second of silence, then a 440 Hz tone."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def make_tone_audio(duration_s: float = 2.0) -> ToneAudio:
    t = np.arange(int(duration_s * SAMPLE_RATE)) / SAMPLE_RATE
    tone = TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)
    return ToneAudio(np.where(t >= TONE_ONSET_S, tone, 0.0).astype(np.float32), SAMPLE_RATE)


def make_frame(index: int) -> np.ndarray:
    """Colour bars over a diagonal gradient, both moving with the frame index."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    gradient = ((x + y + 4 * index) % 512) / 2
    bar_colours = np.array(
        [[235, 235, 235], [235, 235, 16], [16, 235, 235], [16, 235, 16],
         [235, 16, 235], [235, 16, 16], [16, 16, 235], [16, 16, 16]]
    )  # fmt: skip
    bars = bar_colours[((x + 6 * index) // 64) % 8]
    top = (y < SIZE // 2)[..., None]
    frame = np.where(top, bars, gradient[..., None] * np.array([1.0, 0.6, 0.3]))
    return frame.astype(np.uint8)


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    """A 2 s, 512x512, 25 fps MP4 with the tone audio, and the frames written to it."""
    audio = make_tone_audio()
    frames = [make_frame(i) for i in range(frame_count(audio.duration_s, FPS))]
    path = tmp_path_factory.mktemp("video") / "nested" / "clip.mp4"
    with VideoWriter(
        path, fps=FPS, size=(SIZE, SIZE), audio=audio, metadata={"comment": "openvasa test"}
    ) as writer:
        for frame in frames:
            writer.write(frame)
    return path, frames


def test_mp4_streams_durations_and_start_times(clip):
    path, frames = clip
    info = probe_media(path)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height, info.fps) == (SIZE, SIZE, FPS)
    assert info.n_frames == len(frames) == 50
    assert info.duration_s == pytest.approx(2.0, abs=1 / FPS)
    assert info.audio_duration_s == pytest.approx(2.0, abs=0.030)
    assert info.audio_sample_rate == SAMPLE_RATE
    assert info.video_start_s == 0.0
    assert info.audio_start_s == 0.0


def test_mp4_frames_match_what_was_written(clip):
    path, frames = clip
    decoded, fps = read_video(path)
    assert fps == FPS
    assert decoded.shape == (len(frames), SIZE, SIZE, 3) and decoded.dtype == np.uint8
    worst_psnr = min(psnr_db(a, b) for a, b in zip(frames, decoded, strict=True))
    assert worst_psnr > 30.0
    # The frames are decoded in order: each matches its own source best.
    first = next(iter_video_frames(path))
    assert psnr_db(first, frames[0]) > psnr_db(first, frames[10])


def test_mp4_audio_onset_is_in_sync(clip):
    path, _ = clip
    samples, rate = read_audio_track(path)
    assert rate == SAMPLE_RATE
    onset_s = np.argmax(np.abs(samples) > TONE_AMPLITUDE / 2) / rate
    assert onset_s == pytest.approx(TONE_ONSET_S, abs=0.025)
    assert np.max(np.abs(samples[: int(0.9 * rate)])) < 0.01  # silent before the tone
    tone = samples[int(1.2 * rate) : int(1.8 * rate)]
    spectrum = np.abs(np.fft.rfft(tone * np.hanning(len(tone))))
    peak_hz = np.argmax(spectrum) * rate / len(tone)
    assert peak_hz == pytest.approx(TONE_HZ, abs=5)


def test_mp4_carries_metadata(clip):
    import av

    path, _ = clip
    with av.open(str(path)) as container:
        assert container.metadata.get("comment") == "openvasa test"


def test_video_without_audio(tmp_path):
    path = tmp_path / "silent.mp4"
    with VideoWriter(path, fps=30, size=(64, 48)) as writer:
        for i in range(7):
            writer.write(np.full((48, 64, 3), 30 * i, np.uint8))
    info = probe_media(path)
    assert info.audio_codec is None and info.audio_duration_s is None
    assert (info.n_frames, info.width, info.height) == (7, 64, 48)


def test_exception_in_with_leaves_no_file(tmp_path):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous video")
    with pytest.raises(RuntimeError, match="renderer failed"):
        with VideoWriter(target, size=(64, 64), audio=make_tone_audio(0.5)) as writer:
            for i in range(5):
                writer.write(np.full((64, 64, 3), i, np.uint8))
            raise RuntimeError("renderer failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
    assert target.read_bytes() == b"previous video"


def test_outputs_are_readable_by_others(tmp_path):
    """Temporary files are created by name (not mkstemp's 0600), so outputs follow umask."""
    umask = os.umask(0)
    os.umask(umask)
    with VideoWriter(tmp_path / "v.mp4", size=(64, 64)) as writer:
        writer.write(np.zeros((64, 64, 3), np.uint8))
    write_motion(random_motion(2), tmp_path / "m.json")
    write_png_frames([np.zeros((4, 4, 3), np.uint8)], tmp_path)
    for name in ("v.mp4", "m.json", "frame_000000.png"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_writer_rejects_bad_sizes_and_frames(tmp_path):
    with pytest.raises(ValueError, match="even"):
        VideoWriter(tmp_path / "odd.mp4", size=(511, 512))
    with VideoWriter(tmp_path / "ok.mp4", size=(64, 64)) as writer:
        with pytest.raises(ValueError, match=r"\(64, 64, 3\)"):
            writer.write(np.zeros((64, 32, 3), np.uint8))
        writer.write(np.zeros((64, 64, 3), np.uint8))
    assert list(tmp_path.iterdir()) == [tmp_path / "ok.mp4"]


def test_png_frames(tmp_path):
    frames = [make_frame(i)[:64, :80] for i in range(3)]
    count = write_png_frames(iter(frames), tmp_path / "pngs", start=10)
    assert count == 3
    names = sorted(p.name for p in (tmp_path / "pngs").iterdir())
    assert names == ["frame_000010.png", "frame_000011.png", "frame_000012.png"]
    for frame, name in zip(frames, names, strict=True):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "pngs" / name)), frame)


def random_motion(n_frames: int = 30, fps: float = FPS) -> MotionSequence:
    rng = np.random.default_rng(0)
    pose = rng.normal(0, 10, (n_frames, 6))
    pose[:, 5] = 1 + rng.normal(0, 0.05, n_frames)
    return MotionSequence(
        fps,
        pose,
        rng.uniform(0, 1, (n_frames, len(ARKIT_BLENDSHAPES))),
        rng.normal(0, 5, (n_frames, 2)),
    )


@pytest.mark.parametrize("suffix", [".csv", ".json"])
@pytest.mark.parametrize("fps", [25, 30000 / 1001, 12.5])
def test_motion_round_trip(tmp_path, suffix, fps):
    motion = random_motion(fps=fps)
    path = tmp_path / "deep" / f"motion{suffix}"
    write_motion(motion, path)
    loaded = read_motion(path)
    assert loaded.fps == pytest.approx(fps, rel=1e-9)
    assert len(loaded) == len(motion)
    for name in ("pose", "blendshapes", "gaze"):
        np.testing.assert_allclose(getattr(loaded, name), getattr(motion, name), atol=1e-5)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_motion_csv_header_and_subset_of_columns(tmp_path):
    path = tmp_path / "motion.csv"
    write_motion(random_motion(3), path)
    header = path.read_text().splitlines()[0].split(",")
    assert header[:3] == ["frame", "time_s", "eyeBlinkLeft"]
    assert header[-8:] == ["yaw_deg", "pitch_deg", "roll_deg", "tx", "ty", "scale",
                           "gaze_yaw_deg", "gaze_pitch_deg"]  # fmt: skip
    assert len(header) == 2 + 52 + 6 + 2

    # Another tool's export: a few ARKit names (any case), an extra column, no pose.
    other = tmp_path / "other.csv"
    other.write_text("Timecode,time_s,JawOpen,mouthFunnel\n00:00:00:00,0.0,0.5,0.1\nx,0.04,0.7,0\n")
    motion = read_motion(other)
    assert motion.fps == 25 and len(motion) == 2
    np.testing.assert_allclose(motion.channel("jawOpen"), [0.5, 0.7])
    assert motion.channel("eyeBlinkLeft").tolist() == [0, 0]
    np.testing.assert_array_equal(motion.pose, [[0, 0, 0, 0, 0, 1]] * 2)

    no_time = tmp_path / "no_time.csv"
    no_time.write_text("jawOpen\n0.5\n")
    assert read_motion(no_time, fps=30).fps == 30
    with pytest.raises(MotionFileError, match="pass fps"):
        read_motion(no_time)


def test_motion_json_compact_lists(tmp_path):
    path = tmp_path / "compact.json"
    path.write_text(
        '{"fps": 50, "blendshape_names": ["jawOpen", "eyeBlinkLeft"],'
        ' "frames": [{"blendshapes": [0.25, 1.0], "pose": {"yaw_deg": 12}}]}'
    )
    motion = read_motion(path)
    assert motion.fps == 50
    assert motion.frame(0).weight("jawOpen") == 0.25
    assert motion.frame(0).weight("eyeBlinkLeft") == 1.0
    assert motion.channel("yaw_deg").tolist() == [12] and motion.channel("scale").tolist() == [1]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", "", "empty"),
        ("blank.json", "  \n", "empty"),
        ("header_only.csv", "frame,time_s,jawOpen\n", "no frames"),
        ("no_channels.csv", "frame,time_s,foo\n0,0,1\n", "no motion columns"),
        ("word.csv", "time_s,jawOpen\n0,0.1\n0.04,abc\n", r"line 3, column 'jawOpen': 'abc'"),
        ("nan.csv", "time_s,jawOpen\n0,nan\n0.04,0\n", r"line 2, column 'jawOpen'"),
        ("short_row.csv", "time_s,jawOpen\n0\n", "line 2 has 1 values"),
        ("backwards.csv", "time_s,jawOpen\n0.04,0\n0,0\n", "increase"),
        ("uneven.csv", "time_s,jawOpen\n0,0\n0.04,0\n0.2,0\n", "not evenly spaced"),
        ("broken.json", '{"frames": [', "not valid JSON"),
        ("no_frames.json", '{"fps": 25, "frames": []}', "empty"),
        ("other_format.json", '{"format": "x", "frames": [{}]}', "'format'"),
        ("text.json", '{"fps": 25, "frames": [{"blendshapes": {"jawOpen": "a"}}]}',
         r"frame 0, blendshapes 'jawOpen': 'a'"),
        ("motion.txt", "time_s,jawOpen\n0,0\n", "unknown motion file format '.txt'"),
    ],
)  # fmt: skip
def test_malformed_motion_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(MotionFileError, match=message) as raised:
        read_motion(path)
    assert str(path) in str(raised.value)


def test_missing_motion_file_and_bad_suffix_on_write(tmp_path):
    with pytest.raises(MotionFileError, match="no such motion file"):
        read_motion(tmp_path / "absent.csv")
    with pytest.raises(MotionFileError, match="unknown motion file format"):
        write_motion(random_motion(2), tmp_path / "motion.bvh")
    assert list(tmp_path.iterdir()) == []
