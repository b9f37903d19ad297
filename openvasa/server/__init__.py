"""The web server (`openvasa serve`): a page, REST video jobs and live streams.

Needs the optional packages of `pip install 'openvasa[server]'` (FastAPI, uvicorn,
python-multipart, websockets).
"""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from typing import TYPE_CHECKING

from openvasa.errors import OpenvasaError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from openvasa.settings import ServerSettings


def _require_server_packages() -> None:
    missing = []
    for module in ("fastapi", "uvicorn", "python_multipart", "websockets"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise OpenvasaError(
            f"The server needs {', '.join(missing)}: pip install 'openvasa[server]'."
        )


def create_app(settings: ServerSettings | None = None, generator=None) -> FastAPI:
    """The ASGI application (see `openvasa.server.app`)."""
    _require_server_packages()
    from openvasa.server.app import create_app as _create_app

    return _create_app(settings, generator)


def serve(settings: ServerSettings | None = None) -> None:
    """Run the server until interrupted (uvicorn, one process)."""
    _require_server_packages()
    import uvicorn

    from openvasa.settings import ServerSettings

    settings = settings or ServerSettings()
    # uvicorn reports a busy port in its log and exits; check first for one clear line.
    try:
        with socket.create_server((settings.host, settings.port)) as probe:
            port = probe.getsockname()[1]  # the free port picked when asked for port 0
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        where = f"{settings.host}:{settings.port}"
        raise OpenvasaError(f"Cannot listen on {where}: {reason}.") from None
    settings = replace(settings, port=port)
    app = create_app(settings)
    print(f"openvasa: serving on http://{settings.host}:{settings.port}/ (Ctrl+C stops)")
    # No per-message deflate: the frames are JPEG, which zlib cannot shrink, and compressing
    # them on the event loop took half the server's CPU with 4 live streams.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        ws_per_message_deflate=False,
    )
