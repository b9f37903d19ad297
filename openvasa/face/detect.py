"""Find the face in a portrait: MediaPipe's 478 face-mesh landmarks and the person mask.

`FaceAnalyzer.detect` works on images of any size in three steps:

1. *Search.* MediaPipe's face detector (the short-range model, 128×128 input) only finds
   faces wider than about 14% of the picture, so the search runs coarse to fine: the whole
   picture (downscaled to ≤ 1280 px), the picture padded by a quarter on each side
   (close-ups whose chin or hair is cut by the frame), then overlapping tiles of 1/2 and
   1/4 of the picture. It stops once a face is found and no face half as wide as the
   largest could have been missed (at most one level finer).
2. *Refine.* The landmark model sees the face at 192×192, through MediaPipe's own bilinear
   resampling and a face box from its detector; both add jitter. A square crop of twice
   the landmarks' box, scaled exactly (sub-pixel, anti-aliased) so that the face is 256
   px wide, gives the models the same well-sampled view of any face in any picture. The
   crop is run three times, each centred on the last result, and the last two averaged.
   Measured on the astronaut under 30 random scalings (0.8–5×) and shifts: the landmarks
   scatter by 0.46% of the face width with the search pass alone, 0.19% after one refine
   pass, 0.076% as done here; the 512 px astronaut and its 4× upscale agree to 0.77%
   (search alone) and 0.15% (refined).
3. *Report.* Landmarks in the input image's pixels, the face width, the number of faces
   and warnings worth showing the user.

MediaPipe is imported on first use, so that `import openvasa` stays fast, and its native
log lines (TFLite, absl) are kept off the terminal.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from openvasa.errors import NoFaceError
from openvasa.face.image import ImageSource, load_image

N_LANDMARKS = 478  # 468 face-mesh points + 5 per iris (refine_landmarks=True)
IRIS_LANDMARKS = slice(468, 478)  # 468–472 the subject's right iris, 473–477 the left
# Face-mesh points on the face contour level with the ears: the face's full width.
FACE_WIDTH_LANDMARKS = (234, 454)

# Faces narrower than this are upscaled more than 2× for a 512×512 video: warn that
# the result will be soft.
SMALL_FACE_WIDTH_PX = 100.0
# Longest side of the whole-picture search copy. The detector sees 128×128 anyway; this
# keeps the face large enough for the landmark model to place the refine crop.
SEARCH_MAX_SIDE_PX = 1280
# MediaPipe's detector finds faces at least this fraction of the picture's longest side
# wide (measured on the astronaut: 14% found, 11% missed).
DETECTABLE_FACE_FRACTION = 0.14
# Longest side of each search tile after downscaling.
TILE_MAX_SIDE_PX = 640
# Smallest tile side searched, in input pixels: the smallest face found is about 14% of it.
MIN_TILE_SIDE_PX = 192
# Tile levels after the whole picture: halves, then quarters of the longest side.
TILE_LEVELS = (1, 2)
# Refine crop: this many times the landmarks' bounding box, scaled so that the face
# (FACE_WIDTH_LANDMARKS) is this wide. 192–320 px measured alike; 256 is mid-range.
REFINE_CROP_FACTOR = 2.0
REFINE_FACE_WIDTH_PX = 256.0
REFINE_PASSES = 3
REFINE_AVERAGED = 2  # average the last passes: the first one mostly re-centres the crop
# The person mask is computed on a copy this large: the segmentation model's input is
# 256×256, and 256 and 512 px inputs gave masks differing by 0.8% on average.
SEGMENT_MAX_SIDE_PX = 512
# Warn when more landmarks than this fraction lie outside the picture.
OUTSIDE_FRACTION_WARNING = 0.05


@dataclass
class FaceDetection:
    """One face found in a portrait.

    Attributes:
        landmarks: (478, 3) float32 MediaPipe face-mesh landmarks (468 mesh points, then
            the 5 points of each iris) in the input image's pixels. x, y: OpenCV's pixel
            convention, (0, 0) is the centre of the top-left pixel, y down. z: depth
            relative to the face's centre, negative towards the camera, on the same pixel
            scale as x (MediaPipe's normalized z × the width in pixels of the region the
            model saw).
        face_width_px: distance between landmarks 234 and 454 (the face contour level
            with the ears), in pixels of the input image.
        n_faces: number of faces found at least half as wide as the chosen one (smaller
            ones are taken as background faces and not counted).
        warnings: sentences worth showing the user (several faces, a small face, a face
            cut by the frame); empty when all is well.
    """

    landmarks: np.ndarray
    face_width_px: float
    n_faces: int
    warnings: list[str] = field(default_factory=list)

    @property
    def center_xy(self) -> np.ndarray:
        """(2,) float32 centre of the landmarks' bounding box, in pixels."""
        return (self.landmarks[:, :2].min(axis=0) + self.landmarks[:, :2].max(axis=0)) / 2


