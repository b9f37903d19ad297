"""Real videos → training shards: unusable clips are skipped with a reason, nothing
non-finite reaches a shard, and training stops on non-finite data or loss."""

import json

import numpy as np
import pytest

from openvasa.errors import OpenvasaError
from openvasa.io.video import VideoWriter, read_video
from openvasa.latent.motion import BLENDSHAPE_INDEX
from openvasa.motion.diffusion.data import WindowSampler, load_clips, save_shard
from openvasa.motion.diffusion.model import ModelConfig
from openvasa.motion.diffusion.preprocess import preprocess
from openvasa.motion.diffusion.train import TrainConfig, train

TINY = ModelConfig(audio_dim=16, d_model=32, layers=1, heads=2, window=20, context=4)


@pytest.fixture(scope="module")
def talking_videos(tmp_path_factory, astronaut, speech):
    """A generated talking clip, the same with the face blanked in 3 frames and in most
    frames, and the same without its audio."""
    from openvasa.pipeline import Generator
    from openvasa.settings import OutputSettings

    folder = tmp_path_factory.mktemp("videos")
    source = folder / "talk.mp4"
    Generator(OutputSettings(size=192, engine="energy")).generate(astronaut, speech, source)
    frames, fps = read_video(source)
    frames = frames[:75]

    def write(name, blank, audio=speech.audio):
        out = folder / "clips" / name
        with VideoWriter(out, fps=fps, size=frames.shape[2:0:-1], audio=audio) as writer:
            for i, frame in enumerate(frames):
                writer.write(np.zeros_like(frame) if i in blank else frame)
        return str(out)

    return {
        "gaps": write("gaps.mp4", {10, 11, 40}),
        "lost": write("lost.mp4", set(range(15, 75))),
        "mute": write("mute.mp4", set(), audio=None),
    }


def test_preprocess_skips_unusable_clips_with_a_reason(tmp_path, talking_videos):
    lines: list[str] = []
    shards = preprocess(
        list(talking_videos.values()), tmp_path / "shards", jobs=2, log=lines.append
    )
    assert len(shards) == 1
    assert sorted(line.split(":")[0] for line in lines) == [
        "skipped clips/lost.mp4",
        "skipped clips/mute.mp4",
    ]
    assert any("face tracked in only 20% of frames" in line for line in lines)
    assert any("no audio track" in line for line in lines)
    with np.load(shards[0]) as shard:
        assert list(shard["clip_names"]) == ["clips/gaps.mp4"]
        assert shard["real"].tolist() == [True]
        for key in ("motion", "audio_features", "gaze", "head_distance", "emotion"):
            assert np.isfinite(shard[key].astype(np.float64)).all(), key
        # The face was lost in 3 frames: they are filled, and the jaw still moves.
        assert shard["motion"][:, 6 + 17].std() > 0.01
    clips = load_clips(tmp_path / "shards")
    assert clips.real.all() and list(clips.names) == ["clips/gaps.mp4"]
    # The shard keeps the voice its features were computed from (live students need it).
    from openvasa.audio import Audio
    from openvasa.motion.diffusion.features import audio_features

    (voice,) = clips.voices
    assert voice.dtype == np.int16 and len(voice) >= 640 * len(clips.motion)
    again = audio_features(Audio.from_array(voice.astype(np.float32) / 32767, 16000), 25.0)
    n = len(clips.motion)
    # The same features, but for the int16 rounding of quiet samples.
    assert np.abs(again[:n] - clips.audio.astype(np.float32)).mean() < 0.01


def test_preprocess_resumes_and_fails_when_nothing_is_usable(tmp_path, talking_videos):
    with pytest.raises(OpenvasaError, match="None of the 2 videos could be used"):
        preprocess([talking_videos["lost"], talking_videos["mute"]], tmp_path, log=lambda _: None)


