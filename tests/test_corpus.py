"""The corpus builder: shards with a manifest, deterministic, resumable, readable."""

import json

import numpy as np
import pytest

from openvasa.cli import main
from openvasa.corpus import CorpusError, CorpusSpec, build_corpus, iter_corpus_clips
from openvasa.corpus.augment import Augmentation, apply_augmentation
from openvasa.motion.articulation import lip_gap
from openvasa.motion.stats import statistics_of

SPEC = CorpusSpec(hours=0.003, langs=("de", "ja"), seed=5, shard_minutes=0.1)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    report = build_corpus(SPEC, out, workers=2, progress=False)
    return out, report


def test_corpus_has_shards_manifest_and_consistent_clips(corpus):
    out, report = corpus
    assert report.built_shards == SPEC.n_shards == 2 and report.speech_s >= 10.8
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["clips"] == report.clips
    clips = list(iter_corpus_clips(out))
    assert {c.record["lang"] for c in clips} == {"de", "ja"}
    for clip in clips:
        duration = clip.audio.duration_s
        assert len(clip.motion) == int(np.ceil(duration * 25 - 1e-6))
        assert clip.whisper.shape == (int(np.ceil(duration * 50 - 1e-6)), 512)
        assert np.isfinite(clip.whisper).all()
        # The motion was made for this clip's speech: the lips part (by more than 3 % of the
        # face width; a real speaker's part up to about 7 %) while phonemes sound.
        assert lip_gap(clip.motion.blendshapes).max() > 0.03
        assert 0.7 <= 1 / clip.motion.pose[0, 5] <= 1.6  # head distance as face scale
    stats = statistics_of(out)
    # Each clip is a talker of its own: the median one moves 0.45°/frame (real video, VASA-1),
    # the others 0.4-2.3 times as much.
    assert stats.n_clips == len(clips) and 0.15 < stats.delta_pose_deg < 1.2


def test_interrupted_build_resumes_to_the_same_corpus(corpus):
    out, _ = corpus
    with np.load(out / "shard_00001.npz") as arrays:
        before = {name: arrays[name] for name in arrays.files}
    (out / "shard_00001.npz").unlink()  # as if the build stopped before this shard
    (out / ".shard_00001.npz.tmp").write_bytes(b"half a shard")
    report = build_corpus(SPEC, out, workers=1, progress=False)
    assert (report.kept_shards, report.built_shards) == (1, 1)
    assert not list(out.glob(".*.tmp"))
    with np.load(out / "shard_00001.npz") as arrays:
        for name, values in before.items():
            np.testing.assert_array_equal(arrays[name], values)
    with pytest.raises(CorpusError, match="other settings"):
        build_corpus(CorpusSpec(hours=0.003, langs=("fr",)), out, progress=False)


def test_corpus_command_line_errors(tmp_path, capsys):
    assert main(["corpus", "build", "--hours", "0", "--out", str(tmp_path), "-q"]) == 1
    assert "--hours must be a positive number" in capsys.readouterr().err


def test_augmentation_keeps_length_and_sets_the_snr(speech):
    rng = np.random.default_rng(0)
    clean = speech.audio.samples
    noisy = apply_augmentation(clean, Augmentation(noise="white", snr_db=10.0), rng)
    assert noisy.shape == clean.shape and np.abs(noisy).max() <= 0.99 + 1e-6
    noise = noisy - clean
    active = np.abs(clean) > 1e-4
    snr = 10 * np.log10(np.mean(clean[active] ** 2) / np.mean(noise**2))
    assert snr == pytest.approx(10.0, abs=0.5)
    room = apply_augmentation(clean, Augmentation(reverb_rt60_s=0.6, reverb_wet=0.6), rng)
    assert room.shape == clean.shape and not np.allclose(room, clean)
