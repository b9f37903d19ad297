"""Output and input of media: MP4 video with audio, PNG frames and motion CSV/JSON files."""

from openvasa.io.frames import frame_filename, write_png_frames
from openvasa.io.motion_file import read_motion, write_motion
from openvasa.io.video import (
    AudioLike,
    MediaInfo,
    VideoWriter,
    iter_video_frames,
    probe_media,
    read_audio_track,
    read_video,
)

__all__ = [
    "AudioLike",
    "MediaInfo",
    "VideoWriter",
    "frame_filename",
    "iter_video_frames",
    "probe_media",
    "read_audio_track",
    "read_motion",
    "read_video",
    "write_motion",
    "write_png_frames",
]
