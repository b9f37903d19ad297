"""Video jobs: portrait + audio → MP4, run in worker threads with progress and download.

Each job has a folder `<data_dir>/jobs/<id>/` (the id is random hex made here) with the audio
as uploaded and the finished `video.mp4` (written to a temporary file and renamed when
complete). Jobs and their folders are removed `job_ttl_s` after they finish.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from openvasa.audio import Audio
from openvasa.errors import OpenvasaError
from openvasa.pipeline import Generator
from openvasa.server.uploads import UploadError
from openvasa.settings import Controls

_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Job:
    id: str
    folder: Path
    portrait_path: Path
    audio: Audio
    controls: Controls
    status: str = "queued"  # queued → running → done | failed
    frames_done: int = 0
    frames_total: int = 0
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None

    @property
    def video(self) -> Path:
        return self.folder / "video.mp4"

    def as_json(self) -> dict:
        total = self.frames_total
        return {
            "id": self.id,
            "status": self.status,
            "progress": 1.0
            if self.status == "done"
            else (self.frames_done / total if total else 0.0),
            "frames_done": self.frames_done,
            "frames_total": total,
            "duration_s": round(self.audio.duration_s, 3),
            "error": self.error,
            "video": f"/api/jobs/{self.id}/video" if self.status == "done" else None,
        }


class JobManager:
    """Runs at most `workers` jobs at once and holds at most `max_jobs` unfinished ones."""

    def __init__(
        self, root: Path, generator: Generator, *, workers: int, max_jobs: int, ttl_s: float
    ):
        self.root = root
        self.generator = generator
        self.max_jobs = max_jobs
        self.ttl_s = ttl_s
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="video-job")
        root.mkdir(parents=True, exist_ok=True)

    def new_folder(self) -> tuple[str, Path]:
        job_id = uuid.uuid4().hex
        folder = self.root / job_id
        folder.mkdir()
        return job_id, folder

    def submit(
        self, job_id: str, folder: Path, portrait_path: Path, audio: Audio, controls: Controls
    ) -> Job:
        self.expire()
        with self._lock:
            unfinished = sum(j.status in ("queued", "running") for j in self._jobs.values())
            if unfinished >= self.max_jobs:
                shutil.rmtree(folder, ignore_errors=True)
                raise UploadError(
                    f"The server is busy with {unfinished} video jobs (the limit); try again "
                    "in a minute.",
                    429,
                )
            job = Job(job_id, folder, portrait_path, audio, controls)
            self._jobs[job_id] = job
        self._pool.submit(self._run, job)
        return job

    def get(self, job_id: str) -> Job:
        if not _ID.match(job_id or ""):
            raise UploadError(f"Job id {job_id!r} is not valid.", 404)
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise UploadError(f"There is no job {job_id!r} (finished jobs expire).", 404)
        return job

    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        if job.status == "running":
            raise UploadError("The job is running; delete it once it has finished.", 409)
        with self._lock:
            self._jobs.pop(job_id, None)
        job.status = "deleted"
        shutil.rmtree(job.folder, ignore_errors=True)

    def expire(self) -> None:
        """Remove jobs that finished more than `ttl_s` ago, with their files."""
        now = time.time()
        with self._lock:
            old = [j for j in self._jobs.values() if j.finished and now - j.finished > self.ttl_s]
            for job in old:
                del self._jobs[job.id]
        for job in old:
            shutil.rmtree(job.folder, ignore_errors=True)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, job: Job) -> None:
        if job.status != "queued":
            return  # deleted while queued
        job.status = "running"

        def progress(done: int, total: int) -> None:
            job.frames_done, job.frames_total = done, total

        try:
            c = job.controls
            self.generator.generate(
                job.portrait_path,
                job.audio,
                job.video,
                progress=progress,
                gaze_deg=c.gaze_deg,
                head_distance=c.head_distance,
                emotion=c.emotion,
                emotion_strength=c.emotion_strength,
                seed=c.seed,
            )
            job.status = "done"
        except OpenvasaError as error:
            job.error = str(error).replace(str(job.portrait_path), "the portrait")
            job.status = "failed"
        except Exception as error:  # noqa: BLE001 — reported to the user through the job
            job.error = f"Internal error while making the video: {error}"
            job.status = "failed"
        finally:
            job.finished = time.time()
