"""Audio stage: decoding any file to 16 kHz mono, prosody per video frame, eSpeak NG speech.

All media are made here: speech from eSpeak NG, encoded with PyAV into the formats users bring.
"""

from __future__ import annotations

import threading
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from openvasa.audio import (
    SAMPLE_RATE,
    Audio,
    PhonemeEvent,
    SpeechClip,
    load_audio,
    prosody_features,
    save_wav,
    synthesize_speech,
)
from openvasa.audio.speech import demo_speech
from openvasa.errors import AudioError
from openvasa.timing import frame_count

FPS = 25.0
FRAME_S = 1.0 / FPS


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def speech() -> SpeechClip:
    return demo_speech()


def stereo_44k(audio: Audio) -> np.ndarray:
    """(2, n) float32 at 44.1 kHz: the speech left, a quieter copy right."""
    n_out = int(round(audio.duration_s * 44100))
    times = np.arange(n_out) / 44100
    mono = np.interp(times, np.arange(len(audio.samples)) / audio.sample_rate, audio.samples)
    return np.stack([mono, 0.5 * mono]).astype(np.float32)


def encode(
    path: Path, channels: np.ndarray, rate: int, codec: str, *, with_video: bool = False
) -> Path:
    """Write (2, n) float samples at `rate` with PyAV; optionally beside a small video track."""
    with av.open(str(path), "w") as container:
        video = None
        if with_video:
            video = container.add_stream("mpeg4", rate=10)
            video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        stream = container.add_stream(codec, rate=rate, layout="stereo")
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}
        chunk = 4096
        for start in range(0, channels.shape[1], chunk):
            block = np.ascontiguousarray(channels[:, start : start + chunk], dtype=np.float32)
            # PyAV converts planar float to the encoder's own sample format.
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
            frame.sample_rate = rate
            frame.pts = start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if video is not None:
            n_video = int(channels.shape[1] / rate * 10)
            for index in range(n_video):
                image = np.full((64, 64, 3), index * 7 % 255, dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = index
                container.mux(video.encode(frame))
            container.mux(video.encode(None))
    return path


def write_wav(path: Path, samples: np.ndarray, rate: int, n_channels: int = 1) -> Path:
    """16-bit PCM WAV; `samples` of shape (n,) or (n, n_channels) in [-1, 1]."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav_file:
        wav_file.setnchannels(n_channels)
        wav_file.setsampwidth(2)
        wav_file.setframerate(rate)
        wav_file.writeframes(pcm.tobytes())
    return path


def loudness_correlation(a: Audio, b: Audio) -> float:
    """Correlation of two clips' per-frame loudness over their common frames."""
    loud_a = prosody_features(a, FPS).loudness_db
    loud_b = prosody_features(b, FPS).loudness_db
    n = min(len(loud_a), len(loud_b))
    return float(np.corrcoef(loud_a[:n], loud_b[:n])[0, 1])


def sine(freq_hz: float, duration_s: float, amplitude: float = 0.5) -> Audio:
    times = np.arange(int(duration_s * SAMPLE_RATE)) / SAMPLE_RATE
    return Audio((amplitude * np.sin(2 * np.pi * freq_hz * times)).astype(np.float32), SAMPLE_RATE)


# ----------------------------------------------------------------------------- loading


@pytest.mark.parametrize(
    ("suffix", "codec", "rate"),
    [
        ("mp3", "mp3", 44100),
        ("flac", "flac", 44100),
        ("ogg", "libopus", 48000),
        ("oga", "vorbis", 44100),
        ("m4a", "aac", 44100),
        ("wav", "pcm_s16le", 44100),
    ],
)
def test_load_audio_decodes_stereo_44k_files_to_16k_mono(
    tmp_path: Path, speech: SpeechClip, suffix: str, codec: str, rate: int
) -> None:
    channels = stereo_44k(speech.audio)
    if rate != 44100:
        times = np.arange(int(speech.audio.duration_s * rate)) / rate
        source_times = np.arange(channels.shape[1]) / 44100
        channels = np.stack([np.interp(times, source_times, c) for c in channels])
        channels = channels.astype(np.float32)
    if suffix == "oga":
        suffix = "ogg"
    path = encode(tmp_path / f"speech.{suffix}", channels, rate, codec)

    loaded = load_audio(path)

    assert loaded.sample_rate == SAMPLE_RATE
    assert loaded.samples.ndim == 1 and loaded.samples.dtype == np.float32
    assert abs(loaded.duration_s - speech.audio.duration_s) <= FRAME_S
    assert np.abs(loaded.samples).max() <= 1.0
    # Mono downmix of (speech, speech / 2) is 0.75 × speech: same level envelope, -2.5 dB.
    assert loudness_correlation(loaded, speech.audio) > 0.95
    peak_ratio = np.abs(loaded.samples).max() / np.abs(speech.audio.samples).max()
    assert 0.6 < peak_ratio < 0.95


def test_load_audio_reads_the_audio_track_of_a_video(tmp_path: Path, speech: SpeechClip) -> None:
    path = encode(tmp_path / "clip.mp4", stereo_44k(speech.audio), 44100, "aac", with_video=True)
    loaded = load_audio(path)
    assert loaded.sample_rate == SAMPLE_RATE
    assert abs(loaded.duration_s - speech.audio.duration_s) <= FRAME_S
    assert loudness_correlation(loaded, speech.audio) > 0.95


def test_save_wav_then_load_audio_round_trips(tmp_path: Path, speech: SpeechClip) -> None:
    path = tmp_path / "speech.wav"
    save_wav(speech.audio, path)
    loaded = load_audio(path)
    assert len(loaded.samples) == len(speech.audio.samples)
    assert np.abs(loaded.samples - speech.audio.samples).max() < 1e-4


def test_load_audio_of_48k_stereo_wav_keeps_the_last_samples(tmp_path: Path) -> None:
    # A tone that lasts to the very end: a resampler that is not flushed would lose its tail.
    tone = sine(440, 2.0).samples
    times = np.arange(int(2.0 * 48000)) / 48000
    tone_48k = np.interp(times, np.arange(len(tone)) / SAMPLE_RATE, tone)
    path = write_wav(tmp_path / "tone.wav", np.stack([tone_48k, tone_48k], axis=1), 48000, 2)
    loaded = load_audio(path)
    assert abs(len(loaded.samples) - 2 * SAMPLE_RATE) <= 2
    assert np.abs(loaded.samples[-200:]).max() > 0.4


def test_audio_from_array_downmixes_any_layout_and_resamples() -> None:
    tone = sine(300, 1.0).samples
    left_right = np.stack([tone, tone * 0.5], axis=1)  # (n, 2)
    for samples in (left_right, left_right.T, (left_right * 32767).astype(np.int16)):
        audio = Audio.from_array(samples, SAMPLE_RATE)
        assert audio.samples.shape == (SAMPLE_RATE,)
        assert np.abs(audio.samples - 0.75 * tone).max() < 1e-3
    resampled = Audio.from_array(
        np.interp(np.arange(22050) / 22050, np.arange(16000) / 16000, tone), 22050
    )
    assert resampled.sample_rate == SAMPLE_RATE and abs(resampled.duration_s - 1.0) < 1e-3
    with pytest.raises(AudioError, match="shape"):
        Audio.from_array(np.zeros((2, 2, 2)), SAMPLE_RATE)
    with pytest.raises(AudioError, match="NaN"):
        Audio.from_array(np.array([0.0, np.nan]), SAMPLE_RATE)


def test_load_audio_errors_name_the_file_in_one_sentence(tmp_path: Path) -> None:
    def message(path: Path, **kwargs: float) -> str:
        with pytest.raises(AudioError) as caught:
            load_audio(path, **kwargs)
        text = str(caught.value)
        assert "\n" not in text and path.name in text
        return text

    assert "does not exist" in message(tmp_path / "missing.wav")
    assert "folder" in message(tmp_path)

    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    assert "empty" in message(empty)

    garbage = tmp_path / "notes.mp3"
    garbage.write_text("these are meeting notes, not audio\n" * 50)
    assert "not a readable audio file" in message(garbage)

    video_only = tmp_path / "silent_movie.mp4"
    with av.open(str(video_only), "w") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        for index in range(10):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    text = message(video_only)
    assert "no audio track" in text and "not a readable audio file" in text

    no_samples = write_wav(tmp_path / "no_samples.wav", np.zeros(0), SAMPLE_RATE)
    assert "no audio samples" in message(no_samples)

    quiet = write_wav(tmp_path / "quiet.wav", np.full(SAMPLE_RATE, 2e-4), SAMPLE_RATE)
    assert "contains only silence" in message(quiet)

    long_tone = write_wav(tmp_path / "long.wav", sine(200, 3.0).samples, SAMPLE_RATE)
    text = message(long_tone, max_duration_s=2.0)
    assert "3.0 s" in text and "2 s" in text and "max_duration_s" in text
    assert load_audio(long_tone, max_duration_s=3.5).duration_s == pytest.approx(3.0)
    # Far past the limit, the header's duration refuses the file before decoding.
    longer = write_wav(tmp_path / "longer.wav", sine(200, 20.0).samples, SAMPLE_RATE)
    assert "20.0 s" in message(longer, max_duration_s=5.0)


# ----------------------------------------------------------------------------- prosody


@pytest.mark.parametrize("fps", [25.0, 30.0, 60.0])
def test_prosody_arrays_have_one_value_per_video_frame(speech: SpeechClip, fps: float) -> None:
    prosody = prosody_features(speech.audio, fps)
    expected = frame_count(speech.audio.duration_s, fps)
    assert len(prosody) == expected
    for name in (
        "loudness_db",
        "energy",
        "voicing",
        "pitch_hz",
        "spectral_centroid_hz",
        "low_band_ratio",
        "high_band_ratio",
        "zero_crossing_rate",
    ):
        values = getattr(prosody, name)
        assert values.shape == (expected,) and values.dtype == np.float32, name
        assert np.all(np.isfinite(values)), name
    assert prosody.loudness_db.min() >= -80.0
    for name in ("energy", "voicing", "low_band_ratio", "high_band_ratio", "zero_crossing_rate"):
        values = getattr(prosody, name)
        assert values.min() >= 0.0 and values.max() <= 1.0, name


def test_energy_is_zero_in_inserted_silence_and_high_in_speech(speech: SpeechClip) -> None:
    samples = speech.audio.samples
    gap_s = 1.0
    joined = np.concatenate([samples, np.zeros(int(gap_s * SAMPLE_RATE), np.float32), samples])
    prosody = prosody_features(Audio(joined, SAMPLE_RATE), FPS)
    centres = (np.arange(len(prosody)) + 0.5) / FPS
    gap_start = speech.audio.duration_s
    # Frames whose whole 80 ms window lies inside the silence.
    in_gap = (centres > gap_start + 2 * FRAME_S) & (centres < gap_start + gap_s - 2 * FRAME_S)
    assert in_gap.sum() >= 15
    assert prosody.energy[in_gap].max() < 0.02
    assert prosody.loudness_db[in_gap].max() <= -79.0

    in_vowel = np.zeros(len(prosody), bool)
    for event in speech.phonemes:
        if event.phoneme[0] in "aeiouɑɐəɔɪʊ" and event.duration_s >= 0.06:
            in_vowel |= np.abs(centres - (event.start_s + event.end_s) / 2) < FRAME_S / 2
    assert in_vowel.sum() >= 8
    assert np.median(prosody.energy[in_vowel]) > 0.7
    assert np.median(prosody.voicing[in_vowel]) > 0.8


@pytest.mark.parametrize("freq_hz", [120.0, 200.0, 330.0])
def test_pitch_of_a_tone_is_its_frequency(freq_hz: float) -> None:
    prosody = prosody_features(sine(freq_hz, 2.0), FPS)
    inner = slice(2, -2)  # away from the clip's edges
    assert np.all(np.abs(prosody.pitch_hz[inner] - freq_hz) < 10.0)
    assert prosody.voicing[inner].min() > 0.9


def test_spectral_shape_separates_noise_from_a_low_tone() -> None:
    rng = np.random.default_rng(0)
    noise = Audio((0.2 * rng.standard_normal(2 * SAMPLE_RATE)).astype(np.float32), SAMPLE_RATE)
    noise_prosody = prosody_features(noise, FPS)
    tone_prosody = prosody_features(sine(300, 2.0), FPS)
    inner = slice(2, -2)
    assert noise_prosody.high_band_ratio[inner].mean() > 0.4
    assert tone_prosody.high_band_ratio[inner].mean() < 0.01
    assert tone_prosody.low_band_ratio[inner].mean() > 0.99
    assert noise_prosody.spectral_centroid_hz[inner].mean() > 3000
    assert tone_prosody.spectral_centroid_hz[inner].mean() < 600
    assert noise_prosody.zero_crossing_rate[inner].mean() > 0.4
    assert noise_prosody.voicing[inner].max() < 0.1
    assert np.all(noise_prosody.pitch_hz[inner] == 0)


def test_sibilants_have_more_high_band_than_vowels(speech: SpeechClip) -> None:
    prosody = prosody_features(speech.audio, FPS)
    centres = (np.arange(len(prosody)) + 0.5) / FPS

    def at_phonemes(symbols: str) -> np.ndarray:
        mask = np.zeros(len(prosody), bool)
        for event in speech.phonemes:
            if event.phoneme in symbols.split():
                mask |= np.abs(centres - (event.start_s + event.end_s) / 2) < FRAME_S / 2
        return mask

    sibilant, vowel = at_phonemes("s"), at_phonemes("aɪ əʊ ɔɪ ɑː eɪ")
    assert sibilant.sum() >= 2 and vowel.sum() >= 5
    assert prosody.high_band_ratio[sibilant].mean() > 3 * prosody.high_band_ratio[vowel].mean()
    assert prosody.low_band_ratio[vowel].mean() > prosody.low_band_ratio[sibilant].mean() + 0.3


# ----------------------------------------------------------------------------- speech


def check_phoneme_timing(clip: SpeechClip) -> None:
    phonemes = clip.phonemes
    assert len(phonemes) >= 10
    starts = np.array([p.start_s for p in phonemes])
    ends = np.array([p.end_s for p in phonemes])
    assert np.all(np.diff(starts) > 0)
    assert np.all(ends > starts)
    assert np.all(ends[:-1] <= starts[1:] + 1e-9)  # no overlaps
    assert starts[0] >= 0.0 and ends[-1] <= clip.audio.duration_s + 1e-9
    # The phonemes span the audio: speech starts near 0 and ends near the end of the clip.
    assert starts[0] < 0.1 and ends[-1] > clip.audio.duration_s - 0.3

    prosody = prosody_features(clip.audio, FPS)
    centres = (np.arange(len(prosody)) + 0.5) / FPS
    in_phoneme = np.zeros(len(prosody), bool)
    for event in phonemes:
        in_phoneme |= (centres >= event.start_s) & (centres < event.end_s)
    assert np.mean(prosody.energy[in_phoneme] > 0.3) > 0.9
    # Every pause long enough to hold a whole analysis window reaches silence.
    for before, after in zip(phonemes[:-1], phonemes[1:], strict=True):
        if after.start_s - before.end_s > 0.25:
            gap = (centres > before.end_s) & (centres < after.start_s)
            assert prosody.energy[gap].min() < 0.05, (before, after)


def test_english_speech_has_timed_phonemes(speech: SpeechClip) -> None:
    assert speech.audio.sample_rate == SAMPLE_RATE
    assert 4.0 < speech.audio.duration_s < 7.0
    check_phoneme_timing(speech)
    names = [p.phoneme for p in speech.phonemes]
    assert {"m", "b", "v", "s"} <= set(names)
    assert any(p.stress == 1 for p in speech.phonemes)
    assert all(isinstance(p, PhonemeEvent) and "ˈ" not in p.phoneme for p in speech.phonemes)
    # Three pauses: after "Hello!", after "Vasa." and after "life,".
    phonemes = speech.phonemes
    gaps = [b.start_s - a.end_s for a, b in zip(phonemes[:-1], phonemes[1:], strict=True)]
    assert sum(gap > 0.15 for gap in gaps) >= 3


def test_german_speech_has_timed_phonemes() -> None:
    clip = synthesize_speech(
        "Guten Tag! Ich heiße Vasa und bringe ein Foto zum Leben.", lang="de", rate_wpm=150
    )
    check_phoneme_timing(clip)
    assert "ç" in [p.phoneme for p in clip.phonemes]


def test_speech_rate_and_pitch_change_the_voice() -> None:
    text = "The quick brown fox jumps over the lazy dog."
    slow = synthesize_speech(text, rate_wpm=120)
    fast = synthesize_speech(text, rate_wpm=240)
    assert fast.audio.duration_s < 0.7 * slow.audio.duration_s
    low = prosody_features(synthesize_speech(text, pitch=20).audio, FPS).pitch_hz
    high = prosody_features(synthesize_speech(text, pitch=80).audio, FPS).pitch_hz
    assert np.median(high[high > 0]) > 1.15 * np.median(low[low > 0])


def test_speech_is_safe_to_call_from_several_threads() -> None:
    results: list[SpeechClip] = []
    errors: list[BaseException] = []

    def speak(lang: str) -> None:
        try:
            results.append(synthesize_speech("One, two, three, four.", lang=lang))
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=speak, args=(lang,)) for lang in ("en", "de") * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 6
    for clip in results:
        assert len(clip.phonemes) >= 8
        assert np.all(np.diff([p.start_s for p in clip.phonemes]) > 0)


def test_speech_settings_errors_read_back() -> None:
    with pytest.raises(AudioError, match="'xx-nowhere'"):
        synthesize_speech("Hello.", lang="xx-nowhere")
    with pytest.raises(AudioError, match="variant 'f99'"):
        synthesize_speech("Hello.", voice_variant="f99")
    with pytest.raises(AudioError, match="no text"):
        synthesize_speech("   ")
    with pytest.raises(AudioError, match="words per minute"):
        synthesize_speech("Hello.", rate_wpm=1000)
    with pytest.raises(AudioError, match="pitch"):
        synthesize_speech("Hello.", pitch=150)
    # A failed call leaves the engine usable.
    assert synthesize_speech("Hello.").audio.duration_s > 0.2
