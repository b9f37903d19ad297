"""MP4 output (H.264 video + AAC audio, in sync) and the readers that tests and evaluation use.

`VideoWriter` takes RGB frames one at a time and the whole audio clip up front. Both streams
start at t = 0: the video's first frame has pts 0 and the audio's first sample has pts 0 (the
AAC encoder's priming samples are hidden by the MP4 edit list that libavformat writes, so
players and decoders start the sound at exactly 0). Audio is encoded alongside the video, a
frame's worth at a time, so that the file is interleaved as it is written; whatever audio is
left is encoded at `close()`. The audio is never padded or trimmed: the audio track lasts as
long as the samples given, and the caller writes `frame_count(audio.duration_s, fps)` frames
so that the video lasts as long too (to within one frame).

Encoding cost per 512x512 frame on this project's 2-core CPU, crf 20, libx264 frame threads
(thread_type "AUTO"), RGB->YUV conversion and AAC included; CPU ms is what the pipeline pays
when both cores are busy (wall ms on an idle machine in brackets):

    preset      CPU ms/frame (idle wall)    bitrate, portrait-like / colour bars
    ultrafast   1.9-3.0 (1.5)               3.3 / 0.3 Mbit/s
    superfast   3.0-4.1 (2.1-2.3)           1.7 / 0.2 Mbit/s
    veryfast    3.0-4.3 (2.1-2.8)           0.4 / 0.1 Mbit/s

veryfast is the default: within the ~5 ms budget, barely dearer than superfast on faces, and
4-8x smaller files than the faster presets at the same PSNR (35-41 dB).
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from openvasa.errors import OpenvasaError
from openvasa.io.frames import temporary_sibling

X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast",
    "medium", "slow", "slower", "veryslow", "placebo",
)  # fmt: skip

# Container formats by file suffix; MP4 is the default output and what browsers play.
_FORMAT_BY_SUFFIX = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}

# Tags that MP4's iTunes-style metadata box stores natively. Any other key needs
# movflags=use_metadata_tags, or libavformat drops it without a word.
_MP4_NATIVE_TAGS = frozenset(
    {
        "title", "artist", "album_artist", "album", "composer", "comment", "genre",
        "date", "grouping", "lyrics", "description", "synopsis", "copyright",
    }
)  # fmt: skip

# Frames are converted to YUV with the BT.601 matrix in limited range (swscale's default);
# tagging the stream so stops players from guessing BT.709 for frames 720 pixels or taller.
_AVCOL_SPC_SMPTE170M = 6
_AVCOL_RANGE_MPEG = 1


class AudioLike(Protocol):
    """Any audio clip: `openvasa.audio.load.Audio` or a stand-in with the same two fields."""

    @property
    def samples(self) -> np.ndarray:
        """Mono float32 samples in [-1, 1], shape (n,)."""
        ...

    @property
    def sample_rate(self) -> int:
        """Samples per second (Hz)."""
        ...


def _mono_float32(audio: AudioLike) -> np.ndarray:
    samples = np.asarray(audio.samples, dtype=np.float32)
    if samples.ndim == 2 and 1 in samples.shape:
        samples = samples.reshape(-1)
    if samples.ndim != 1:
        raise ValueError(f"audio samples must be mono with shape (n,), got {samples.shape}")
    if samples.size == 0:
        raise ValueError("audio has no samples")
    if not np.all(np.isfinite(samples)):
        raise ValueError("audio samples contain NaN or infinity")
    # AAC clips outside [-1, 1] anyway; clipping here keeps the result predictable.
    return np.clip(samples, -1.0, 1.0)


def _resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample a mono float32 clip through libswresample (for rates AAC cannot carry)."""
    frame = av.AudioFrame.from_ndarray(samples[None, :], format="fltp", layout="mono")
    frame.sample_rate = rate_in
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate_out)
    pieces = [f.to_ndarray()[0] for f in resampler.resample(frame)]
    pieces += [f.to_ndarray()[0] for f in resampler.resample(None)]
    return np.concatenate(pieces).astype(np.float32)