class FaceAnalyzer:
    """MediaPipe's face mesh and selfie segmentation, created once and reused.

    Creating the MediaPipe graphs takes a few hundred milliseconds, so keep one analyzer
    (or use `default_analyzer()`) rather than one per image. The graphs are created on
    first use. Thread-safe: calls are serialised by a lock. Use as a context manager or
    call `close()` to free the graphs early.
    """

    def __init__(self, *, max_num_faces: int = 5, min_detection_confidence: float = 0.5):
        """
        Args:
            max_num_faces: most faces reported by one MediaPipe pass (tile or picture).
            min_detection_confidence: MediaPipe face detector threshold in [0, 1].
        """
        self.max_num_faces = max_num_faces
        self.min_detection_confidence = min_detection_confidence
        self._lock = threading.RLock()
        self._face_mesh: _QuietGraph | None = None
        self._segmenter: _QuietGraph | None = None
        self._tracker: _QuietGraph | None = None

    # -- public API -----------------------------------------------------------------------

    def detect(self, image: ImageSource, *, name: str = "the portrait") -> FaceDetection:
        """Find the largest face and its 478 landmarks.

        Args:
            image: (H, W, 3) uint8 RGB array, or anything `load_image` accepts (a path,
                bytes, a Pillow image, other arrays), which is loaded first.
            name: how the error message refers to the image, e.g. its file name.

        Returns:
            The largest face (by `face_width_px`), with `n_faces` and warnings set.

        Raises:
            NoFaceError: no face was found.
            ImageError: `image` could not be loaded.
        """
        if isinstance(image, str | os.PathLike) and name == "the portrait":
            name = Path(image).name
        rgb = _as_rgb(image, name=name)
        with self._lock:
            faces = self._search(rgb)
            if not faces:
                raise NoFaceError(
                    f"No face found in {name}: use a photo, painting or drawing with one "
                    "clearly visible face (frontal or up to about 45° turned)."
                )
            largest = max(faces, key=_face_width)
            landmarks = self._refine(rgb, largest)
        return _make_detection(landmarks, n_faces=len(faces), image_shape=rgb.shape)

    def segment(self, image: ImageSource) -> np.ndarray:
        """Person mask: (H, W) float32 in [0, 1], 1 on the person (face, hair, body).

        MediaPipe's general selfie-segmentation model (model_selection=0, 256×256 input) is
        used: on the astronaut it gives a clean hair outline and 3.8% uncertain pixels
        (0.1–0.9), where the landscape model (144×256) leaves blotches in the background
        and holes in the helmet, with 10.7% uncertain pixels.

        Args:
            image: (H, W, 3) uint8 RGB array, or anything `load_image` accepts.
        """
        rgb = _as_rgb(image, name="the image")
        height, width = rgb.shape[:2]
        small, _ = _downscale(rgb, SEGMENT_MAX_SIDE_PX)
        with self._lock:
            if self._segmenter is None:
                self._segmenter = _QuietGraph(
                    lambda solutions: solutions.selfie_segmentation.SelfieSegmentation(
                        model_selection=0
                    )
                )
            mask = self._segmenter.process(small).segmentation_mask
        mask = np.array(mask, dtype=np.float32)  # a copy: MediaPipe's buffer is read-only
        if mask.shape != (height, width):
            mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.clip(mask, 0.0, 1.0, out=mask)

    def detect_video_frame(self, frame: np.ndarray) -> FaceDetection | None:
        """Fast path for consecutive frames of one video: MediaPipe's tracking mode.

        After the first frame the landmark model follows the face from the previous
        frame's landmarks instead of running the detector: about 2 ms a 720p frame here. No
        search over tiles and no refine crop: use `detect` for single portraits. Call
        `reset_tracking()` before a new video.

        Args:
            frame: (H, W, 3) uint8 RGB frame.

        Returns:
            The one tracked face, or None when the frame has no face.
        """
        rgb = _as_rgb(frame, name="the video frame")
        with self._lock:
            if self._tracker is None:
                self._tracker = _QuietGraph(
                    lambda solutions: solutions.face_mesh.FaceMesh(
                        static_image_mode=False,
                        max_num_faces=1,
                        refine_landmarks=True,
                        min_detection_confidence=self.min_detection_confidence,
                        min_tracking_confidence=0.5,
                    )
                )
            faces = _run_face_mesh(self._tracker, rgb)
        if not faces:
            return None
        return _make_detection(faces[0], n_faces=1, image_shape=rgb.shape)

    def detect_near(self, frame: np.ndarray, landmarks: np.ndarray) -> FaceDetection | None:
        """The face in `frame` near the given (478, 3) landmarks (the previous frame's), by the
        refine passes of `detect` without its search: slower than `detect_video_frame`
        (three landmark passes) but as precise as a single portrait. None without a face.
        """
        rgb = _as_rgb(frame, name="the video frame")
        with self._lock:
            passes = self._refine_passes(rgb, np.asarray(landmarks, np.float64))
        if len(passes) < REFINE_PASSES:
            return None
        return _make_detection(
            np.mean(passes[-REFINE_AVERAGED:], axis=0), n_faces=1, image_shape=rgb.shape
        )

    def reset_tracking(self) -> None:
        """Forget the face tracked by `detect_video_frame` (call before a new video)."""
        with self._lock:
            if self._tracker is not None:
                with _quiet_native_stderr():
                    self._tracker.solution.reset()

    def close(self) -> None:
        """Free the MediaPipe graphs; a later call creates them again."""
        with self._lock, _quiet_native_stderr():  # closing may log model-loading lines too
            for graph in (self._face_mesh, self._segmenter, self._tracker):
                if graph is not None:
                    graph.solution.close()
            self._face_mesh = self._segmenter = self._tracker = None

    def __enter__(self) -> FaceAnalyzer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- search and refine ----------------------------------------------------------------

    def _static_face_mesh(self) -> _QuietGraph:
        if self._face_mesh is None:
            self._face_mesh = _QuietGraph(
                lambda solutions: solutions.face_mesh.FaceMesh(
                    static_image_mode=True,
                    max_num_faces=self.max_num_faces,
                    refine_landmarks=True,
                    min_detection_confidence=self.min_detection_confidence,
                )
            )
        return self._face_mesh

    def _faces_in(self, rgb: np.ndarray) -> list[np.ndarray]:
        """All faces MediaPipe finds in `rgb` as-is: (478, 3) landmarks in edge pixels."""
        return _run_face_mesh(self._static_face_mesh(), rgb)

    def _search(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Faces at least half as wide as the largest, largest first, in input edge pixels.

        Coarse to fine; a finer level runs while nothing is found, or (at most one level
        on) while a face half as wide as the largest could have been too small to see.
        """
        height, width = rgb.shape[:2]
        longest = max(height, width)
        small, scale = _downscale(rgb, SEARCH_MAX_SIDE_PX)
        faces = [_rescale(face, scale) for face in self._faces_in(small)]
        if not faces:
            # Close-ups: the detector needs some margin around a face cut by the frame.
            margin = max(small.shape[:2]) // 4
            padded = cv2.copyMakeBorder(small, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
            faces = [_shift(face, -margin, -margin) for face in self._faces_in(padded)]
            faces = [_rescale(face, scale) for face in faces]
        first_level_with_faces = 0 if faces else None
        smallest_visible_px = DETECTABLE_FACE_FRACTION * longest
        for level in TILE_LEVELS:
            tile_px = longest / 2**level
            if tile_px < MIN_TILE_SIDE_PX:
                break
            if first_level_with_faces is not None and (
                level > first_level_with_faces + 1
                or 0.5 * max(map(_face_width, faces)) >= smallest_visible_px
            ):
                break
            tile_faces = self._faces_in_tiles(rgb, small, scale, tile_px)
            faces = _deduplicate(faces + tile_faces)
            if faces and first_level_with_faces is None:
                first_level_with_faces = level
            smallest_visible_px = DETECTABLE_FACE_FRACTION * tile_px
        faces = _deduplicate(faces)
        return [face for face in faces if _face_width(face) >= 0.5 * _face_width(faces[0])]

    def _faces_in_tiles(
        self, rgb: np.ndarray, small: np.ndarray, small_scale: float, tile_px: float
    ) -> list[np.ndarray]:
        """Faces in square tiles of `tile_px` input pixels overlapping by half, each tile
        downscaled to ≤ TILE_MAX_SIDE_PX (`small` is the picture at `small_scale`)."""
        height, width = rgb.shape[:2]
        work_scale = min(1.0, TILE_MAX_SIDE_PX / tile_px)
        work = small if work_scale <= small_scale * 1.001 else _resize(rgb, work_scale)
        work_scale_x, work_scale_y = work.shape[1] / width, work.shape[0] / height
        tile_work_px = int(round(tile_px * work_scale_x))
        found: list[np.ndarray] = []
        for top in _tile_starts(work.shape[0], tile_work_px):
            for left in _tile_starts(work.shape[1], tile_work_px):
                tile = work[top : top + tile_work_px, left : left + tile_work_px]
                for face in self._faces_in(np.ascontiguousarray(tile)):
                    face = _shift(face, left, top)
                    face[:, 0] /= work_scale_x
                    face[:, 1] /= work_scale_y
                    face[:, 2] /= work_scale_x
                    found.append(face)
        return found

    def _refine(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Re-run the landmark model on crops around the face, each centred on the last
        result; returns the mean of the last `REFINE_AVERAGED` passes."""
        passes = self._refine_passes(rgb, landmarks)
        if not passes:  # the crop lost the face (rare, odd drawings): keep the search result
            return landmarks
        return np.mean(passes[-REFINE_AVERAGED:], axis=0)

    def _refine_passes(self, rgb: np.ndarray, landmarks: np.ndarray) -> list[np.ndarray]:
        """Up to `REFINE_PASSES` landmark passes, each on a crop centred on the last result;
        fewer when a crop loses the face."""
        passes: list[np.ndarray] = []
        current = landmarks
        for _ in range(REFINE_PASSES):
            refined = self._refine_once(rgb, current)
            if refined is None:
                break
            passes.append(refined)
            current = refined
        return passes

    def _refine_once(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
        """One pass on a square crop around `landmarks`; the face nearest to them, or None.

        The crop is an exact (sub-pixel) scaling of the landmarks' box: rounding it to
        whole pixels made the refined landmarks measurably less stable.
        """
        lower, upper = landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)
        center = (lower + upper) / 2
        side = float(max(upper - lower)) * REFINE_CROP_FACTOR
        out_px = max(64, int(round(side * REFINE_FACE_WIDTH_PX / max(_face_width(landmarks), 1))))
        crop, crop_to_input = _crop_square(rgb, center, side, out_px)
        faces = self._faces_in(crop)
        if not faces:
            return None
        scale, offset = crop_to_input
        faces = [_shift(face * scale, offset[0], offset[1]) for face in faces]
        return min(faces, key=lambda face: np.abs(face[:, :2] - landmarks[:, :2]).mean())


_default_analyzer: FaceAnalyzer | None = None
_default_analyzer_lock = threading.Lock()


def default_analyzer() -> FaceAnalyzer:
    """The process-wide shared FaceAnalyzer, created on first call (thread-safe)."""
    global _default_analyzer
    if _default_analyzer is None:
        with _default_analyzer_lock:
            if _default_analyzer is None:
                _default_analyzer = FaceAnalyzer()
    return _default_analyzer


# -- MediaPipe plumbing -------------------------------------------------------------------

# MediaPipe's native code logs a few lines that are noise to a user: TFLite's XNNPACK
# notice and absl warnings when a graph loads its models (on its first run), and one
# warning at the first landmark projection in the process.
_first_face_warning_pending = True


class _QuietGraph:
    """A MediaPipe legacy solution whose creation and first runs keep stderr quiet."""

    def __init__(self, create: Callable[[Any], Any]):
        solutions = _mediapipe_solutions()
        with _quiet_native_stderr():
            self.solution = create(solutions)
        self._first_run = True

    def process(self, rgb: np.ndarray) -> Any:
        """The solution's result for (h, w, 3) uint8 RGB."""
        global _first_face_warning_pending
        with _quiet_native_stderr(self._first_run or _first_face_warning_pending):
            result = self.solution.process(np.ascontiguousarray(rgb))
        self._first_run = False
        if getattr(result, "multi_face_landmarks", None):
            _first_face_warning_pending = False
        return result


def _mediapipe_solutions() -> Any:
    """Import MediaPipe's legacy solutions on first use (importing takes ~0.4 s)."""
    # Honoured by some MediaPipe/TensorFlow builds; must be set before the first import.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _quiet_native_stderr():
        import mediapipe.python.solutions as solutions
    return solutions


@contextlib.contextmanager
def _quiet_native_stderr(enabled: bool = True) -> Iterator[None]:
    """Point file descriptor 2 at /dev/null meanwhile, silencing native (C++) log lines.

    Python's own `sys.stderr` object is untouched, but anything any thread writes to
    descriptor 2 in the meantime is lost, so this wraps only the few calls that log.
    """
    if not enabled:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:  # no usable descriptor 2 (e.g. a windowed app): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _run_face_mesh(face_mesh: _QuietGraph, rgb: np.ndarray) -> list[np.ndarray]:
    """Run a FaceMesh graph on (h, w, 3) uint8 RGB; (478, 3) float64 landmarks per face.

    x, y are in edge pixels of `rgb` ((0, 0) the top-left corner of the top-left pixel),
    z is MediaPipe's normalized z times the width of `rgb`.
    """
    height, width = rgb.shape[:2]
    result = face_mesh.process(rgb)
    faces = []
    for face in result.multi_face_landmarks or ():
        points = np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float64)
        points *= (width, height, width)
        faces.append(points)
    return faces


