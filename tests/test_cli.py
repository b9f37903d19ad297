"""The command line end to end: real files in, real MP4 out, one clear line per bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from openvasa.audio import save_wav
from openvasa.cli import main
from openvasa.io.motion_file import read_motion
from openvasa.io.video import probe_media, read_video


@pytest.fixture(scope="module")
def files(tmp_path_factory, astronaut, speech):
    folder = tmp_path_factory.mktemp("cli")
    portrait = folder / "astronaut.jpg"
    Image.fromarray(astronaut).save(portrait, quality=95)
    audio = folder / "speech.wav"
    save_wav(speech.audio, audio)
    return folder, portrait, audio, speech.audio.duration_s


def test_generate_writes_video_frames_and_motion(files):
    folder, portrait, audio, duration = files
    out = folder / "talk.mp4"
    code = main(
        [
            "generate",
            str(portrait),
            str(audio),
            "-o",
            str(out),
            "--size",
            "256",
            "--frames",
            str(folder / "frames"),
            "--motion-out",
            str(folder / "motion.json"),
            "--emotion",
            "happy:0.5",
            "--gaze",
            "5,0",
            "-q",
        ]
    )
    assert code == 0
    info = probe_media(out)
    assert (info.width, info.height) == (256, 256)
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert info.duration_s == pytest.approx(duration, abs=1 / 25)
    assert info.audio_duration_s == pytest.approx(duration, abs=0.05)
    assert info.video_start_s == pytest.approx(0.0, abs=1e-3)
    assert info.n_frames == len(list((folder / "frames").glob("*.png")))
    motion = read_motion(folder / "motion.json")
    assert len(motion) == info.n_frames
    assert json.loads((folder / "motion.json").read_text())["format"] == "openvasa-motion"
    frames, _ = read_video(out)
    # The face talks: the mouth region changes over time while the top corners stay still.
    mouth = frames[:, 150:185, 105:150].astype(float)
    corner = frames[:, :20, :20].astype(float)
    assert mouth.std(axis=0).mean() > 4 * corner.std(axis=0).mean()
    assert not list(folder.glob(".*tmp*"))


def test_animate_renders_a_motion_file(files):
    folder, portrait, audio, _ = files
    csv = folder / "motion.csv"
    assert main(["generate", str(portrait), str(audio), "--motion-out", str(csv), "-q"]) == 0
    out = folder / "animated.mp4"
    assert (
        main(
            [
                "animate",
                str(portrait),
                str(csv),
                "--audio",
                str(audio),
                "-o",
                str(out),
                "--size",
                "128",
                "-q",
            ]
        )
        == 0
    )
    assert probe_media(out).n_frames == len(read_motion(csv))


@pytest.mark.parametrize(
    "case,expected",
    [
        ("no_face", "No face found"),
        ("empty_audio", "empty"),
        ("silent_audio", "silence"),
        ("text_as_audio", "not a readable audio file"),
        ("missing_portrait", "not found"),
        ("bad_gaze", "out of range"),
        ("bad_output", "must end in .mp4"),
    ],
)
def test_bad_inputs_fail_with_one_clear_line(files, capsys, case, expected):
    folder, portrait, audio, _ = files
    args = [str(portrait), str(audio), "-o", str(folder / f"{case}.mp4"), "-q"]
    if case == "no_face":
        noise = np.random.default_rng(0).integers(0, 255, (300, 300, 3), np.uint8)
        Image.fromarray(noise).save(folder / "noise.png")
        args[0] = str(folder / "noise.png")
    elif case == "empty_audio":
        (folder / "empty.wav").write_bytes(b"")
        args[1] = str(folder / "empty.wav")
    elif case == "silent_audio":
        from openvasa.audio import Audio

        save_wav(Audio(np.zeros(16000, np.float32), 16000), folder / "silent.wav")
        args[1] = str(folder / "silent.wav")
    elif case == "text_as_audio":
        (folder / "notes.mp3").write_text("not audio at all")
        args[1] = str(folder / "notes.mp3")
    elif case == "missing_portrait":
        args[0] = str(folder / "nobody.jpg")
    elif case == "bad_gaze":
        args += ["--gaze", "80,0"]
    elif case == "bad_output":
        args[3] = str(folder / "out.avi")
    assert main(["generate", *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("openvasa: error:"), err
    assert expected in err[0], err[0]
    assert not (folder / f"{case}.mp4").exists()


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "openvasa.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.startswith("openvasa ")
