"""Statistics of facial motion, to compare engines, corpora and real video (`motion-stats`).

From a motion file (CSV/JSON as `--motion-out` writes), a video (faces tracked by the face
analyser and encoded by the latent space's MotionEncoder) or a corpus folder, it measures:

- blink rate (blinks per minute: eyeBlink rising through 0.5),
- ΔP: the mean change of head pose between adjacent frames, in degrees — the mean over yaw,
  pitch and roll of |angle(t+1) − angle(t)| (VASA-1's motion-intensity measure; real
  talking-head video at 25 fps: 0.41–0.51),
- head-pose ranges (5th–95th percentile of yaw, pitch, roll, relative to the median),
- the share of frames with the mouth open, in speech and in silence (speech from the audio's
  loudness when there is audio).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from openvasa.audio import Audio, prosody_features
from openvasa.errors import OpenvasaError
from openvasa.latent import topology as topo
from openvasa.latent.motion import MotionSequence

# The mouth counts as open when the lips part by more than about 1.5 % of the face width:
# jawOpen lowers the lower lip by about 0.17 face widths per unit, mouthClose cancels it on the
# lips, mouthFunnel parts the lips about a third as much as the jaw does, and the lips' own
# shapes (mouthLowerDown, mouthUpperUp …) part them further.
MOUTH_OPEN_APERTURE = 0.08
# Lips closed: inner-lip gap of the rendered mesh at most this share of the face width.
LIPS_CLOSED_GAP = 0.005
# A frame is speech when the audio's energy (0–1 relative to the clip's speech level) is above
# this; frames within SPEECH_BRIDGE_S of speech count as speech too (stop closures, short gaps).
SPEECH_ENERGY = 0.15
SPEECH_BRIDGE_S = 0.08

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
MOTION_SUFFIXES = (".csv", ".json")


@dataclass
class MotionStatistics:
    """Summary of one or more motion clips (see the module docstring for definitions)."""

    n_clips: int
    duration_s: float
    fps: float
    blinks_per_min: float
    delta_pose_deg: float
    yaw_range_deg: tuple[float, float]
    pitch_range_deg: tuple[float, float]
    roll_range_deg: tuple[float, float]
    mouth_open_in_speech: float | None
    mouth_open_in_silence: float | None
    speech_share: float | None
    extra: dict[str, float] = field(default_factory=dict)

    def table(self) -> str:
        """The statistics as aligned text lines."""

        def share(value: float | None) -> str:
            return "n/a (no audio)" if value is None else f"{100 * value:.1f} %"

        def span(values: tuple[float, float]) -> str:
            return f"{values[0]:+.1f} … {values[1]:+.1f}°"

        lines = [
            ("clips", f"{self.n_clips}"),
            ("duration", f"{self.duration_s:.1f} s at {self.fps:g} fps"),
            ("blink rate", f"{self.blinks_per_min:.1f} per minute"),
            ("ΔP (head pose change)", f"{self.delta_pose_deg:.3f}° per frame"),
            ("yaw range (5–95 %)", span(self.yaw_range_deg)),
            ("pitch range (5–95 %)", span(self.pitch_range_deg)),
            ("roll range (5–95 %)", span(self.roll_range_deg)),
            ("speech", share(self.speech_share)),
            ("mouth open in speech", share(self.mouth_open_in_speech)),
            ("mouth open in silence", share(self.mouth_open_in_silence)),
        ] + [(name, f"{value:.3f}") for name, value in self.extra.items()]
        width = max(len(name) for name, _ in lines)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in lines)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)


def count_blinks(eye_blink: np.ndarray, closed: float = 0.5, reopened: float = 0.3) -> int:
    """Number of blinks in an eyeBlink track (T,): closures through `closed`, each counted
    once until the lid opens again below `reopened`."""
    count, shut = 0, False
    for value in np.asarray(eye_blink, np.float64):
        if not shut and value >= closed:
            count, shut = count + 1, True
        elif shut and value < reopened:
            shut = False
    return count


def delta_pose(motion: MotionSequence) -> float:
    """ΔP: mean over frames and over yaw, pitch, roll of the absolute change between adjacent
    frames, in degrees per frame."""
    if len(motion) < 2:
        return 0.0
    return float(np.abs(np.diff(motion.pose[:, :3].astype(np.float64), axis=0)).mean())


def mouth_aperture(motion: MotionSequence) -> np.ndarray:
    """(T,) how far the lips part, in jawOpen units: the inner-lip gap that all the mouth's
    blendshapes make on the template face (`openvasa.motion.articulation.lip_gap`; mostly
    jawOpen − mouthClose + a third of mouthFunnel, and the lips' own raising and lowering)."""
    from openvasa.latent.motion import BLENDSHAPE_INDEX
    from openvasa.motion.articulation import lip_gap, lip_gap_per_unit

    per_jaw = lip_gap_per_unit()[BLENDSHAPE_INDEX["jawOpen"]]
    return (lip_gap(motion.blendshapes) / per_jaw).astype(np.float32)


def mouth_open(motion: MotionSequence) -> np.ndarray:
    """(T,) bool: the lips are apart."""
    return mouth_aperture(motion) > MOUTH_OPEN_APERTURE


def lip_gap(face_points_px: np.ndarray, face_width_px: float) -> float:
    """Gap between the inner lips at the middle of the mouth, in face widths, from a (468, 3)
    pixel mesh (e.g. `Renderer.face_points`): ≤ LIPS_CLOSED_GAP means the lips are closed;
    negative where they press into each other."""
    middle = slice(3, 8)
    upper = face_points_px[list(topo.LIPS_INNER_UPPER[middle]), 1]
    lower = face_points_px[list(topo.LIPS_INNER_LOWER[middle]), 1]
    return float((lower - upper).mean() / face_width_px)


def speech_frames(audio: Audio, fps: float, n_frames: int) -> np.ndarray:
    """(n_frames,) bool: the voice is sounding around each frame's time."""
    energy = prosody_features(audio, fps).energy
    loud = np.zeros(n_frames, bool)
    m = min(n_frames, len(energy))
    loud[:m] = energy[:m] > SPEECH_ENERGY
    bridge = max(int(round(SPEECH_BRIDGE_S * fps)), 0)
    if bridge:
        kernel = np.ones(2 * bridge + 1)
        loud = np.convolve(loud.astype(float), kernel, mode="same") > 0
    return loud


def speech_from_phonemes(
    spans_s: Iterable[tuple[float, float]], fps: float, n_frames: int
) -> np.ndarray:
    """(n_frames,) bool: a phoneme sounds at the frame's mid time, or the gap to the next is
    shorter than 2 · SPEECH_BRIDGE_S (a stop closure, not a pause)."""
    times = (np.arange(n_frames) + 0.5) / fps
    speech = np.zeros(n_frames, bool)
    spans = sorted(spans_s)
    for k, (start_s, end_s) in enumerate(spans):
        if k + 1 < len(spans) and spans[k + 1][0] - end_s < 2 * SPEECH_BRIDGE_S:
            end_s = spans[k + 1][0]
        speech |= (times >= start_s) & (times < end_s)
    return speech


@dataclass
class _Accumulator:
    clips: int = 0
    frames: int = 0
    seconds: float = 0.0
    blinks: int = 0
    pose_change: float = 0.0
    pose_steps: int = 0
    fps: set[float] = field(default_factory=set)
    angles: list[np.ndarray] = field(default_factory=list)
    speech_open: int = 0
    speech_total: int = 0
    silence_open: int = 0
    silence_total: int = 0
    with_audio: int = 0

    def add(self, motion: MotionSequence, speech: np.ndarray | None) -> None:
        self.clips += 1
        self.frames += len(motion)
        self.seconds += motion.duration_s
        self.fps.add(float(motion.fps))
        blink = np.maximum(motion.channel("eyeBlinkLeft"), motion.channel("eyeBlinkRight"))
        self.blinks += count_blinks(blink)
        if len(motion) > 1:
            self.pose_change += delta_pose(motion) * (len(motion) - 1)
            self.pose_steps += len(motion) - 1
        angles = motion.pose[:, :3].astype(np.float64)
        self.angles.append(angles - np.median(angles, axis=0))
        if speech is not None:
            self.with_audio += 1
            is_open = mouth_open(motion)
            self.speech_open += int((is_open & speech).sum())
            self.speech_total += int(speech.sum())
            self.silence_open += int((is_open & ~speech).sum())
            self.silence_total += int((~speech).sum())

    def result(self) -> MotionStatistics:
        if self.clips == 0 or self.frames == 0:
            raise OpenvasaError("There is no motion to measure.")
        angles = np.concatenate(self.angles)
        lo, hi = np.percentile(angles, [5, 95], axis=0)
        audio = self.with_audio == self.clips
        return MotionStatistics(
            n_clips=self.clips,
            duration_s=self.seconds,
            fps=self.fps.pop() if len(self.fps) == 1 else float("nan"),
            blinks_per_min=60.0 * self.blinks / max(self.seconds, 1e-9),
            delta_pose_deg=self.pose_change / max(self.pose_steps, 1),
            yaw_range_deg=(float(lo[0]), float(hi[0])),
            pitch_range_deg=(float(lo[1]), float(hi[1])),
            roll_range_deg=(float(lo[2]), float(hi[2])),
            mouth_open_in_speech=self.speech_open / self.speech_total
            if audio and self.speech_total
            else None,
            mouth_open_in_silence=self.silence_open / self.silence_total
            if audio and self.silence_total
            else None,
            speech_share=self.speech_total / max(self.speech_total + self.silence_total, 1)
            if audio
            else None,
        )


def motion_statistics(
    clips: Iterable[tuple[MotionSequence, Audio | None]],
) -> MotionStatistics:
    """Statistics over clips of (motion, audio or None); rates and shares are pooled over all
    frames."""
    total = _Accumulator()
    for motion, audio in clips:
        speech = speech_frames(audio, motion.fps, len(motion)) if audio is not None else None
        total.add(motion, speech)
    return total.result()


ProgressFn = Callable[[int, int], None]


def video_motion(
    path: str | os.PathLike[str], progress: ProgressFn | None = None
) -> tuple[MotionSequence, Audio | None]:
    """Track the face through a video and encode every frame's motion latents.

    The first frame with a face defines the person (identity, eyes, framing); frames where the
    face is lost repeat the last motion. Returns the motion at the video's frame rate and its
    audio track (16 kHz) or None.
    """
    from openvasa.face.detect import default_analyzer
    from openvasa.face.framing import map_points, plan_framing
    from openvasa.io.video import iter_video_frames, probe_media, read_audio_track
    from openvasa.latent.face_latent import MotionEncoder, encode_portrait

    info = probe_media(path)  # raises OpenvasaError for a file without video
    fps = float(info.fps) if info.fps else 25.0
    analyzer = default_analyzer()
    analyzer.reset_tracking()
    encoder = framing = None
    frames = []
    total = int(info.n_frames or 0)
    for index, frame in enumerate(iter_video_frames(path)):
        detection = analyzer.detect_video_frame(frame)
        if detection is not None:
            if encoder is None:
                framing = plan_framing(detection.landmarks, 512, 1.0)
                points = map_points(framing, detection.landmarks)
                mask = np.ones(framing.size[::-1], np.float32)
                blank = np.zeros((*framing.size[::-1], 3), np.uint8)
                latent = encode_portrait(blank, mask, points, framing)
                encoder = MotionEncoder(latent.identity, latent.eyes, framing, latent.basis)
            frames.append(encoder.encode(map_points(framing, detection.landmarks)))
        elif frames:
            frames.append(frames[-1])
        if progress is not None:
            progress(index + 1, max(total, index + 1))
    analyzer.reset_tracking()
    if not frames:
        raise OpenvasaError(f"No face was found in any frame of {Path(path).name}.")
    motion = MotionSequence(
        fps,
        np.stack([f.pose for f in frames]),
        np.stack([f.blendshapes for f in frames]),
        np.stack([f.gaze for f in frames]),
    )
    audio = None
    if info.audio_codec is not None:
        samples, rate = read_audio_track(path)
        if len(samples):
            audio = Audio.from_array(samples, rate)
    return motion, audio


def statistics_of(
    path: str | os.PathLike[str],
    *,
    audio: str | os.PathLike[str] | None = None,
    progress: ProgressFn | None = None,
) -> MotionStatistics:
    """Statistics of a motion file (with an optional audio file), a video, or a corpus folder
    (every clip in its manifest)."""
    from openvasa.audio import load_audio
    from openvasa.io.motion_file import read_motion

    path = Path(path)
    if not path.exists():
        raise OpenvasaError(f"{path} does not exist.")
    if path.is_dir():
        from openvasa.corpus.reader import iter_corpus_clips

        # Speech is where the phonemes are: the stored audio is augmented (noise at 0 dB SNR
        # would read as speech throughout).
        total = _Accumulator()
        for clip in iter_corpus_clips(path, progress=progress):
            spans = [(p[1], p[2]) for p in clip.record["phonemes"]]
            total.add(clip.motion, speech_from_phonemes(spans, clip.motion.fps, len(clip.motion)))
        return total.result()
    suffix = path.suffix.lower()
    if suffix in MOTION_SUFFIXES:
        motion = read_motion(path)
        clip_audio = load_audio(audio) if audio is not None else None
        return motion_statistics([(motion, clip_audio)])
    if suffix in VIDEO_SUFFIXES:
        motion, clip_audio = video_motion(path, progress)
        if audio is not None:
            clip_audio = load_audio(audio)
        return motion_statistics([(motion, clip_audio)])
    raise OpenvasaError(
        f"{path.name}: give a motion file (.csv, .json), a video ({', '.join(VIDEO_SUFFIXES)}) "
        "or a corpus folder."
    )
