"""Whisper-base encoder features: weights joined and verified, 50 Hz frames aligned to time."""

import numpy as np
import pytest

from openvasa.audio import Audio
from openvasa.audio.whisper import (
    FEATURE_DIM,
    MODEL_SHA256,
    WhisperEncoder,
    log_mel,
    mel_filters,
    model_dir,
)


@pytest.fixture(scope="session")
def encoder():
    return WhisperEncoder()


def test_weights_are_joined_once_and_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENVASA_CACHE", str(tmp_path))
    folder = model_dir()
    assert folder == tmp_path / "whisper-base"
    assert (folder / "model.sha256").read_text().strip() == MODEL_SHA256
    assert {"model.bin", "config.json", "vocabulary.txt"} <= {p.name for p in folder.iterdir()}
    assert not list(folder.glob(".*.tmp"))
    mtime = (folder / "model.bin").stat().st_mtime_ns
    assert model_dir() == folder and (folder / "model.bin").stat().st_mtime_ns == mtime


def test_log_mel_is_whisper_shaped(speech):
    mel = log_mel(speech.audio.samples[:32000])
    assert mel.shape == (80, 200) and mel.dtype == np.float32 and mel.flags.c_contiguous
    assert mel.max() - mel.min() <= 2.0 + 1e-6  # log10 clamped 8 below the peak, divided by 4
    # The Slaney filterbank: 80 triangles covering 0–8 kHz, each of unit area in mel.
    filters = mel_filters()
    assert filters.shape == (80, 201) and (filters.sum(1) > 0).all()


def test_features_are_50_hz_and_follow_the_audio_in_time(encoder, speech):
    samples = speech.audio.samples[:48000]  # 3 s
    features = encoder.features(Audio(samples, 16000))
    assert features.shape == (150, FEATURE_DIM) and features.dtype == np.float32
    # The same speech 0.2 s later: its features are those of the original 10 frames later.
    delayed = encoder.features(np.concatenate([np.zeros(3200, np.float32), samples]))
    assert delayed.shape == (160, FEATURE_DIM)

    def similarity(lag: int) -> float:
        a, b = features[20:120], delayed[20 + lag : 120 + lag]
        a = (a - a.mean(0)) / (a.std(0) + 1e-6)
        b = (b - b.mean(0)) / (b.std(0) + 1e-6)
        return float((a * b).mean())

    scores = {lag: similarity(lag) for lag in range(5, 16)}
    assert max(scores, key=scores.get) == 10
    assert scores[10] > 0.7 and scores[10] > scores[5] + 0.2


def test_long_audio_is_encoded_in_30_s_windows(encoder, speech):
    long = np.tile(speech.audio.samples, 7)[: 16000 * 33 + 123]
    features = encoder.features(long)
    assert features.shape == (int(np.ceil(len(long) / 320)), FEATURE_DIM)
    assert np.isfinite(features).all()


def test_clips_of_one_length_encode_in_one_batch_as_one_by_one(encoder, speech):
    samples = speech.audio.samples
    clips = [samples[start : start + 9600] for start in (0, 4000, 16000)]
    batch = encoder.features_of_equal_clips(clips)
    assert batch.shape == (3, 30, 512)
    for clip, features in zip(clips, batch, strict=True):
        np.testing.assert_allclose(features, encoder.features(clip), atol=1e-3, rtol=0)
    with pytest.raises(ValueError):
        encoder.features_of_equal_clips([samples[:9600], samples[:9000]])
