"""Per-frame motion files for game engines and DCC tools: ARKit blendshapes, head pose, gaze.

Two formats, chosen by the file's suffix.

CSV (``.csv``) — one header row, then one row per video frame::

    frame,time_s,eyeBlinkLeft,...,tongueOut,yaw_deg,pitch_deg,roll_deg,tx,ty,scale,gaze_yaw_deg,gaze_pitch_deg
    0,0.00000,0.01234,...

- ``frame``: 0-based frame index; ``time_s``: the frame's time in seconds (frame / fps).
- the 52 ARKit blendshape names in ARKit's order, coefficients in [0, 1];
- head pose: ``yaw_deg``, ``pitch_deg``, ``roll_deg`` (degrees), ``tx``, ``ty`` (face widths
  from the default framing, x right, y down), ``scale`` (1 = default framing);
- gaze of both eyes relative to the head: ``gaze_yaw_deg`` (positive to the image's right),
  ``gaze_pitch_deg`` (positive upwards).

Values are written with 5 decimals. On reading, column names match case-insensitively and
columns are found by name, in any order; columns that are not motion channels (``Timecode``,
``BlendShapeCount``, ...) are ignored, missing blendshapes read as 0 and missing pose or
gaze channels take their neutral value (scale 1, everything else 0), so files from tools that
export a subset of the ARKit names load as they are. The frame rate comes from ``time_s`` or,
without that column, from the ``fps`` argument of `read_motion`.

JSON (``.json``)::

    {"format": "openvasa-motion", "version": 1, "fps": 25.0,
     "blendshape_names": [52 ARKit names], "pose_names": [...], "gaze_names": [...],
     "frames": [
       {"time_s": 0.0, "blendshapes": {"eyeBlinkLeft": 0.01234, ...},
        "pose": {"yaw_deg": 1.5, ...}, "gaze": {"gaze_yaw_deg": 0.0, ...}},
       ...]}

One object per frame, keyed by channel name, so that an engine script looks a channel up by
the name its rig uses and a frame is self-contained when streamed. It is written with one
frame per line. On reading, each of ``blendshapes``, ``pose`` and ``gaze`` may also be a
list of numbers in the order of the matching ``*_names`` list (the compact layout of
Audio2Face's exports); missing channels take neutral values as in CSV.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from openvasa.errors import MotionFileError
from openvasa.io.frames import atomic_write_bytes
from openvasa.latent.motion import ARKIT_BLENDSHAPES, GAZE_NAMES, POSE_NAMES, MotionSequence

FORMAT_NAME = "openvasa-motion"
FORMAT_VERSION = 1
CSV_COLUMNS: tuple[str, ...] = ("frame", "time_s", *ARKIT_BLENDSHAPES, *POSE_NAMES, *GAZE_NAMES)
DECIMALS = 5

_NEUTRAL_POSE = np.array([0, 0, 0, 0, 0, 1], np.float32)
# Lower-case channel name -> (group, column in that group's array).
_CHANNELS: dict[str, tuple[str, int]] = {
    **{name.lower(): ("blendshapes", i) for i, name in enumerate(ARKIT_BLENDSHAPES)},
    **{name.lower(): ("pose", i) for i, name in enumerate(POSE_NAMES)},
    **{name.lower(): ("gaze", i) for i, name in enumerate(GAZE_NAMES)},
}
_GROUP_NAMES = {"blendshapes": ARKIT_BLENDSHAPES, "pose": POSE_NAMES, "gaze": GAZE_NAMES}


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise MotionFileError(
            f"{path}: unknown motion file format {suffix or '(no suffix)'!r}; use .csv or .json."
        )
    return suffix[1:]


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode("utf-8"))


def _rounded(values: np.ndarray) -> np.ndarray:
    # Adding 0.0 turns -0.0 (from tiny negatives) into 0.0, so files do not show "-0.00000".
    return np.round(values.astype(np.float64), DECIMALS) + 0.0


def write_motion(motion: MotionSequence, path: str | os.PathLike[str]) -> None:
    """Write a motion sequence as CSV or JSON (by `path`'s suffix; see the module docstring).

    The file is written under a temporary name in the same folder and renamed into place;
    parent folders are made. Values are rounded to 5 decimals.
    """
    path = Path(path)
    file_format = _format_of(path)
    n_frames = len(motion)
    times_s = _rounded(np.arange(n_frames) / motion.fps)
    pose, blendshapes, gaze = (_rounded(a) for a in (motion.pose, motion.blendshapes, motion.gaze))
    if file_format == "csv":
        lines = [",".join(CSV_COLUMNS)]
        values = np.concatenate([times_s[:, None], blendshapes, pose, gaze], axis=1)
        number = f"{{:.{DECIMALS}f}}"
        for index, row in enumerate(values):
            lines.append(",".join([str(index), *(number.format(v) for v in row)]))
        _atomic_write_text(path, "\n".join(lines) + "\n")
        return

    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "fps": float(motion.fps),
        "blendshape_names": list(ARKIT_BLENDSHAPES),
        "pose_names": list(POSE_NAMES),
        "gaze_names": list(GAZE_NAMES),
    }
    frame_lines = [
        json.dumps(
            {
                "time_s": float(times_s[i]),
                "blendshapes": dict(zip(ARKIT_BLENDSHAPES, blendshapes[i].tolist(), strict=True)),
                "pose": dict(zip(POSE_NAMES, pose[i].tolist(), strict=True)),
                "gaze": dict(zip(GAZE_NAMES, gaze[i].tolist(), strict=True)),
            },
            separators=(",", ":"),
        )
        for i in range(n_frames)
    ]
    header_text = json.dumps(header)[:-1]  # drop "}" to append the frames
    text = header_text + ', "frames": [\n' + ",\n".join(frame_lines) + "\n]}\n"
    _atomic_write_text(path, text)


def read_motion(path: str | os.PathLike[str], *, fps: float | None = None) -> MotionSequence:
    """Read a motion CSV or JSON file (by suffix) into a `MotionSequence`.

    Args:
        path: a ``.csv`` or ``.json`` file in the layout of the module docstring.
        fps: frames per second; overrides the file's own rate. Needed when the file has no
            ``fps`` field and no ``time_s`` column to infer it from.

    Returns:
        MotionSequence with pose (T, 6), blendshapes (T, 52) and gaze (T, 2), float32.

    Raises:
        MotionFileError: the file is missing, empty, malformed, has no frames, holds a value
            that is not a finite number, or has a suffix other than .csv / .json.
    """
    path = Path(path)
    file_format = _format_of(path)
    if not path.is_file():
        raise MotionFileError(f"{path}: no such motion file.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise MotionFileError(f"{path}: cannot be read as text ({error}).") from error
    if not text.strip():
        raise MotionFileError(f"{path}: the motion file is empty.")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise MotionFileError(f"{path}: fps must be a positive number, got {fps}.")
    if file_format == "csv":
        return _read_csv(path, text, fps)
    return _read_json(path, text, fps)


def _neutral_arrays(n_frames: int) -> dict[str, np.ndarray]:
    return {
        "blendshapes": np.zeros((n_frames, len(ARKIT_BLENDSHAPES)), np.float32),
        "pose": np.tile(_NEUTRAL_POSE, (n_frames, 1)),
        "gaze": np.zeros((n_frames, len(GAZE_NAMES)), np.float32),
    }


def _number(value: object, where: str) -> float:
    """A finite float from a CSV cell or JSON value; `where` names it for the error message."""
    if isinstance(value, bool):
        number = math.nan
    elif isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = math.nan
    else:
        number = math.nan
    if not math.isfinite(number):
        raise MotionFileError(f"{where}: {value!r} is not a finite number.")
    return number


def _read_csv(path: Path, text: str, fps: float | None) -> MotionSequence:
    rows = [
        (line_number, row)
        for line_number, row in enumerate(csv.reader(text.splitlines()), start=1)
        if any(cell.strip() for cell in row)
    ]
    header_line, header = rows[0]
    header = [name.strip() for name in header]
    data_rows = rows[1:]
    if not data_rows:
        raise MotionFileError(f"{path}: the motion file has a header but no frames.")

    channel_columns: list[tuple[int, str, int]] = []  # (CSV column, group, index in group)
    time_column = None
    seen: dict[str, str] = {}
    for column, name in enumerate(header):
        key = name.lower()
        if key in seen:
            raise MotionFileError(
                f"{path}: column {name!r} appears twice in the header (line {header_line})."
            )
        seen[key] = name
        if key == "time_s":
            time_column = column
        elif key in _CHANNELS:
            channel_columns.append((column, *_CHANNELS[key]))
    if not channel_columns:
        raise MotionFileError(
            f"{path}: no motion columns in the header (line {header_line}); expected ARKit "
            f"blendshape names such as 'jawOpen', or pose/gaze names such as 'yaw_deg'."
        )

    arrays = _neutral_arrays(len(data_rows))
    times_s = np.zeros(len(data_rows))
    for frame_index, (line_number, row) in enumerate(data_rows):
        if len(row) < len(header):
            raise MotionFileError(
                f"{path}: line {line_number} has {len(row)} values but the header has "
                f"{len(header)} columns."
            )
        for column, group, index in channel_columns:
            where = f"{path}: line {line_number}, column {header[column]!r}"
            arrays[group][frame_index, index] = _number(row[column].strip(), where)
        if time_column is not None:
            where = f"{path}: line {line_number}, column {header[time_column]!r}"
            times_s[frame_index] = _number(row[time_column].strip(), where)

    if fps is None:
        if time_column is None:
            raise MotionFileError(
                f"{path}: has no 'time_s' column to take the frame rate from; pass fps."
            )
        fps = _infer_fps(times_s, path, [line for line, _ in data_rows])
    return MotionSequence(fps, arrays["pose"], arrays["blendshapes"], arrays["gaze"])


def _read_json(path: Path, text: str, fps: float | None) -> MotionSequence:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise MotionFileError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})."
        ) from error
    if not isinstance(document, dict):
        raise MotionFileError(f"{path}: expected a JSON object with a 'frames' list at the top.")
    if document.get("format", FORMAT_NAME) != FORMAT_NAME:
        raise MotionFileError(f"{path}: 'format' is {document['format']!r}, not {FORMAT_NAME!r}.")
    version = document.get("version", FORMAT_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise MotionFileError(
            f"{path}: format version {version!r} is not one this openvasa reads "
            f"(up to {FORMAT_VERSION})."
        )
    frames = document.get("frames")
    if not isinstance(frames, list):
        raise MotionFileError(f"{path}: has no 'frames' list.")
    if not frames:
        raise MotionFileError(f"{path}: the 'frames' list is empty.")

    names_by_group: dict[str, Sequence[str]] = {}
    for group, default_names in _GROUP_NAMES.items():
        key = {"blendshapes": "blendshape_names", "pose": "pose_names", "gaze": "gaze_names"}[group]
        names = document.get(key, list(default_names))
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise MotionFileError(f"{path}: {key!r} must be a list of names.")
        names_by_group[group] = names

    arrays = _neutral_arrays(len(frames))
    times_s = np.zeros(len(frames))
    has_times = True
    known_channels = 0
    for frame_index, frame in enumerate(frames):
        where_frame = f"{path}: frame {frame_index}"
        if not isinstance(frame, dict):
            raise MotionFileError(f"{where_frame}: expected an object, got {type(frame).__name__}.")
        if "time_s" in frame:
            times_s[frame_index] = _number(frame["time_s"], f"{where_frame}, 'time_s'")
        else:
            has_times = False
        for group in _GROUP_NAMES:
            values = frame.get(group)
            if values is None:
                continue
            if isinstance(values, list):
                names = names_by_group[group]
                if len(values) != len(names):
                    raise MotionFileError(
                        f"{where_frame}: {group!r} has {len(values)} values but there are "
                        f"{len(names)} names in the file's name list for it."
                    )
                values = dict(zip(names, values, strict=True))
            if not isinstance(values, dict):
                raise MotionFileError(f"{where_frame}: {group!r} must be an object or a list.")
            for name, value in values.items():
                channel = _CHANNELS.get(str(name).lower())
                if channel is None or channel[0] != group:
                    continue  # a channel of another tool's rig; see the module docstring
                known_channels += 1
                arrays[group][frame_index, channel[1]] = _number(
                    value, f"{where_frame}, {group} {name!r}"
                )
    if known_channels == 0:
        raise MotionFileError(
            f"{path}: no frame holds a known blendshape, pose or gaze channel; expected ARKit "
            f"names such as 'jawOpen' under 'blendshapes'."
        )

    if fps is None and "fps" in document:
        fps = _number(document["fps"], f"{path}: 'fps'")
        if fps <= 0:
            raise MotionFileError(f"{path}: 'fps' must be positive, got {fps}.")
    if fps is None:
        if not has_times:
            raise MotionFileError(f"{path}: has no 'fps' and no per-frame 'time_s'; pass fps.")
        fps = _infer_fps(times_s, path, [f"frame {i}" for i in range(len(frames))])
    return MotionSequence(fps, arrays["pose"], arrays["blendshapes"], arrays["gaze"])


def _infer_fps(times_s: np.ndarray, path: Path, row_names: Sequence[object]) -> float:
    """The frame rate of evenly spaced frame times, snapped to the value the writer meant.

    Times written with 5 decimals are off by up to 5e-6 s each, so the span is known to
    1e-5 s: an integer rate, an NTSC rate (n * 1000/1001) or a rate with up to 3 decimals
    that lies within that error is taken as exact.
    """
    if len(times_s) < 2:
        raise MotionFileError(f"{path}: one frame is not enough to infer the frame rate; pass fps.")
    steps = np.diff(times_s)
    if np.any(steps <= 0):
        bad = int(np.argmax(steps <= 0)) + 1
        raise MotionFileError(
            f"{path}: time_s must increase from frame to frame; it does not at "
            f"{_row_label(row_names[bad])}."
        )
    span_s = float(times_s[-1] - times_s[0])
    estimate = (len(times_s) - 1) / span_s
    # Times must sit on a regular grid (to a tenth of a frame); a variable-rate file would
    # otherwise play back warped.
    grid = times_s[0] + np.arange(len(times_s)) / estimate
    worst = int(np.argmax(np.abs(times_s - grid)))
    if abs(times_s[worst] - grid[worst]) > 0.1 / estimate:
        raise MotionFileError(
            f"{path}: time_s is not evenly spaced ({_row_label(row_names[worst])} is at "
            f"{times_s[worst]:.5f} s, {grid[worst]:.5f} s expected at {estimate:.3f} fps); "
            "resample to a fixed rate or pass fps."
        )
    tolerance = estimate * 1.1e-5 / span_s + 1e-9
    candidates = (
        round(estimate),
        round(estimate * 1.001) / 1.001,
        round(estimate, 1),
        round(estimate, 2),
        round(estimate, 3),
    )
    for candidate in candidates:
        if candidate > 0 and abs(candidate - estimate) <= tolerance:
            return float(candidate)
    return estimate


def _row_label(name: object) -> str:
    return f"line {name}" if isinstance(name, int) else str(name)
