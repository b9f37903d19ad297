"""Run the server in a background thread of this process (tests, benchmarks, notebooks)."""

from __future__ import annotations

import threading
import time

from openvasa.errors import OpenvasaError


class BackgroundServer:
    """uvicorn serving `app` on `host` (a free port when port is 0) until `stop()`.

    with BackgroundServer(create_app()) as server:
        ...  # talk to the app at server.url (loopback only)
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, start_timeout_s: float = 60):
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="uvicorn", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + start_timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OpenvasaError(f"The server did not start on {host}:{port}.")
            time.sleep(0.02)
        self.host = host
        self.port = self._server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
