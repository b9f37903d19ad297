"""What the server accepts: images and audio, recognised by their content, never their name.

An upload's file name is only ever used in messages. Files are stored under names the server
makes (`portrait.png`, `audio.wav`, …) inside a folder named by a random id, so nothing from
a request becomes a path.
"""

from __future__ import annotations

import io
from pathlib import Path

from openvasa.errors import OpenvasaError


class UploadError(OpenvasaError):
    """An upload is of the wrong kind, too large, or unusable; the message says which."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


IMAGE_FORMATS = {
    "JPEG": ".jpg",
    "MPO": ".jpg",  # JPEG with extra frames (phone cameras)
    "PNG": ".png",
    "WEBP": ".webp",
    "TIFF": ".tiff",
    "BMP": ".bmp",
    "GIF": ".gif",
}


def _label(name: str | None) -> str:
    return f"'{name}'" if name else "The upload"


def image_suffix(data: bytes, name: str | None = None) -> str:
    """The file suffix for an image upload, from its content; UploadError if not an image."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise UploadError(f"{_label(name)} is empty (0 bytes).")
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
    except (UnidentifiedImageError, OSError, ValueError):
        kind = None
    if kind not in IMAGE_FORMATS:
        raise UploadError(
            f"{_label(name)} is not a portrait image: send a JPEG, PNG, WebP, TIFF, BMP or GIF "
            "file.",
            415,
        )
    return IMAGE_FORMATS[kind]


def audio_suffix(data: bytes, name: str | None = None) -> str:
    """The file suffix for an audio upload, from its first bytes; UploadError if not audio.

    Recognised: WAV, AIFF, FLAC, Ogg (Vorbis, Opus), MP3 (with or without ID3), AAC (ADTS),
    MP4/M4A, WebM/Matroska (what browsers record), CAF, AMR.
    """
    if not data:
        raise UploadError(f"{_label(name)} is empty (0 bytes).")
    head = data[:16]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return ".wav"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return ".aiff"
    if head[:4] == b"fLaC":
        return ".flac"
    if head[:4] == b"OggS":
        return ".ogg"
    if head[:3] == b"ID3":
        return ".mp3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return ".aac"  # ADTS: sync word, layer 0
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return ".mp3"  # MPEG audio frame sync
    if head[4:8] == b"ftyp":
        return ".m4a"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return ".webm"
    if head[:4] == b"caff":
        return ".caf"
    if head[:5] == b"#!AMR":
        return ".amr"
    raise UploadError(
        f"{_label(name)} is not an audio file: send WAV, MP3, FLAC, Ogg, M4A/AAC or WebM audio.",
        415,
    )


def check_no_video(path: Path, name: str | None) -> None:
    """Refuse a container that holds a video track (cover art in music files is fine)."""
    import av

    try:
        with av.open(str(path)) as container:
            moving = [
                s
                for s in container.streams.video
                if not (s.disposition & av.stream.Disposition.attached_pic)
            ]
    except (av.FFmpegError, ValueError):
        return  # not readable at all: decoding reports that in its own words
    if moving:
        raise UploadError(
            f"{_label(name)} is a video; send the audio alone (WAV, MP3, FLAC, Ogg, M4A).", 415
        )
