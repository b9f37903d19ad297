"""Load a portrait (a file, bytes, a Pillow image or an array) as an RGB uint8 array.

Everything a user may hand us ends up as one kind of value: (H, W, 3) uint8 RGB, upright
(EXIF orientation applied), with transparency flattened onto a neutral grey. Problems are
reported as one `ImageError` sentence naming the file.

Memory: the pixel-count limit is checked from the file header before anything is decoded,
and decoded pixels are converted to RGB in strips of rows, so that at most two full copies
of the image exist at any time (Pillow's decoded image and our array, or our array and its
rotated copy). An 8000×8000 photo thus peaks near 450 MB.
"""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from openvasa.errors import ImageError

ImageSource = str | os.PathLike[str] | bytes | bytearray | BinaryIO | Image.Image | np.ndarray

# Default pixel limit: 80 megapixels covers every phone and most camera photos (a 61 MP
# full-frame sensor is 9504×6336) while keeping a decode under about 1 GB of memory.
DEFAULT_MAX_PIXELS = 80_000_000

# Below this many pixels on a side there is no face left to animate.
MIN_SIDE_PX = 32

# Transparent pixels are composited over mid-grey rather than white or black: a cut-out
# portrait keeps contrast against grey whatever the skin and hair tones (blond hair vanishes
# into white, dark hair into black), which the face and person detectors need, and grey is
# the least glaring backdrop if it shows in the video.
TRANSPARENT_BACKGROUND_RGB = (128, 128, 128)

ACCEPTED_FORMATS = "JPEG, PNG, WebP, BMP, TIFF or GIF"

# Rows converted at a time: bounds the temporary memory of mode conversion to a few MB.
_STRIP_ROWS = 256

_EXIF_ORIENTATION_TAG = 0x0112


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    name: str | None = None,
) -> np.ndarray:
    """Load a portrait as an upright RGB image.

    Args:
        source: a path (str or PathLike), the bytes of an image file or a binary file
            object, a Pillow image, or an array. Arrays are (H, W), (H, W, 1), (H, W, 3) RGB
            or (H, W, 4) RGBA (not OpenCV's BGR), of dtype uint8, uint16 (full 0..65535
            range), bool, or float in [0, 1].
            Files: JPEG, PNG, WebP, BMP, TIFF, GIF and the other formats Pillow reads; the
            first frame of animations and multi-page files is used.
        max_pixels: largest accepted width × height. Checked from the header, before
            decoding, so that a huge file cannot exhaust memory.
        name: how error messages refer to the image; defaults to the path, or to
            "the image" for bytes, file objects, Pillow images and arrays.

    Returns:
        (H, W, 3) uint8 RGB array, C-contiguous, owning its memory. EXIF orientation is
        applied; 16-bit and float images are scaled to 8 bits (65535 → 255, 1.0 → 255);
        grayscale, palette and CMYK images are converted; transparent pixels are composited
        over mid-grey (`TRANSPARENT_BACKGROUND_RGB`).

    Raises:
        ImageError: the file is missing, a folder, empty, not an image, damaged, larger
            than `max_pixels`, or smaller than 32 pixels on a side.
    """
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source, max_pixels=max_pixels, name=name or "the image array")
    if isinstance(source, Image.Image):
        label = name or "the image"
        _check_size(source.size, max_pixels=max_pixels, name=label)
        return _decode_pil(source, name=label, close=False)
    if isinstance(source, bytes | bytearray):
        label = name or "the image"
        if len(source) == 0:
            raise _error(f"{label} is empty (0 bytes): choose an image file with content.")
        return _load_file(io.BytesIO(source), max_pixels=max_pixels, name=label)
    if hasattr(source, "read"):
        return _load_file(source, max_pixels=max_pixels, name=name or "the image")  # type: ignore[arg-type]
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        label = name or str(path)
        _check_path(path, name=label)
        return _load_file(path, max_pixels=max_pixels, name=label)
    raise _error(
        f"Cannot use a {type(source).__name__} as an image: give a file path, "
        "the file's bytes, a Pillow image or a NumPy array."
    )


def _error(message: str) -> ImageError:
    """An ImageError whose sentence starts with a capital when it names "the image"."""
    if message.startswith("the image"):
        message = "T" + message[1:]
    return ImageError(message)


def _check_path(path: Path, *, name: str) -> None:
    """Raise the one-line ImageError that fits a path that cannot be an image file."""
    if not path.exists():
        raise _error(f"Image file not found: {name}.")
    if path.is_dir():
        raise _error(f"{name} is a folder, not an image file: give the path of one image.")
    try:
        size_bytes = path.stat().st_size
    except OSError as error:
        raise _error(f"Cannot read {name}: {error.strerror or error}.") from error
    if size_bytes == 0:
        raise _error(f"{name} is empty (0 bytes): choose an image file with content.")
    if not os.access(path, os.R_OK):
        raise _error(f"Cannot read {name}: permission denied.")


