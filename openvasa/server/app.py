"""The openvasa web server: a page at `/`, REST video jobs and a live WebSocket stream.

    GET  /                          the web page (static/index.html)
    GET  /api/info                  frame rate, size, controls' ranges, limits
    POST /api/portraits             multipart `file`: an image with a face → {"id", …}
    GET  /api/portraits/{id}/preview.jpg   the portrait as framed for the video
    POST /api/jobs                  multipart `audio` + (`portrait` file or `portrait_id`)
                                    + controls (gaze_yaw, gaze_pitch, head_distance, emotion,
                                    emotion_strength, seed) → 202 {"id", "status", …}
    GET  /api/jobs/{id}             status, progress 0–1, error, video URL when done
    GET  /api/jobs/{id}/video       the MP4 (H.264 + AAC)
    DELETE /api/jobs/{id}           forget a job and its files
    WS   /api/stream                live: PCM audio in, JPEG frames + audio out (live.py)

Every error is JSON, {"error": "one clear sentence"}, with a fitting HTTP status.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from openvasa.errors import OpenvasaError
from openvasa.pipeline import Generator
from openvasa.server.jobs import JobManager
from openvasa.server.live import serve_stream
from openvasa.server.portraits import PortraitStore
from openvasa.server.state import ServerState, SessionSlots
from openvasa.server.uploads import UploadError, audio_suffix, check_no_video
from openvasa.settings import Controls, OutputSettings, ServerSettings
from openvasa.version import __version__

STATIC = resources.files("openvasa.server") / "static"


class BodyLimit:
    """ASGI middleware: refuse request bodies over `limit` bytes with a JSON 413, whether the
    client declares the length or not (the body is counted as it arrives)."""

    def __init__(self, app: Any, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = (
            f"The upload is larger than the limit of {self.limit / 1e6:g} MB; send a smaller file."
        )
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await JSONResponse({"error": message}, status_code=413)(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> dict:
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return event

        async def watched_send(event: dict) -> None:
            nonlocal started
            if event["type"] == "http.response.start":
                started = True
            await send(event)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _TooLarge:
            if not started:
                await JSONResponse({"error": message}, status_code=413)(scope, receive, send)


class _TooLarge(Exception):
    pass


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(
    settings: ServerSettings | None = None,
    generator: Generator | None = None,
) -> FastAPI:
    """The ASGI app. `generator`: share one (its analyser and settings); made if None."""
    settings = settings or ServerSettings()
    generator = generator or Generator(
        OutputSettings(max_audio_s=settings.max_audio_s, framing=settings.framing)
    )
    own_dir = settings.data_dir is None
    data_dir = Path(settings.data_dir or tempfile.mkdtemp(prefix="openvasa-server-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    state = ServerState(
        settings=settings,
        generator=generator,
        portraits=PortraitStore(data_dir / "portraits", generator, settings.max_portraits),
        jobs=JobManager(
            data_dir / "jobs",
            generator,
            workers=settings.job_workers,
            max_jobs=settings.max_jobs,
            ttl_s=settings.job_ttl_s,
        ),
        slots=SessionSlots(settings.max_sessions),
        # Threads for the blocking calls of live streams (three per stream) and uploads.
        limiter=anyio.CapacityLimiter(4 * settings.max_sessions + 8),
        data_dir=data_dir,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        # Analyse the sample portrait and load the compiled kernels now, not on first use.
        await anyio.to_thread.run_sync(state.portraits.add_sample)
        await anyio.to_thread.run_sync(state.portraits.prepared, "astronaut")
        yield
        state.jobs.shutdown()
        if own_dir:
            shutil.rmtree(data_dir, ignore_errors=True)

    app = FastAPI(title="openvasa", version=__version__, lifespan=lifespan, docs_url=None)
    app.state.openvasa = state
    app.add_middleware(BodyLimit, limit=int(settings.max_upload_mb * 1e6))

    @app.exception_handler(OpenvasaError)
    async def openvasa_error(request: Request, error: OpenvasaError) -> JSONResponse:
        return _error(str(error), getattr(error, "status", 422))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 404:
            return _error(f"Not found: {request.url.path}", 404)
        if error.status_code == 405:
            return _error(f"{request.method} is not allowed on {request.url.path}.", 405)
        return _error(str(error.detail), error.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(f"Invalid request: {where} {first.get('msg', '')}".strip(), 422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        return _error(f"Internal server error: {type(error).__name__}: {error}", 500)

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return Response((STATIC / "index.html").read_bytes(), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/api/info")
    async def info() -> dict:
        from openvasa.motion.emotion import EMOTIONS

        out = generator.settings
        return {
            "version": __version__,
            "fps": out.fps,
            "size": out.size,
            "sample_rate": 16000,
            "emotions": list(EMOTIONS),
            "gaze_yaw_deg": [-30, 30],
            "gaze_pitch_deg": [-25, 25],
            "head_distance": [0.5, 2.0],
            "samples": ["astronaut"],
            "limits": {
                "max_upload_mb": settings.max_upload_mb,
                "max_audio_s": settings.max_audio_s,
                "max_sessions": settings.max_sessions,
                "max_jobs": settings.max_jobs,
            },
            "live_sessions": state.slots.active,
        }

    @app.post("/api/portraits", status_code=201)
    async def upload_portrait(request: Request) -> dict:
        form = await _form(request)
        upload = _file(form, "file", "a portrait image")
        data = await upload.read()
        entry = await anyio.to_thread.run_sync(
            state.portraits.add_upload, data, upload.filename, limiter=state.limiter
        )
        return {
            "id": entry.id,
            "warnings": entry.warnings,
            "preview": f"/api/portraits/{entry.id}/preview.jpg",
        }

    @app.get("/api/portraits/{portrait_id}/preview.jpg")
    async def portrait_preview(portrait_id: str) -> Response:
        import cv2

        entry = await anyio.to_thread.run_sync(
            state.portraits.prepared, portrait_id, limiter=state.limiter
        )
        image = entry.portrait.latent.image
        ok, data = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
        return Response(data.tobytes(), media_type="image/jpeg")

    @app.post("/api/jobs", status_code=202)
    async def create_job(request: Request) -> dict:
        form = await _form(request)
        controls = _form_controls(form)
        audio_upload = _file(form, "audio", "an audio file")
        audio_data = await audio_upload.read()
        suffix = audio_suffix(audio_data, audio_upload.filename)
        job_id, folder = state.jobs.new_folder()
        try:
            audio_path = folder / f"audio{suffix}"
            audio_path.write_bytes(audio_data)
            del audio_data
            portrait_path = await _job_portrait(form, folder)
            audio = await anyio.to_thread.run_sync(
                _load_job_audio, audio_path, audio_upload.filename, settings.max_audio_s
            )
            job = state.jobs.submit(job_id, folder, portrait_path, audio, controls)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return {**job.as_json(), "url": f"/api/jobs/{job.id}"}

    async def _job_portrait(form: Any, folder: Path) -> Path:
        upload = form.get("portrait")
        if isinstance(upload, UploadFile):
            data = await upload.read()
            entry = await anyio.to_thread.run_sync(
                state.portraits.add_upload, data, upload.filename, limiter=state.limiter
            )
            return entry.path
        portrait_id = form.get("portrait_id")
        if not portrait_id:
            raise UploadError("Send a portrait: a `portrait` file or a `portrait_id`.", 400)
        return state.portraits.get(str(portrait_id)).path

    @app.get("/api/jobs/{job_id}")
    async def job_status(job_id: str) -> dict:
        return state.jobs.get(job_id).as_json()

    @app.get("/api/jobs/{job_id}/video")
    async def job_video(job_id: str) -> Response:
        job = state.jobs.get(job_id)
        if job.status != "done":
            raise UploadError(f"The video is not ready: the job is {job.status}.", 409)
        return FileResponse(job.video, media_type="video/mp4", filename=f"openvasa-{job.id}.mp4")

    @app.delete("/api/jobs/{job_id}")
    async def delete_job(job_id: str) -> dict:
        state.jobs.delete(job_id)
        return {"id": job_id, "status": "deleted"}

    @app.websocket("/api/stream")
    async def stream(websocket: WebSocket) -> None:
        await serve_stream(websocket, state)

    return app


async def _form(request: Request) -> Any:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise UploadError("Send the files as multipart/form-data.", 415)
    try:
        return await request.form(max_files=4, max_fields=20)
    except _TooLarge:
        raise
    except Exception as error:  # noqa: BLE001 — a malformed body is the client's error
        raise UploadError(f"The form could not be read: {error}", 400) from None


def _file(form: Any, field: str, what: str) -> UploadFile:
    upload = form.get(field)
    if not isinstance(upload, UploadFile):
        raise UploadError(f"Send {what} in the form field `{field}`.", 400)
    return upload


def _form_controls(form: Any) -> Controls:
    """Controls from form fields; absent fields keep their defaults."""

    def number(name: str, default: float) -> float:
        value = form.get(name)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UploadError(f"Field `{name}` must be a number, not {value!r}.", 422) from None

    emotion = str(form.get("emotion") or "neutral").strip().lower()
    return Controls(
        gaze_deg=(number("gaze_yaw", 0.0), number("gaze_pitch", 0.0)),
        head_distance=number("head_distance", 1.0),
        emotion=emotion,
        emotion_strength=number("emotion_strength", 1.0),
        seed=int(number("seed", 0)),
    )


def _load_job_audio(path: Path, name: str | None, max_audio_s: float):
    from openvasa.audio import load_audio

    check_no_video(path, name)
    try:
        return load_audio(path, max_duration_s=max_audio_s)
    except OpenvasaError as error:
        # Messages name the stored file; the user knows it by the name they uploaded.
        raise UploadError(str(error).replace(str(path), name or "the audio")) from None
