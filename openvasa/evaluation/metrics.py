"""Metrics of talking-face videos, computed from their signals (`openvasa.evaluation.signals`).

Every metric takes plain per-frame arrays, so that generated and real videos go through the
same code: "real video" is a row of every table, as in VASA-1's.

- lip sync: the lag (frames) that best aligns mouth opening with the speech envelope, the
  correlation there, and the share of silent frames with the mouth closed;
- motion: ΔP (mean head-rotation angle between adjacent frames, VASA-1's motion intensity;
  raw and with the face mesh's noise taken out by a Kalman smoother fitted to the clip),
  head-pose ranges, blink rate, jitter, identity drift;
- against a reference video of the same audio: mouth-trajectory correlation and differences
  of head-pose statistics;
- control accuracy: gaze angle error and head-distance error for the requested controls.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.signal import savgol_filter

from openvasa.evaluation.signals import FaceSignals, SpeechSignals
from openvasa.latent.face_latent import STABLE_VERTICES, gaze_direction
from openvasa.latent.geometry import rotation_matrix

# Lags searched for lip sync, in seconds either way (SyncNet searches ±15 frames at 25 fps).
MAX_SYNC_OFFSET_S = 0.6
# Window of the Savitzky–Golay (quadratic) smoothing for jitter: it keeps motion below
# ~6 Hz and takes out the face mesh's frame-to-frame noise.
POSE_SMOOTHING_S = 0.2
# The mouth counts as closed when the inner lips are less than this many face widths apart
# (about 4 mm on an adult face; a relaxed closed mouth reads 0.00–0.02).
MOUTH_CLOSED_FW = 0.03
# Frames within this time of speech are not "silent": lips close after the sound stops.
SILENCE_MARGIN_S = 0.12
# A blink: the eye opening drops below this fraction of its open level (a rendered full blink
# reads 0.28-0.46 of it at 25 fps, so 0.5 would miss some), and counts as over
# once it is back above the second fraction.
BLINK_CLOSED = 0.6
BLINK_REOPENED = 0.8


def _filled(values: np.ndarray) -> np.ndarray:
    """Copy of a (T,) or (T, k) array with NaN rows filled by linear interpolation in time."""
    values = np.array(values, np.float64, copy=True)
    flat = values.reshape(len(values), -1)
    for column in flat.T:
        bad = ~np.isfinite(column)
        if bad.all():
            continue
        if bad.any():
            good = np.nonzero(~bad)[0]
            column[bad] = np.interp(np.nonzero(bad)[0], good, column[good])
    return flat.reshape(values.shape)


def _window(fps: float, seconds: float) -> int:
    """Odd window length in frames for `seconds`, at least 5 (a quadratic fit needs room)."""
    n = max(5, int(round(seconds * fps)))
    return n + 1 - n % 2


# Constant-velocity head model of `denoise_pose`: state (angle, angular velocity) per axis,
# one step per frame; white angular acceleration of variance q adds Q_UNIT · q per step.
_STEP = np.array([[1.0, 1.0], [0.0, 1.0]])
_Q_UNIT = np.array([[1.0 / 3.0, 1.0 / 2.0], [1.0 / 2.0, 1.0]])


def _kalman(
    track: np.ndarray, q: float, r: float, *, smooth: bool
) -> tuple[np.ndarray | None, float]:
    """Kalman filter (and Rauch–Tung–Striebel smoother) of one angle track (T,) under the
    constant-velocity model with process noise q and measurement noise variance r (deg²).

    Returns the smoothed angles (T,) (None unless smooth) and the log-likelihood of the track.
    """
    n = len(track)
    state = np.array([track[0], 0.0])
    cov = np.diag([r, 1e4])  # the first frame fixes the angle, nothing fixes the speed
    predicted = np.zeros((n, 2))
    predicted_cov = np.zeros((n, 2, 2))
    filtered = np.zeros((n, 2))
    filtered_cov = np.zeros((n, 2, 2))
    log_likelihood = 0.0
    for t in range(n):
        if t > 0:
            state = _STEP @ state
            cov = _STEP @ cov @ _STEP.T + q * _Q_UNIT
        predicted[t], predicted_cov[t] = state, cov
        innovation_var = cov[0, 0] + r
        innovation = track[t] - state[0]
        if t > 0:
            log_likelihood -= 0.5 * (
                np.log(2 * np.pi * innovation_var) + innovation**2 / innovation_var
            )
        gain = cov[:, 0] / innovation_var
        state = state + gain * innovation
        cov = cov - np.outer(gain, cov[0])
        filtered[t], filtered_cov[t] = state, cov
    if not smooth:
        return None, log_likelihood
    smoothed = filtered.copy()
    for t in range(n - 2, -1, -1):
        back = filtered_cov[t] @ _STEP.T @ np.linalg.inv(predicted_cov[t + 1])
        smoothed[t] = filtered[t] + back @ (smoothed[t + 1] - predicted[t + 1])
    return smoothed[:, 0], log_likelihood


def pose_noise(track: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood (process noise q in deg²/frame³, measurement noise SD in deg) of one
    angle track (T,) under the constant-velocity model of `denoise_pose`."""
    track = np.asarray(track, np.float64)
    # Second differences hold both: var = 2/3 q + 6 r for the model; start from a mix.
    spread = float(np.var(np.diff(track, 2))) + 1e-10

    def levels(log_qr: np.ndarray) -> tuple[float, float]:
        # Floors keep a noise-free (synthetic) track solvable: 1e-4° measurement noise.
        q, r = np.exp(np.clip(log_qr, -60.0, 60.0))
        return max(float(q), 1e-12), max(float(r), 1e-8)

    def cost(log_qr: np.ndarray) -> float:
        return -_kalman(track, *levels(log_qr), smooth=False)[1]

    start = np.log([spread / 3.0, spread / 12.0])
    options = {"xatol": 1e-3, "fatol": 1e-4}
    q, r = levels(minimize(cost, start, method="Nelder-Mead", options=options).x)
    return q, float(np.sqrt(r))