def test_augmented_copies_are_retimed_with_their_voice_and_need_no_tracking(
    tmp_path, talking_videos, monkeypatch
):
    from openvasa.motion.diffusion import preprocess as module

    out = tmp_path / "shards"
    preprocess([talking_videos["gaps"]], out, log=lambda _: None)
    # Augmenting finished shards reads the motion back: tracking would fail here.
    monkeypatch.setattr(module, "preprocess_video", lambda path: 1 / 0)
    shards = preprocess([talking_videos["gaps"]], out, augment=3, seed=1, log=lambda _: None)
    assert [s.name for s in shards] == [
        "videos_0000_of_0001_0000.npz",
        "videos_0000_of_0001_0000_aug3.npz",
    ]
    (original,) = module._clips_of_shard(shards[0])
    with np.load(shards[1]) as shard:
        names = [str(n) for n in shard["clip_names"]]
        starts = shard["clip_starts"]
        assert shard["real"].all() and len(names) == 3
        for key in ("motion", "audio_features"):
            assert np.isfinite(shard[key].astype(np.float64)).all(), key
        jaw = original["motion"][:, 6 + 17]
        for i, name in enumerate(names):
            speed = float(name.split("~")[1].rstrip("x"))
            low, high = module.VOICE_SPEEDS
            assert name.startswith("clips/gaps.mp4~") and low <= speed <= high and speed != 1
            motion = shard["motion"][starts[i] : starts[i + 1]]
            # The motion is re-timed by the copy's speed, its audio features cover it all,
            # and the features differ from the clean recording's.
            assert abs(len(motion) - len(jaw) / speed) <= 1.5
            retimed = np.interp(np.arange(len(motion)) * speed, np.arange(len(jaw)), jaw)
            np.testing.assert_allclose(motion[:, 6 + 17], retimed, atol=1e-5)
            features = shard["audio_features"][starts[i] : starts[i + 1]].astype(np.float32)
            clean = original["audio_features"].astype(np.float32)
            n = min(len(features), len(clean))
            assert np.abs(features[:n] - clean[:n]).mean() > 0.01
            voice = shard["samples"][shard["sample_starts"][i] : shard["sample_starts"][i + 1]]
            assert len(voice) >= 640 * len(motion)
    # Deterministic in the seed.
    (out / shards[1].name).unlink()
    again = preprocess([talking_videos["gaps"]], out, augment=3, seed=1, log=lambda _: None)
    with np.load(again[1]) as shard:
        assert [str(n) for n in shard["clip_names"]] == names


def _shard(folder, name, frames=60, nan_emotion=False, seed=0):
    rng = np.random.default_rng(seed)
    emotion = np.zeros((1, 52))
    if nan_emotion:
        emotion[0, 3] = np.nan
    folder.mkdir(parents=True, exist_ok=True)
    save_shard(
        folder / f"{name}.npz",
        [rng.normal(size=(frames, 60)).astype(np.float32) * 0.1],
        [rng.normal(size=(frames, 16)).astype(np.float32)],
        np.zeros((1, 2)),
        np.ones(1),
        emotion,
        25.0,
        names=[f"{name}.mp4"],
        real=nan_emotion,
    )


def test_training_data_with_a_nan_clip_is_refused_by_name(tmp_path):
    _shard(tmp_path, "good")
    _shard(tmp_path, "broken", nan_emotion=True)
    with pytest.raises(OpenvasaError, match=r"broken.npz: clip broken.mp4 has non-finite emotion"):
        load_clips(tmp_path)


def test_a_nan_loss_stops_training_with_a_clear_error(tmp_path):
    _shard(tmp_path / "data", "toy", frames=80)
    # A learning rate this large overflows the weights within a few steps.
    config = TrainConfig(
        data=str(tmp_path / "data"),
        out=str(tmp_path / "run"),
        steps=200,
        batch=4,
        lr=1e30,
        warmup_steps=1,
        model=TINY,
    )
    with pytest.raises(OpenvasaError, match=r"Training loss became (nan|inf) at step \d+"):
        train(config, progress=False)


def test_real_fraction_sets_the_share_of_real_windows(tmp_path):
    _shard(tmp_path / "synthetic", "teacher", frames=400, seed=1)
    _shard(tmp_path / "real", "video", frames=100, seed=2)
    with np.load(tmp_path / "real" / "video.npz") as data:
        real = dict(data)
    real["real"] = np.array([True])
    np.savez(tmp_path / "real" / "video.npz", **real)
    clips = load_clips([tmp_path / "synthetic", tmp_path / "real"])
    assert clips.real.tolist() == [False, True]
    by_frames = WindowSampler(clips, 20, 4, seed=0).batch(4000)["real"].mean()
    assert abs(by_frames - 81 / (381 + 81)) < 0.03
    half = WindowSampler(clips, 20, 4, seed=0, real_fraction=0.5).batch(4000)["real"].mean()
    assert abs(half - 0.5) < 0.03


