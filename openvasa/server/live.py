"""The live WebSocket: PCM audio in, JPEG frames with their audio out, in real time.

Protocol on `/api/stream` (all JSON messages are text frames; errors end the connection):

    client → {"type": "start", "portrait": ID, "gaze": [yaw, pitch], "head_distance": D,
              "emotion": NAME, "emotion_strength": S, "seed": N}      (all but portrait optional)
    server → {"type": "ready", "fps": 25, "size": 512, "sample_rate": 16000, "lookahead_s": …}
    client → binary: 16-bit little-endian mono PCM (16 kHz, or the start message's
             "sample_rate"), any length up to 2 s a message
    client → {"type": "controls", …the fields of start but portrait and seed…}  (mid-stream)
    client → {"type": "end"}     no more audio: the server sends the remaining frames, then
    server → {"type": "end", "frames": N, "audio_s": T}
    server → binary frame: FRAME_HEADER (24 bytes: b"OVF1", uint32 index, float64 time_s,
             uint32 JPEG bytes J, uint32 audio samples A), then the JPEG, then A int16 samples
             (the 16 kHz audio that plays while this frame shows; silence when idle)
    server → {"type": "error", "message": "…"}

Frame i belongs at time i / fps of the stream. When no audio arrives for `idle_after_s`, the
server goes on with silence at the pace of real time, so the face stays alive (breathing,
blinks, small head motion) and the stream's timeline keeps up with the clock.
"""

from __future__ import annotations

import asyncio
import json
import struct
from functools import partial
from typing import Any

import anyio
import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from openvasa.errors import OpenvasaError
from openvasa.server.state import ServerState
from openvasa.settings import StreamSettings
from openvasa.streaming import StreamFrame, StreamSession

FRAME_HEADER = struct.Struct("<4sIdII")
FRAME_MAGIC = b"OVF1"
MAX_CHUNK_S = 2.0
START_TIMEOUT_S = 30.0
CONTROL_FIELDS = ("gaze", "head_distance", "emotion", "emotion_strength")