def _check_size(size: tuple[int, int], *, max_pixels: int, name: str) -> None:
    """Reject images over `max_pixels` or under `MIN_SIDE_PX` on a side, from (width, height)."""
    width, height = size
    if width * height > max_pixels:
        raise _error(
            f"{name} is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels), "
            f"more than the limit of {max_pixels / 1e6:.1f} megapixels: downscale it, or "
            "raise the max_pixels setting if this machine has the memory."
        )
    if min(width, height) < MIN_SIDE_PX:
        raise _error(
            f"{name} is only {width}x{height} pixels: a portrait must be at least "
            f"{MIN_SIDE_PX} pixels on each side (512 or more looks best)."
        )


def _load_file(file: Path | BinaryIO, *, max_pixels: int, name: str) -> np.ndarray:
    """Open, size-check, decode and convert one image file (path or binary file object)."""
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        # The caller asked for more than Pillow's own decompression-bomb limit (89 MP):
        # raise Pillow's limit too, or Pillow refuses before our own check can allow it.
        Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            # Our own limit, checked next, replaces Pillow's decompression-bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(file)
    except Image.DecompressionBombError as error:
        # Pillow refuses images over twice its limit before we see the size; it reports
        # the pixel count in its message.
        found = re.search(r"\((\d+) pixels\)", str(error))
        pixels = f"{int(found.group(1)) / 1e6:.0f} megapixels" if found else "too many pixels"
        raise _error(
            f"{name} has {pixels}, more than the limit of {max_pixels / 1e6:.1f} megapixels: "
            "downscale it, or raise the max_pixels setting if this machine has the memory."
        ) from error
    except UnidentifiedImageError as error:
        hint = ""
        if str(name).lower().endswith((".heic", ".heif", ".avif")):
            hint = " (HEIC/HEIF/AVIF photos: convert to JPEG first)"
        raise _error(
            f"{name} is not an image openvasa can read{hint}: use a {ACCEPTED_FORMATS} file."
        ) from error
    except OSError as error:
        raise _error(f"Cannot read {name}: {error.strerror or error}.") from error
    except (SyntaxError, ValueError, EOFError, IndexError, struct.error) as error:
        raise _error(
            f"{name} is damaged or incomplete ({error}): re-save or re-download it."
        ) from error
    with image:
        _check_size(image.size, max_pixels=max_pixels, name=name)
        return _decode_pil(image, name=name, close=True)


def _decode_pil(image: Image.Image, *, name: str, close: bool) -> np.ndarray:
    """Decode a Pillow image (size already checked) to upright RGB uint8.

    `close` frees Pillow's decoded pixels before rotating, so that two copies at most
    coexist; it is False for a caller's own Pillow image, which we must not close.
    """
    try:
        image.load()
    except MemoryError as error:
        raise _error(
            f"Not enough memory to decode {name} ({image.width}x{image.height} pixels): "
            "downscale it or lower the max_pixels setting."
        ) from error
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as error:
        raise _error(
            f"{name} is damaged or incomplete ({error}): re-save or re-download it."
        ) from error
    orientation = _exif_orientation(image)
    rgb = _pil_to_rgb(image)
    if close:
        image.close()
    return _apply_exif_orientation(rgb, orientation)


