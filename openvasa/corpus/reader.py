"""Reading a corpus that `openvasa corpus build` wrote: one clip at a time."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from openvasa.audio import Audio
from openvasa.errors import OpenvasaError
from openvasa.latent.motion import MotionSequence


@dataclass
class CorpusClip:
    """One clip: its record from the manifest (conditions, text, augmentation, phonemes), the
    augmented audio, the teacher's motion and the Whisper features ((T50, 512) float32, or None
    when the corpus was built without them)."""

    record: dict
    audio: Audio
    motion: MotionSequence
    whisper: np.ndarray | None


def read_manifest(folder: str | os.PathLike[str]) -> dict:
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise OpenvasaError(f"{folder} is not a corpus folder (it has no manifest.json).")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise OpenvasaError(f"{path} is not valid JSON ({error.msg}).") from None
    if manifest.get("format") != "openvasa-corpus":
        raise OpenvasaError(f"{path} is not an openvasa corpus manifest.")
    return manifest


def iter_corpus_clips(
    folder: str | os.PathLike[str], progress: Callable[[int, int], None] | None = None
) -> Iterator[CorpusClip]:
    """Every clip of the corpus in `folder`, shard by shard."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    fps = float(manifest["spec"]["fps"])
    total = manifest["clips"]
    done = 0
    for shard in manifest["shards"]:
        with np.load(folder / shard["file"]) as arrays:
            data = {name: arrays[name] for name in arrays.files}
        for record in shard["clips"]:
            a0, m0, w0 = record["audio_start"], record["motion_start"], record["whisper_start"]
            motion_rows = slice(m0, m0 + record["n_motion"])
            whisper = None
            if "whisper" in data:
                whisper = data["whisper"][w0 : w0 + record["n_whisper"]].astype(np.float32)
            yield CorpusClip(
                record,
                Audio(data["audio"][a0 : a0 + record["n_audio"]].astype(np.float32) / 32767, 16000),
                MotionSequence(
                    fps,
                    data["pose"][motion_rows],
                    data["blendshapes"][motion_rows],
                    data["gaze"][motion_rows],
                ),
                whisper,
            )
            done += 1
            if progress is not None:
                progress(done, total)
