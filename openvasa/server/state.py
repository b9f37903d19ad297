"""What the server holds while it runs: its settings, the generator, the stores of
portraits and jobs, and the count of live sessions. Both the HTTP routes (`app`) and the
live WebSocket (`live`) read it; neither imports the other for it."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import anyio

from openvasa.pipeline import Generator
from openvasa.server.jobs import JobManager
from openvasa.server.portraits import PortraitStore
from openvasa.settings import ServerSettings


class SessionSlots:
    """At most `limit` live sessions at once."""

    def __init__(self, limit: int):
        self.limit = limit
        self.active = 0
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        with self._lock:
            if self.active >= self.limit:
                return False
            self.active += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.active -= 1


@dataclass
class ServerState:
    settings: ServerSettings
    generator: Generator
    portraits: PortraitStore
    jobs: JobManager
    slots: SessionSlots
    limiter: anyio.CapacityLimiter
    data_dir: Path