class VideoWriter:
    """Write RGB frames (and optionally one audio clip) to an H.264 + AAC MP4 file.

    Use as a context manager::

        with VideoWriter("out.mp4", fps=25, size=(512, 512), audio=audio) as writer:
            for frame in frames:  # (512, 512, 3) uint8 RGB
                writer.write(frame)

    The file is written under a temporary name (``.out.tmp-XXXX.mp4``) in the target's
    directory and renamed over `path` only when `close()` succeeds; if the ``with`` block
    raises, the temporary file is removed and `path` is left as it was.

    Args:
        path: output file; ``.mp4`` (or ``.m4v``, ``.mov``, ``.mkv``). Parent folders are made.
        fps: video frame rate (frames per second).
        size: (width, height) in pixels; both even (yuv420p halves the chroma planes).
        audio: the clip to put in the file, or None for a silent video. Its rate is kept if
            AAC supports it (16 kHz is fine), otherwise it is resampled to 48 kHz.
        crf: x264 constant rate factor, 0 (lossless) to 51; 20 looks clean at 512x512.
        preset: x264 speed preset; "veryfast" costs about 3-4 ms of CPU per 512x512 frame.
        metadata: container tags, e.g. {"comment": "..."}; values are written as strings.
            Keys MP4 has no native slot for are kept as QuickTime "mdta" keys. libavformat
            always writes its own version as "encoder", whatever is passed for it.
        audio_bitrate: AAC bit rate in bits per second.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: float = 25,
        size: tuple[int, int] = (512, 512),
        audio: AudioLike | None = None,
        crf: float = 20,
        preset: str = "veryfast",
        metadata: Mapping[str, object] | None = None,
        audio_bitrate: int = 128_000,
    ) -> None:
        self.path = Path(path)
        width, height = (int(v) for v in size)
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(
                f"video size must be positive and even for yuv420p, got {width}x{height}"
            )
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be between 0 and 51, got {crf}")
        if preset not in X264_PRESETS:
            raise ValueError(f"unknown x264 preset {preset!r}; use one of {X264_PRESETS}")
        container_format = _FORMAT_BY_SUFFIX.get(self.path.suffix.lower())
        if container_format is None:
            raise ValueError(
                f"{self.path}: unsupported video suffix; use one of {sorted(_FORMAT_BY_SUFFIX)}"
            )
        self.size = (width, height)
        self.fps = float(fps)
        tags = {str(k): str(v) for k, v in (metadata or {}).items()}

        self._audio_samples: np.ndarray | None = None
        if audio is not None:
            samples = _mono_float32(audio)
            rate = int(audio.sample_rate)
            if rate not in av.codec.Codec("aac", "w").audio_rates:
                samples, rate = _resample(samples, rate, 48_000), 48_000
            self._audio_samples, self._audio_rate = samples, rate

        self.path.parent.mkdir(parents=True, exist_ok=True)
        # libavformat creates the file (mode per umask) and it is renamed over `path` at close.
        self._tmp_path = temporary_sibling(self.path)
        tmp_name = str(self._tmp_path)

        container_options = {}
        if container_format in ("mp4", "mov"):
            # faststart puts the index first so browsers can play while downloading.
            movflags = "+faststart"
            if set(tags) - _MP4_NATIVE_TAGS - {"encoder"}:
                movflags += "+use_metadata_tags"
            container_options["movflags"] = movflags
        container = None
        try:
            container = av.open(
                tmp_name, mode="w", format=container_format, container_options=container_options
            )
            self._container = container
            self._container.metadata.update(tags)
            self._video = self._container.add_stream(
                "libx264", rate=Fraction(self.fps).limit_denominator(1001)
            )
            self._video.width, self._video.height = width, height
            self._video.pix_fmt = "yuv420p"
            self._video.options = {"crf": str(crf), "preset": preset}
            video_codec = self._video.codec_context
            # PyAV's default is slice threads; frame threads ("AUTO") encode ~10% faster
            # here and make slightly smaller files. libx264 picks the thread count.
            video_codec.thread_type = "AUTO"
            video_codec.colorspace = _AVCOL_SPC_SMPTE170M
            video_codec.color_range = _AVCOL_RANGE_MPEG

            self._audio = None
            if self._audio_samples is not None:
                self._audio = self._container.add_stream("aac", rate=self._audio_rate)
                self._audio.layout = "mono"
                audio_codec = self._audio.codec_context
                audio_codec.bit_rate = int(audio_bitrate)
                audio_codec.open()
                # AAC takes fixed-size frames (1024 samples) except the last one.
                self._audio_frame_size = audio_codec.frame_size or 1024
        except BaseException:
            if container is not None:
                _discard(container, self._tmp_path)
            self._tmp_path.unlink(missing_ok=True)
            raise

        self._frames_written = 0
        self._audio_samples_encoded = 0
        self._closed = False
        # Removes the temporary file if the writer is dropped without close().
        self._finalizer = weakref.finalize(self, _discard, self._container, self._tmp_path)

    @property
    def frames_written(self) -> int:
        """Number of video frames written so far."""
        return self._frames_written

    def write(self, frame: np.ndarray) -> None:
        """Append one frame: RGB uint8 array of shape (height, width, 3)."""
        if self._closed:
            raise ValueError("write() on a closed VideoWriter")
        frame = np.asarray(frame)
        width, height = self.size
        if frame.dtype != np.uint8 or frame.shape != (height, width, 3):
            raise ValueError(
                f"frame must be uint8 RGB of shape ({height}, {width}, 3), "
                f"got {frame.dtype} {frame.shape}"
            )
        rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        yuv = rgb.reformat(
            format="yuv420p", dst_colorspace=Colorspace.ITU601, dst_color_range=ColorRange.MPEG
        )
        yuv.pts = self._frames_written
        self._container.mux(self._video.encode(yuv))
        self._frames_written += 1
        if self._audio is not None:
            # Keep the audio up to the end of this frame, in whole AAC frames.
            video_end_sample = int(self._frames_written / self.fps * self._audio_rate)
            whole = video_end_sample - video_end_sample % self._audio_frame_size
            self._encode_audio_until(min(whole, len(self._audio_samples)))

    def _encode_audio_until(self, end_sample: int) -> None:
        assert self._audio is not None and self._audio_samples is not None
        step = self._audio_frame_size
        for start in range(self._audio_samples_encoded, end_sample, step):
            chunk = self._audio_samples[start : min(start + step, end_sample)]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            frame.sample_rate = self._audio_rate
            frame.pts = start
            frame.time_base = Fraction(1, self._audio_rate)
            self._container.mux(self._audio.encode(frame))
        self._audio_samples_encoded = max(self._audio_samples_encoded, end_sample)

    def close(self) -> None:
        """Finish both streams, write the file index and move the file to `path`."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._frames_written == 0:
                raise ValueError(f"{self.path}: no video frames were written")
            if self._audio is not None:
                self._encode_audio_until(len(self._audio_samples))
                self._container.mux(self._audio.encode(None))
            self._container.mux(self._video.encode(None))
            self._container.close()
            os.replace(self._tmp_path, self.path)
        except BaseException:
            self._finalizer()
            raise
        self._finalizer.detach()

    def abort(self) -> None:
        """Stop writing and remove the temporary file; `path` is left untouched."""
        self._closed = True
        self._finalizer()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _discard(container: av.container.OutputContainer, tmp_path: Path) -> None:
    with contextlib.suppress(Exception):
        container.close()
    tmp_path.unlink(missing_ok=True)


