"""Per-frame signals of a talking-face video, ours or real, and of its audio.

Face: MediaPipe's video tracker follows the face; the first frame with a face is encoded into
a `FaceLatent` in the video's own pixels (identity, eyes, framing), and a `MotionEncoder` for
that person turns every frame's landmarks into head pose, ARKit blendshapes and gaze. Mouth
opening, eye opening and identity drift are measured on the pose-normalised (canonical) face,
so that they are in face widths whatever the head does.

Audio: prosody per video frame (`openvasa.audio.prosody_features`): the speech envelope, where
speech is active, and its onsets.

Both are plain dataclasses of NumPy arrays with one row per video frame.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from openvasa.audio import Audio, load_audio, prosody_features
from openvasa.errors import NoFaceError, OpenvasaError
from openvasa.face.detect import FaceAnalyzer, default_analyzer
from openvasa.face.framing import FACE_WIDTH_FRACTION, Framing, face_similarity
from openvasa.face.iris import IrisTracker, eye_openness
from openvasa.latent import topology as topo
from openvasa.latent.face_latent import IRIS, MotionEncoder, encode_portrait
from openvasa.latent.motion import ARKIT_BLENDSHAPES

PathLike = str | os.PathLike[str]
ProgressFn = Callable[[int, int], None]

# Inner-lip point pairs away from the corners: their vertical gap is the mouth opening.
_LIPS_UPPER = list(topo.LIPS_INNER_UPPER[2:-2])
_LIPS_LOWER = list(topo.LIPS_INNER_LOWER[2:-2])
# The irises are tracked from the first frame whose eyes are both open at least this much
# (lid gap over eye width; about 0.3 open).
EYES_OPEN_FOR_REFERENCE = 0.2
# Gaze is left unmeasured (NaN) in frames whose eye opening is below this fraction of the
# clip's open level (the 90th percentile): blinks.
GAZE_MIN_EYE_OPEN = 0.7
# Speech is active where prosody's energy (0 at the clip's noise floor, 1 at its speech level)
# exceeds this.
SPEECH_ENERGY = 0.2
# Video frames kept when a clip is too long to hold: ~15 minutes at 25 fps.
MAX_FRAMES = 25 * 60 * 15


@dataclass
class FaceSignals:
    """What the face does in each of T video frames (NaN where no face was found).

    fps: frames per second; frame_size: (width, height) in pixels.
    found: (T,) bool, a face was tracked in the frame.
    pose: (T, 6) [yaw, pitch, roll (deg), tx, ty (face widths from the first frame's face
        centre, x right, y down), scale (face size relative to the first frame)].
    blendshapes: (T, 52) ARKit coefficients in [0, 1] (`ARKIT_BLENDSHAPES` order).
    gaze: (T, 2) [yaw, pitch] in degrees relative to the head (yaw > 0 to the image's right,
        pitch > 0 up); absolute values rest on an eye model fitted to the first frame; NaN
        during blinks.
    mouth_open: (T,) inner-lip gap in face widths (about 0.01 closed, 0.15 wide open).
    eye_open: (T,) lid gap over eye width, mean of both eyes (about 0.3 open, < 0.1 shut).
    face_width_px: (T,) face width (MediaPipe's cheek-to-cheek unit) in pixels.
    identity_drift: (T,) RMS distance in face widths (image x, y) between the frame's
        face with its pose and expression taken out and the first frame's neutral face.
    landmarks: (T, 478, 3) tracked landmarks in pixels (iris centres refined).
    """

    fps: float
    frame_size: tuple[int, int]
    found: np.ndarray
    pose: np.ndarray
    blendshapes: np.ndarray
    gaze: np.ndarray
    mouth_open: np.ndarray
    eye_open: np.ndarray
    face_width_px: np.ndarray
    identity_drift: np.ndarray
    landmarks: np.ndarray
    name: str = "video"

    def __len__(self) -> int:
        return len(self.found)

    @property
    def duration_s(self) -> float:
        return len(self) / self.fps

    @property
    def time_s(self) -> np.ndarray:
        """(T,) time of each frame in seconds."""
        return np.arange(len(self)) / self.fps

    def blendshape(self, name: str) -> np.ndarray:
        """(T,) trajectory of one ARKit blendshape."""
        return self.blendshapes[:, ARKIT_BLENDSHAPES.index(name)]

    def head_distance(self) -> np.ndarray:
        """(T,) apparent head distance in openvasa's framing units: 1.0 when the face is
        `FACE_WIDTH_FRACTION` of the frame wide, 2.0 when half that."""
        return FACE_WIDTH_FRACTION * self.frame_size[0] / self.face_width_px


@dataclass
class SpeechSignals:
    """The audio measured per video frame (T frames, frame i centred at (i + 0.5) / fps s).

    envelope: (T,) speech energy in [0, 1] (0 at the clip's noise floor, 1 at its speech level).
    loudness_db: (T,) RMS level in dBFS.
    active: (T,) bool, speech is heard.
    onsets: (T,) rises of the envelope, max(0, envelope[t] − envelope[t−1]).
    """

    fps: float
    envelope: np.ndarray
    loudness_db: np.ndarray
    active: np.ndarray
    onsets: np.ndarray

    def __len__(self) -> int:
        return len(self.envelope)


def speech_signals(audio: Audio, fps: float, n_frames: int | None = None) -> SpeechSignals:
    """Speech envelope, activity and onsets of `audio` per video frame at `fps`.

    n_frames: pad (with silence) or cut to this many frames, to match a video.
    """
    prosody = prosody_features(audio, fps)
    envelope = prosody.energy.astype(np.float64)
    loudness = prosody.loudness_db.astype(np.float64)
    if n_frames is not None:
        if len(envelope) < n_frames:
            missing = n_frames - len(envelope)
            envelope = np.concatenate([envelope, np.zeros(missing)])
            loudness = np.concatenate([loudness, np.full(missing, loudness.min())])
        envelope, loudness = envelope[:n_frames], loudness[:n_frames]
    onsets = np.maximum(np.diff(envelope, prepend=envelope[:1]), 0.0)
    return SpeechSignals(float(fps), envelope, loudness, envelope > SPEECH_ENERGY, onsets)


def video_audio(path: PathLike) -> Audio | None:
    """The audio track of a video as 16 kHz mono, or None when it has none."""
    from openvasa.io.video import probe_media

    if probe_media(path).audio_codec is None:
        return None
    return load_audio(path)


def _tracked_landmarks(analyzer: FaceAnalyzer, frame: np.ndarray) -> np.ndarray | None:
    """(478, 3) landmarks of a video frame from MediaPipe's tracker, or None without a face.

    A second pass on the same frame starts from a crop centred on the first pass's face;
    averaging both halves the tracker's crop-dependent jitter, which otherwise adds 10-15 %
    to ΔP of rendered clips whose true motion is known."""
    detection = analyzer.detect_video_frame(frame)
    if detection is None:
        return None
    again = analyzer.detect_video_frame(frame)
    landmarks = np.asarray(detection.landmarks, np.float64)
    if again is not None:
        landmarks = 0.5 * (landmarks + np.asarray(again.landmarks, np.float64))
    return landmarks


def _fine_landmarks(analyzer: FaceAnalyzer, frame: np.ndarray, near: np.ndarray) -> np.ndarray:
    """Landmarks from the refine passes of a single portrait, started at `near`: the
    tracker reads a rendered face's eyes a pixel off (vertical gaze ~5°); `near` if they
    lose the face."""
    found = analyzer.detect_near(frame, near)
    return near if found is None else np.asarray(found.landmarks, np.float64)


def _eyes_open(landmarks: np.ndarray) -> bool:
    """Both eyes open wide enough to show their irises whole (a tracking reference)."""
    return min(eye_openness(landmarks, side) for side in IRIS) >= EYES_OPEN_FOR_REFERENCE


def _video_framing(landmarks: np.ndarray, size: tuple[int, int]) -> Framing:
    """A framing in the video's own pixels: pose (0, 0, 1) is where and how large the face is
    in `landmarks`, so translation and scale read relative to that frame."""
    scale, _, translation = face_similarity(landmarks)
    identity_crop = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return Framing(size, float(scale), translation[:2].copy(), identity_crop, 1.0)


class _FaceMeasurer:
    """Turns one person's per-frame landmarks into the rows of `FaceSignals`."""

    def __init__(self, frame: np.ndarray, landmarks: np.ndarray):
        height, width = frame.shape[:2]
        self.framing = _video_framing(landmarks, (width, height))
        mask = np.ones((height, width), np.float32)  # the encoder never looks at the mask
        latent = encode_portrait(frame, mask, landmarks, self.framing)
        self.encoder = MotionEncoder(latent.identity, latent.eyes, self.framing, latent.basis)
        self.identity = latent.identity
        self.basis = latent.basis

    def gaze(self, landmarks: np.ndarray) -> np.ndarray:
        """(yaw, pitch) gaze in degrees from one frame's landmarks."""
        return self.encoder.gaze(landmarks, self.encoder.placement(landmarks))

    def measure(self, landmarks: np.ndarray) -> tuple:
        placement = self.encoder.placement(landmarks)
        motion = self.encoder.encode(landmarks, placement)
        canonical = placement.invert(np.asarray(landmarks[: topo.N_FACE_VERTICES], np.float64))
        mouth = float(np.mean(canonical[_LIPS_LOWER, 1] - canonical[_LIPS_UPPER, 1]))
        eyes = []
        for side, (upper, lower) in topo.EYE_LIDS.items():
            upper, lower = list(upper), list(lower)
            a, b = topo.EYE_CORNERS[side]
            gap = np.mean(canonical[lower, 1] - canonical[upper, 1])
            eyes.append(gap / max(np.linalg.norm(canonical[a, :2] - canonical[b, :2]), 1e-9))
        active = np.nonzero(motion.blendshapes > 1e-4)[0]
        expressed = self.identity + np.tensordot(
            motion.blendshapes[active], self.basis[active], axes=1
        )
        drift = float(np.sqrt(np.mean(np.sum((canonical - expressed)[:, :2] ** 2, axis=1))))
        return motion, mouth, float(np.mean(eyes)), placement.scale, drift


def face_signals(
    video: PathLike,
    *,
    analyzer: FaceAnalyzer | None = None,
    refine_iris: bool = True,
    fine_gaze: bool = True,
    model_frame: np.ndarray | None = None,
    progress: ProgressFn | None = None,
) -> FaceSignals:
    """Track the face through a video file and measure it frame by frame.

    video: any file PyAV reads (MP4, MOV, MKV, WebM …). refine_iris: track the irises by
    their look in the first frame whose eyes are open (`openvasa.face.iris.IrisTracker`)
    rather than trust MediaPipe's iris points, which read a turned eye short. fine_gaze:
    read gaze from the refine passes of a single portrait (three more landmark passes a
    frame, about 60 % of the time); False reads it from the tracker's landmarks, which sit
    a pixel off on the eyes of rendered faces, and leaves every other signal the same.
    model_frame:
    an (H, W, 3) RGB image in the video's pixels to fit the person's face and eye model to,
    instead of the video's first frame: for a generated video, its framed portrait, so that
    gaze reads in the frame its controls were given in.
    Raises OpenvasaError for unreadable files and NoFaceError when no frame has a face.
    """
    from openvasa.io.video import iter_video_frames, probe_media

    path = Path(video)
    info = probe_media(path)
    if not info.fps > 0:
        raise OpenvasaError(f"{path.name}: the video does not state its frame rate.")
    analyzer = analyzer or default_analyzer()
    # Each frame is read twice: by MediaPipe's tracker for pose, mouth, lids and expression
    # (the planted-truth tests calibrate ΔP and lip sync on it), and by the refine passes of
    # a single portrait for gaze, with its own face model.
    measurer: _FaceMeasurer | None = None
    gazer: _FaceMeasurer | None = None
    irises: IrisTracker | None = None
    if model_frame is not None:
        analyzer.reset_tracking()
        tracked = _tracked_landmarks(analyzer, model_frame)
        if tracked is None:
            raise NoFaceError("No face found in the model frame given for the video.")
        fine = _fine_landmarks(analyzer, model_frame, tracked) if fine_gaze else tracked
        measurer = _FaceMeasurer(model_frame, tracked)
        gazer = _FaceMeasurer(model_frame, fine)
        if refine_iris:
            irises = IrisTracker(model_frame, fine)
    analyzer.reset_tracking()
    expected = max(int(info.n_frames or 0), 1)
    rows: list[tuple | None] = []
    landmarks_all: list[np.ndarray] = []
    size = (info.width, info.height)
    for index, frame in enumerate(iter_video_frames(path)):
        if index >= MAX_FRAMES:
            raise OpenvasaError(
                f"{path.name} is too long to evaluate: at most {MAX_FRAMES} frames "
                f"({MAX_FRAMES / 25 / 60:.0f} minutes at 25 fps)."
            )
        size = (frame.shape[1], frame.shape[0])
        landmarks = _tracked_landmarks(analyzer, frame)
        if landmarks is None:
            rows.append(None)
            landmarks_all.append(np.full((topo.N_LANDMARKS, 3), np.nan))
        else:
            fine = _fine_landmarks(analyzer, frame, landmarks) if fine_gaze else landmarks
            if refine_iris and irises is None and _eyes_open(fine):
                irises = IrisTracker(frame, fine)
            if irises is not None:
                fine = irises.refine(frame, fine)
            if measurer is None or gazer is None:
                measurer = _FaceMeasurer(frame, landmarks)
                gazer = _FaceMeasurer(frame, fine)
            row = measurer.measure(landmarks)
            row[0].gaze = gazer.gaze(fine)
            rows.append(row)
            landmarks_all.append(landmarks)
        if progress is not None:
            progress(index + 1, max(expected, index + 1))
    if not rows:
        raise OpenvasaError(f"{path.name}: has no video frames.")
    if measurer is None:
        raise NoFaceError(f"No face found in {path.name} in any of its {len(rows)} frames.")
    return _stack(rows, landmarks_all, info.fps, size, path.stem)


def _stack(
    rows: list[tuple | None],
    landmarks: list[np.ndarray],
    fps: float,
    size: tuple[int, int],
    name: str,
) -> FaceSignals:
    n = len(rows)
    found = np.array([row is not None for row in rows])
    pose = np.full((n, 6), np.nan)
    blendshapes = np.full((n, len(ARKIT_BLENDSHAPES)), np.nan)
    gaze = np.full((n, 2), np.nan)
    scalars = np.full((n, 4), np.nan)
    for i, row in enumerate(rows):
        if row is None:
            continue
        motion, mouth, eye, width_px, drift = row
        pose[i], blendshapes[i], gaze[i] = motion.pose, motion.blendshapes, motion.gaze
        scalars[i] = (mouth, eye, width_px, drift)
    eye = scalars[:, 1]
    if np.isfinite(eye).any():
        # A shut or half-shut eye shows no iris to read the gaze from.
        gaze[eye < GAZE_MIN_EYE_OPEN * np.nanpercentile(eye, 90)] = np.nan
    return FaceSignals(
        fps=float(fps),
        frame_size=(int(size[0]), int(size[1])),
        found=found,
        pose=pose,
        blendshapes=blendshapes,
        gaze=gaze,
        mouth_open=scalars[:, 0],
        eye_open=scalars[:, 1],
        face_width_px=scalars[:, 2],
        identity_drift=scalars[:, 3],
        landmarks=np.stack(landmarks),
        name=name,
    )