def _exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1..8; 1 = upright), from EXIF or XMP; 1 if absent or broken."""
    try:
        orientation = int(image.getexif().get(_EXIF_ORIENTATION_TAG, 1))
    except Exception:  # a malformed EXIF block must not stop an otherwise good photo
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def _apply_exif_orientation(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """Rotate/flip (H, W, 3) pixels as EXIF orientation 1..8 says (as ImageOps.exif_transpose)."""
    if orientation == 1:
        return rgb
    views = {
        2: lambda a: a[:, ::-1],  # mirrored horizontally
        3: lambda a: a[::-1, ::-1],  # rotated 180°
        4: lambda a: a[::-1, :],  # mirrored vertically
        5: lambda a: a.transpose(1, 0, 2),  # mirrored along the main diagonal
        6: lambda a: np.rot90(a, k=-1),  # stored 90° counter-clockwise: turn clockwise
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # mirrored along the anti-diagonal
        8: lambda a: np.rot90(a, k=1),  # stored 90° clockwise: turn counter-clockwise
    }
    return np.ascontiguousarray(views[orientation](rgb))


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
    """Convert a loaded Pillow image of any mode to (H, W, 3) uint8 RGB, strip by strip."""
    width, height = image.size
    mode = image.mode
    rgb = np.empty((height, width, 3), np.uint8)
    if mode.startswith("I;16"):
        convert_strip = _sixteen_bit_strip
    elif mode in ("I", "F"):
        _, high = image.getextrema()  # single band: (min, max)
        convert_strip = _numeric_strip_converter(mode, float(high))  # type: ignore[arg-type]
    elif image.has_transparency_data:
        convert_strip = _transparent_strip
    elif mode == "RGB":
        convert_strip = np.asarray
    else:  # 1, L, P, CMYK, YCbCr, LAB, HSV, RGBX: Pillow's own conversions are right here
        convert_strip = _pillow_rgb_strip
    for top in range(0, height, _STRIP_ROWS):
        bottom = min(top + _STRIP_ROWS, height)
        rgb[top:bottom] = convert_strip(image.crop((0, top, width, bottom)))
    return rgb


def _pillow_rgb_strip(strip: Image.Image) -> np.ndarray:
    return np.asarray(strip.convert("RGB"))


def _sixteen_bit_strip(strip: Image.Image) -> np.ndarray:
    """16-bit grayscale → RGB uint8, rounding so that 65535 → 255 and 257·v → v."""
    grey = (np.asarray(strip).astype(np.uint32) + 128) // 257
    return np.repeat(grey.astype(np.uint8)[:, :, None], 3, axis=2)


def _numeric_strip_converter(mode: str, high: float) -> Callable[[Image.Image], np.ndarray]:
    """Converter for 32-bit integer ("I") and float ("F") grayscale, scaled from their range.

    "I" images come from 16-bit files (0..65535); "F" images from float TIFFs (0..1).
    Ranges beyond those are scaled by their maximum so that the picture stays visible.
    """
    if mode == "F" and high <= 1.0 + 1e-3:
        full_scale = 1.0
    elif mode == "F" and high <= 255.0:
        full_scale = 255.0
    elif high <= 65535:
        full_scale = 65535.0
    else:
        full_scale = high

    def convert(strip: Image.Image) -> np.ndarray:
        grey = np.asarray(strip, dtype=np.float32) * (255.0 / full_scale)
        grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)

    return convert


def _transparent_strip(strip: Image.Image) -> np.ndarray:
    return _composite_over_background(np.asarray(strip.convert("RGBA")))


def _composite_over_background(rgba: np.ndarray) -> np.ndarray:
    """(h, w, 4) uint8 straight-alpha RGBA → (h, w, 3) uint8 over `TRANSPARENT_BACKGROUND_RGB`."""
    alpha = rgba[:, :, 3:4].astype(np.float32) * (1.0 / 255.0)
    background = np.asarray(TRANSPARENT_BACKGROUND_RGB, np.float32)
    mixed = rgba[:, :, :3].astype(np.float32) * alpha + background * (1.0 - alpha)
    return np.rint(mixed).astype(np.uint8)


def _array_to_rgb(array: np.ndarray, *, max_pixels: int, name: str) -> np.ndarray:
    """Validate and convert an in-memory array to a new (H, W, 3) uint8 RGB array."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise _error(
            f"{name} has shape {array.shape}: an image array must be (H, W), (H, W, 3) RGB "
            "or (H, W, 4) RGBA."
        )
    height, width = array.shape[:2]
    _check_size((width, height), max_pixels=max_pixels, name=name)
    pixels = _array_to_uint8(array, name=name)
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    if pixels.shape[2] == 4:
        return _composite_over_background(pixels)
    if pixels is array:  # a new array, so that the caller's array is never aliased
        return np.array(pixels, order="C", copy=True)
    return np.ascontiguousarray(pixels)


def _array_to_uint8(array: np.ndarray, *, name: str) -> np.ndarray:
    """Scale an array's values to uint8 according to its dtype."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * np.uint8(255)
    if array.dtype == np.uint16:
        return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise _error(f"{name} contains NaN or infinite values.")
        low, high = float(array.min()), float(array.max())
        if low < -1e-3 or high > 1.0 + 1e-3:
            raise _error(
                f"{name} is a float array with values in [{low:.3g}, {high:.3g}]: float images "
                "must hold values in [0, 1] (divide 0..255 values by 255)."
            )
        return np.rint(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise _error(
                f"{name} is a {array.dtype} array with values in [{low}, {high}]: integer "
                "images must be uint16, or hold values in 0..255."
            )
        return array.astype(np.uint8)
    raise _error(f"{name} has dtype {array.dtype}: use uint8, uint16 or float in [0, 1].")
