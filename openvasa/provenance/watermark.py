"""An invisible watermark that survives H.264 re-encoding and downscaling, in every frame.

How it works (spread spectrum on a coarse grid of "chips", informed embedding):

- The frame is seen as a grid of square chips, `GRID_CHIPS` across its width (4x4 pixels at
  512², 2x2 at 256²), so the mark lives at low-to-mid spatial frequencies that survive
  downscaling and compression. Each of the 64 payload bits owns a fixed pseudo-random ±1
  pattern over a `TILE`x`TILE` tile of chips; the tile repeats over the frame.
- Per frame, the mark is the sum of the bit patterns signed by the bits, added to luminance
  only (the same amount to R, G and B), scaled by a texture mask (stronger in hair, fabric and
  detail, weaker on flat skin and sky, where a change would show).
- Informed embedding: the embedder measures how much the frame itself already correlates with
  each bit's pattern, exactly as the detector will, and subtracts that from the mark. The
  detector then sees the mark without the picture's own interference (Malvar & Florêncio's
  improved spread spectrum), which is what makes a 2-second clip enough after heavy
  re-encoding.
- Detection: every frame is reduced to the chip grid, high-passed and averaged over frames;
  the tiles are folded onto one; a circular correlation with each bit's pattern (all shifts at
  once by FFT) finds the 16-bit fixed mark; the remaining bits are read by sign and checked by
  a CRC. Chip sizes other than the expected one are tried too (crops, rescaled recordings).

Cost: about 1.4 ms per 512² frame in one thread (`openvasa bench`, "watermark" row);
detection, robustness and PSNR figures: `python tools/watermark_stats.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np
import scipy.fft
from numba import njit

from openvasa.provenance.payload import N_BITS, Payload

GRID_CHIPS = 160  # chips across the frame's width
TILE = 32  # chips per tile side; the tile repeats over the frame
CODE_SEED = 0x0A5A1  # fixed: changing it makes every earlier mark unreadable
CHIP_LOWPASS = 0.0  # chip patterns: band between these Gaussian blurs (in chips)
CHIP_HIGHPASS = 2.0
HIGHPASS_SIGMA_CHIPS = 0.5  # detector's high-pass: the frame minus its Gaussian blur
RESIDUAL_CLIP = 3.0  # residual clipped at this many mean-absolute-deviations (edges)
# Strength: RMS of the mark in luminance levels per pixel: TARGET_RMS (PSNR 41.6 dB), at
# most FLAT_RMS where the frame is flat, and never over MAX_RMS (PSNR 40.1 dB with rounding);
# then the texture mask's range, and the local detail at which it is 1.
STRENGTH = 1.0  # a multiplier on the target (tests, experiments); MAX_RMS holds regardless
TARGET_RMS = 2.12
FLAT_RMS = 1.0
MAX_RMS = 2.45
MAX_STEP = 7.0  # largest change of any pixel, in levels
MASK_RANGE = (0.5, 1.5)
MASK_ACTIVITY = 6.0  # local luminance deviation (levels) at which the mask is 1

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _periodic_blur(tiles: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of (…, TILE, TILE) arrays with wrap-around borders (via the FFT)."""
    k = np.fft.fftfreq(tiles.shape[-1])
    gain = np.exp(-2.0 * (math.pi * sigma) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2))
    return np.real(np.fft.ifft2(np.fft.fft2(tiles) * gain)).astype(np.float32)


@dataclass(frozen=True)
class SpreadingCode:
    """The fixed chip patterns (one per payload bit) and what the detector sees of each."""

    chips: np.ndarray  # (N_BITS, TILE, TILE) float32, unit RMS
    response: np.ndarray  # (N_BITS, TILE, TILE): detector's view of one unit pattern
    projector: np.ndarray  # (N_BITS, TILE*TILE): response / |response|², rows
    response_fft: np.ndarray = field(repr=False)  # conj FFT of the responses