# -- geometry helpers ---------------------------------------------------------------------


def _as_rgb(image: ImageSource, *, name: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB: the array itself when it is one, otherwise `load_image`'s result."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3:
        if image.shape[2] == 3 and min(image.shape[:2]) > 0:
            return image
    return load_image(image, name=name)


def _face_width(landmarks: np.ndarray) -> float:
    """Distance between landmarks 234 and 454 (x, y only), in the landmarks' pixels."""
    first, second = FACE_WIDTH_LANDMARKS
    return float(np.linalg.norm(landmarks[first, :2] - landmarks[second, :2]))


def _make_detection(
    landmarks_edge: np.ndarray, *, n_faces: int, image_shape: tuple[int, ...]
) -> FaceDetection:
    """Wrap edge-pixel landmarks as a FaceDetection in OpenCV pixels, with its warnings."""
    landmarks = landmarks_edge.astype(np.float32)
    # Edge convention (pixel i spans [i, i+1]) → OpenCV's (pixel i centred at i).
    landmarks[:, :2] -= 0.5
    face_width_px = _face_width(landmarks)
    height, width = image_shape[:2]
    warnings = []
    if n_faces > 1:
        warnings.append(f"{n_faces} faces found; using the largest.")
    if face_width_px < SMALL_FACE_WIDTH_PX:
        warnings.append(
            f"The face is only {face_width_px:.0f} px wide; results will be soft — "
            "use a larger photo."
        )
    x, y = landmarks[:, 0], landmarks[:, 1]
    outside = (x < -0.5) | (x > width - 0.5) | (y < -0.5) | (y > height - 0.5)
    if outside.mean() > OUTSIDE_FRACTION_WARNING:
        warnings.append(
            "Part of the face lies outside the picture; that part will be guessed — "
            "a photo with some margin around the head works better."
        )
    return FaceDetection(
        landmarks=landmarks, face_width_px=face_width_px, n_faces=n_faces, warnings=warnings
    )


def _downscale(rgb: np.ndarray, max_side_px: int) -> tuple[np.ndarray, float]:
    """`rgb` shrunk (area-averaged) so that its longest side is ≤ max_side_px, and the scale."""
    scale = min(1.0, max_side_px / max(rgb.shape[:2]))
    return (rgb, 1.0) if scale == 1.0 else (_resize(rgb, scale), scale)


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    size = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(rgb, size, interpolation=interpolation)


def _rescale(landmarks: np.ndarray, scale: float) -> np.ndarray:
    """Landmarks found in a copy resized by `scale`, in the original's edge pixels."""
    return landmarks / scale


def _shift(landmarks: np.ndarray, dx: float, dy: float) -> np.ndarray:
    shifted = landmarks.copy()
    shifted[:, 0] += dx
    shifted[:, 1] += dy
    return shifted


def _tile_starts(length: int, tile: int) -> list[int]:
    """Start offsets of tiles of size `tile` overlapping by half and covering `length`."""
    if length <= tile:
        return [0]
    count = int(np.ceil((length - tile) / (tile / 2))) + 1
    return [int(round(i * (length - tile) / (count - 1))) for i in range(count)]


def _deduplicate(faces: list[np.ndarray]) -> list[np.ndarray]:
    """Drop faces found twice in overlapping tiles (centres within half a face width)."""
    kept: list[np.ndarray] = []
    for face in sorted(faces, key=_face_width, reverse=True):
        center = face[:, :2].mean(axis=0)
        if all(
            np.linalg.norm(center - other[:, :2].mean(axis=0)) > 0.5 * _face_width(other)
            for other in kept
        ):
            kept.append(face)
    return kept


def _crop_square(
    rgb: np.ndarray, center: np.ndarray, side: float, out_px: int
) -> tuple[np.ndarray, tuple[float, np.ndarray]]:
    """The square of `side` pixels centred on `center` (edge pixels), as out_px × out_px.

    Edges are replicated where the square leaves the picture. Shrinking is anti-aliased:
    first by a whole factor with area averaging, then by the remaining factor (≥ 0.5)
    after a matching Gaussian blur, with a sub-pixel exact final warp.

    Returns:
        The (out_px, out_px, 3) uint8 crop, and (scale, offset) mapping its edge pixels
        back to the input's: input = crop * scale + offset (offset is (2,)).
    """
    height, width = rgb.shape[:2]
    scale_to_crop = out_px / side
    shrink = max(1, int(1.0 / scale_to_crop))  # whole-factor area reduction first
    # Integer region holding the square plus a margin for the blur and bilinear taps.
    margin = 2 * shrink + int(np.ceil(2.0 / scale_to_crop))
    left = int(np.floor(center[0] - side / 2)) - margin
    top = int(np.floor(center[1] - side / 2)) - margin
    region_px = int(np.ceil(side)) + 2 * margin + 2
    region_px += -region_px % shrink  # a whole number of blocks for exact area averaging
    region = _reduced_region(rgb, left, top, region_px, shrink)
    residual = scale_to_crop * shrink  # in (0.5, 1] when shrinking, > 1 when enlarging
    if residual < 1.0:
        sigma = 0.5 * np.sqrt(1.0 / residual**2 - 1.0)
        region = cv2.GaussianBlur(region, (0, 0), sigmaX=sigma)
    # Edge-pixel affine from the (reduced) region to the crop: the square's centre lands
    # on the crop's centre.
    center_in_region = (np.asarray(center, np.float64) - (left, top)) / shrink
    matrix = np.array(
        [
            [residual, 0.0, out_px / 2 - residual * center_in_region[0]],
            [0.0, residual, out_px / 2 - residual * center_in_region[1]],
        ]
    )
    # cv2.warpAffine maps pixel centres; the same matrix in centre convention differs
    # by (residual - 1) / 2 in the translation.
    matrix_centres = matrix.copy()
    matrix_centres[:, 2] += (residual - 1.0) / 2
    crop = cv2.warpAffine(
        region,
        matrix_centres,
        (out_px, out_px),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    crop_to_input_scale = shrink / residual
    offset = np.array([left, top], np.float64) + shrink * (-matrix[:, 2] / residual)
    return crop, (crop_to_input_scale, offset)


def _reduced_region(rgb: np.ndarray, left: int, top: int, size_px: int, shrink: int) -> np.ndarray:
    """The square [left, left+size) × [top, top+size) of `rgb`, area-averaged by the whole
    factor `shrink` (size is a multiple of it), edges replicated outside the picture.

    Only the part inside the picture is reduced and then padded, so a square much larger
    than the picture never costs a full-resolution copy.
    """
    height, width = rgb.shape[:2]

    def inside_blocks(start: int, limit: int) -> tuple[int, int]:
        # Whole blocks of the square that lie inside [0, limit): first and end block index.
        first = max(0, -(-(0 - start) // shrink))
        end = min(size_px // shrink, (limit - start) // shrink)
        return first, max(first, end)

    first_col, end_col = inside_blocks(left, width)
    first_row, end_row = inside_blocks(top, height)
    if end_col <= first_col or end_row <= first_row:
        # No whole block inside (a sliver of a face at the border): clamp coordinates.
        rows = np.clip(np.arange(top, top + size_px, shrink), 0, height - 1)
        columns = np.clip(np.arange(left, left + size_px, shrink), 0, width - 1)
        return np.ascontiguousarray(rgb[rows[:, None], columns[None, :]])
    inner = rgb[
        top + first_row * shrink : top + end_row * shrink,
        left + first_col * shrink : left + end_col * shrink,
    ]
    if shrink > 1:
        size = (end_col - first_col, end_row - first_row)
        inner = cv2.resize(inner, size, interpolation=cv2.INTER_AREA)
    blocks = size_px // shrink
    return cv2.copyMakeBorder(
        inner,
        first_row,
        blocks - end_row,
        first_col,
        blocks - end_col,
        cv2.BORDER_REPLICATE,
    )