def pack_frame(frame: StreamFrame) -> bytes:
    """One binary WebSocket message for a frame (see the module's docstring)."""
    jpeg = frame.jpeg or b""
    pcm = np.round(np.clip(frame.audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    header = FRAME_HEADER.pack(FRAME_MAGIC, frame.index, frame.time_s, len(jpeg), len(pcm) // 2)
    return header + jpeg + pcm


def unpack_frame(message: bytes) -> tuple[int, float, bytes, np.ndarray]:
    """(index, time_s, jpeg, int16 audio) from a frame message: what a client does."""
    magic, index, time_s, n_jpeg, n_audio = FRAME_HEADER.unpack_from(message)
    if magic != FRAME_MAGIC:
        raise ValueError("not an openvasa frame message")
    start = FRAME_HEADER.size
    jpeg = message[start : start + n_jpeg]
    audio = np.frombuffer(message, "<i2", count=n_audio, offset=start + n_jpeg)
    return index, time_s, jpeg, audio


def controls_from_message(message: dict[str, Any]) -> dict[str, Any]:
    """Control keyword arguments from a start or controls message (types checked here,
    ranges by `Controls`)."""
    out: dict[str, Any] = {}
    try:
        if "gaze" in message:
            yaw, pitch = message["gaze"]
            out["gaze_deg"] = (float(yaw), float(pitch))
        if "head_distance" in message:
            out["head_distance"] = float(message["head_distance"])
        if "emotion" in message:
            out["emotion"] = str(message["emotion"]).strip().lower()
        if "emotion_strength" in message:
            out["emotion_strength"] = float(message["emotion_strength"])
        if "seed" in message:
            out["seed"] = int(message["seed"])
    except (TypeError, ValueError):
        raise OpenvasaError(
            "Controls must be numbers: gaze [yaw, pitch] in degrees, head_distance, "
            "emotion_strength, seed; emotion a name."
        ) from None
    return out


class _Closing(Exception):
    """The client asked for something the stream cannot do; the message goes back to it."""


async def serve_stream(websocket: WebSocket, state: ServerState) -> None:
    """Run one live session on an accepted WebSocket until it ends or the client leaves."""
    await websocket.accept()
    if not state.slots.acquire():
        await _fail(
            websocket,
            f"The server already runs {state.slots.limit} live streams (the limit); try again "
            "later.",
            1013,
        )
        return
    session: StreamSession | None = None
    try:
        session, sample_rate = await _open(websocket, state)
        await _run(websocket, state, session, sample_rate)
    except _Closing as error:
        await _fail(websocket, str(error))
    except OpenvasaError as error:
        await _fail(websocket, str(error))
    except WebSocketDisconnect:
        pass
    finally:
        try:
            if session is not None:
                # Shielded: when the connection is cancelled, the stream must still close.
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(session.close, limiter=state.limiter)
        finally:
            state.slots.release()


async def _open(websocket: WebSocket, state: ServerState) -> tuple[StreamSession, int]:
    try:
        with anyio.fail_after(START_TIMEOUT_S):
            text = await websocket.receive_text()
    except TimeoutError:
        raise _Closing("No start message within 30 s.") from None
    except KeyError:
        raise _Closing('The first message must be JSON text: {"type": "start", …}.') from None
    message = _parse(text)
    if message.get("type") != "start":
        raise _Closing('The first message must be {"type": "start", "portrait": ID, …}.')
    controls = controls_from_message(message)
    try:
        sample_rate = int(message.get("sample_rate", 16000))
    except (TypeError, ValueError):
        sample_rate = 0
    if not 8000 <= sample_rate <= 192000:
        raise _Closing("sample_rate must be a whole number of Hz from 8000 to 192000.")
    portrait_id = str(message.get("portrait") or "astronaut")
    entry = await anyio.to_thread.run_sync(
        state.portraits.prepared, portrait_id, limiter=state.limiter
    )
    settings = StreamSettings(
        frame_format="jpeg",
        jpeg_quality=state.settings.jpeg_quality,
        max_chunk_s=MAX_CHUNK_S,
        catch_up=state.settings.catch_up,
    )

    def open_session() -> StreamSession:
        return state.generator.open_stream(
            entry.portrait, source=entry.path, stream=settings, **controls
        )

    session = await anyio.to_thread.run_sync(open_session, limiter=state.limiter)
    await websocket.send_json(
        {
            "type": "ready",
            "fps": session.fps,
            "size": list(session.size),
            "sample_rate": 16000,
            "lookahead_s": session.lookahead_s,
            "warnings": entry.warnings,
        }
    )
    return session, sample_rate


def _parse(text: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except json.JSONDecodeError:
        raise _Closing("Messages in text must be JSON objects.") from None
    if not isinstance(message, dict):
        raise _Closing("Messages in text must be JSON objects.")
    return message


async def _run(
    websocket: WebSocket, state: ServerState, session: StreamSession, sample_rate: int
) -> None:
    settings = state.settings
    loop = asyncio.get_running_loop()
    # waiting_since: when the receiver began waiting for the client (None while it handles a
    # message, which may block on back-pressure: a slow server is not a silent client).
    clock = {"anchor": loop.time(), "last_audio": loop.time(), "ended": False}
    clock["waiting_since"] = loop.time()
    audio_in = {"seconds": 0.0}
    push_lock = asyncio.Lock()

    async def push(pcm: bytes | np.ndarray) -> None:
        async with push_lock:
            # Directly while the pipeline has room; a worker thread waits when it is full.
            # A thread trip for every 40 ms chunk cost the event loop more than the chunk.
            if not session.push_audio_nowait(pcm, sample_rate):
                await anyio.to_thread.run_sync(
                    lambda: session.push_audio(pcm, sample_rate, collect=False),
                    limiter=state.limiter,
                )

    async def receiver() -> None:
        while True:
            clock["waiting_since"] = loop.time()
            message = await websocket.receive()
            clock["waiting_since"] = None
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            if message.get("bytes") is not None:
                data = message["bytes"]
                audio_in["seconds"] += len(data) / (2.0 * sample_rate)
                if audio_in["seconds"] > settings.max_audio_s:
                    raise _Closing(
                        f"The stream's audio passed the limit of {settings.max_audio_s:g} s."
                    )
                clock["last_audio"] = loop.time()
                await push(data)
                continue
            request = _parse(message.get("text") or "")
            kind = request.get("type")
            if kind == "controls":
                unknown = set(request) - {"type", *CONTROL_FIELDS}
                if unknown:
                    raise _Closing(f"Unknown control {sorted(unknown)[0]!r}.")
                try:
                    changes = controls_from_message(request)
                    async with push_lock:
                        # Queued in order with the audio: may wait on back-pressure.
                        await anyio.to_thread.run_sync(
                            partial(session.set_controls, **changes), limiter=state.limiter
                        )
                except OpenvasaError as error:
                    # A bad slider value is reported; the stream goes on as it was.
                    await websocket.send_json(
                        {"type": "error", "message": str(error), "fatal": False}
                    )
            elif kind == "end":
                clock["ended"] = True
                async with push_lock:
                    await anyio.to_thread.run_sync(
                        lambda: session.end(collect=False), limiter=state.limiter
                    )
                return
            else:
                raise _Closing(f"Unknown message type {kind!r}: use controls or end.")

    async def keep_alive() -> None:
        """Silence at the pace of real time while the client sends no audio."""
        period = 1.0 / session.fps
        while not clock["ended"]:
            await asyncio.sleep(period)
            now = loop.time()
            if now - clock["last_audio"] > settings.max_idle_s:
                raise _Closing(f"No audio for {settings.max_idle_s:g} s; the stream ends.")
            waiting_since = clock["waiting_since"]
            if waiting_since is None or now - max(waiting_since, clock["last_audio"]) < (
                settings.idle_after_s
            ):
                continue
            behind = (now - clock["anchor"]) - session.audio_s
            if behind >= period and not clock["ended"]:
                await push(np.zeros(int(min(behind, 0.5) * sample_rate), np.float32))

    async def sender() -> None:
        while True:
            try:
                # A finished frame is taken directly; a worker thread waits for the next one.
                frame = session.next_frame(timeout=0)
            except TimeoutError:
                try:
                    frame = await anyio.to_thread.run_sync(
                        session.next_frame, 0.5, limiter=state.limiter
                    )
                except TimeoutError:
                    continue
            if frame is None:
                await websocket.send_json(
                    {"type": "end", "frames": session.frames_out, "audio_s": session.audio_s}
                )
                return
            await websocket.send_bytes(pack_frame(frame))

    # The sender finishes the session (after "end"); the receiver and keep-alive stop then.
    # An error in any of them ends all three and goes back to the client.
    send_task = asyncio.create_task(sender())
    pending = {send_task, asyncio.create_task(receiver()), asyncio.create_task(keep_alive())}
    try:
        while send_task in pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if (error := task.exception()) is not None:
                    raise error
    finally:
        for task in pending:
            task.cancel()
        # Close first: a push waiting on back-pressure returns only once the session closes.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(session.close, limiter=state.limiter)
            await asyncio.gather(*pending, return_exceptions=True)
    if websocket.application_state == WebSocketState.CONNECTED:
        await websocket.close(1000)


async def _fail(websocket: WebSocket, message: str, code: int = 1008) -> None:
    """Send the error as JSON and close, unless the client has gone already."""
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    try:
        await websocket.send_json({"type": "error", "message": message, "fatal": True})
        await websocket.close(code)
    except (WebSocketDisconnect, RuntimeError):
        pass