@dataclass(frozen=True)
class MediaInfo:
    """What a media file holds, as its container reports it (times in seconds)."""

    duration_s: float  # of the video stream
    n_frames: int
    fps: float
    width: int
    height: int
    video_codec: str  # e.g. "h264"
    video_start_s: float
    audio_codec: str | None  # e.g. "aac"; None without an audio stream
    audio_duration_s: float | None
    audio_sample_rate: int | None
    audio_start_s: float | None


def _open_input(path: str | os.PathLike[str]) -> av.container.InputContainer:
    path = Path(path)
    if not path.is_file():
        raise OpenvasaError(f"{path}: no such video file.")
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as error:
        raise OpenvasaError(f"{path}: cannot be read as a video ({error}).") from error


def _stream_seconds(value: int | None, stream: av.stream.Stream) -> float | None:
    if value is None or stream.time_base is None:
        return None
    return float(value * stream.time_base)


def _scan_packets(
    container: av.container.InputContainer, video: av.stream.Stream, audio: av.stream.Stream | None
) -> tuple[int, dict[int, float]]:
    """Video packet count and each stream's span (first pts to last pts + duration) in s."""
    streams = [video] if audio is None else [video, audio]
    first: dict[int, float] = {}
    end: dict[int, float] = {}
    packet_count = 0
    for packet in container.demux(streams):
        if packet.pts is None or packet.time_base is None:
            continue  # the demuxer's empty flush packet
        index = packet.stream.index
        packet_count += index == video.index and packet.size > 0
        start_s = float(packet.pts * packet.time_base)
        end_s = float((packet.pts + (packet.duration or 0)) * packet.time_base)
        first[index] = min(first.get(index, start_s), start_s)
        end[index] = max(end.get(index, end_s), end_s)
    return packet_count, {index: end[index] - first[index] for index in end}


