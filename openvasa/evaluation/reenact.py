"""Self-reenactment: `openvasa eval reenact VIDEO… [--from-frame K | --from-open]`.

A real talking video is its own ground truth. Every frame is tracked and encoded into motion
latents by the latent space's encoder of one of its frames (frame K, or its most open-mouthed
frame); the renderer animates frame K with that motion (frame K's own latents plus each
frame's change from frame K, so that the single-image detector's and the video tracker's
different readings of one image do not pass for motion; `--absolute-motion` drives with the
encoded latents as they are); the rendered frames are put back into
the video's own framing, tracked again, and compared with the real frames after each rendered
face is aligned onto the real one by a similarity transform on the skull's face-mesh points.
What it cannot reproduce, no motion model can: it measures the renderer and the latent space.

Per clip it measures face and mouth PSNR / SSIM (on the face outline and a box around the
lips of the real frame), the correlation of the mouth opening with the real video's, the
head-pose error (yaw, pitch, roll of the tracked rendered frames against the tracked real
ones, both read by frame K's encoder), blink agreement (F1 of blink events), and how far
apart the rendered lips are where the real ones are shut (closed_gap_pct: inner-lip gap
beyond the real one, in % of the face width, over the frames with a real gap under
`MOUTH_CLOSED_FW`). Frame K held still and compared the same way is the
baseline row, so that the gain of animating is visible.

Framing: frame K is prepared through the pipeline's public path
(`Generator.prepare_portrait`) in its own (native) framing at the video's own size, so that
the rendered frames are pixel for pixel where the real ones are; they pass through the
framing's crop only when a render is made larger (`RENDER_OVERSAMPLE`).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from openvasa.errors import NoFaceError, OpenvasaError
from openvasa.evaluation.metrics import MOUTH_CLOSED_FW, blink_events
from openvasa.evaluation.signals import _LIPS_LOWER, _LIPS_UPPER, _tracked_landmarks, video_audio
from openvasa.face.framing import face_similarity, map_points
from openvasa.io.frames import temporary_sibling
from openvasa.latent import topology as topo
from openvasa.latent.face_latent import STABLE_VERTICES, MotionEncoder
from openvasa.latent.geometry import similarity_align
from openvasa.latent.motion import MotionSequence

PathLike = str | os.PathLike[str]
ProgressFactory = Callable[[str], Callable[[int, int], None]]

# Longest clip reenacted: its real and rendered frames are held in memory (1 min at 25 fps).
MAX_FRAMES = 1500
# The frame is rendered this many times the video's size (in its own, native framing), then
# scaled back into the video's pixels.
RENDER_OVERSAMPLE = 1.0
# The mouth region: the outer lips' bounding box widened by this many face widths each way.
MOUTH_MARGIN_FW = 0.08
# Pixels kept around a region for SSIM's 11×11 Gaussian window (σ 1.5).
SSIM_MARGIN_PX = 6
# A real blink counts as reproduced when a rendered blink overlaps it within this many frames.
BLINK_TOLERANCE_FRAMES = 2

MEASURES = (
    "face_psnr",
    "face_ssim",
    "mouth_psnr",
    "mouth_ssim",
    "mouth_corr",
    "yaw_err_deg",
    "pitch_err_deg",
    "roll_err_deg",
    "blink_f1",
    "eye_corr",
    "closed_gap_pct",
)


@dataclass
class ClipReenactment:
    """One clip's figures: `rendered` and `still` (frame K held) map MEASURES to values.

    frames: frames in the clip; compared: frames where both faces were found; from_frame: K;
    retrack_lost: rendered frames whose face the tracker lost (aligned by the render's own
    mesh instead); blinks_real / blinks_rendered: blink events counted in each.
    """

    name: str
    video: str
    frames: int
    from_frame: int
    compared: int
    rendered: dict[str, float]
    still: dict[str, float]
    retrack_lost: int = 0
    blinks_real: int = 0
    blinks_rendered: int = 0
    side_by_side: str | None = None


@dataclass
class ReenactReport:
    clips: list[ClipReenactment]
    mode: str  # "from frame K" or "from the most open-mouthed frame"
    warnings: list[str] = field(default_factory=list)
    credit: str | None = None  # the source videos' attribution

    def mean(self, which: str) -> dict[str, float]:
        """Mean of each measure over the clips (NaN-aware: blink F1 of clips with blinks)."""
        out = {}
        for key in MEASURES:
            values = np.array([getattr(c, which)[key] for c in self.clips], np.float64)
            out[key] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
        return out

    def gain(self) -> dict[str, float]:
        """Rendered minus still, per measure (pose errors: negative is better)."""
        rendered, still = self.mean("rendered"), self.mean("still")
        return {key: rendered[key] - still[key] for key in MEASURES}

    def table(self) -> str:
        header = ("clip", "K", "faceP", "faceS", "mouthP", "mouthS", "m.corr", "yaw°", "pitch°")
        header += ("roll°", "blinkF1", "eyecorr", "closed+%", "still faceP", "still mouthP")
        rows = [header]

        def cells(values: dict[str, float]) -> tuple[str, ...]:
            formats = ("{:.2f}", "{:.3f}", "{:.2f}", "{:.3f}", "{:.3f}", "{:.2f}", "{:.2f}")
            formats += ("{:.2f}", "{:.2f}", "{:.3f}", "{:+.2f}")
            return tuple(
                "—" if not np.isfinite(values[k]) else f.format(values[k])
                for k, f in zip(MEASURES, formats, strict=True)
            )

        def still(values: dict[str, float]) -> tuple[str, str]:
            return tuple(
                "—" if not np.isfinite(values[k]) else f"{values[k]:.2f}"
                for k in ("face_psnr", "mouth_psnr")
            )

        for clip in self.clips:
            rows.append(
                (clip.name, str(clip.from_frame), *cells(clip.rendered), *still(clip.still))
            )
        mean_still = self.mean("still")
        rows.append(("mean rendered", "", *cells(self.mean("rendered")), *still(mean_still)))
        rows.append(("mean still K", "", *cells(mean_still), "", ""))
        rows.append(("gain", "", *cells(self.gain()), "", ""))
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = [
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in rows
        ]
        lines.insert(1, "-" * len(lines[0]))
        lines.insert(len(lines) - 3, "-" * len(lines[0]))
        title = f"self-reenactment {self.mode}: {len(self.clips)} clip(s)"
        return "\n".join([title, *lines])

    def as_json(self) -> dict:
        return {
            "mode": self.mode,
            "measures": list(MEASURES),
            "clips": [vars(c) for c in self.clips],
            "mean": {"rendered": self.mean("rendered"), "still": self.mean("still")},
            "gain": self.gain(),
            "warnings": self.warnings,
            "credit": self.credit,
        }


# --- geometry ---------------------------------------------------------------------------------
def _similarity_2d(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(2, 3) least-squares similarity taking (N, 2) image points `source` onto `target`."""
    pad = np.zeros((len(source), 1))
    scale, rotation, translation = similarity_align(
        np.hstack([source, pad]), np.hstack([target, pad])
    )
    return np.hstack([scale * rotation[:2, :2], translation[:2, None]])