def test_export_keeps_the_raw_weights_when_asked(tmp_path):
    import torch

    from openvasa.motion.diffusion.checkpoint import load_checkpoint
    from openvasa.motion.diffusion.train import export_checkpoint

    _shard(tmp_path / "data", "toy", frames=80)
    config = TrainConfig(
        data=str(tmp_path / "data"), out=str(tmp_path / "run"), steps=5, batch=4, model=TINY
    )
    last = train(config, progress=False)
    full = load_checkpoint(last)
    for weights in ("ema", "raw"):
        export_checkpoint(last, tmp_path / f"{weights}.pt", weights)
        slim = load_checkpoint(tmp_path / f"{weights}.pt")
        assert slim["exported_weights"] == weights
        for name, value in slim["ema"].items():
            torch.testing.assert_close(value.float(), full[weights][name].half().float())
    with pytest.raises(OpenvasaError, match="'ema' or 'raw'"):
        export_checkpoint(last, tmp_path / "x.pt", "best")


def test_loss_weights_of_real_and_synthetic_clips(tmp_path):
    from openvasa.motion.diffusion.train import HEAD_AND_EYE_DIMS, MOUTH_DIMS, loss_weights

    _shard(tmp_path / "synthetic", "teacher", frames=100, seed=1)
    _shard(tmp_path / "real", "video", frames=100, seed=2, nan_emotion=False)
    clips = load_clips([tmp_path / "synthetic", tmp_path / "real"])
    clips.real[1] = True
    std = np.full(60, 10.0, np.float32)  # wider than the real clips': no spread correction
    config = TrainConfig(data="", mouth_weight=2.0, real_head_weight=0.0)
    synthetic, real = loss_weights(config, clips, std)
    assert (synthetic[MOUTH_DIMS] == 2).all() and (real[MOUTH_DIMS] == 2).all()
    assert (real[HEAD_AND_EYE_DIMS] == 0).all() and (synthetic[HEAD_AND_EYE_DIMS] == 1).all()
    config = TrainConfig(data="", mouth_weight=2.0, synthetic_mouth_weight=0.25)
    synthetic, real = loss_weights(config, clips, std)
    assert (synthetic[MOUTH_DIMS] == 0.25).all() and (real[MOUTH_DIMS] == 2).all()
    # A real dimension that moves more than the normalisation counts in its own spread.
    wide = std.copy()
    wide[MOUTH_DIMS[0]] = 0.05
    _, real = loss_weights(config, clips, wide)
    assert 0 < real[MOUTH_DIMS[0]] < 0.5 * 2


def test_lip_gap_direction_turns_a_normalised_error_into_the_lip_gap_error(tmp_path):
    from openvasa.motion.articulation import lip_gap
    from openvasa.motion.diffusion.train import lip_gap_direction

    _shard(tmp_path / "real", "video", frames=100, seed=2, nan_emotion=False)
    clips = load_clips([tmp_path / "real"])
    mean, std = clips.stats()
    direction = lip_gap_direction(clips, std)
    spread = lip_gap(clips.motion[:, 6:58]).std()
    rng = np.random.default_rng(0)
    made, real = clips.motion[:20], clips.motion[20:40] + rng.normal(0, 0.1, (20, 60))
    normalised_error = (made - mean) / std - (real - mean) / std
    expected = (lip_gap(made[:, 6:58]) - lip_gap(real[:, 6:58])) / spread
    np.testing.assert_allclose(normalised_error @ direction, expected, rtol=1e-4, atol=1e-6)
    # Only blendshapes that part the lips count: head pose, gaze and the brows do not.
    assert not direction[:6].any() and not direction[58:].any()
    assert direction[6 + BLENDSHAPE_INDEX["browInnerUp"]] == 0
    # The loss is that error's mean square (plus its velocity's), and training adds it.
    import torch

    from openvasa.motion.diffusion.train import lip_gap_loss

    error = torch.as_tensor(normalised_error[None], dtype=torch.float32)
    loss = lip_gap_loss(error, torch.as_tensor(direction), velocity_weight=0.0)
    assert float(loss) == pytest.approx(float(np.mean(expected**2)), rel=1e-4)
    config = TrainConfig(
        data=str(tmp_path / "real"),
        out=str(tmp_path / "run"),
        steps=5,
        batch=4,
        lip_gap_weight=1.0,
        model=TINY,
    )
    train(config, progress=False)
    (record,) = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert record["loss"] > record["loss_x0"] + record["loss_velocity"]