@lru_cache(maxsize=1)
def spreading_code() -> SpreadingCode:
    rng = np.random.default_rng(CODE_SEED)
    chips = rng.choice(np.array([-1.0, 1.0], np.float32), size=(N_BITS, TILE, TILE))
    # The lowest chip frequencies only add visibility: the detector's high-pass drops them.
    chips = _periodic_blur(chips, CHIP_LOWPASS) - _periodic_blur(chips, CHIP_HIGHPASS)
    chips /= chips.std(axis=(1, 2), keepdims=True)
    # Detector's view of one tile-periodic unit chip, through the real embedding path:
    # upsample to pixels (4 per chip), back to chips, high-pass, fold.
    impulse = np.zeros((TILE, TILE), np.float32)
    impulse[0, 0] = 1.0
    grid = np.tile(impulse, (GRID_CHIPS // TILE, GRID_CHIPS // TILE))
    pixels = _upsample(grid, 4 * GRID_CHIPS, 4 * GRID_CHIPS)
    back = cv2.resize(pixels, (GRID_CHIPS, GRID_CHIPS), interpolation=cv2.INTER_AREA)
    kernel = _fold(_highpass(back)) / (GRID_CHIPS // TILE) ** 2
    kernel_fft = np.fft.fft2(kernel)
    response = np.real(np.fft.ifft2(np.fft.fft2(chips) * kernel_fft)).astype(np.float32)
    flat = response.reshape(N_BITS, -1)
    projector = flat / np.sum(flat * flat, axis=1, keepdims=True)
    return SpreadingCode(
        chips.astype(np.float32),
        response,
        projector.astype(np.float32),
        np.conj(np.fft.fft2(response)),
    )


def _upsample(chip_grid: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(chip_grid, (width, height), interpolation=cv2.INTER_LINEAR)


def _highpass(luma: np.ndarray) -> np.ndarray:
    return luma - cv2.GaussianBlur(luma, (0, 0), HIGHPASS_SIGMA_CHIPS)


def _clipped_residual(luma: np.ndarray) -> np.ndarray:
    """The detector's per-frame signal: high-passed chip luminance, edges clipped."""
    residual = _highpass(luma)
    limit = RESIDUAL_CLIP * (float(np.mean(np.abs(residual))) + 0.25)
    return np.clip(residual, -limit, limit, out=residual)


def _fold(grid: np.ndarray) -> np.ndarray:
    """Sum a (gh, gw) chip grid onto one (TILE, TILE) tile (partial tiles included)."""
    gh, gw = grid.shape
    ph, pw = -gh % TILE, -gw % TILE
    if ph or pw:
        grid = np.pad(grid, ((0, ph), (0, pw)))
    return grid.reshape(grid.shape[0] // TILE, TILE, grid.shape[1] // TILE, TILE).sum(axis=(0, 2))


def chip_grid_shape(height: int, width: int, chips_across: float | None = None) -> tuple[int, int]:
    """(rows, columns) of the chip grid of a frame: square chips, `chips_across` per width."""
    chips_across = chips_across or GRID_CHIPS
    chip = width / chips_across
    return max(1, round(height / chip)), max(1, round(chips_across))


def _luma(rgb: np.ndarray) -> np.ndarray:
    # One output channel: OpenCV returns it as (H, W).
    return cv2.transform(rgb.astype(np.float32, copy=False), _LUMA[None, :])


@njit(cache=True, nogil=True)
def _shrunk_luma(frame: np.ndarray, shrink: int) -> np.ndarray:
    """Luminance of an RGB uint8 frame averaged over `shrink`x`shrink` blocks, float32.

    One pass in one thread: OpenCV's resize would spread this small job over threads that
    the renderer and the encoder are using at the same moment, and wait for them.
    """
    height, width = frame.shape[0] // shrink, frame.shape[1] // shrink
    out = np.empty((height, width), np.float32)
    n_bytes = 3 * width * shrink
    column_sums = np.empty(n_bytes, np.int32)
    scale = np.float32(1.0 / (1000 * shrink * shrink))
    for y in range(height):
        # Sum the block's rows byte by byte (a plain loop LLVM vectorises), then the columns.
        column_sums[:] = 0
        for yy in range(y * shrink, (y + 1) * shrink):
            row = frame[yy].reshape(-1)
            for i in range(n_bytes):
                column_sums[i] += row[i]
        for x in range(width):
            red = green = blue = 0
            for i in range(3 * x * shrink, 3 * (x + 1) * shrink, 3):
                red += column_sums[i]
                green += column_sums[i + 1]
                blue += column_sums[i + 2]
            out[y, x] = (299 * red + 587 * green + 114 * blue) * scale
    return out


@njit(cache=True, nogil=True)
def _linear_taps(n_out: int, n_in: int):
    """Source indices and weights of OpenCV's INTER_LINEAR resize along one axis."""
    first = np.empty(n_out, np.int64)
    second = np.empty(n_out, np.int64)
    weight = np.empty(n_out, np.float32)
    scale = n_in / n_out
    for i in range(n_out):
        position = (i + 0.5) * scale - 0.5
        j = int(math.floor(position))
        a = position - j
        if j < 0:
            j, a = 0, 0.0
        if j >= n_in - 1:
            j, a = n_in - 1, 0.0
        first[i], second[i], weight[i] = j, min(j + 1, n_in - 1), a
    return first, second, weight


@njit(cache=True, nogil=True)
def _add_upsampled(frame: np.ndarray, chip_mark: np.ndarray) -> None:
    """frame[y, x, :] += round(chip_mark linearly upsampled to the frame's size), saturating.

    The same upsampling as `_upsample` (OpenCV's INTER_LINEAR), fused with the addition so
    that no full-size float image is made, in one thread.
    """
    height, width = frame.shape[0], frame.shape[1]
    y0, y1, wy = _linear_taps(height, chip_mark.shape[0])
    x0, x1, wx = _linear_taps(width, chip_mark.shape[1])
    column = np.empty(chip_mark.shape[1], np.float32)
    steps = np.empty(3 * width, np.int16)  # the same step for R, G and B
    for y in range(height):
        top, bottom, b = chip_mark[y0[y]], chip_mark[y1[y]], wy[y]
        for j in range(column.size):
            column[j] = top[j] + b * (bottom[j] - top[j])
        for x in range(width):
            left = column[x0[x]]
            step = np.int16(math.floor(left + wx[x] * (column[x1[x]] - left) + 0.5))
            steps[3 * x] = step
            steps[3 * x + 1] = step
            steps[3 * x + 2] = step
        row = frame[y].reshape(-1)  # a plain loop over bytes, which LLVM vectorises
        for i in range(row.size):
            row[i] = min(max(np.int16(row[i]) + steps[i], 0), 255)


@dataclass(frozen=True)
class _Layout:
    """The chip grid of one frame size, and the unmasked mark laid out on it."""

    rows: int
    columns: int
    reps: tuple[int, int]  # tiles down and across (the last ones partly used)
    plain: np.ndarray  # (rows, columns) the payload's pattern, before mask and corrections
    pixel_ratio: float  # RMS of the pattern upsampled to pixels / RMS at chip resolution
    shrink: int  # integer factor the frame is first shrunk by, on the way to the chip grid


class Watermarker:
    """Adds the openvasa watermark carrying `payload` to RGB frames, in place.

    One instance serves any number of frames and streams (it keeps no state between frames
    apart from caches keyed by frame size). Thread-safe for distinct frames.
    """

    def __init__(self, payload: Payload, *, strength: float = STRENGTH):
        self.payload = payload
        self.strength = float(strength)
        self._bits = payload.to_bits()
        self._code = spreading_code()
        self._plain_tile = np.tensordot(self._bits, self._code.chips, axes=1)
        self._layouts: dict[tuple[int, int], _Layout] = {}

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """Mark one (H, W, 3) uint8 RGB frame in place and return it."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame must be (H, W, 3) uint8, got {frame.dtype} {frame.shape}")
        chip_mark = self.chip_mark(frame)
        if chip_mark is not None:
            _add_upsampled(frame, chip_mark)
        return frame

    def _layout(self, height: int, width: int) -> _Layout | None:
        layout = self._layouts.get((height, width))
        if layout is None:
            gh, gw = chip_grid_shape(height, width)
            if gh < 8 or width < gw:  # a chip needs at least a pixel
                return None
            reps = (-(-gh // TILE), -(-gw // TILE))
            plain = np.ascontiguousarray(np.tile(self._plain_tile, reps)[:gh, :gw])
            # Linear upsampling smooths the chips: the pixels' RMS is this fraction of theirs.
            pixels = _upsample(plain, width, height)
            ratio = float(np.sqrt(np.mean(np.square(pixels)) / np.mean(np.square(plain))))
            # Integer shrink that keeps at least 1.5 pixels per chip and divides the size.
            shrink = max(1, int(width / gw / 1.5))
            while shrink > 1 and (width % shrink or height % shrink):
                shrink -= 1
            layout = _Layout(gh, gw, reps, plain, ratio, shrink)
            self._layouts[(height, width)] = layout
        return layout

    def mark(self, frame: np.ndarray) -> np.ndarray | None:
        """The luminance change (H, W) float32 that `apply` adds (before rounding) to
        `frame`, or None for frames too small to carry the mark."""
        chip_mark = self.chip_mark(frame)
        if chip_mark is None:
            return None
        return _upsample(chip_mark, frame.shape[1], frame.shape[0])

    def chip_mark(self, frame: np.ndarray) -> np.ndarray | None:
        """The mark for `frame` at chip resolution, (rows, columns) float32 levels."""
        height, width = frame.shape[:2]
        layout = self._layout(height, width)
        if layout is None:
            return None
        gh, gw, reps = layout.rows, layout.columns, layout.reps
        # Luminance and its local detail (for the texture mask), brought to the chip grid in
        # two steps: an integer shrink first (OpenCV's fast path), then the fractional one.
        fine = _shrunk_luma(frame, layout.shrink)
        luma = cv2.resize(fine, (gw, gh), interpolation=cv2.INTER_AREA)
        # The mask is smooth: measure detail at half the fine resolution (a cheap 2x shrink)
        # and stretch it onto the chip grid.
        detail = np.abs(fine - cv2.GaussianBlur(fine, (0, 0), 1.0))
        half = (max(1, fine.shape[1] // 2), max(1, fine.shape[0] // 2))
        activity = cv2.resize(cv2.resize(detail, half, interpolation=cv2.INTER_AREA), (gw, gh))
        mask = cv2.GaussianBlur(activity, (0, 0), 1.5) * (1.0 / MASK_ACTIVITY)
        np.clip(mask, *MASK_RANGE, out=mask)
        # Strength for this frame: the masked mark at TARGET_RMS levels, but never more than
        # FLAT_RMS where the picture is flat (a near-uniform frame gets a fainter mark).
        plain_rms = layout.pixel_ratio * float(np.sqrt(np.mean(np.square(layout.plain * mask))))
        strength = self.strength * min(
            TARGET_RMS / max(plain_rms, 1e-6), FLAT_RMS / (layout.pixel_ratio * MASK_RANGE[0])
        )
        # Informed embedding: what the picture already says about each bit, measured as the
        # detector will measure it, is taken out of the mark.
        n_tiles = gh * gw / (TILE * TILE)
        host = self._code.projector @ _fold(_clipped_residual(luma)).reshape(-1) / n_tiles
        gain = strength * float(mask.mean())
        amplitude = self._bits - np.clip(host / gain, -1.0, 1.0)
        chip_mark = self._chip_mark(amplitude, mask, reps, gh, gw, strength)
        # Taking the picture's part out adds a little energy: keep the PSNR over 40 dB.
        rms = layout.pixel_ratio * float(np.sqrt(np.mean(np.square(chip_mark))))
        if rms > MAX_RMS:
            chip_mark *= MAX_RMS / rms
        # No spikes: linear upsampling never goes past the chips' own values.
        np.clip(chip_mark, -MAX_STEP, MAX_STEP, out=chip_mark)
        return chip_mark

    def _chip_mark(self, amplitude, mask, reps, gh, gw, strength) -> np.ndarray:
        tile = np.tensordot(amplitude.astype(np.float32), self._code.chips, axes=1)
        chip_mark = np.tile(tile, reps)[:gh, :gw] * mask
        chip_mark *= strength
        return chip_mark


# --- detection -------------------------------------------------------------------------------

# The search: a crop (kept at its size or scaled back up) or a screen recording changes how
# many chips span the frame; every whole number of them from half to twice the expected is
# tried (a whole number is within 0.3% of the truth, about what a match tolerates), then the
# best few are refined in 0.1% steps and thirds of a chip of offset.
SEARCH_CHIPS_ACROSS = tuple(range(GRID_CHIPS // 2, 2 * GRID_CHIPS + 1))
REFINE_CANDIDATES = 3
REFINE_STEPS = np.linspace(-0.003, 0.003, 7)
REFINE_OFFSETS = tuple((x / 3, y / 3) for y in range(3) for x in range(3))
# The search's best scores on unmarked content have a heavier tail than Gaussian noise
# (measured: up to 7.0 on 2 of 200 unmarked clips re-encoded at CRF 28 and 256 px, where
# the Gaussian tail puts the 1e-4 threshold at 6.9), so they count as this much lower.
SEARCH_Z_ALLOWANCE = 1.0


@dataclass(frozen=True)
class Detection:
    """What the detector found in a set of frames.

    found: the openvasa watermark is present (`p_false` under the threshold).
    payload: what the mark says, when its bits read back with a valid CRC or match a known
        payload in full; None otherwise (the mark can be found while its payload is unread).
    z: the best score, in standard deviations of what unmarked content scores.
    p_false: estimated chance that unmarked content scores as high, every hypothesis, tile
        shift and chip size tried counted (Bonferroni); confidence = 1 - p_false.
    bits_read: payload bits whose sign agrees with `payload` (64 = all; 0 without payload).
    scale: chip size where the mark was found relative to the expected one (1.0 = unscaled).
    shift: tile shift (rows, columns) in chips where it was found ((0, 0) = not cropped).
    key_matched: the key given to the detector is the one in the mark.
    n_frames: frames analysed.
    """

    found: bool
    payload: Payload | None
    z: float
    p_false: float
    bits_read: int
    scale: float
    shift: tuple[int, int]
    key_matched: bool
    n_frames: int

    @property
    def confidence(self) -> float:
        return 1.0 - self.p_false


# Found when the false-alarm probability is under this (the issue asks for at most 0.1% of
# unmarked clips; this leaves a margin for content whose scores are not quite Gaussian).
P_FOUND = 1e-4


def _gauss_tail(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _hypotheses(key: str | None) -> tuple[np.ndarray, list[Payload | None]]:
    """Payload bit patterns to test, ±1 where known and 0 where not, shape (n, N_BITS).

    Every version with no key and, when given, every version with `key` are known in full
    (all 64 bits add up); a mark made with some other key is still found by its fixed mark
    and version bits (the first 24).
    """
    from openvasa.provenance.payload import key_id

    rows, payloads = [], []
    for key_number in sorted({0, key_id(key)}):
        for byte in range(256):
            payload = Payload(byte >> 4, byte & 15, key_number)
            rows.append(payload.to_bits())
            payloads.append(payload)
    for byte in range(256):
        partial = Payload(byte >> 4, byte & 15, 0).to_bits()
        partial[24:] = 0.0
        rows.append(partial)
        payloads.append(None)
    return np.stack(rows).astype(np.float32), payloads


class WatermarkDetector:
    """Accumulates frames (any size, RGB uint8) and tells whether they carry the mark.

        detector = WatermarkDetector()
        for frame in frames:
            detector.add(frame)
        result = detector.result()

    Frames are averaged (the mark is the same in every frame, the picture's noise and motion
    are not), then analysed once. `search` (default True) also tries other chip sizes and
    every tile shift, which finds the mark after crops and rescaled screen recordings.
    """

    def __init__(self, *, search: bool = True):
        self.search = search
        self._sum: np.ndarray | None = None
        self._n = 0
        self._code = spreading_code()

    @property
    def n_frames(self) -> int:
        return self._n

    def add(self, frame: np.ndarray) -> None:
        """Add one frame: (H, W, 3) or (H, W, 4) uint8 RGB(A), or (H, W) grey."""
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or not (
            frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (3, 4))
        ):
            raise ValueError(f"frame must be uint8 RGB(A) or grey, got {frame.dtype} {frame.shape}")
        if frame.ndim == 2:
            luma = frame.astype(np.float32)
        else:
            luma = _luma(np.ascontiguousarray(frame[..., :3]))
        if self._sum is None:
            self._sum = luma
        elif luma.shape != self._sum.shape:
            raise ValueError("all frames given to one detector must have the same size")
        else:
            self._sum += luma
        self._n += 1

    def result(self, key: str | None = None) -> Detection:
        """The verdict on the frames added so far; `key`: the key text a mark may carry."""
        from openvasa.provenance.payload import key_id

        nothing = Detection(False, None, 0.0, 1.0, 0, 1.0, (0, 0), False, self._n)
        if self._sum is None:
            return nothing
        mean = self._sum * (1.0 / self._n)
        height, width = mean.shape
        hypotheses, payloads = _hypotheses(key)
        spectra = _hypothesis_spectra(hypotheses, self._code)
        n_hyp = len(hypotheses)
        # The geometry openvasa writes: chips GRID_CHIPS across the width, from the corner.
        # That is n_hyp tests; every candidate of the search is one of n_hyp * shifts * views.
        expected = None
        gh, gw = chip_grid_shape(height, width)
        if gh >= TILE // 2 and gw <= width:
            view = cv2.resize(mean, (gw, gh), interpolation=cv2.INTER_AREA)
            expected = _Candidate(*self._score(view, spectra, shifts=False), 1.0, (0.0, 0.0))
        searched: list[_Candidate] = []
        if self.search:
            for chips_across in SEARCH_CHIPS_ACROSS:
                gh, gw = chip_grid_shape(height, width, chips_across)
                if gh < TILE or gw < TILE or gw > width:
                    continue
                view = cv2.resize(mean, (gw, gh), interpolation=cv2.INTER_AREA)
                scale = GRID_CHIPS / chips_across
                searched.append(_Candidate(*self._score(view, spectra), scale, (0.0, 0.0)))
            for coarse in sorted(searched, key=lambda c: c.z)[-REFINE_CANDIDATES:]:
                for scale in coarse.scale * (1.0 + REFINE_STEPS):
                    chip_px = scale * width / GRID_CHIPS
                    blurred = cv2.GaussianBlur(mean, (0, 0), max(0.3, 0.42 * chip_px))
                    for offset in REFINE_OFFSETS:
                        view = _chip_view(blurred, chip_px, offset)
                        if view is not None:
                            score = self._score(view, spectra)
                            searched.append(_Candidate(*score, float(scale), offset))
        n_search_tests = len(searched) * n_hyp * TILE * TILE
        options = [(2.0 * n_hyp * _gauss_tail(c.z), c) for c in [expected] if c is not None]
        if searched:
            top = max(searched, key=lambda c: c.z)
            tail = _gauss_tail(top.z - SEARCH_Z_ALLOWANCE)
            options.append((2.0 * n_search_tests * tail, top))
        if not options:  # too small to hold a chip grid
            return nothing
        p_false, best = min(options, key=lambda o: o[0])
        p_false = min(1.0, p_false)
        found = p_false < P_FOUND
        soft_bits = self._soft_bits(best)
        payload = Payload.from_bits(soft_bits) or payloads[best.hypothesis]
        bits_read = int(np.sum(np.sign(soft_bits) == payload.to_bits())) if found else 0
        key_matched = bool(found and key and payload is not None and payload.key_id == key_id(key))
        return Detection(
            found,
            payload if found else None,
            best.z,
            p_false,
            bits_read,
            best.scale,
            best.shift,
            key_matched,
            self._n,
        )

    def _score(self, view: np.ndarray, spectra: np.ndarray, shifts: bool = True):
        """(z, hypothesis, shift, folded view) of the best hypothesis and tile shift."""
        folded = _fold(_clipped_residual(view))
        # Circular correlation of every hypothesis's pattern with the folded view, at every
        # tile shift at once: (n_hypotheses, TILE*TILE).
        spectrum = scipy.fft.rfft2(folded)
        scores = scipy.fft.irfft2(spectrum[None] * spectra, s=(TILE, TILE), axes=(1, 2))
        scores = scores.reshape(len(spectra), -1)
        rows = np.arange(len(spectra))
        index = np.argmax(scores, axis=1) if shifts else np.zeros(len(spectra), int)
        tested = scores[rows, index]
        # Each score against the spread of its hypothesis over the other shifts: the
        # unmarked-content distribution, measured on this very picture.
        n_other = scores.shape[1] - 1
        mean_other = (scores.sum(axis=1) - tested) / n_other
        var_other = (np.square(scores).sum(axis=1) - tested**2) / n_other - mean_other**2
        z = (tested - mean_other) / np.sqrt(np.maximum(var_other, 1e-20))
        h = int(np.argmax(z))
        return float(z[h]), h, divmod(int(index[h]), TILE), folded

    def _soft_bits(self, candidate: _Candidate) -> np.ndarray:
        """Each bit's correlation at the candidate's shift: its sign is the bit."""
        aligned = np.roll(candidate.folded, (-candidate.shift[0], -candidate.shift[1]), (0, 1))
        return self._code.response.reshape(N_BITS, -1) @ aligned.reshape(-1)


@dataclass(frozen=True)
class _Candidate:
    """One place the detector looked: its best score and where exactly it was."""

    z: float
    hypothesis: int
    shift: tuple[int, int]
    folded: np.ndarray
    scale: float
    offset: tuple[float, float]


def _hypothesis_spectra(hypotheses: np.ndarray, code: SpreadingCode) -> np.ndarray:
    """Conjugate half-spectra of each hypothesis's combined pattern, for rfft correlation."""
    patterns = np.tensordot(hypotheses, code.response, axes=1)  # (n, TILE, TILE)
    return np.conj(scipy.fft.rfft2(patterns, axes=(1, 2)))


def _chip_view(blurred: np.ndarray, chip_px: float, offset: tuple[float, float]):
    """Sample a (pre-blurred) luminance image at the centres of a chip grid whose chips are
    `chip_px` pixels and whose first chip starts `offset` (x, y) chips from the corner."""
    height, width = blurred.shape
    x0, y0 = offset[0] * chip_px, offset[1] * chip_px
    gw, gh = int((width - x0) / chip_px), int((height - y0) / chip_px)
    if gw < TILE or gh < TILE:
        return None
    # Destination chip (u, v) takes source pixel (x0 + (u + 0.5) c - 0.5, y0 + (v + 0.5) c - 0.5).
    matrix = np.array(
        [[chip_px, 0.0, x0 + 0.5 * chip_px - 0.5], [0.0, chip_px, y0 + 0.5 * chip_px - 0.5]]
    )
    return cv2.warpAffine(
        blurred,
        matrix,
        (gw, gh),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT,
    )


def detect_watermark(frames, *, key: str | None = None, search: bool = True) -> Detection:
    """Look for the openvasa watermark in RGB uint8 frames (an iterable of (H, W, 3) arrays)."""
    detector = WatermarkDetector(search=search)
    for frame in frames:
        detector.add(frame)
    return detector.result(key)
