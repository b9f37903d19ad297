"""Live streaming: audio pushed as it arrives → talking-face frames as soon as it allows.

    session = generator.open_stream(portrait, seed=3)
    for chunk in microphone():                  # 16 kHz PCM, any chunk size
        for frame in session.push_audio(chunk):
            show(frame.image, frame.time_s)     # plus frame.audio, the sound it goes with
    for frame in session.end():
        show(frame.image, frame.time_s)
    session.close()

Frame i shows the moment i / fps of the stream. It is made once the audio up to
i / fps + `lookahead_s` has been pushed (the diffusion engine: 160 ms, two frames at a time;
the energy engine: 60 ms). While the stream keeps up, the motion does not depend on how the
audio is cut into pieces: the frames equal `Generator.live_motion` of the whole clip with the
same seed. A stream that falls behind catches up (`StreamSettings.catch_up`).

Stages run concurrently, joined by bounded queues (`StreamSettings.queue_frames` each):

    push_audio ─► [audio] ─► motion ─► [motion] ─► render ─► [frames] ─► encode ─► [out] ─► you

The motion thread measures prosody and makes motion frames; the render thread renders and
finishes each frame (`Generator.finish_frame`, where the provenance mark goes); the encode
thread makes JPEG when asked for. When a stage's output queue is full the stage waits, so a
fast producer or a slow consumer holds memory steady instead of growing it (back-pressure).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

import cv2
import numpy as np

from openvasa.audio.load import SAMPLE_RATE
from openvasa.cores import one_thread_per_call
from openvasa.errors import OpenvasaError
from openvasa.latent.motion import MotionFrame
from openvasa.render.portrait import Portrait
from openvasa.render.renderer import Renderer
from openvasa.settings import Controls, OutputSettings, StreamSettings


class StreamHost(Protocol):
    """What a session needs of the `Generator` that opened it (openvasa.pipeline, which
    imports this module, not the other way round)."""

    settings: OutputSettings

    def prepare_portrait(
        self, image: Any, *, head_distance: float, size: Any, framing: str | None
    ) -> Portrait: ...

    def finish_frame(self, frame: np.ndarray) -> np.ndarray: ...


# A changed head distance glides to its new value through two cascaded one-pole filters of
# this time constant (seconds): the camera eases in and out instead of starting with a jolt.
DISTANCE_GLIDE_S = 0.2
# Waiting steps of blocked stages, so that `close()` is noticed promptly (seconds).
_POLL_S = 0.05


class StreamError(OpenvasaError):
    """A live stream was used wrongly (bad audio, changed seed, use after close)."""


@dataclass
class StreamFrame:
    """One finished frame of a live stream.

    index: frame number from 0; time_s: index / fps, when it is shown from the stream's start.
    image: (H, W, 3) uint8 RGB (frame_format "rgb"), else None.
    jpeg: JPEG bytes (frame_format "jpeg"), else None.
    audio: (samples,) float32 16 kHz mono, the sound that plays while this frame shows
        (samples index·16000/fps up to (index+1)·16000/fps; silence after the audio's end).
    motion: the frame's motion latents (pose, ARKit blendshapes, gaze).
    audio_at: time.perf_counter() when the audio that completed this frame was pushed;
    ready_at: when the frame was finished (ready_at - audio_at is the frame's latency).
    """

    index: int
    time_s: float
    image: np.ndarray | None
    jpeg: bytes | None
    audio: np.ndarray
    motion: MotionFrame
    audio_at: float
    ready_at: float = 0.0


@dataclass
class _Work:
    """A frame on its way through the render and encode stages."""

    index: int
    motion: MotionFrame
    audio: np.ndarray
    head_distance: float
    audio_at: float
    image: np.ndarray | None = None


_END = object()  # sentinel that closes each queue in turn


class _Closed(Exception):
    """The session was closed while a stage waited."""


class StreamSession:
    """A live talking-face stream for one portrait. Make it with `Generator.open_stream`.

    Audio: `push_audio` takes 16 kHz mono PCM (bytes of little-endian int16, or an int16 or
    float array in [-1, 1]); other sample rates are resampled when `sample_rate` says so.
    Frames come back from `push_audio` and `end()` (frames finished so far), or from
    `next_frame`/`frames()` when another thread consumes them (then push with collect=False).
    Not for use from several producer threads at once.
    """

    def __init__(
        self,
        generator: StreamHost,
        portrait: Portrait,
        engine: Any,
        controls: Controls,
        settings: StreamSettings,
        source: str | os.PathLike[str] | np.ndarray | None = None,
    ):
        one_thread_per_call()  # the stages and other streams share the cores (openvasa.cores)
        self.generator = generator
        self.settings = settings
        self.fps = float(generator.settings.fps)
        self.controls = controls
        self.size = portrait.latent.framing.size
        self._source = source
        self.on_close: Callable[[], None] | None = None  # called once by close()
        if controls.head_distance != portrait.latent.framing.head_distance:
            self._check_can_reframe()
            portrait = generator.prepare_portrait(
                source,
                head_distance=controls.head_distance,
                size=self.size,
                framing=portrait.latent.framing.mode,
            )
            self._renderer = portrait.renderer
        else:
            # A session renders with its own Renderer: a renderer reuses its buffers, and
            # several sessions may share one prepared portrait.
            self._renderer = Renderer(portrait.latent)
        self._latent = portrait.latent
        self._renderer_distance = controls.head_distance
        self.engine_name = engine.name  # the motion engine this stream uses
        self._motion = engine.open(self.fps, portrait.latent.motion0, controls)
        # The camera distance shown, gliding to the requested one (render thread's state).
        self._distance = controls.head_distance
        self._distance_eased = controls.head_distance  # the first filter's output
        self._distance_glide = 1.0 - np.exp(-1.0 / (self.fps * DISTANCE_GLIDE_S))
        self._reframed: tuple[float, Renderer] | None = None
        self._reframe_lock = threading.Lock()
        self._reframe_wanted: float | None = None
        self._reframe_thread: threading.Thread | None = None

        # Warm up now rather than on the first audio: the first render loads the compiled
        # kernels, the first finish sets up the watermark, the first JPEG the encoder, the
        # first motion frame the FFT plans (the diffusion engine's first window loads the
        # Whisper encoder and runs the network once).
        warm = self._renderer.render(portrait.latent.motion0)
        self._zoom_buffer = np.empty_like(warm)
        generator.finish_frame(self._zoom_buffer)
        if settings.frame_format == "jpeg":
            self._encode_jpeg(warm)
        scratch = engine.open(self.fps, portrait.latent.motion0, controls)
        scratch.push(np.zeros(int((scratch.lookahead_s + 0.1) * SAMPLE_RATE), np.float32))

        self._resampler: Any = None
        self._resampler_rate: int | None = None
        self._play = np.zeros(0, np.float32)  # audio not yet handed out with a frame
        self._play_start = 0  # absolute sample index of _play[0]
        self.samples_pushed = 0
        self.frames_out = 0
        self._frames_made = 0
        self._distance_goal = controls.head_distance  # motion thread's state
        self._ended = False
        self._closed = threading.Event()
        self._error: BaseException | None = None
        depth = settings.queue_frames
        self._audio_q: queue.Queue = queue.Queue(maxsize=depth)
        self._motion_q: queue.Queue = queue.Queue(maxsize=depth)
        self._render_q: queue.Queue = queue.Queue(maxsize=depth)
        self._out_q: queue.Queue = queue.Queue(maxsize=depth)
        self._out_done = False
        self._threads = [
            threading.Thread(target=self._run, args=(stage,), name=f"stream-{name}", daemon=True)
            for name, stage in (
                ("motion", self._motion_stage),
                ("render", self._render_stage),
                ("encode", self._encode_stage),
            )
        ]
        for thread in self._threads:
            thread.start()

    # --- the producer's side ----------------------------------------------------------------
    @property
    def lookahead_s(self) -> float:
        """Audio needed past a frame's time before the frame can be made, in seconds."""
        return float(self._motion.lookahead_s)

    @property
    def audio_s(self) -> float:
        """Seconds of audio pushed so far (at 16 kHz)."""
        return self.samples_pushed / SAMPLE_RATE

    def push_audio(
        self, pcm: bytes | np.ndarray, sample_rate: int = SAMPLE_RATE, *, collect: bool = True
    ) -> list[StreamFrame]:
        """Queue a piece of audio; returns the frames finished so far (collect=True).

        pcm: bytes of 16-bit little-endian mono PCM, or a 1-D array (int16, or float in
        [-1, 1]). Frames follow as soon as the audio covers them; those not finished yet come
        from the next call, `end()` or `next_frame`. Blocks while the pipeline is full.
        With collect=False nothing is taken from the output: another thread must read frames
        (`next_frame`), or the pipeline stalls once full.
        """
        samples = self._new_samples(pcm, sample_rate)
        collected: list[StreamFrame] = []
        if len(samples):
            self.samples_pushed += len(samples)
            self._put_input(("audio", samples, time.perf_counter()), collected if collect else None)
        if collect:
            collected.extend(self.poll())
        return collected

    def push_audio_nowait(self, pcm: bytes | np.ndarray, sample_rate: int = SAMPLE_RATE) -> bool:
        """`push_audio(pcm, sample_rate, collect=False)` if the pipeline has room now: True
        when queued, False (nothing taken) when it would have to wait. For an event loop,
        which must not block: it pushes directly and hands only a full pipeline to a thread."""
        if self._audio_q.full():
            return False
        samples = self._new_samples(pcm, sample_rate)
        if len(samples):
            self.samples_pushed += len(samples)
            # The one producer found room, and only the motion stage takes from the queue.
            self._audio_q.put_nowait(("audio", samples, time.perf_counter()))
        return True

    def _new_samples(self, pcm: bytes | np.ndarray, sample_rate: int) -> np.ndarray:
        self._check_open()
        if self._ended:
            raise StreamError("The stream has ended; open a new one for more audio.")
        samples = self._as_samples(pcm, sample_rate)
        if len(samples) > self.settings.max_chunk_s * SAMPLE_RATE:
            raise StreamError(
                f"An audio chunk of {len(samples) / SAMPLE_RATE:.1f} s is longer than the "
                f"limit of {self.settings.max_chunk_s:g} s; push audio in smaller pieces."
            )
        return samples

    def push_silence(self, seconds: float, *, collect: bool = True) -> list[StreamFrame]:
        """Go on without audio for `seconds`: the face breathes, blinks and moves a little."""
        n = int(round(seconds * SAMPLE_RATE))
        frames: list[StreamFrame] = []
        step = int(self.settings.max_chunk_s * SAMPLE_RATE)
        for start in range(0, n, step):
            silence = np.zeros(min(step, n - start), np.float32)
            frames.extend(self.push_audio(silence, collect=collect))
        return frames

    def set_controls(self, **changes: Any) -> Controls:
        """Change gaze_deg, head_distance, emotion or emotion_strength from the audio pushed
        next on; the face glides to the new values over a few hundred milliseconds.
        Returns the new controls. Raises OpenvasaError for values out of range."""
        self._check_open()
        if "seed" in changes and changes["seed"] != self.controls.seed:
            raise StreamError("The seed is fixed when a stream opens; open a new stream.")
        unknown = set(changes) - set(Controls.__dataclass_fields__)
        if unknown:
            raise StreamError(f"Unknown control {sorted(unknown)[0]!r}.")
        if "gaze_deg" in changes:
            changes["gaze_deg"] = tuple(float(v) for v in changes["gaze_deg"])
        controls = replace(self.controls, **changes)
        if controls.head_distance != self.controls.head_distance:
            self._check_can_reframe()
            # Framing the photo afresh takes a while: start now, in the background.
            self._request_reframe(controls.head_distance)
        self.controls = controls
        self._put_input(("controls", controls, 0.0), None)
        return controls

    def end(self, *, collect: bool = True) -> list[StreamFrame]:
        """No more audio: make the remaining frames (over silence past the end).

        collect=True waits for every remaining frame and returns them; collect=False returns at
        once and the frames come from `next_frame` as usual.
        """
        self._check_open()
        if self._ended:
            raise StreamError("The stream has already ended.")
        self._ended = True
        collected: list[StreamFrame] = []
        self._flush_resampler(collected if collect else None)
        self._put_input(("end", None, time.perf_counter()), collected if collect else None)
        if collect:
            collected.extend(self.frames())
        return collected

    # --- the consumer's side ----------------------------------------------------------------
    def poll(self) -> list[StreamFrame]:
        """The frames finished so far, without waiting."""
        frames = []
        while True:
            try:
                frame = self.next_frame(timeout=0)
            except TimeoutError:
                return frames
            if frame is None:
                return frames
            frames.append(frame)

    def next_frame(self, timeout: float | None = None) -> StreamFrame | None:
        """The next finished frame; None once the stream has ended and every frame is out.

        Raises TimeoutError when no frame comes within `timeout` seconds, and the error of a
        failed stage if one failed.
        """
        if self._out_done:
            return None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._raise_failure()
            wait = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
            try:
                if wait > 0:
                    item = self._out_q.get(timeout=wait)
                else:
                    item = self._out_q.get_nowait()
            except queue.Empty:
                if self._closed.is_set() and self._error is None:
                    return None
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError("no frame yet") from None
                continue
            if item is _END:
                self._out_done = True
                self._raise_failure()
                return None
            self.frames_out += 1
            return item

    def frames(self) -> Iterator[StreamFrame]:
        """Every frame from here to the end of the stream (blocks while waiting for audio)."""
        while (frame := self.next_frame()) is not None:
            yield frame

    def close(self) -> None:
        """Stop the stages and let go of their memory. Safe to call more than once."""
        self._closed.set()
        release, self.on_close = self.on_close, None
        if release is not None:
            release()  # the engine's stream slot (Generator.open_stream)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5.0)

    def __enter__(self) -> StreamSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- input ---------------------------------------------------------------------------------
    def _as_samples(self, pcm: bytes | np.ndarray, sample_rate: int) -> np.ndarray:
        """float32 mono samples at 16 kHz from PCM bytes or an array."""
        if isinstance(pcm, (bytes, bytearray, memoryview)):
            data = bytes(pcm)
            if len(data) % 2:
                raise StreamError(
                    f"PCM audio must be 16-bit samples, an even number of bytes; got {len(data)}."
                )
            samples = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
        else:
            array = np.asarray(pcm)
            if array.ndim != 1:
                raise StreamError(f"Audio must be a 1-D array of samples, not shape {array.shape}.")
            if array.dtype == np.int16:
                samples = array.astype(np.float32) / 32768.0
            elif np.issubdtype(array.dtype, np.floating):
                samples = array.astype(np.float32)
                if not np.all(np.isfinite(samples)):
                    raise StreamError("The audio contains NaN or infinite values.")
                samples = np.clip(samples, -1.0, 1.0)
            else:
                raise StreamError(f"Audio must be int16 or float samples, not {array.dtype}.")
        sample_rate = int(sample_rate)
        if sample_rate == SAMPLE_RATE and self._resampler is None:
            return samples
        return self._resample(samples, sample_rate)

    def _resample(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """Streaming resampling to 16 kHz (libswresample keeps its filter state between calls)."""
        import av

        if not 8000 <= sample_rate <= 192000:
            raise StreamError(f"Sample rate {sample_rate} Hz is not supported (8-192 kHz).")
        if self._resampler is None:
            if self.samples_pushed:
                raise StreamError("The sample rate cannot change in the middle of a stream.")
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            self._resampler_rate = sample_rate
        elif sample_rate != self._resampler_rate:
            raise StreamError("The sample rate cannot change in the middle of a stream.")
        if not len(samples):
            return samples
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        frame.sample_rate = sample_rate
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)

    def _flush_resampler(self, collected: list[StreamFrame] | None) -> None:
        if self._resampler is None:
            return
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(None)]
        if out:
            tail = np.concatenate(out).astype(np.float32)
            self.samples_pushed += len(tail)
            self._put_input(("audio", tail, time.perf_counter()), collected)

    def _put_input(self, item: tuple, collected: list[StreamFrame] | None) -> None:
        """Queue for the motion stage; while it is full, take finished frames if collecting
        (so that a caller who also consumes can never wait on itself)."""
        while True:
            self._check_open()
            try:
                self._audio_q.put(item, timeout=_POLL_S if collected is None else 0.005)
                return
            except queue.Full:
                if collected is not None:
                    collected.extend(self.poll())

    def _check_open(self) -> None:
        self._raise_failure()
        if self._closed.is_set():
            raise StreamError("The stream is closed.")

    def _raise_failure(self) -> None:
        if self._error is not None:
            error = self._error
            if isinstance(error, OpenvasaError):
                raise error
            raise StreamError(f"The live stream failed: {error}") from error

    # --- the stages ----------------------------------------------------------------------------
    def _run(self, stage) -> None:
        try:
            stage()
        except _Closed:
            pass
        except BaseException as error:  # noqa: BLE001 — handed to the consumer, who raises it
            self._error = error
            self._closed.set()

    def _get(self, q: queue.Queue) -> Any:
        while True:
            if self._closed.is_set():
                raise _Closed
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                continue

    def _put(self, q: queue.Queue, item: Any) -> None:
        while True:
            if self._closed.is_set():
                raise _Closed
            try:
                q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _motion_stage(self) -> None:
        waiting: tuple | None = None  # an item taken from the queue while catching up
        while True:
            if waiting is not None:
                (kind, value, pushed_at), waiting = waiting, None
            else:
                kind, value, pushed_at = self._get(self._audio_q)
            if kind == "controls":
                self._motion.set_controls(value)
                self._distance_goal = value.head_distance
                continue
            if kind == "audio":
                behind = False
                if self.settings.catch_up:
                    # Audio waiting behind this piece: the stage is behind; take it all now.
                    pieces = [value]
                    while (more := self._next_waiting()) is not None:
                        if more[0] != "audio":
                            waiting = more
                            break
                        pieces.append(more[1])  # latency counted from the first piece
                    behind = len(pieces) > 1
                    value = np.concatenate(pieces) if behind else value
                self._play = np.concatenate([self._play, value])
                motion = self._motion.push(value, catch_up=behind)
            else:
                motion = self._motion.end()
            for j in range(len(motion)):
                self._put(self._motion_q, self._next_work(motion.frame(j), pushed_at))
            if kind == "end":
                self._put(self._motion_q, _END)
                return

    def _next_waiting(self) -> tuple | None:
        try:
            return self._audio_q.get_nowait()
        except queue.Empty:
            return None

    def _next_work(self, motion: MotionFrame, pushed_at: float) -> _Work:
        index = self._frames_made
        self._frames_made += 1
        first = int(round(index * SAMPLE_RATE / self.fps))
        last = int(round((index + 1) * SAMPLE_RATE / self.fps))
        audio = self._play[first - self._play_start : last - self._play_start]
        if len(audio) < last - first:
            audio = np.pad(audio, (0, last - first - len(audio)))
        drop = max(0, min(last - self._play_start, len(self._play)))
        self._play = self._play[drop:]
        self._play_start += drop
        return _Work(
            index,
            MotionFrame(motion.pose.copy(), motion.blendshapes.copy(), motion.gaze.copy()),
            audio.copy(),
            self._distance_goal,
            pushed_at,
        )

    def _render_stage(self) -> None:
        import numba

        # One thread for the compositing kernel: concurrent streams each asking for a team of
        # a thread per core oversubscribe the cores and spin-wait (numba's count is per thread).
        numba.set_num_threads(1)
        while True:
            work = self._get(self._motion_q)
            if work is _END:
                self._put(self._render_q, _END)
                return
            zoom = self._place_camera(work.head_distance)
            frame = self._renderer.render(work.motion)
            if zoom != 1.0:
                frame = self._zoom(frame, zoom)
            work.image = self.generator.finish_frame(frame).copy()
            self._put(self._render_q, work)

    def _encode_stage(self) -> None:
        jpeg = self.settings.frame_format == "jpeg"
        while True:
            work = self._get(self._render_q)
            if work is _END:
                self._put(self._out_q, _END)
                return
            encoded = self._encode_jpeg(work.image) if jpeg else None
            frame = StreamFrame(
                index=work.index,
                time_s=work.index / self.fps,
                image=None if jpeg else work.image,
                jpeg=encoded,
                audio=work.audio,
                motion=work.motion,
                audio_at=work.audio_at,
            )
            frame.ready_at = time.perf_counter()
            self._put(self._out_q, frame)

    def _encode_jpeg(self, image: np.ndarray) -> bytes:
        # cvtColor, not a reversed view: OpenCV copies a view of negative stride slowly
        # (0.7 ms for the conversion and encoding at 512², against 2.9 ms).
        ok, data = cv2.imencode(
            ".jpg",
            cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, self.settings.jpeg_quality],
        )
        if not ok:
            raise StreamError("JPEG encoding failed.")
        return data.tobytes()

    # --- head distance ---------------------------------------------------------------------
    # How a head-distance change is shown: the frame is rendered from a portrait framed at a
    # distance at least as far as the one shown, and magnified about the face centre to the
    # distance shown (head_distance scales the framing about that point). Magnifying never
    # needs pixels outside the framed photo. Nearer: glide in at once by magnifying, then
    # switch to the portrait framed at the new distance (sharp again). Farther: frame the
    # photo afresh first, switch to it at the same view, then glide out.

    def _check_can_reframe(self) -> None:
        if self._source is None:
            raise StreamError(
                "Changing head_distance needs the original photo: open the stream with "
                "open_stream(portrait, source=image, ...)."
            )

    def _place_camera(self, goal: float) -> float:
        """Advance the shown distance one frame towards `goal`; returns the magnification
        (≤ 1: the part of the rendered frame shown, about the face centre)."""
        with self._reframe_lock:
            ready = self._reframed
            if ready is not None and ready[0] >= self._distance - 1e-6:
                self._reframed = None
                self._renderer_distance, self._renderer = ready
                self._latent = self._renderer.latent
            elif ready is not None and ready[0] != goal:
                self._reframed = None  # framed for a distance no longer wanted
        aim = min(goal, self._renderer_distance)
        self._distance_eased += self._distance_glide * (aim - self._distance_eased)
        self._distance += self._distance_glide * (self._distance_eased - self._distance)
        if abs(self._distance - aim) < 1e-3 and abs(self._distance_eased - aim) < 1e-3:
            self._distance = self._distance_eased = aim
        return self._distance / self._renderer_distance

    def _zoom(self, frame: np.ndarray, zoom: float) -> np.ndarray:
        """The part of `frame` seen from `zoom` (< 1) times the distance it was framed at."""
        cx, cy = self._latent.framing.centre_px
        to_source = np.array([[zoom, 0.0, cx * (1 - zoom)], [0.0, zoom, cy * (1 - zoom)]])
        width, height = self.size
        cv2.warpAffine(
            frame,
            to_source,
            (width, height),
            dst=self._zoom_buffer,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        return self._zoom_buffer

    def _request_reframe(self, distance: float) -> None:
        """Frame the source photo afresh at `distance`, in the background."""
        with self._reframe_lock:
            self._reframe_wanted = distance
            if self._reframe_thread is not None and self._reframe_thread.is_alive():
                return  # the running one picks up the latest wish when it finishes
            self._reframe_thread = threading.Thread(
                target=self._reframe_worker, name="stream-reframe", daemon=True
            )
            self._reframe_thread.start()

    def _reframe_worker(self) -> None:
        while not self._closed.is_set():
            with self._reframe_lock:
                distance = self._reframe_wanted
                self._reframe_wanted = None
                if distance is None:
                    return
            try:
                portrait = self.generator.prepare_portrait(
                    self._source,
                    head_distance=distance,
                    size=self.size,
                    framing=self._latent.framing.mode,
                )
                portrait.renderer.render(portrait.latent.motion0)
            except OpenvasaError:
                return  # the stream goes on at the distance it has
            with self._reframe_lock:
                self._reframed = (distance, portrait.renderer)
