"""Portraits the server has analysed, kept ready for live streams and video jobs.

Each portrait lives in its own folder `<data_dir>/portraits/<id>/` (the id is random hex made
here) holding the uploaded file; the prepared `Portrait` (face mesh, latent, renderer) is
kept in memory for the most recently used `max_portraits`, and prepared again from the file
when needed after that.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from openvasa.errors import OpenvasaError
from openvasa.pipeline import Generator
from openvasa.render.portrait import Portrait
from openvasa.server.uploads import UploadError, image_suffix

_ID = re.compile(r"^[0-9a-f]{32}$|^astronaut$")


@dataclass
class PortraitEntry:
    id: str
    path: Path
    warnings: list[str] = field(default_factory=list)
    portrait: Portrait | None = None


class PortraitStore:
    """Uploaded portraits by id; `prepared(id)` gives the analysed `Portrait`."""

    def __init__(self, root: Path, generator: Generator, max_prepared: int):
        self.root = root
        self.generator = generator
        self.max_prepared = max_prepared
        self._entries: OrderedDict[str, PortraitEntry] = OrderedDict()
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)

    def add_sample(self) -> PortraitEntry:
        """The public-domain astronaut portrait that scikit-image ships, id 'astronaut'."""
        from PIL import Image
        from skimage import data

        folder = self.root / "astronaut"
        folder.mkdir(exist_ok=True)
        path = folder / "portrait.png"
        if not path.exists():
            Image.fromarray(data.astronaut()).save(path)
        entry = PortraitEntry("astronaut", path)
        with self._lock:
            self._entries["astronaut"] = entry
        return entry

    def add_upload(self, data: bytes, name: str | None) -> PortraitEntry:
        """Check that `data` is an image with a face, store it and prepare it."""
        suffix = image_suffix(data, name)
        portrait_id = uuid.uuid4().hex
        folder = self.root / portrait_id
        folder.mkdir()
        path = folder / f"portrait{suffix}"
        path.write_bytes(data)
        entry = PortraitEntry(portrait_id, path)
        try:
            self._prepare(entry, label=name)
        except OpenvasaError:
            path.unlink(missing_ok=True)
            folder.rmdir()
            raise
        with self._lock:
            self._entries[portrait_id] = entry
            self._entries.move_to_end(portrait_id)
            self._forget_old()
        return entry

    def get(self, portrait_id: str) -> PortraitEntry:
        if not _ID.match(portrait_id or ""):
            raise UploadError(f"Portrait id {portrait_id!r} is not valid.", 404)
        with self._lock:
            entry = self._entries.get(portrait_id)
            if entry is not None:
                self._entries.move_to_end(portrait_id)
        if entry is None:
            raise UploadError(f"There is no portrait {portrait_id!r}; upload it again.", 404)
        return entry

    def prepared(self, portrait_id: str) -> PortraitEntry:
        """The entry with its Portrait analysed (prepared now if it was let go)."""
        entry = self.get(portrait_id)
        if entry.portrait is None:
            self._prepare(entry)
            with self._lock:
                self._forget_old()
        return entry

    def _prepare(self, entry: PortraitEntry, label: str | None = None) -> None:
        try:
            portrait = self.generator.prepare_portrait(entry.path)
        except OpenvasaError as error:
            # Messages name the stored file; the user knows it by the name they uploaded.
            message = str(error).replace(str(entry.path), label or "the portrait")
            message = message.replace(entry.path.name, label or "the portrait")
            raise UploadError(message) from None
        entry.portrait = portrait
        entry.warnings = list(portrait.warnings)

    def _forget_old(self) -> None:
        """Let go of prepared portraits beyond the most recent `max_prepared` (files stay)."""
        prepared = [e for e in self._entries.values() if e.portrait is not None]
        for entry in prepared[: max(0, len(prepared) - self.max_prepared)]:
            entry.portrait = None