def probe_media(path: str | os.PathLike[str]) -> MediaInfo:
    """Describe the first video stream and first audio stream of a media file."""
    with _open_input(path) as container:
        if not container.streams.video:
            raise OpenvasaError(f"{path}: has no video stream.")
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        rate = video.average_rate or video.guessed_rate
        fps = float(rate) if rate else 0.0
        n_frames = video.frames
        duration_s = _stream_seconds(video.duration, video)
        audio_duration_s = _stream_seconds(audio.duration, audio) if audio else None
        if not n_frames or duration_s is None or (audio and audio_duration_s is None):
            # Matroska and some others store no per-stream frame count or duration: take
            # them from the packets (demuxing only, no decoding).
            packet_count, packet_spans_s = _scan_packets(container, video, audio)
            n_frames = n_frames or packet_count
            if duration_s is None:
                duration_s = packet_spans_s[video.index]
            if audio is not None and audio_duration_s is None:
                audio_duration_s = packet_spans_s.get(audio.index)

        audio_codec = audio_sample_rate = audio_start_s = None
        if audio is not None:
            audio_codec = audio.codec_context.name
            audio_sample_rate = audio.rate
            audio_start_s = _stream_seconds(audio.start_time, audio) or 0.0
        return MediaInfo(
            duration_s=duration_s,
            n_frames=n_frames,
            fps=fps,
            width=video.codec_context.width,
            height=video.codec_context.height,
            video_codec=video.codec_context.name,
            video_start_s=_stream_seconds(video.start_time, video) or 0.0,
            audio_codec=audio_codec,
            audio_duration_s=audio_duration_s,
            audio_sample_rate=audio_sample_rate,
            audio_start_s=audio_start_s,
        )


def iter_video_frames(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Decode a video's frames one at a time, each RGB uint8 of shape (H, W, 3)."""
    with _open_input(path) as container:
        if not container.streams.video:
            raise OpenvasaError(f"{path}: has no video stream.")
        video = container.streams.video[0]
        video.codec_context.thread_type = "AUTO"
        for frame in container.decode(video):
            yield frame.to_ndarray(format="rgb24")


def read_video(path: str | os.PathLike[str]) -> tuple[np.ndarray, float]:
    """Decode a whole video: frames (T, H, W, 3) uint8 RGB and the frame rate in fps."""
    fps = probe_media(path).fps
    frames = list(iter_video_frames(path))
    if not frames:
        raise OpenvasaError(f"{path}: has no video frames.")
    return np.stack(frames), fps


def read_audio_track(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Decode a file's first audio stream: mono float32 samples (n,) and the rate in Hz.

    Channels are downmixed to mono. The decoder drops the encoder's priming samples (the MP4 edit
    list says how many), so sample 0 is t = 0; the tail may hold up to one AAC frame of
    padding past the stream's stated duration.
    """
    with _open_input(path) as container:
        if not container.streams.audio:
            raise OpenvasaError(f"{path}: has no audio stream.")
        audio = container.streams.audio[0]
        rate = audio.rate
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
        pieces = []
        for frame in container.decode(audio):
            pieces += [f.to_ndarray()[0] for f in resampler.resample(frame)]
        pieces += [f.to_ndarray()[0] for f in resampler.resample(None)]
    if not pieces:
        return np.zeros(0, np.float32), rate
    return np.concatenate(pieces).astype(np.float32), rate
