"""The web server: page, uploads checked by content, video jobs, live WebSocket, limits."""

import asyncio
import io
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")

from starlette.testclient import TestClient  # noqa: E402

from openvasa.audio import Audio, save_wav  # noqa: E402
from openvasa.server import create_app  # noqa: E402
from openvasa.server.live import unpack_frame  # noqa: E402
from openvasa.settings import Controls, ServerSettings  # noqa: E402
from openvasa.timing import frame_count  # noqa: E402


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def _wav(samples: np.ndarray) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.wav"
        save_wav(Audio(samples, 16000), path)
        return path.read_bytes()


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> ServerSettings:
    return ServerSettings(
        max_upload_mb=2.0,
        max_audio_s=20.0,
        max_sessions=2,
        data_dir=str(tmp_path_factory.mktemp("server")),
        catch_up=False,  # frames compared with Generator.live_motion, whatever the timing
    )


@pytest.fixture(scope="module")
def client(settings, generator):
    with TestClient(create_app(settings, generator)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def speech_wav(speech) -> bytes:
    return _wav(speech.audio.samples[: 2 * 16000])


def test_page_static_files_and_info(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for element in (
        'id="portrait-file"',
        'id="sample-astronaut"',
        'id="audio-file"',
        'id="record"',
        'id="gaze-yaw"',
        'id="gaze-pitch"',
        'id="head-distance"',
        'id="emotion"',
        'id="start"',
        'id="stop"',
        'id="view"',
        'id="make-video"',
        'id="download"',
    ):
        assert element in page.text
    for name in ("app.js", "style.css", "capture-worklet.js"):
        assert client.get(f"/static/{name}").status_code == 200
    info = client.get("/api/info").json()
    assert info["fps"] == 25 and info["size"] == 512 and info["sample_rate"] == 16000
    assert "happy" in info["emotions"] and info["limits"]["max_sessions"] == 2


def test_portrait_upload_is_checked_by_content(client, astronaut):
    # A real image under a misleading name is accepted; its name is never a path.
    reply = client.post("/api/portraits", files={"file": ("../../notes.txt", _png(astronaut))})
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert len(body["id"]) == 32
    preview = client.get(body["preview"])
    image = cv2.imdecode(np.frombuffer(preview.content, np.uint8), cv2.IMREAD_COLOR)
    assert preview.headers["content-type"] == "image/jpeg" and image.shape == (512, 512, 3)

    reply = client.post("/api/portraits", files={"file": ("face.jpg", b"<html>not an image")})
    assert reply.status_code == 415
    assert reply.json() == {
        "error": "'face.jpg' is not a portrait image: send a JPEG, PNG, WebP, TIFF, BMP or "
        "GIF file."
    }
    gradient = np.tile(np.linspace(0, 255, 256, dtype=np.uint8)[None, :, None], (256, 1, 3))
    reply = client.post("/api/portraits", files={"file": ("sky.png", _png(gradient))})
    assert reply.status_code == 422
    assert "No face" in reply.json()["error"] and "sky.png" in reply.json()["error"]


def test_errors_come_back_as_json(client, settings):
    assert client.get("/nowhere").json() == {"error": "Not found: /nowhere"}
    assert client.get("/api/jobs/0123456789abcdef0123456789abcdef").status_code == 404
    reply = client.get("/api/jobs/..%2F..%2Fetc%2Fpasswd")
    assert reply.status_code == 404 and "error" in reply.json()
    reply = client.get("/api/jobs/.passwd")
    assert reply.status_code == 404 and "Job id '.passwd' is not valid." == reply.json()["error"]
    reply = client.get("/api/portraits/..%2Fjobs/preview.jpg")
    assert reply.status_code == 404 and "error" in reply.json()
    reply = client.post("/api/jobs", content=b"{}", headers={"content-type": "application/json"})
    assert reply.status_code == 415 and "multipart/form-data" in reply.json()["error"]
    reply = client.post("/api/jobs", files={"other": ("a.wav", b"RIFF")})
    assert reply.status_code == 400 and "`audio`" in reply.json()["error"]
    big = b"\0" * int(2.5e6)
    reply = client.post("/api/portraits", files={"file": ("big.png", big)})
    assert reply.status_code == 413 and "limit of 2 MB" in reply.json()["error"]
    # Without a declared length the body is counted as it arrives.
    reply = client.post(
        "/api/portraits",
        content=iter([big[:1_000_000], big[1_000_000:]]),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert reply.status_code == 413
    assert client.delete("/").status_code == 405 and "error" in client.delete("/").json()


def test_video_job_end_to_end(client, speech_wav, tmp_path):
    from openvasa.io.video import probe_media

    reply = client.post(
        "/api/jobs",
        files={"audio": ("hello.wav", speech_wav)},
        data={"portrait_id": "astronaut", "emotion": "happy", "gaze_yaw": "5", "seed": "2"},
    )
    assert reply.status_code == 202, reply.text
    job = reply.json()
    assert job["status"] in ("queued", "running") and job["url"] == f"/api/jobs/{job['id']}"
    deadline = time.monotonic() + 180
    while job["status"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = client.get(f"/api/jobs/{job['id']}").json()
    assert job["status"] == "done", job
    assert job["progress"] == 1.0 and job["frames_done"] == job["frames_total"] == 50
    video = client.get(job["video"])
    assert video.headers["content-type"] == "video/mp4"
    path = tmp_path / "job.mp4"
    path.write_bytes(video.content)
    info = probe_media(path)
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert info.n_frames == frame_count(2.0, 25.0)
    assert client.delete(f"/api/jobs/{job['id']}").json()["status"] == "deleted"
    assert client.get(job["video"]).status_code == 404


def test_job_inputs_are_checked(client, astronaut, speech_wav, tmp_path):
    from openvasa.io.video import VideoWriter

    def post(audio: bytes, name="voice.wav", **fields):
        data = {"portrait_id": "astronaut", **fields}
        return client.post("/api/jobs", files={"audio": (name, audio)}, data=data)

    reply = post(_png(astronaut), "voice.mp3")
    assert reply.status_code == 415 and "'voice.mp3' is not an audio file" in reply.json()["error"]
    with VideoWriter(
        tmp_path / "clip.mp4", fps=25, size=(64, 64), audio=Audio(np.zeros(8000), 16000)
    ) as writer:
        for _ in range(12):
            writer.write(np.full((64, 64, 3), 128, np.uint8))
    reply = post((tmp_path / "clip.mp4").read_bytes(), "clip.m4a")
    assert reply.status_code == 415 and "is a video" in reply.json()["error"]
    reply = post(_wav(np.zeros(16000, np.float32)), "quiet.wav")
    assert reply.status_code == 422 and "'quiet.wav' contains only silence" in reply.json()["error"]
    noise = np.random.default_rng(0).normal(0, 0.1, 25 * 16000).astype(np.float32)
    reply = post(_wav(noise), "long.wav")
    assert reply.status_code == 422 and "longer than the limit of 20 s" in reply.json()["error"]
    reply = post(speech_wav, gaze_yaw="99")
    assert reply.status_code == 422 and "Gaze 99,0 is out of range" in reply.json()["error"]
    reply = post(speech_wav, head_distance="far")
    assert reply.status_code == 422 and "`head_distance` must be a number" in reply.json()["error"]
    reply = post(speech_wav, emotion="bored")
    assert reply.status_code == 422 and "Unknown emotion 'bored'" in reply.json()["error"]
    reply = post(speech_wav, portrait_id="0" * 32)
    assert reply.status_code == 404 and "no portrait" in reply.json()["error"]
    reply = client.post("/api/jobs", files={"audio": ("a.wav", speech_wav)})
    assert reply.status_code == 400 and "Send a portrait" in reply.json()["error"]


def _no_live_sessions(client) -> int:
    """Wait (up to 30 s) until sessions of earlier tests are released; returns how many are
    left. A session ends a moment after its client leaves."""
    deadline = time.monotonic() + 30
    while client.get("/api/info").json()["live_sessions"] and time.monotonic() < deadline:
        time.sleep(0.05)
    return client.get("/api/info").json()["live_sessions"]


def _receive_stream(ws) -> tuple[list, dict]:
    frames = []
    while True:
        message = ws.receive()
        if message.get("bytes") is not None:
            frames.append(unpack_frame(message["bytes"]))
        else:
            return frames, json.loads(message["text"])


def test_live_stream_over_websocket_matches_offline(client, generator, portrait, speech):
    assert _no_live_sessions(client) == 0
    samples = speech.audio.samples[: 3 * 16000]
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with client.websocket_connect("/api/stream") as ws:
        ws.send_json({"type": "start", "portrait": "astronaut", "seed": 3, "emotion": "happy"})
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["fps"] == 25 and ready["size"] == [512, 512]
        data = pcm.tobytes()
        for i in range(0, len(data), 3200):
            ws.send_bytes(data[i : i + 3200])
        ws.send_json({"type": "end"})
        frames, end = _receive_stream(ws)
    n = frame_count(3.0, 25.0)
    assert end == {"type": "end", "frames": n, "audio_s": 3.0}
    assert [f[0] for f in frames] == list(range(n))
    assert [f[1] for f in frames] == pytest.approx([i / 25 for i in range(n)])
    played = np.concatenate([f[3] for f in frames])
    np.testing.assert_allclose(played[: len(pcm)], pcm, atol=1)
    offline = generator.live_motion(
        portrait, Audio(pcm.astype(np.float32) / 32768, 16000), Controls(seed=3, emotion="happy")
    )
    for i in (10, 40, 70):
        jpeg = cv2.imdecode(np.frombuffer(frames[i][2], np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        reference = generator.render_frame(portrait, offline.frame(i))
        assert np.abs(jpeg.astype(float) - reference).mean() < 3.0


def test_live_stream_messages_are_checked(client):
    assert _no_live_sessions(client) == 0
    with client.websocket_connect("/api/stream") as ws:
        ws.send_json({"type": "hello"})
        assert ws.receive_json() == {
            "type": "error",
            "message": 'The first message must be {"type": "start", "portrait": ID, …}.',
            "fatal": True,
        }
    with client.websocket_connect("/api/stream") as ws:
        ws.send_json({"type": "start", "portrait": "f" * 32})
        reply = ws.receive_json()
        assert reply["fatal"] and "There is no portrait" in reply["message"]
    with client.websocket_connect("/api/stream") as ws:
        ws.send_json({"type": "start", "gaze": [0, 90]})
        assert "Gaze 0,90 is out of range" in ws.receive_json()["message"]
    with client.websocket_connect("/api/stream") as ws:
        ws.send_json({"type": "start", "portrait": "astronaut"})
        assert ws.receive_json()["type"] == "ready"
        ws.send_json({"type": "controls", "emotion": "bored"})
        message = ws.receive()
        while message.get("bytes") is not None:  # idle frames may come first
            message = ws.receive()
        reply = json.loads(message["text"])
        assert reply["fatal"] is False and "Unknown emotion 'bored'" in reply["message"]
        ws.send_bytes(b"\x00\x01\x02")
        frames, reply = _receive_stream(ws)
        assert reply["fatal"] and "even number of bytes" in reply["message"]


def test_live_session_limit(client):
    assert _no_live_sessions(client) == 0
    with client.websocket_connect("/api/stream") as first:
        first.send_json({"type": "start"})
        assert first.receive_json()["type"] == "ready"
        with client.websocket_connect("/api/stream") as second:
            second.send_json({"type": "start"})
            assert second.receive_json()["type"] == "ready"
            with client.websocket_connect("/api/stream") as third:
                reply = third.receive_json()
                assert reply["type"] == "error"
                assert "already runs 2 live streams (the limit)" in reply["message"]


def test_client_leaving_mid_stream_frees_its_session(client, speech):
    assert _no_live_sessions(client) == 0
    pcm = (np.clip(speech.audio.samples, -1, 1) * 32767).astype("<i2").tobytes()
    with client.websocket_connect("/api/stream") as ws:
        ws.send_json({"type": "start"})
        assert ws.receive_json()["type"] == "ready"
        for i in range(0, len(pcm), 6400):  # faster than the server renders, never reading
            ws.send_bytes(pcm[i : i + 6400])
        assert client.get("/api/info").json()["live_sessions"] == 1
    assert _no_live_sessions(client) == 0


# --- a real server on loopback -----------------------------------------------------------------


@pytest.fixture(scope="module")
def live_server(settings, generator):
    from openvasa.server.background import BackgroundServer

    app = create_app(ServerSettings(max_sessions=3, data_dir=settings.data_dir), generator)
    with BackgroundServer(app) as server:
        yield server.port


def _wait_until_no_live_sessions(port: int, timeout_s: float = 15.0) -> None:
    """A stream's slot is freed after its client leaves, once the session has closed on the
    server's threads: the next test must not find the last one's still held."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info") as response:
            if json.loads(response.read())["live_sessions"] == 0:
                return
        if time.monotonic() > deadline:
            raise AssertionError("live sessions of earlier tests never closed")
        time.sleep(0.05)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS")


def test_idle_stream_keeps_the_face_alive(live_server):
    """No audio at all: frames still come, in real time, with blinks and head motion."""
    import websockets

    async def run():
        uri = f"ws://127.0.0.1:{live_server}/api/stream"
        async with websockets.connect(uri, max_size=2**22) as ws:
            await ws.send(json.dumps({"type": "start", "seed": 1}))
            assert json.loads(await ws.recv())["type"] == "ready"
            frames = []
            while len(frames) < 40:
                message = await asyncio.wait_for(ws.recv(), timeout=10)
                frames.append(unpack_frame(message))
        return frames

    frames = asyncio.run(run())
    assert [f[0] for f in frames] == list(range(40))
    assert all(not f[3].any() for f in frames)  # the audio is silence
    images = [cv2.imdecode(np.frombuffer(f[2], np.uint8), cv2.IMREAD_GRAYSCALE) for f in frames]
    change = [np.abs(a.astype(int) - b).mean() for a, b in zip(images, images[1:], strict=False)]
    assert min(change) > 0.05  # never a frozen frame


def test_concurrent_streams_on_loopback_keep_memory_flat(live_server, speech):
    """Three streams at once, each pushing 4 s of speech as fast as the server takes it."""
    import websockets

    pcm = (np.clip(speech.audio.samples[: 4 * 16000], -1, 1) * 32767).astype("<i2")
    data = pcm.tobytes()
    rss: list[float] = []

    async def stream(seed: int) -> tuple[int, dict]:
        uri = f"ws://127.0.0.1:{live_server}/api/stream"
        async with websockets.connect(uri, max_size=2**22) as ws:
            await ws.send(json.dumps({"type": "start", "seed": seed}))
            assert json.loads(await ws.recv())["type"] == "ready"

            async def send():
                for i in range(0, len(data), 1280):
                    await ws.send(data[i : i + 1280])
                await ws.send(json.dumps({"type": "end"}))

            sender = asyncio.create_task(send())
            count = 0
            async for message in ws:
                if isinstance(message, str):
                    await sender
                    return count, json.loads(message)
                assert unpack_frame(message)[0] == count
                count += 1
        raise AssertionError("closed without an end message")

    async def watch(tasks):
        while not all(t.done() for t in tasks):
            rss.append(_rss_mb())
            await asyncio.sleep(0.1)

    _wait_until_no_live_sessions(live_server)

    async def run():
        tasks = [asyncio.create_task(stream(seed)) for seed in range(3)]
        await watch(tasks)
        return [t.result() for t in tasks]

    results = asyncio.run(run())
    for count, end in results:
        assert end["type"] == "end" and count == end["frames"] == frame_count(4.0, 25.0)
    # After the sessions have warmed up, memory stays level: no frame is kept.
    settled = rss[len(rss) // 4 :]
    assert max(settled) - settled[0] < 40.0, (settled[0], max(settled))


def test_serve_and_bench_commands_refuse_bad_settings(capsys):
    import socket

    from openvasa.cli import main

    assert main(["serve", "--port", "70000"]) == 1
    assert capsys.readouterr().err == "openvasa: error: Port 70000 must lie in 0-65535.\n"
    assert main(["serve", "--max-sessions", "0"]) == 1
    assert "max_sessions must be at least 1" in capsys.readouterr().err
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    assert capsys.readouterr().err == (
        f"openvasa: error: Cannot listen on 127.0.0.1:{port}: Address already in use.\n"
    )
    assert main(["bench", "--stream", "--streams", "0"]) == 1
    assert "--streams and --load-streams must lie in 1-16" in capsys.readouterr().err
