"""Settings shared by the CLI, the Python API and (later) the server: one source of truth."""

from __future__ import annotations

from dataclasses import dataclass, field

from openvasa.errors import OpenvasaError

ENGINES = ("energy", "teacher", "diffusion")
# How the output is framed (openvasa.face.framing): "native" keeps the photo's own framing
# (the animated face composited back into it), "square" re-frames the face in a square,
# "auto" keeps head-and-shoulders photos and closer native and re-frames wider shots.
FRAMINGS = ("auto", "native", "square")


@dataclass(frozen=True)
class Controls:
    """What a user steers in a generated video.

    gaze_deg: main gaze direction (yaw, pitch) in degrees relative to the head; (0, 0) looks
        into the camera; yaw > 0 to the image's right, pitch > 0 up.
    head_distance: apparent camera distance; 1.0 default framing, 2.0 face half as wide.
    emotion: one of `openvasa.motion.emotion.EMOTIONS`; emotion_strength in [0, 1].
    seed: makes head motion, blinks and gaze shifts repeatable.
    """

    gaze_deg: tuple[float, float] = (0.0, 0.0)
    head_distance: float = 1.0
    emotion: str = "neutral"
    emotion_strength: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        from openvasa.motion.emotion import EMOTIONS

        yaw, pitch = self.gaze_deg
        if not (-30.0 <= yaw <= 30.0 and -25.0 <= pitch <= 25.0):
            raise OpenvasaError(
                f"Gaze {yaw:g},{pitch:g} is out of range: yaw must lie in "
                "[-30, 30] and pitch in [-25, 25] degrees."
            )
        if not 0.5 <= self.head_distance <= 2.0:
            raise OpenvasaError(
                f"Head distance {self.head_distance:g} is out of range: use 0.5 "
                "(close) to 2.0 (far); 1.0 is the default framing."
            )
        if self.emotion not in EMOTIONS:
            raise OpenvasaError(
                f"Unknown emotion {self.emotion!r}: choose one of {', '.join(EMOTIONS)}."
            )
        if not 0.0 <= self.emotion_strength <= 1.0:
            raise OpenvasaError(f"Emotion strength {self.emotion_strength:g} must lie in [0, 1].")


@dataclass(frozen=True)
class DiffusionOptions:
    """Sampling of the motion diffusion engine: denoising steps, classifier-free guidance
    scale per condition, and the checkpoint (None: the shipped one).

    Chosen from measurements of the shipped model. Audio guidance 0.25: the jaw follows the
    teacher as closely as at VASA-1's 0.5 (held-out r 0.885 against 0.879), while the head
    moves as much as the teacher's (ΔP 0.92–0.99 against 0.91–0.94; 1.01–1.10 at 0.5).
    Gaze and emotion unguided: over 60 clips (3 sentences, 2 seeds, neutral and happy, gaze
    ±15° yaw, ±10° pitch and (10, 6)) the clip's median gaze lands 1.05° from the request
    (3.3° at worst); gaze guidance 0.3 gave 1.2°, VASA-1's gaze and emotion guidance of 1.0
    1.1°, at one or two more network passes per step. Emotion presets reach 0.93–0.98 of
    their offsets unguided."""

    steps: int = 10
    cfg_audio: float = 0.25
    cfg_gaze: float = 0.0
    cfg_emotion: float = 0.0
    checkpoint: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 200:
            raise OpenvasaError(f"Steps {self.steps} must lie between 1 and 200.")
        for name in ("cfg_audio", "cfg_gaze", "cfg_emotion"):
            if not 0.0 <= getattr(self, name) <= 10.0:
                raise OpenvasaError(f"--{name.replace('_', '-')} must lie between 0 and 10.")


@dataclass(frozen=True)
class OutputSettings:
    """How the video is made: frame rate, frame size, framing, engine and limits.

    size: the square frame's side, or the native frame's longer side, in pixels.
    framing: "auto", "native" or "square" (see FRAMINGS).
    """

    fps: float = 25.0
    size: int = 512
    framing: str = "auto"
    engine: str = "diffusion"
    max_audio_s: float = 600.0
    crf: int = 20
    controls: Controls = field(default_factory=Controls)
    # Provenance (openvasa/provenance): every emitted frame carries an invisible watermark
    # unless this is switched off explicitly; watermark_key: optional text whose 24-bit id
    # the mark carries (`openvasa verify --key` checks it).
    watermark: bool = True
    watermark_key: str | None = None
    diffusion: DiffusionOptions = field(default_factory=DiffusionOptions)

    def __post_init__(self) -> None:
        if self.watermark_key is not None and not self.watermark_key.strip():
            raise OpenvasaError("The watermark key is empty: give some text, or leave it out.")
        if self.watermark_key is not None and not self.watermark:
            raise OpenvasaError("A watermark key needs the watermark: drop --no-watermark.")
        if not 20 <= self.fps <= 60:
            raise OpenvasaError(f"Frame rate {self.fps:g} is not supported: use 20 to 60 fps.")
        if not 64 <= self.size <= 2048 or self.size % 2:
            raise OpenvasaError(
                f"Size {self.size} is not supported: use an even number of pixels from 64 to 2048."
            )
        if self.framing not in FRAMINGS:
            raise OpenvasaError(
                f"Unknown framing {self.framing!r}: choose one of {', '.join(FRAMINGS)}."
            )
        if self.engine not in ENGINES:
            raise OpenvasaError(
                f"Unknown engine {self.engine!r}: choose one of {', '.join(ENGINES)}."
            )