def _align(image: np.ndarray, landmarks: np.ndarray, onto: np.ndarray) -> np.ndarray:
    """`image` warped so that its face's skull points land on those of `onto` (landmarks)."""
    ids = STABLE_VERTICES
    matrix = _similarity_2d(landmarks[ids, :2], onto[ids, :2])
    height, width = image.shape[:2]
    return cv2.warpAffine(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def _face_mask(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: inside the face outline (MediaPipe's face oval)."""
    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.round(landmarks[list(topo.FACE_OVAL), :2] * 4).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1, shift=2)
    return mask > 0


def _mouth_box(landmarks: np.ndarray, face_width_px: float, shape: tuple[int, int]) -> tuple:
    """(x0, y0, x1, y1) of the mouth region in pixels, clipped to the frame."""
    lips = landmarks[list(topo.LIPS_OUTER_UPPER + topo.LIPS_OUTER_LOWER), :2]
    margin = MOUTH_MARGIN_FW * face_width_px
    x0, y0 = np.floor(lips.min(0) - margin).astype(int)
    x1, y1 = np.ceil(lips.max(0) + margin).astype(int)
    height, width = shape
    return max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)


def _psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    diff = a[mask].astype(np.float64) - b[mask].astype(np.float64)
    mse = float(np.mean(diff**2)) if diff.size else math.nan
    return 10.0 * math.log10(255.0**2 / max(mse, 1e-10))


def _ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean SSIM over `mask`: Wang et al.'s index with an 11×11 Gaussian window (σ 1.5) per
    RGB channel, channels averaged (as scikit-image's `structural_similarity` with
    gaussian_weights=True, use_sample_covariance=False; OpenCV's filters make it ~10× faster)."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return math.nan
    height, width = mask.shape
    y0, y1 = max(ys.min() - SSIM_MARGIN_PX, 0), min(ys.max() + SSIM_MARGIN_PX + 1, height)
    x0, x1 = max(xs.min() - SSIM_MARGIN_PX, 0), min(xs.max() + SSIM_MARGIN_PX + 1, width)
    x = a[y0:y1, x0:x1].astype(np.float64)
    y = b[y0:y1, x0:x1].astype(np.float64)

    def blur(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    local = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(local.mean(2)[mask[y0:y1, x0:x1]].mean())


@dataclass
class _Comparison:
    """Per-frame face/mouth PSNR and SSIM of one candidate against the real frames."""

    face_psnr: list[float] = field(default_factory=list)
    face_ssim: list[float] = field(default_factory=list)
    mouth_psnr: list[float] = field(default_factory=list)
    mouth_ssim: list[float] = field(default_factory=list)

    def add(self, real: np.ndarray, candidate: np.ndarray, face: np.ndarray, mouth: tuple):
        self.face_psnr.append(_psnr(real, candidate, face))
        self.face_ssim.append(_ssim(real, candidate, face))
        x0, y0, x1, y1 = mouth
        box = np.zeros(face.shape, bool)
        box[y0:y1, x0:x1] = True
        self.mouth_psnr.append(_psnr(real, candidate, box))
        self.mouth_ssim.append(_ssim(real, candidate, box))

    def summary(self) -> dict[str, float]:
        """Clip figures: PSNR from the clip's mean squared error (frames pooled), SSIM mean."""

        def pooled(values: list[float]) -> float:
            mse = np.mean([10 ** (-v / 10) for v in values]) if values else math.nan
            return float(-10 * np.log10(mse)) if values else math.nan

        return {
            "face_psnr": pooled(self.face_psnr),
            "face_ssim": float(np.mean(self.face_ssim)) if self.face_ssim else math.nan,
            "mouth_psnr": pooled(self.mouth_psnr),
            "mouth_ssim": float(np.mean(self.mouth_ssim)) if self.mouth_ssim else math.nan,
        }


def _blink_agreement(real_eye: np.ndarray, other_eye: np.ndarray | None) -> tuple[float, int, int]:
    """(F1 of blink events, real count, other count); NaN when neither blinks."""
    real = blink_events(real_eye)
    other = [] if other_eye is None else blink_events(other_eye)
    if not real and not other:
        return math.nan, 0, 0
    tol = BLINK_TOLERANCE_FRAMES

    def overlaps(a, b) -> bool:
        return a[0] - tol <= b[1] and b[0] - tol <= a[1]

    hits_real = sum(any(overlaps(r, o) for o in other) for r in real)
    hits_other = sum(any(overlaps(o, r) for r in real) for o in other)
    recall = hits_real / len(real) if real else 0.0
    precision = hits_other / len(other) if other else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return float(f1), len(real), len(other)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or np.std(a[keep]) < 1e-12 or np.std(b[keep]) < 1e-12:
        return math.nan
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


# --- the portrait in the video's framing --------------------------------------------------------
def _video_portrait(generator, frame: np.ndarray, oversample: float | None = None):
    """Prepare `frame` as a portrait in its own (native) framing, rendered `oversample`×
    (default RENDER_OVERSAMPLE) the video's size. Returns the Portrait; its
    `latent.framing.crop` maps video pixels to rendered pixels."""
    height, width = frame.shape[:2]
    factor = RENDER_OVERSAMPLE if oversample is None else oversample
    size = (int(round(factor * width)), int(round(factor * height)))
    return generator.prepare_portrait(frame, size=size, framing="native")


def _into_video(rendered: np.ndarray, crop: np.ndarray, still: np.ndarray, cover) -> np.ndarray:
    """A rendered square frame mapped back into the video's pixels; where the square does not
    reach, the still frame shows."""
    height, width = still.shape[:2]
    # Replicated edges: a pixel of the video's border that the square only just covers would
    # otherwise be blended with black.
    back = cv2.warpAffine(
        rendered,
        crop,
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    if cover is None:
        return back
    return np.where(cover[..., None], back, still)


# --- one clip ---------------------------------------------------------------------------------
def _fill_gaps(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """(T, C) values with the rows where `found` is False interpolated from their neighbours."""
    values = values.copy()
    good = np.nonzero(found)[0]
    for column in range(values.shape[1]):
        values[:, column] = np.interp(np.arange(len(values)), good, values[good, column])
    return values


def _even(frame: np.ndarray) -> np.ndarray:
    """The frame cut to even width and height (H.264's 4:2:0 chroma needs them)."""
    height, width = frame.shape[:2]
    return frame[: height - height % 2, : width - width % 2]


def _write_video(
    path: Path, frames: Sequence[np.ndarray], fps: float, audio=None, comment: str = ""
) -> None:
    from openvasa.io.video import VideoWriter

    first = _even(frames[0])
    size = (first.shape[1], first.shape[0])
    metadata = {"comment": comment} if comment else None
    with VideoWriter(path, fps=fps, size=size, audio=audio, crf=18, metadata=metadata) as writer:
        for frame in frames:
            writer.write(np.ascontiguousarray(_even(frame)))


@dataclass
class _Track:
    """A clip's face, tracked frame by frame: found (T,), landmarks (T, 478, 3) in pixels."""

    found: np.ndarray
    landmarks: np.ndarray


def _track(frames: np.ndarray, analyzer, step: Callable[[], None]) -> _Track:
    """Track the face through frames with the evaluation's tracker (two passes averaged).

    The tracker is primed with the first frame: MediaPipe reads a face it has just detected
    differently from one it tracks (on GRID the same image reads up to ~2° more pitch once
    tracked), and that step would pass for a head movement between frames 0 and 1."""
    analyzer.reset_tracking()
    if len(frames):
        _tracked_landmarks(analyzer, frames[0])
    found = np.zeros(len(frames), bool)
    landmarks = np.full((len(frames), topo.N_LANDMARKS, 3), np.nan)
    for t, frame in enumerate(frames):
        points = _tracked_landmarks(analyzer, frame)
        if points is not None:
            found[t], landmarks[t] = True, points
        step()
    return _Track(found, landmarks)


def _openings(canonical: np.ndarray) -> tuple[float, float]:
    """(mouth opening in face widths, eye opening as lid gap over eye width) of one canonical
    (pose taken out) face, measured as `openvasa.evaluation.signals` measures them."""
    mouth = float(np.mean(canonical[_LIPS_LOWER, 1] - canonical[_LIPS_UPPER, 1]))
    eyes = []
    for side, (upper, lower) in topo.EYE_LIDS.items():
        a, b = topo.EYE_CORNERS[side]
        gap = np.mean(canonical[list(lower), 1] - canonical[list(upper), 1])
        eyes.append(gap / max(np.linalg.norm(canonical[a, :2] - canonical[b, :2]), 1e-9))
    return mouth, float(np.mean(eyes))


def _most_open_frame(track: _Track) -> int:
    """The frame with the widest inner-lip gap (pose taken out by a similarity fit)."""
    best, index = -np.inf, -1
    for t in np.nonzero(track.found)[0]:
        scale, rotation, translation = face_similarity(track.landmarks[t])
        canonical = (track.landmarks[t, : topo.N_FACE_VERTICES] - translation) @ rotation
        mouth, _ = _openings(canonical / scale)
        if mouth > best:
            best, index = mouth, int(t)
    return index


def reenact_clip(
    video: PathLike,
    *,
    from_frame: int | None = 0,
    from_open: bool = False,
    absolute: bool = False,
    generator=None,
    side_by_side: PathLike | None = None,
    credit: str | None = None,
    name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ClipReenactment:
    """Reenact one real video from one of its own frames and compare with it.

    from_frame: K, the frame to animate (0-based); from_open: use the clip's most
    open-mouthed frame instead. absolute: drive with each frame's encoded latents as they
    are, rather than frame K's own latents plus each frame's change from frame K (relative,
    the default, as LivePortrait drives). side_by_side: write real | rendered there (MP4,
    with the clip's audio); credit: the source's attribution, written into that MP4 (its
    left half is the real video). Raises OpenvasaError for unreadable videos, videos
    without a face, or a frame K out of range or without a face.
    """
    from openvasa.io.video import probe_media, read_video
    from openvasa.pipeline import Generator
    from openvasa.settings import OutputSettings

    path = Path(video)
    info = probe_media(path)  # one clear line for a missing or unreadable file
    if not info.width or not info.fps > 0:
        raise OpenvasaError(f"{path.name}: has no video stream with a frame rate.")
    if info.n_frames and info.n_frames > MAX_FRAMES:
        raise OpenvasaError(
            f"{path.name} has {info.n_frames} frames: reenact takes at most {MAX_FRAMES} "
            f"({MAX_FRAMES / 25:.0f} s at 25 fps); cut it shorter."
        )
    if not from_open and info.n_frames and not 0 <= int(from_frame or 0) < info.n_frames:
        raise OpenvasaError(
            f"{path.name}: frame {from_frame} is out of range (it has {info.n_frames} frames)."
        )
    frames, fps = read_video(path)
    if len(frames) > MAX_FRAMES:
        raise OpenvasaError(f"{path.name} is longer than {MAX_FRAMES} frames; cut it shorter.")
    n = len(frames)
    total, done = 3 * n, 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    generator = generator or Generator(OutputSettings(watermark=False))
    real = _track(frames, generator.analyzer, step)
    if not real.found.any():
        raise NoFaceError(f"No face found in {path.name} in any of its {n} frames.")
    if from_open:
        k = _most_open_frame(real)
    else:
        k = int(from_frame or 0)
        if not 0 <= k < n:
            raise OpenvasaError(f"{path.name}: frame {k} is out of range (it has {n} frames).")
        if not real.found[k]:
            raise NoFaceError(f"{path.name}: no face found in frame {k}; pick another.")

    # Motion: every real frame's landmarks, encoded by frame K's own latent-space encoder in
    # the portrait's framing. All measures are read in that same encoder's canonical frame.
    portrait = _video_portrait(generator, frames[k])
    latent = portrait.latent
    framing = latent.framing
    encoder = MotionEncoder(latent.identity, latent.eyes, framing, latent.basis)
    found = real.found
    pose, shapes, gaze = np.zeros((n, 6)), np.zeros((n, 52)), np.zeros((n, 2))
    real_open = np.full((n, 2), np.nan)
    for t in np.nonzero(found)[0]:
        points = map_points(framing, real.landmarks[t])
        frame_motion = encoder.encode(points)
        pose[t], shapes[t], gaze[t] = frame_motion.pose, frame_motion.blendshapes, frame_motion.gaze
        placement = encoder.placement(points)
        real_open[t] = _openings(placement.invert(points[: topo.N_FACE_VERTICES]))
    pose, shapes, gaze = _fill_gaps(pose, found), _fill_gaps(shapes, found), _fill_gaps(gaze, found)
    real_pose = pose[:, :3].copy()
    if not absolute:
        # Relative driving: the portrait's own latents (read by the single-image detector)
        # plus each frame's change from frame K (read by the tracker), so that frame K
        # renders as itself whatever the two readings of the same image disagree on.
        pose = latent.pose0 + (pose - pose[k])
        shapes = np.clip(latent.dynamics0 + (shapes - shapes[k]), 0.0, 1.0)
        gaze = latent.gaze0 + (gaze - gaze[k])
    motion = MotionSequence(fps, pose, shapes, gaze)

    height, width = frames.shape[1:3]
    cover = cv2.warpAffine(
        np.ones(latent.image.shape[:2], np.uint8),
        framing.crop,
        (width, height),
        flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
    )
    cover = None if cover.all() else cover > 0
    rendered = np.empty_like(frames)
    for t, frame in enumerate(generator.frames(portrait, motion)):
        rendered[t] = _into_video(frame, framing.crop, frames[k], cover)
        step()
    again = _track(rendered, generator.analyzer, step)

    shape = (height, width)
    ours, still = _Comparison(), _Comparison()
    lost = 0
    pose_real, pose_ours = [], []
    ours_open = np.full((n, 2), np.nan)
    inverse = cv2.invertAffineTransform(framing.crop)
    for t in np.nonzero(found)[0]:
        target = real.landmarks[t]
        face = _face_mask(target, shape)
        mouth = _mouth_box(target, face_similarity(target)[0], shape)
        if again.found[t]:
            seen = again.landmarks[t]
            points = map_points(framing, seen)
            placement = encoder.placement(points)
            pose_real.append(real_pose[t])
            pose_ours.append((placement.yaw_deg, placement.pitch_deg, placement.roll_deg))
            ours_open[t] = _openings(placement.invert(points[: topo.N_FACE_VERTICES]))
        else:
            # The tracker lost the rendered face: align by the mesh the renderer drew.
            lost += 1
            drawn, _ = portrait.renderer.face_points(motion.frame(t))
            seen = np.zeros((topo.N_LANDMARKS, 3))
            seen[: len(drawn), :2] = drawn[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        ours.add(frames[t], _align(rendered[t], seen, target), face, mouth)
        still.add(frames[t], _align(frames[k], real.landmarks[k], target), face, mouth)

    f1, blinks_real, blinks_ours = _blink_agreement(real_open[:, 1], ours_open[:, 1])
    f1_still, _, _ = _blink_agreement(real_open[:, 1], None)
    # Where the real lips are shut, how far apart the rendered ones are beyond the real gap.
    closed = real_open[:, 0] < MOUTH_CLOSED_FW
    seen = closed & np.isfinite(ours_open[:, 0])

    def closed_gap(mouth: np.ndarray) -> float:
        if not seen.any():
            return math.nan
        return float(100 * np.mean(mouth[seen] - real_open[seen, 0]))

    ours_row = {
        **ours.summary(),
        "mouth_corr": _correlation(real_open[:, 0], ours_open[:, 0]),
        **_pose_errors(pose_ours, pose_real),
        "blink_f1": f1,
        "eye_corr": _correlation(real_open[:, 1], ours_open[:, 1]),
        "closed_gap_pct": closed_gap(ours_open[:, 0]),
    }
    still_row = {
        **still.summary(),
        "mouth_corr": math.nan,  # a still mouth does not move
        **_pose_errors([real_pose[k]] * len(pose_real), pose_real),
        "blink_f1": f1_still,
        "eye_corr": math.nan,
        "closed_gap_pct": closed_gap(np.full(n, real_open[k, 0])),
    }
    written = None
    if side_by_side is not None:
        target_path = Path(side_by_side)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        pairs = [np.concatenate([a, b], axis=1) for a, b in zip(frames, rendered, strict=True)]
        comment = f"openvasa eval reenact of {path.name}: real | rendered from frame {k}."
        if credit:
            comment += f" Source: {credit}"
        _write_video(target_path, pairs, fps, audio=video_audio(path), comment=comment)
        written = str(target_path)
    return ClipReenactment(
        name=name or path.stem,
        video=str(path),
        frames=n,
        from_frame=k,
        compared=len(ours.face_psnr),
        rendered=ours_row,
        still=still_row,
        retrack_lost=lost,
        blinks_real=blinks_real,
        blinks_rendered=blinks_ours,
        side_by_side=written,
    )


def _pose_errors(rendered: list, real: list) -> dict[str, float]:
    """Mean absolute yaw, pitch and roll difference in degrees."""
    axes = ("yaw", "pitch", "roll")
    if not rendered:
        return {f"{axis}_err_deg": math.nan for axis in axes}
    err = np.abs(np.array(rendered, np.float64) - np.array(real, np.float64)).mean(0)
    return {f"{axis}_err_deg": float(e) for axis, e in zip(axes, err, strict=True)}


# --- many clips -------------------------------------------------------------------------------
def _clip_names(videos: Sequence[Path]) -> list[str]:
    """Clip names: file stems, prefixed with their folder where two stems are the same."""
    stems = [v.stem for v in videos]
    return [f"{v.parent.name}-{v.stem}" if stems.count(v.stem) > 1 else v.stem for v in videos]


def reenact_videos(
    videos: Sequence[PathLike],
    out_dir: PathLike,
    *,
    from_frame: int | None = None,
    from_open: bool = False,
    absolute: bool = False,
    credit: str | None = None,
    progress: ProgressFactory | None = None,
) -> ReenactReport:
    """Reenact every video; write `<clip>_reenact.mp4` (real | rendered) per clip and
    reenact.csv / reenact.json in `out_dir`. Returns the report (`report.table()`)."""
    from openvasa.pipeline import Generator
    from openvasa.settings import OutputSettings

    if not videos:
        raise OpenvasaError("Give the videos to reenact: openvasa eval reenact VIDEO … --out DIR.")
    if from_open and from_frame is not None:
        raise OpenvasaError("Choose one of --from-frame K and --from-open.")
    if from_frame is not None and from_frame < 0:
        raise OpenvasaError(f"--from-frame must be 0 or more, got {from_frame}.")
    paths = [Path(v) for v in videos]
    for path in paths:
        if not path.is_file():
            raise OpenvasaError(f"{path}: no such video file.")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OpenvasaError(f"{out} exists and is not a folder.")
    out.mkdir(parents=True, exist_ok=True)
    generator = Generator(OutputSettings(watermark=False))
    clips = []
    for path, name in zip(paths, _clip_names(paths), strict=True):
        update = progress(f"reenact {name}") if progress is not None else None
        clips.append(
            reenact_clip(
                path,
                from_frame=from_frame or 0,
                from_open=from_open,
                absolute=absolute,
                generator=generator,
                side_by_side=out / f"{name}_reenact.mp4",
                credit=credit,
                name=name,
                progress=update,
            )
        )
    mode = "from the most open-mouthed frame" if from_open else f"from frame {from_frame or 0}"
    mode += ", absolute motion" if absolute else ", relative motion"
    report = ReenactReport(clips, mode, credit=credit)
    _write_tables(report, out)
    return report


def _write_tables(report: ReenactReport, out: Path) -> None:
    rows = []
    for clip in report.clips:
        for which in ("rendered", "still"):
            values = getattr(clip, which)
            rows.append(
                {
                    "clip": clip.name,
                    "row": which,
                    "from_frame": clip.from_frame,
                    "frames": clip.frames,
                    "compared": clip.compared,
                    **{k: f"{values[k]:.4f}" for k in MEASURES},
                }
            )
    for which in ("rendered", "still"):
        rows.append(
            {"clip": "mean", "row": which, **{k: f"{v:.4f}" for k, v in report.mean(which).items()}}
        )
    rows.append(
        {
            "clip": "gain",
            "row": "rendered-still",
            **{k: f"{v:.4f}" for k, v in report.gain().items()},
        }
    )
    target = out / "reenact.csv"
    tmp = temporary_sibling(target)
    with open(tmp, "w", newline="") as handle:
        fields = ["clip", "row", "from_frame", "frames", "compared", *MEASURES]
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, target)
    target = out / "reenact.json"
    tmp = temporary_sibling(target)
    tmp.write_text(json.dumps(_finite(report.as_json()), indent=2))
    os.replace(tmp, target)


def _finite(value):
    """JSON has no NaN: NaN becomes null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
