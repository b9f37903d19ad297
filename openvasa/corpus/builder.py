"""`openvasa corpus build`: a synthetic multilingual talking corpus made by the teacher.

Each clip: text in one language (openvasa.corpus.text) spoken by eSpeak NG with a random voice
variant, rate and pitch; sped up or slowed down (phoneme times follow); the teacher's motion at
`fps` from the clean speech and its phoneme times, under random conditions (main gaze, head
distance, emotion and strength, seed); then the audio augmented (EQ, room, noise, level) and
encoded by Whisper-base at 50 Hz.

Layout of the corpus folder:

    manifest.json          the spec, every shard and every clip's conditions and offsets
    shard_00000.npz        audio (int16, 16 kHz), whisper (float16, (T50, 512)),
                           pose (T25, 6), blendshapes (T25, 52), gaze (T25, 2) (float32),
                           all clips of the shard concatenated; offsets in the manifest
    shard_00000.json       the shard's own record (the manifest is rebuilt from these)

The corpus is a function of its spec alone: shard i's clips come from a generator seeded with
(seed, i), and each shard is built in a fresh worker process, since eSpeak NG carries state from
one utterance to the next. Shards are written to a temporary file and renamed, so an interrupted
build resumes where it stopped: finished shards are kept, the rest are built.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from openvasa.errors import OpenvasaError

FORMAT_VERSION = 1
VOICE_VARIANTS = (None, "f1", "f2", "f3", "f4", "f5", "m1", "m2", "m3", "m4", "m5", "m6", "m7")
EMOTION_WEIGHTS = {"neutral": 0.4, "happy": 0.2, "sad": 0.13, "angry": 0.12, "surprised": 0.15}
MAX_CLIP_S = 14.0
# Silence before and after each utterance (uniform ranges, seconds).
PAUSE_BEFORE_S = (0.05, 1.5)
PAUSE_AFTER_S = (0.3, 2.5)


class CorpusError(OpenvasaError):
    """The corpus settings or folder cannot be used."""


@dataclass(frozen=True)
class CorpusSpec:
    """What to build. hours: speech to make; langs: eSpeak NG language codes, used in turn;
    seed: the whole corpus follows from it; fps: motion frame rate; shard_minutes: speech per
    shard (the unit of parallel work and of resuming); whisper: also store Whisper features;
    pauses: put silence before and after each utterance (see `PAUSE_BEFORE_S`)."""

    hours: float
    langs: tuple[str, ...] = ("en", "de", "fr", "es", "it", "ja")
    seed: int = 0
    fps: float = 25.0
    shard_minutes: float = 10.0
    whisper: bool = True
    pauses: bool = True

    def __post_init__(self) -> None:
        if not (self.hours > 0 and math.isfinite(self.hours)):
            raise CorpusError(f"--hours must be a positive number, not {self.hours:g}.")
        if not self.langs:
            raise CorpusError("Give at least one language with --langs, e.g. en,de,fr.")
        if not 0.05 <= self.shard_minutes <= 120:
            raise CorpusError("--shard-minutes must lie between 0.05 and 120.")
        if not 20 <= self.fps <= 60:
            raise CorpusError(f"Motion frame rate {self.fps:g} is not supported: use 20 to 60.")

    @property
    def n_shards(self) -> int:
        return math.ceil(self.hours * 60 / self.shard_minutes - 1e-9)

    def shard_seconds(self, index: int) -> float:
        total = self.hours * 3600
        return min(self.shard_minutes * 60, total - index * self.shard_minutes * 60)


@dataclass
class BuildReport:
    out: Path
    spec: CorpusSpec
    built_shards: int
    kept_shards: int
    speech_s: float
    clips: int
    bytes: int
    wall_s: float
    cpu_s: float
    workers: int
    shard_files: list[str] = field(default_factory=list)

    @property
    def hours_per_cpu_hour(self) -> float:
        return self.speech_s / max(self.cpu_s, 1e-9)

    def summary(self) -> str:
        hours = self.speech_s / 3600
        size_per_hour = self.bytes / max(hours, 1e-9) / 1e6
        lines = [
            f"corpus {self.out}: {self.clips} clips, {hours:.3f} h of speech in "
            f"{self.spec.n_shards} shards ({self.kept_shards} kept, {self.built_shards} built)",
            f"size {self.bytes / 1e6:.1f} MB, {size_per_hour:.0f} MB per hour of speech",
        ]
        if self.built_shards:
            lines.append(
                f"built in {self.wall_s:.1f} s with {self.workers} workers: "
                f"{self.hours_per_cpu_hour:.1f} hours of corpus per CPU-hour"
            )
        return "\n".join(lines)


# --- one clip ---------------------------------------------------------------------------------
def _conditions(rng: np.random.Generator, lang: str) -> dict:
    emotions = list(EMOTION_WEIGHTS)
    emotion = str(rng.choice(emotions, p=list(EMOTION_WEIGHTS.values())))
    variant = VOICE_VARIANTS[int(rng.integers(len(VOICE_VARIANTS)))]
    return {
        "lang": lang,
        "voice_variant": variant,
        "rate_wpm": int(rng.integers(125, 215)),
        "pitch": int(rng.integers(25, 80)),
        "emotion": emotion,
        "emotion_strength": 0.0
        if emotion == "neutral"
        else float(np.round(rng.uniform(0.3, 1), 2)),
        "gaze_deg": [
            float(np.round(np.clip(rng.normal(0, 7), -25, 25), 1)),
            float(np.round(np.clip(rng.normal(0, 4), -15, 15), 1)),
        ],
        "head_distance": float(np.round(rng.uniform(0.7, 1.6), 2)),
        "seed": int(rng.integers(2**31)),
    }


def _make_clip(spec: CorpusSpec, lang: str, rng: np.random.Generator, encoder) -> dict:
    from openvasa.audio import Audio, SpeechClip, synthesize_speech
    from openvasa.corpus.augment import apply_augmentation, change_speed, draw_augmentation
    from openvasa.corpus.text import utterance
    from openvasa.latent.motion import MotionFrame
    from openvasa.motion.teacher import TeacherEngine
    from openvasa.settings import Controls

    conditions = _conditions(rng, lang)
    text = utterance(lang, rng)
    speech = synthesize_speech(
        text,
        lang=lang,
        voice_variant=conditions["voice_variant"],
        rate_wpm=conditions["rate_wpm"],
        pitch=conditions["pitch"],
    )
    samples = speech.audio.samples[: int(MAX_CLIP_S * speech.audio.sample_rate)]
    phonemes = [p for p in speech.phonemes if p.start_s < MAX_CLIP_S]
    augmentation = draw_augmentation(rng)
    samples, phonemes = change_speed(samples, phonemes, augmentation.speed)
    if spec.pauses:
        # Silence around the utterance: a generator trained on speech alone never learns to
        # close the mouth and blink through a long pause.
        before, after = rng.uniform(*PAUSE_BEFORE_S), rng.uniform(*PAUSE_AFTER_S)
        paused = SpeechClip(Audio(samples, speech.audio.sample_rate), phonemes)
        paused = paused.with_silence(before, after)
        samples, phonemes = paused.audio.samples, paused.phonemes
    clean = Audio(samples, speech.audio.sample_rate)
    start = MotionFrame.neutral()
    start.pose[5] = 1.0 / conditions["head_distance"]  # scale relative to the default framing
    controls = Controls(
        gaze_deg=tuple(conditions["gaze_deg"]),
        head_distance=conditions["head_distance"],
        emotion=conditions["emotion"],
        emotion_strength=conditions["emotion_strength"] or 1.0,
        seed=conditions["seed"],
    )
    if conditions["emotion"] == "neutral":
        controls = Controls(
            gaze_deg=controls.gaze_deg,
            head_distance=controls.head_distance,
            seed=controls.seed,
        )
    motion = TeacherEngine().generate(clean, spec.fps, start, controls, phonemes=phonemes)
    heard = apply_augmentation(clean.samples, augmentation, rng)
    features = encoder.features(heard) if encoder is not None else None
    return {
        "text": text,
        "conditions": conditions,
        "augmentation": augmentation.as_dict(),
        "phonemes": [
            [p.phoneme, round(p.start_s, 4), round(p.end_s, 4), p.stress] for p in phonemes
        ],
        "audio": np.round(np.clip(heard, -1, 1) * 32767).astype(np.int16),
        "whisper": None if features is None else features.astype(np.float16),
        "motion": motion,
    }


# --- one shard (in its own process) ------------------------------------------------------------
def _shard_name(index: int) -> str:
    return f"shard_{index:05d}"


def build_shard(spec: CorpusSpec, index: int, out: Path) -> dict:
    """Build shard `index` into `out` and return its record (also written as JSON beside it)."""
    started = time.process_time()
    encoder = None
    if spec.whisper:
        from openvasa.audio.whisper import WhisperEncoder

        encoder = WhisperEncoder(threads=1)
    from openvasa.audio.speech import seed_speech

    seed_speech(spec.seed * 100003 + index)  # with a fresh process: the same voices every time
    rng = np.random.default_rng([spec.seed, index])
    target_s = spec.shard_seconds(index)
    clips, records = [], []
    seconds = 0.0
    audio_at = motion_at = whisper_at = 0
    while seconds < target_s - 1e-6:
        lang = spec.langs[(index * 7919 + len(clips)) % len(spec.langs)]
        clip = _make_clip(spec, lang, rng, encoder)
        motion = clip["motion"]
        n_audio, n_motion = len(clip["audio"]), len(motion)
        n_whisper = 0 if clip["whisper"] is None else len(clip["whisper"])
        duration = n_audio / 16000
        records.append(
            {
                "id": f"{_shard_name(index)}/{len(clips):04d}",
                "duration_s": round(duration, 4),
                "text": clip["text"],
                **clip["conditions"],
                "augmentation": clip["augmentation"],
                "phonemes": clip["phonemes"],
                "audio_start": audio_at,
                "n_audio": n_audio,
                "motion_start": motion_at,
                "n_motion": n_motion,
                "whisper_start": whisper_at,
                "n_whisper": n_whisper,
            }
        )
        audio_at, motion_at, whisper_at = (
            audio_at + n_audio,
            motion_at + n_motion,
            whisper_at + n_whisper,
        )
        clips.append(clip)
        seconds += duration
    arrays = {
        "audio": np.concatenate([c["audio"] for c in clips]),
        "pose": np.concatenate([c["motion"].pose for c in clips]),
        "blendshapes": np.concatenate([c["motion"].blendshapes for c in clips]),
        "gaze": np.concatenate([c["motion"].gaze for c in clips]),
    }
    if spec.whisper:
        arrays["whisper"] = np.concatenate([c["whisper"] for c in clips])
    name = _shard_name(index)
    tmp = out / f".{name}.npz.tmp"
    with tmp.open("wb") as file:
        np.savez(file, **arrays)
    os.replace(tmp, out / f"{name}.npz")
    record = {
        "name": name,
        "file": f"{name}.npz",
        "bytes": (out / f"{name}.npz").stat().st_size,
        "speech_s": round(seconds, 4),
        "clips": records,
        "cpu_s": round(time.process_time() - started, 3),
    }
    tmp = out / f".{name}.json.tmp"
    tmp.write_text(json.dumps(record, ensure_ascii=False))
    os.replace(tmp, out / f"{name}.json")
    return record


def _build_shard_task(args: tuple[dict, int, str]) -> dict:
    spec_fields, index, out = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    spec = CorpusSpec(**{**spec_fields, "langs": tuple(spec_fields["langs"])})
    return build_shard(spec, index, Path(out))


# --- the corpus --------------------------------------------------------------------------------
def _finished_shards(spec: CorpusSpec, out: Path) -> dict[int, dict]:
    done = {}
    for index in range(spec.n_shards):
        name = _shard_name(index)
        sidecar, data = out / f"{name}.json", out / f"{name}.npz"
        if not (sidecar.is_file() and data.is_file()):
            continue
        try:
            record = json.loads(sidecar.read_text())
        except json.JSONDecodeError:
            continue
        if record.get("bytes") == data.stat().st_size:
            done[index] = record
    return done


def _write_manifest(spec: CorpusSpec, out: Path, records: dict[int, dict]) -> None:
    shards = [records[i] for i in sorted(records)]
    manifest = {
        "format": "openvasa-corpus",
        "version": FORMAT_VERSION,
        "spec": asdict(spec),
        "complete": len(shards) == spec.n_shards,
        "speech_s": round(sum(s["speech_s"] for s in shards), 3),
        "clips": sum(len(s["clips"]) for s in shards),
        "bytes": sum(s["bytes"] for s in shards),
        "arrays": {
            "audio": "int16 PCM, 16 kHz mono",
            "whisper": "float16 (T, 512) Whisper-base encoder states at 50 Hz",
            "pose": "float32 (T, 6) yaw, pitch, roll (deg), tx, ty, scale at spec.fps",
            "blendshapes": "float32 (T, 52) ARKit coefficients",
            "gaze": "float32 (T, 2) yaw, pitch (deg)",
        },
        "shards": shards,
    }
    tmp = out / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
    os.replace(tmp, out / "manifest.json")


def build_corpus(
    spec: CorpusSpec, out: str | os.PathLike[str], *, workers: int = 0, progress: bool = True
) -> BuildReport:
    """Build (or finish building) the corpus of `spec` in folder `out`.

    workers: processes in parallel (0: one per CPU core). Shards already complete in `out`
    are kept. Raises CorpusError when `out` holds a corpus of another spec.
    """
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    if manifest_path.is_file():
        try:
            previous = json.loads(manifest_path.read_text()).get("spec")
        except json.JSONDecodeError:
            previous = None
        if previous is not None and previous != json.loads(json.dumps(asdict(spec))):
            raise CorpusError(
                f"{out} holds a corpus built with other settings ({previous}); "
                "use another --out folder."
            )
    for stale in out.glob(".*.tmp"):
        stale.unlink()
    records = _finished_shards(spec, out)
    kept = len(records)
    todo = [i for i in range(spec.n_shards) if i not in records]
    workers = workers or os.cpu_count() or 1
    workers = max(1, min(workers, len(todo) or 1))
    _write_manifest(spec, out, records)
    started = time.perf_counter()
    cpu_s = 0.0
    bar = tqdm(
        total=round(sum(spec.shard_seconds(i) for i in todo)),
        unit="s",
        desc="corpus (s of speech)",
        disable=None if progress else True,
        leave=False,
        dynamic_ncols=True,
    )
    try:
        if todo:
            # A fresh process per shard: eSpeak NG's state then starts the same for every shard.
            context = multiprocessing.get_context("spawn")
            with context.Pool(workers, maxtasksperchild=1) as pool:
                tasks = [(asdict(spec), i, str(out)) for i in todo]
                for record in pool.imap_unordered(_build_shard_task, tasks):
                    index = int(record["name"].split("_")[1])
                    records[index] = record
                    cpu_s += record["cpu_s"]
                    _write_manifest(spec, out, records)
                    bar.update(round(spec.shard_seconds(index)))
    finally:
        bar.close()
    return BuildReport(
        out=out,
        spec=spec,
        built_shards=len(todo),
        kept_shards=kept,
        speech_s=sum(r["speech_s"] for r in records.values()),
        clips=sum(len(r["clips"]) for r in records.values()),
        bytes=sum(r["bytes"] for r in records.values()),
        wall_s=time.perf_counter() - started,
        cpu_s=cpu_s,
        workers=workers,
        shard_files=[records[i]["file"] for i in sorted(records)],
    )