FRAME_FORMATS = ("rgb", "jpeg")


@dataclass(frozen=True)
class StreamSettings:
    """How a live stream (`Generator.open_stream`) hands out frames.

    frame_format: "rgb" gives each frame as an (H, W, 3) uint8 array, "jpeg" as JPEG bytes.
    jpeg_quality: 1-100, for "jpeg".
    queue_frames: frames that each pipeline stage may hold before the stage before it waits
        (back-pressure: memory stays bounded however fast audio is pushed).
    max_chunk_s: longest piece of audio one push accepts, in seconds.
    catch_up: when the motion stage has fallen behind the audio (a busy machine), make the
        waiting audio's frames at once in fewer, longer windows (the diffusion engine), so
        the stream catches up; the motion then depends on the timing. False: the motion is
        the same whatever the timing (`Generator.live_motion`).
    """

    frame_format: str = "rgb"
    jpeg_quality: int = 80
    queue_frames: int = 4
    max_chunk_s: float = 10.0
    catch_up: bool = True

    def __post_init__(self) -> None:
        if self.frame_format not in FRAME_FORMATS:
            raise OpenvasaError(
                f"Unknown frame format {self.frame_format!r}: choose one of "
                f"{', '.join(FRAME_FORMATS)}."
            )
        if not 1 <= self.jpeg_quality <= 100:
            raise OpenvasaError(f"JPEG quality {self.jpeg_quality} must lie in 1-100.")
        if not 1 <= self.queue_frames <= 256:
            raise OpenvasaError(f"Queue length {self.queue_frames} must lie in 1-256 frames.")
        if not self.max_chunk_s > 0:
            raise OpenvasaError(f"Longest audio chunk {self.max_chunk_s:g} s must be positive.")


@dataclass(frozen=True)
class ServerSettings:
    """Limits and defaults of `openvasa serve` (every limit answers with a clear JSON error).

    host, port: where to listen (port 0: any free port).
    max_upload_mb: largest request body (portrait or audio upload), in megabytes.
    max_audio_s: longest audio, in seconds, of a video job and of a live stream.
    max_sessions: live streams at the same time.
    max_jobs: video jobs queued or running at the same time; job_workers: run at once.
    max_portraits: prepared portraits kept in memory (least recently used go first).
    jpeg_quality: of the frames a live stream sends.
    idle_after_s: a live stream that receives no audio for this long goes on with silence,
        so that the face stays alive (breathing, blinks, small head motion) in real time.
    max_idle_s: a live stream that receives no audio for this long is closed.
    data_dir: where uploads and finished videos live (a fresh temporary folder when None).
    job_ttl_s: finished jobs and their files are removed after this many seconds.
    framing: of the videos and live streams, "auto", "native" or "square" (see FRAMINGS).
    catch_up: a live stream that falls behind catches up (`StreamSettings.catch_up`).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_mb: float = 25.0
    max_audio_s: float = 120.0
    max_sessions: int = 4
    max_jobs: int = 8
    job_workers: int = 1
    max_portraits: int = 16
    jpeg_quality: int = 80
    idle_after_s: float = 0.3
    max_idle_s: float = 120.0
    data_dir: str | None = None
    job_ttl_s: float = 3600.0
    framing: str = "auto"
    catch_up: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise OpenvasaError(f"Port {self.port} must lie in 0-65535.")
        for name in ("max_upload_mb", "max_audio_s", "idle_after_s", "max_idle_s", "job_ttl_s"):
            if not getattr(self, name) > 0:
                raise OpenvasaError(f"Server setting {name} must be positive.")
        for name in ("max_sessions", "max_jobs", "job_workers", "max_portraits"):
            if getattr(self, name) < 1:
                raise OpenvasaError(f"Server setting {name} must be at least 1.")
        if not 1 <= self.jpeg_quality <= 100:
            raise OpenvasaError(f"JPEG quality {self.jpeg_quality} must lie in 1-100.")
        if self.framing not in FRAMINGS:
            raise OpenvasaError(
                f"Unknown framing {self.framing!r}: choose one of {', '.join(FRAMINGS)}."
            )
