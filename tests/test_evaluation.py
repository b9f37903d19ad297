"""The evaluation suite recovers truths planted in a clip rendered from a known motion file:
an audio delay of 3 frames, a blink schedule, head motion and gaze shifts."""

import json

import numpy as np
import pytest

from openvasa.audio import Audio, prosody_features, save_wav
from openvasa.cli import main
from openvasa.evaluation import metrics as M
from openvasa.evaluation.signals import face_signals, speech_signals, video_audio
from openvasa.evaluation.suite import Controls, evaluate_videos, read_pairs
from openvasa.latent.motion import BLENDSHAPE_INDEX, MotionSequence
from openvasa.pipeline import StageTimes

FPS = 25.0
DELAY_FRAMES = 3
BLINK_EVERY_S = 0.7
GAZE_YAW_DEG = 10.0


def _planted_motion(portrait, speech: Audio) -> MotionSequence:
    """Jaw following the speech energy, smooth head motion, blinks every 0.7 s and gaze
    jumping between ±10° yaw every second."""
    energy = prosody_features(speech, FPS).energy
    n = len(energy)
    t = np.arange(n) / FPS
    motion = MotionSequence.neutral(n, FPS)
    motion.pose[:] = portrait.latent.pose0
    motion.pose[:, 0] += 5 * np.sin(2 * np.pi * 0.4 * t)
    motion.pose[:, 1] += 3 * np.sin(2 * np.pi * 0.3 * t + 1)
    motion.pose[:, 2] += 2 * np.sin(2 * np.pi * 0.2 * t + 2)
    motion.blendshapes[:, BLENDSHAPE_INDEX["jawOpen"]] = 0.6 * energy
    for start in np.arange(0.4, n / FPS - 0.3, BLINK_EVERY_S):
        x = t - start
        lid = np.clip(1 + x / 0.1, 0, 1) * (x <= 0) + np.clip(1 - x / 0.15, 0, 1) * (x > 0)
        for side in ("Left", "Right"):
            column = motion.blendshapes[:, BLENDSHAPE_INDEX[f"eyeBlink{side}"]]
            np.maximum(column, lid, out=column)
    motion.gaze[:, 0] = np.where((t // 1.0) % 2 == 0, GAZE_YAW_DEG, -GAZE_YAW_DEG)
    return motion


@pytest.fixture(scope="module")
def planted(tmp_path_factory, generator, astronaut, speech):
    """A 256 px clip rendered from the planted motion, its audio delayed by 3 frames."""
    folder = tmp_path_factory.mktemp("planted")
    portrait = generator.prepare_portrait(astronaut, size=256)
    # A pause at the end gives silent frames in which the mouth must be closed.
    pause = np.zeros(int(0.8 * speech.audio.sample_rate), np.float32)
    audio = Audio(np.concatenate([speech.audio.samples, pause]), speech.audio.sample_rate)
    motion = _planted_motion(portrait, audio)
    silence = np.zeros(int(round(DELAY_FRAMES / FPS * audio.sample_rate)), np.float32)
    delayed = Audio(np.concatenate([silence, audio.samples]), audio.sample_rate)
    video = folder / "planted.mp4"
    generator.write_outputs(portrait, motion, delayed, video, None, None, StageTimes())
    face = face_signals(video)
    return {"video": video, "motion": motion, "face": face, "audio": audio, "folder": folder}


def test_audio_delayed_by_three_frames_is_found(planted):
    face = planted["face"]
    in_file = speech_signals(video_audio(planted["video"]), FPS, len(face))
    delayed = M.lip_sync(face.mouth_open, in_file)
    # The sound comes 3 frames after the mouth: the mouth leads by 3.
    assert delayed.offset_frames == -DELAY_FRAMES
    assert delayed.correlation > 0.9 > delayed.correlation_at_zero
    aligned = M.lip_sync(face.mouth_open, speech_signals(planted["audio"], FPS, len(face)))
    assert aligned.offset_frames == 0
    assert aligned.correlation > 0.9


def test_planted_blink_rate_is_recovered(planted):
    face, motion = planted["face"], planted["motion"]
    planted_blinks = len(M.blink_events(1.0 - motion.channel("eyeBlinkLeft")))
    assert planted_blinks == len(np.arange(0.4, len(motion) / FPS - 0.3, BLINK_EVERY_S))
    planted_rate = planted_blinks / motion.duration_s * 60.0
    measured = M.blink_rate_per_min(face.eye_open, face.fps)
    assert measured == pytest.approx(planted_rate, rel=0.05)


def test_head_motion_of_the_motion_file_is_measured(planted):
    face, motion = planted["face"], planted["motion"]
    for axis in range(3):
        assert np.corrcoef(face.pose[:, axis], motion.pose[:, axis])[0, 1] > 0.9
    file_dp = M.delta_p(motion.pose[:, :3])
    raw = M.delta_p(face.pose[:, :3])
    denoised = M.delta_p(face.pose[:, :3], denoise=True)
    # The face mesh's frame-to-frame noise adds to the raw ΔP (0.60 for 0.37 in the file);
    # the denoised figure takes most of it out. It reads 0.37-0.39 when this file runs alone
    # and 0.39-0.40 after other test files in the same process (seen on the 2-core machine;
    # the cause is not found yet), so the margin is 10 %: still far inside the raw +60 %.
    assert raw > 1.3 * file_dp
    assert denoised == pytest.approx(file_dp, rel=0.10)
    ranges = M.pose_ranges_deg(face.pose[:, :3])
    file_ranges = M.pose_ranges_deg(motion.pose[:, :3])
    assert ranges["yaw_range_deg"] == pytest.approx(file_ranges["yaw_range_deg"], rel=0.15)


def test_gaze_shifts_of_the_motion_file_are_measured(planted):
    face, motion = planted["face"], planted["motion"]
    t = face.time_s
    settled = (t % 1.0) > 0.15  # a frame or two after each jump
    right = settled & (motion.gaze[:, 0] > 0)
    left = settled & (motion.gaze[:, 0] < 0)
    amplitude = np.nanmean(face.gaze[right, 0]) - np.nanmean(face.gaze[left, 0])
    # The face mesh reads the rendered ±10° as 20.5-20.7° on the 2-core machine and 21.0° on
    # the CI machine (same code: its numerics differ), so the margin is 8 %.
    assert amplitude == pytest.approx(2 * GAZE_YAW_DEG, rel=0.08)
    assert np.isnan(face.gaze[~np.isfinite(face.eye_open) | (face.eye_open < 0.1)]).all()


def test_silent_frames_close_the_mouth_and_open_mouth_is_caught(planted):
    face = planted["face"]
    speech = speech_signals(planted["audio"], FPS, len(face))
    assert M.silent_frames(speech).sum() >= 10
    # The face mesh's mouth reading on a rendered 256 px clip varies run to run (0.65-1.0 of
    # the silent frames measured closed in full-suite runs); an open mouth reads 0 below.
    assert M.silent_mouth_closed(face.mouth_open, speech) >= 0.6
    held_open = np.full(len(face), 0.06)
    assert M.silent_mouth_closed(held_open, speech) == 0.0


def test_control_errors_and_reference_comparison(planted):
    face = planted["face"]
    metrics, _ = M.video_metrics(face, None, gaze_deg=(0.0, 0.0), head_distance=1.0)
    assert metrics.head_distance_error < 0.05
    # The gaze jumps ±10° around 0: the mean angular error is about 10°.
    assert 6.0 < metrics.gaze_error_deg < 14.0
    assert M.head_distance_error(face, 1.5)["head_distance_error"] > 0.45
    same = M.compare_to_reference(face, face)
    assert same["ref_mouth_correlation"] == pytest.approx(1.0)
    assert same["ref_delta_p_ratio"] == pytest.approx(1.0)
    assert same["ref_blink_rate_diff"] == 0.0
    assert metrics.identity_drift_pct < 2.0


def test_pose_delta_of_a_steady_turn():
    yaw = np.arange(50) * 0.5
    angles = np.stack([yaw, np.full(50, 5.0), np.zeros(50)], axis=1)
    assert M.delta_p(angles) == pytest.approx(0.5, rel=1e-6)
    assert M.delta_p(angles, denoise=True) == pytest.approx(0.5, rel=1e-6)
    assert M.pose_delta_deg(np.zeros((3, 3))) == pytest.approx([0.0, 0.0])


@pytest.mark.parametrize(
    "name,amplitudes_deg,frequencies_hz",
    [
        ("still", (0, 0, 0), (0, 0, 0)),
        ("slow", (5, 3, 2), (0.4, 0.3, 0.2)),
        ("nods", (3, 2.5, 1.5), (1.1, 1.8, 0.7)),
    ],
)
def test_denoised_delta_p_takes_out_measurement_noise(name, amplitudes_deg, frequencies_hz):
    t = np.arange(250) / FPS
    true = np.stack(
        [
            a * np.sin(2 * np.pi * f * t + k)
            for k, (a, f) in enumerate(zip(amplitudes_deg, frequencies_hz, strict=True))
        ],
        axis=1,
    )
    noisy = true + np.random.default_rng(0).normal(0.0, 0.3, true.shape)
    assert M.delta_p(noisy) > M.delta_p(true) + 0.15  # the noise alone reads ~0.6°/frame
    assert M.delta_p(noisy, denoise=True) == pytest.approx(M.delta_p(true), rel=0.05, abs=0.01)
    _, noise_deg = M.pose_noise(noisy[:, 0])
    assert noise_deg == pytest.approx(0.3, rel=0.2)


def test_blinks_are_counted_once_with_hysteresis():
    eye = np.full(100, 0.3)
    eye[20:23] = 0.05  # one blink
    eye[50:52] = 0.12
    eye[52] = 0.17  # flutters up, not above 0.8 of open: still one blink
    eye[53:55] = 0.1
    assert M.blink_events(eye) == [(20, 22), (50, 54)]


def test_cli_eval_writes_table_csv_json_and_plot(planted, capsys):
    out = planted["folder"] / "report"
    code = main(
        ["eval", "--generated", str(planted["video"]), "--out", str(out), "-q", "--gaze", "0,0"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "planted" in printed and "ΔP" in printed
    document = json.loads((out / "metrics.json").read_text())
    row = document["videos"][0]
    assert row["sync_offset_frames"] == -DELAY_FRAMES
    assert row["gaze_error_deg"] > 0
    assert (out / "metrics.csv").read_text().startswith("group,name,")
    assert (out / "planted.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["eval", "--generated", "missing.mp4", "--out", "o"], "no such video file"),
        (["eval", "--out", "o"], "Give the videos to evaluate"),
        (["eval", "--generated", "a.mp4"], "--out DIR"),
        (["eval", "suite", "--pairs", "nothing.txt", "--out", "o"], "no such pairs file"),
    ],
)
def test_cli_eval_bad_input_is_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("openvasa: error:") and message in err[0]


def test_mismatched_references_and_bad_pairs_are_refused(planted, tmp_path):
    from openvasa.errors import OpenvasaError

    with pytest.raises(OpenvasaError, match="one reference video per generated"):
        evaluate_videos([planted["video"]], [planted["video"], planted["video"]])
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("only-one-field\n")
    with pytest.raises(OpenvasaError, match="line 1"):
        read_pairs(pairs)


def test_suite_generates_and_evaluates_with_reference(tmp_path, astronaut, planted, capsys):
    from PIL import Image

    from openvasa.audio import synthesize_speech

    Image.fromarray(astronaut).save(tmp_path / "portrait.png")
    save_wav(synthesize_speech("Hello there, my friend.").audio, tmp_path / "hello.wav")
    pairs = tmp_path / "pairs.json"
    entries = [
        {"portrait": "portrait.png", "audio": "hello.wav", "gaze": [8, 0], "name": "hello"},
        {"portrait": "portrait.png", "audio": "hello.wav", "reference": "hello.mp4"},
    ]
    pairs.write_text(json.dumps(entries))
    # The "reference" is another openvasa clip: no third-party video is committed.
    (tmp_path / "hello.mp4").write_bytes(planted["video"].read_bytes())
    out = tmp_path / "suite"
    code = main(["eval", "suite", "--pairs", str(pairs), "--out", str(out), "--size", "192", "-q"])
    assert code == 0
    document = json.loads((out / "metrics.json").read_text())
    groups = [row["group"] for row in document["videos"]]
    assert groups[:3] == ["generated", "generated", "reference"]
    hello = document["videos"][0]
    assert hello["name"] == "hello" and np.isfinite(hello["gaze_error_deg"])
    assert np.isfinite(document["videos"][1]["ref_mouth_correlation"])
    speed = json.loads((out / "speed.json").read_text())
    assert speed["render_fps"] > 0 and 0 < speed["first_frame_latency_s"] < speed["frames"]
    assert speed["peak_rss_mb"] > 50
    assert (out / "clips" / "hello.mp4").is_file() and (out / "hello.png").is_file()
    assert "first frame after" in capsys.readouterr().out


def test_control_dataclass_defaults_are_unknown():
    assert Controls().gaze_deg is None and Controls().head_distance is None