def denoise_pose(angles_deg: np.ndarray) -> np.ndarray:
    """(T, 3) head angles with the face mesh's frame-to-frame noise taken out.

    Each axis is smoothed (Rauch–Tung–Striebel) under a constant-velocity model whose two
    noise levels, of the head's motion and of the measurement, are fitted to that clip's
    track by maximum likelihood (`pose_noise`): nothing is tuned to a frame rate or a kind of
    motion, a still head is held still and a lively one is followed. NaN frames are filled
    by interpolation first.
    """
    angles = _filled(angles_deg)
    if len(angles) < 5 or not np.isfinite(angles).all():
        return angles
    out = np.empty_like(angles)
    for axis in range(angles.shape[1]):
        q, noise_deg = pose_noise(angles[:, axis])
        out[:, axis] = _kalman(angles[:, axis], q, noise_deg**2, smooth=True)[0]
    return out


def pose_delta_deg(angles_deg: np.ndarray) -> np.ndarray:
    """(T−1,) angle in degrees of the head rotation between adjacent frames.

    angles_deg: (T, 3) yaw, pitch, roll. The angle of R[t+1]·R[t]ᵀ, the rotation that takes
    one frame's head pose to the next one's.
    """
    angles = np.asarray(angles_deg, np.float64)
    rotations = np.stack([rotation_matrix(*row) for row in angles])
    relative = np.einsum("tij,tkj->tik", rotations[1:], rotations[:-1])
    cosine = (np.trace(relative, axis1=1, axis2=2) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def delta_p(angles_deg: np.ndarray, *, denoise: bool = False) -> float:
    """ΔP as VASA-1 defines it: the mean head-pose angle change between adjacent frames, in
    degrees per frame (VASA-1: 0.30 for its videos, 0.41–0.51 for real ones, 25 fps).

    angles_deg: (T, 3) yaw, pitch, roll. denoise: measure on `denoise_pose` trajectories:
    the face mesh's frame-to-frame noise (about 0.2-0.4° per axis on rendered clips) adds to
    every difference, so a tracked video's raw ΔP reads high (0.6 for 0.37 planted, 0.39 for
    a still head); denoised it reads within a few percent of the planted value.
    """
    angles = denoise_pose(angles_deg) if denoise else _filled(angles_deg)
    if len(angles) < 2:
        return float("nan")
    return float(np.mean(pose_delta_deg(angles)))


@dataclass
class SyncResult:
    """Audio–lip sync of one video.

    offset_frames: the lag at which mouth opening best follows the speech envelope; > 0: the
        mouth moves that many frames after the sound (video late), < 0: before it.
    offset_ms: the same in milliseconds.
    correlation: Pearson correlation of mouth opening and speech envelope at that lag.
    correlation_at_zero: the same without a lag.
    onset_correlation: correlation of mouth-opening rises with speech onsets at that lag.
    lags: (2K+1,) lags searched; curve: (2K+1,) correlation at each.
    """

    offset_frames: int
    offset_ms: float
    correlation: float
    correlation_at_zero: float
    onset_correlation: float
    lags: np.ndarray
    curve: np.ndarray


def _correlation_at(mouth: np.ndarray, audio: np.ndarray, lag: int) -> float:
    """Pearson correlation of mouth[t + lag] with audio[t] over the frames both cover."""
    if lag >= 0:
        a, b = mouth[lag:], audio[: len(audio) - lag]
    else:
        a, b = mouth[: len(mouth) + lag], audio[-lag:]
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    if n < 3 or a.std() < 1e-12 or b.std() < 1e-12:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def lip_sync(
    mouth_open: np.ndarray, speech: SpeechSignals, *, max_offset_s: float = MAX_SYNC_OFFSET_S
) -> SyncResult:
    """Find the lag that best aligns mouth opening (T,) with the speech envelope.

    Lags up to `max_offset_s` either way are searched; the one with the highest correlation
    wins. Mouth opening and envelope are compared over the frames both cover.
    """
    mouth = _filled(mouth_open)
    audio = np.asarray(speech.envelope, np.float64)
    n = min(len(mouth), len(audio))
    mouth, audio = mouth[:n], audio[:n]
    k = max(1, min(int(round(max_offset_s * speech.fps)), n // 3))
    lags = np.arange(-k, k + 1)
    curve = np.array([_correlation_at(mouth, audio, int(lag)) for lag in lags])
    if not np.isfinite(curve).any():
        nan = float("nan")
        return SyncResult(0, nan, nan, nan, nan, lags, curve)
    best = int(lags[np.nanargmax(curve)])
    rises = np.maximum(np.diff(mouth, prepend=mouth[:1]), 0.0)
    return SyncResult(
        offset_frames=best,
        offset_ms=1000.0 * best / speech.fps,
        correlation=float(np.nanmax(curve)),
        correlation_at_zero=float(curve[k]),
        onset_correlation=_correlation_at(rises, speech.onsets[:n], best),
        lags=lags,
        curve=curve,
    )


def silent_frames(speech: SpeechSignals, margin_s: float = SILENCE_MARGIN_S) -> np.ndarray:
    """(T,) bool: no speech within `margin_s` of the frame."""
    reach = int(round(margin_s * speech.fps))
    active = speech.active.astype(np.float64)
    near = np.convolve(active, np.ones(2 * reach + 1), mode="same") > 0
    return ~near


def silent_mouth_closed(
    mouth_open: np.ndarray, speech: SpeechSignals, *, offset_frames: int = 0
) -> float:
    """Share of silent frames (see `silent_frames`) in which the mouth is closed
    (< MOUTH_CLOSED_FW face widths), with the mouth taken `offset_frames` later; NaN when the
    audio has no silent frame."""
    silent = silent_frames(speech)
    mouth = np.asarray(mouth_open, np.float64)
    n = min(len(mouth), len(silent))
    index = np.nonzero(silent[:n])[0] + offset_frames
    index = index[(index >= 0) & (index < n)]
    index = index[np.isfinite(mouth[index])]
    if len(index) == 0:
        return float("nan")
    return float(np.mean(mouth[index] < MOUTH_CLOSED_FW))


def blink_events(eye_open: np.ndarray) -> list[tuple[int, int]]:
    """Blinks as (first frame, last frame) with the eye shut, from (T,) eye opening.

    The open level is the 90th percentile of the clip's eye opening (robust to squints and
    blinks); a blink starts when the opening drops below BLINK_CLOSED of it and ends when it
    is back above BLINK_REOPENED of it (hysteresis: one blink is never counted twice).
    """
    opening = _filled(eye_open)
    if not np.isfinite(opening).any():
        return []
    level = np.nanpercentile(opening, 90)
    if not level > 0:
        return []
    ratio = opening / level
    events: list[tuple[int, int]] = []
    start = None
    for i, value in enumerate(ratio):
        if start is None and value < BLINK_CLOSED:
            start = i
        elif start is not None and value > BLINK_REOPENED:
            events.append((start, i - 1))
            start = None
    if start is not None:
        events.append((start, len(ratio) - 1))
    return events


def blink_rate_per_min(eye_open: np.ndarray, fps: float) -> float:
    """Blinks per minute over the whole clip."""
    duration_min = len(eye_open) / fps / 60.0
    return len(blink_events(eye_open)) / duration_min if duration_min > 0 else float("nan")


def jitter_pct(landmarks: np.ndarray, face_width_px: np.ndarray, fps: float) -> float:
    """High-frequency landmark motion: RMS, over frames and the skull-rigid face points, of
    their image positions minus a smooth trajectory (Savitzky–Golay over POSE_SMOOTHING_S),
    in percent of the face width. Expressions do not count (those points do not move with
    them); a steady video reads about the face mesh's own noise."""
    points = np.asarray(landmarks, np.float64)[:, STABLE_VERTICES, :2]
    width = _filled(face_width_px)
    points = points / width[:, None, None]
    ok = np.isfinite(points).all(axis=(1, 2))
    points = points[ok]
    window = _window(fps, POSE_SMOOTHING_S)
    if len(points) < window:
        return float("nan")
    smooth = savgol_filter(points, window, 2, axis=0)
    return float(100.0 * np.sqrt(np.mean(np.sum((points - smooth) ** 2, axis=2))))


def pose_ranges_deg(angles_deg: np.ndarray) -> dict[str, float]:
    """Spread of each head angle: the 5th to 95th percentile range, in degrees."""
    angles = _filled(angles_deg)
    spans = np.percentile(angles, 95, axis=0) - np.percentile(angles, 5, axis=0)
    names = ("yaw", "pitch", "roll")
    return {f"{name}_range_deg": float(v) for name, v in zip(names, spans, strict=True)}


def gaze_error_deg(gaze_deg: np.ndarray, requested_deg: tuple[float, float]) -> dict[str, float]:
    """Control error of gaze: mean angle between each frame's gaze and the requested one
    (VASA-1's ε_g), and the angle between the clip's median gaze and the requested one."""
    gaze = _filled(gaze_deg)
    want = gaze_direction(*requested_deg)
    seen = gaze_direction(gaze[:, 0], gaze[:, 1])
    per_frame = np.degrees(np.arccos(np.clip(seen @ want, -1.0, 1.0)))
    median = gaze_direction(*np.median(gaze, axis=0))
    return {
        "gaze_error_deg": float(np.mean(per_frame)),
        "gaze_median_error_deg": float(np.degrees(np.arccos(np.clip(median @ want, -1, 1)))),
    }


def head_distance_error(face: FaceSignals, requested: float) -> dict[str, float]:
    """Control error of head distance: |median measured − requested| in framing units."""
    measured = float(np.median(_filled(face.head_distance())))
    return {"head_distance": measured, "head_distance_error": abs(measured - requested)}


@dataclass
class VideoMetrics:
    """All per-video metrics (NaN where the input does not allow one, e.g. no audio)."""

    name: str
    frames: int
    duration_s: float
    face_found_pct: float
    sync_offset_frames: float
    sync_offset_ms: float
    sync_correlation: float
    sync_correlation_at_zero: float
    onset_correlation: float
    silent_mouth_closed_pct: float
    mouth_open_mean_fw: float
    delta_p_deg: float
    delta_p_raw_deg: float
    yaw_range_deg: float
    pitch_range_deg: float
    roll_range_deg: float
    blinks_per_min: float
    jitter_pct: float
    identity_drift_pct: float
    identity_drift_max_pct: float
    gaze_yaw_deg: float
    gaze_pitch_deg: float
    head_distance: float
    gaze_error_deg: float = float("nan")
    gaze_median_error_deg: float = float("nan")
    head_distance_error: float = float("nan")
    ref_mouth_correlation: float = float("nan")
    ref_mouth_correlation_best: float = float("nan")
    ref_delta_p_ratio: float = float("nan")
    ref_pose_std_diff_deg: float = float("nan")
    ref_blink_rate_diff: float = float("nan")

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def video_metrics(
    face: FaceSignals,
    speech: SpeechSignals | None = None,
    *,
    gaze_deg: tuple[float, float] | None = None,
    head_distance: float | None = None,
) -> tuple[VideoMetrics, SyncResult | None]:
    """Every metric of one video; the sync result too (for plots), None without audio.

    gaze_deg, head_distance: the controls the video was made with, for control errors.
    """
    nan = float("nan")
    sync = lip_sync(face.mouth_open, speech) if speech is not None else None
    closed = (
        silent_mouth_closed(face.mouth_open, speech, offset_frames=sync.offset_frames)
        if speech is not None and sync is not None
        else nan
    )
    drift = face.identity_drift[np.isfinite(face.identity_drift)]
    ranges = pose_ranges_deg(face.pose[:, :3])
    gaze = np.nanmedian(face.gaze, axis=0)
    metrics = VideoMetrics(
        name=face.name,
        frames=len(face),
        duration_s=face.duration_s,
        face_found_pct=100.0 * float(np.mean(face.found)),
        sync_offset_frames=float(sync.offset_frames) if sync else nan,
        sync_offset_ms=sync.offset_ms if sync else nan,
        sync_correlation=sync.correlation if sync else nan,
        sync_correlation_at_zero=sync.correlation_at_zero if sync else nan,
        onset_correlation=sync.onset_correlation if sync else nan,
        silent_mouth_closed_pct=100.0 * closed,
        mouth_open_mean_fw=float(np.nanmean(face.mouth_open)),
        delta_p_deg=delta_p(face.pose[:, :3], denoise=True),
        delta_p_raw_deg=delta_p(face.pose[:, :3]),
        yaw_range_deg=ranges["yaw_range_deg"],
        pitch_range_deg=ranges["pitch_range_deg"],
        roll_range_deg=ranges["roll_range_deg"],
        blinks_per_min=blink_rate_per_min(face.eye_open, face.fps),
        jitter_pct=jitter_pct(face.landmarks, face.face_width_px, face.fps),
        identity_drift_pct=100.0 * float(np.mean(drift)) if len(drift) else nan,
        identity_drift_max_pct=100.0 * float(np.max(drift)) if len(drift) else nan,
        gaze_yaw_deg=float(gaze[0]),
        gaze_pitch_deg=float(gaze[1]),
        head_distance=float(np.nanmedian(face.head_distance())),
    )
    if gaze_deg is not None:
        errors = gaze_error_deg(face.gaze, gaze_deg)
        metrics.gaze_error_deg = errors["gaze_error_deg"]
        metrics.gaze_median_error_deg = errors["gaze_median_error_deg"]
    if head_distance is not None:
        metrics.head_distance_error = head_distance_error(face, head_distance)[
            "head_distance_error"
        ]
    return metrics, sync


def resample(values: np.ndarray, fps: float, to_fps: float, n: int) -> np.ndarray:
    """(T, …) per-frame values at `fps` → (n, …) at `to_fps`, by linear interpolation."""
    values = _filled(values)
    source = np.arange(len(values)) / fps
    target = np.arange(n) / to_fps
    flat = values.reshape(len(values), -1)
    out = np.stack([np.interp(target, source, column) for column in flat.T], axis=1)
    return out.reshape((n, *values.shape[1:]))


def compare_to_reference(face: FaceSignals, reference: FaceSignals) -> dict[str, float]:
    """How a generated video's face follows a reference video's (same audio).

    Returns ref_mouth_correlation (mouth-opening trajectories at lag 0), ..._best (best within
    ±MAX_SYNC_OFFSET_S), ref_delta_p_ratio (head rotation speed, generated / reference),
    ref_pose_std_diff_deg (mean over yaw, pitch, roll of the std difference, generated −
    reference) and ref_blink_rate_diff (blinks per minute, generated − reference). The
    reference is resampled to the generated video's frame times.
    """
    n = len(face)
    ref_n = min(n, int(np.floor(reference.duration_s * face.fps)))
    mouth = _filled(face.mouth_open)[:ref_n]
    ref_mouth = resample(reference.mouth_open, reference.fps, face.fps, ref_n)
    k = max(1, min(int(round(MAX_SYNC_OFFSET_S * face.fps)), ref_n // 3))
    curve = [_correlation_at(mouth, ref_mouth, lag) for lag in range(-k, k + 1)]
    angles = _filled(face.pose[:, :3])
    ref_angles = _filled(reference.pose[:, :3])
    return {
        "ref_mouth_correlation": _correlation_at(mouth, ref_mouth, 0),
        "ref_mouth_correlation_best": float(np.nanmax(curve)) if np.isfinite(curve).any() else 0,
        # Per second, not per frame: the two videos may differ in frame rate.
        "ref_delta_p_ratio": (delta_p(angles, denoise=True) * face.fps)
        / (delta_p(ref_angles, denoise=True) * reference.fps),
        "ref_pose_std_diff_deg": float(np.mean(angles.std(0) - ref_angles.std(0))),
        "ref_blink_rate_diff": blink_rate_per_min(face.eye_open, face.fps)
        - blink_rate_per_min(reference.eye_open, reference.fps),
    }
