"""Measure a real speaker's articulation on GRID and write the teacher's articulation table.

GRID audiovisual sentence corpus: Martin Cooke, Jon Barker, Stuart Cunningham and Xu Shao
(2006), J. Acoust. Soc. Am. 120(5):2421-2424, CC BY 4.0. Speaker 1 (train/s1) is measured;
the val/ speakers check that the shapes generalise.

Three steps, each reading what the one before wrote:

    # 1. phones: force-align each clip's transcript with PocketSphinx (pip install pocketsphinx)
    nice .venv/bin/python tools/measure_articulation.py align ../shared/grid \
        --out /work/data/articulation/phones.json
    # 2. targets: fit the per-sound mouth targets, the closures and the lead of the mouth to
    #    speaker 1's tracked motion (shards of `openvasa preprocess`, which name their clips),
    #    holding back the clips of the first shard (never trained on by the motion model either)
    nice .venv/bin/python tools/measure_articulation.py measure /work/data/grid/train \
        --phones /work/data/articulation/phones.json \
        --hold-back /work/data/grid/train/videos_0000_of_0001_0000.npz \
        --out openvasa/motion/articulation.json
    .venv/bin/python tools/measure_articulation.py show      # the table, per phoneme class
    # 3. check: the teacher's mouth from the aligned phones against the real mouth (the lip
    #    gap of the mesh, best lag within +-3 frames); --rendered N also renders N clips from
    #    their first frame and tracks them with the face mesh, as `openvasa eval` does
    nice .venv/bin/python tools/measure_articulation.py compare /work/data/grid/val \
        --phones /work/data/articulation/phones.json

The transcript of a clip is the word list of its .align file, or the sentence its name codes
(GRID's 51-word vocabulary, pronounced below in ARPAbet as the CMU dictionary gives each word;
letters as letter names).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openvasa.errors import OpenvasaError  # noqa: E402

# GRID's vocabulary: command, colour, preposition, letter (no w), digit, adverb.
GRID_PRONUNCIATIONS: dict[str, str] = {
    "bin": "B IH1 N", "lay": "L EY1", "place": "P L EY1 S", "set": "S EH1 T",
    "blue": "B L UW1", "green": "G R IY1 N", "red": "R EH1 D", "white": "W AY1 T",
    "at": "AE1 T", "by": "B AY1", "in": "IH1 N", "with": "W IH1 TH",
    "a": "EY1", "b": "B IY1", "c": "S IY1", "d": "D IY1", "e": "IY1", "f": "EH1 F",
    "g": "JH IY1", "h": "EY1 CH", "i": "AY1", "j": "JH EY1", "k": "K EY1", "l": "EH1 L",
    "m": "EH1 M", "n": "EH1 N", "o": "OW1", "p": "P IY1", "q": "K Y UW1", "r": "AA1 R",
    "s": "EH1 S", "t": "T IY1", "u": "Y UW1", "v": "V IY1", "x": "EH1 K S", "y": "W AY1",
    "z": "Z IY1", "zero": "Z IH1 R OW0", "one": "W AH1 N", "two": "T UW1",
    "three": "TH R IY1", "four": "F AO1 R", "five": "F AY1 V", "six": "S IH1 K S",
    "seven": "S EH1 V AH0 N", "eight": "EY1 T", "nine": "N AY1 N",
    "again": "AH0 G EH1 N", "now": "N AW1", "please": "P L IY1 Z", "soon": "S UW1 N",
}  # fmt: skip
ALIGN_UNITS_PER_S = 25_000.0  # GRID .align times


def read_words(align_path: Path) -> list[tuple[str, float, float]]:
    """(word, start_s, end_s) of a GRID .align file, silences left out."""
    words = []
    for line in align_path.read_text().split("\n"):
        parts = line.split()
        if len(parts) != 3:
            continue
        start, end, word = parts
        if word not in ("sil", "sp"):
            words.append((word, int(start) / ALIGN_UNITS_PER_S, int(end) / ALIGN_UNITS_PER_S))
    return words


_CODE_WORDS = (
    {"b": "bin", "l": "lay", "p": "place", "s": "set"},
    {"b": "blue", "g": "green", "r": "red", "w": "white"},
    {"a": "at", "b": "by", "i": "in", "w": "with"},
    None,  # the letter itself
    {
        "z": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five",
        "6": "six", "7": "seven", "8": "eight", "9": "nine",
    },
    {"a": "again", "n": "now", "p": "please", "s": "soon"},
)  # fmt: skip


def words_from_name(name: str) -> list[str]:
    """GRID's sentence from a clip's six-letter code: 'swwp2s' -> set white with p two soon."""
    if len(name) != 6:
        raise OpenvasaError(f"{name}: not a GRID sentence code (six letters).")
    words = []
    for letter, table in zip(name, _CODE_WORDS, strict=True):
        word = letter if table is None else table.get(letter)
        if word is None or word not in GRID_PRONUNCIATIONS:
            raise OpenvasaError(f"{name}: {letter!r} is no GRID word in that place.")
        words.append(word)
    return words


def transcript(video: Path) -> list[str]:
    """The clip's words: its .align file's, or else those its name spells."""
    align = video.with_suffix(".align")
    if align.is_file():
        return [w for w, _, _ in read_words(align)]
    return words_from_name(video.stem)


def _decoder(rate: int):
    try:
        from pocketsphinx import Decoder
    except ImportError as error:
        raise OpenvasaError(
            "Phone alignment needs PocketSphinx: pip install pocketsphinx"
        ) from error
    dictionary = tempfile.NamedTemporaryFile("w", suffix=".dict", delete=False)
    with dictionary:
        for word, phones in GRID_PRONUNCIATIONS.items():
            dictionary.write(f"{word} {''.join(c for c in phones if not c.isdigit())}\n")
    return Decoder(samprate=rate, bestpath=False, loglevel="FATAL", dict=dictionary.name)


def align_clip(video: Path, decoder_cache: dict) -> dict:
    """Force-align one clip: {'words': [[word, start_s, end_s]], 'phones': [[ARPAbet, start_s,
    end_s]]} from PocketSphinx (10 ms resolution), transcript from the .align file."""
    from openvasa.io.video import read_audio_track

    words = transcript(video)
    unknown = [w for w in words if w not in GRID_PRONUNCIATIONS]
    if unknown:
        raise OpenvasaError(f"{video.name}: words outside GRID's vocabulary: {unknown}")
    samples, rate = read_audio_track(video)
    if rate not in decoder_cache:
        decoder_cache[rate] = _decoder(rate)
    decoder = decoder_cache[rate]
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    decoder.set_align_text(" ".join(words))
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    decoder.set_alignment()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    out_words, out_phones = [], []
    step = 0.01  # PocketSphinx frames
    for word in decoder.get_alignment():
        if word.name.startswith("<") or word.name.startswith("["):
            continue
        out_words.append(
            [word.name, round(word.start * step, 3), round((word.start + word.duration) * step, 3)]
        )
        for phone in word:
            out_phones.append(
                [
                    phone.name,
                    round(phone.start * step, 3),
                    round((phone.start + phone.duration) * step, 3),
                ]
            )
    if [w[0] for w in out_words] != words:
        raise OpenvasaError(f"{video.name}: the alignment lost words")
    return {"words": out_words, "phones": out_phones}


def cmd_align(args: argparse.Namespace) -> int:
    root = Path(args.grid)
    videos = sorted(root.rglob("*.mp4"))
    if not videos:
        raise OpenvasaError(f"No GRID clips (*.mp4) under {root}.")
    out = Path(args.out)
    done = json.loads(out.read_text()) if out.is_file() else {}
    cache: dict = {}
    from tqdm import tqdm

    failures = 0
    for k, video in enumerate(tqdm(videos, desc="align", unit="clip")):
        key = str(video.relative_to(root).with_suffix(""))
        if key in done:
            continue
        try:
            done[key] = align_clip(video, cache)
        except OpenvasaError as error:
            failures += 1
            print(f"skipped: {error}", file=sys.stderr)
        if k % 100 == 99:
            _write_json(out, done)
    _write_json(out, done)
    print(f"{len(done)} clips aligned, {failures} skipped -> {out}")
    return 0


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    tmp.replace(path)


# --- the real mouth -------------------------------------------------------------------------
def read_real_motion(folders: list[Path]) -> tuple[dict[str, np.ndarray], float]:
    """Blendshapes (T, 52) of every clip in folders of `openvasa preprocess` shards, by the
    clip's source name without its suffix ('s1/bbaf2n'), and the frame rate."""
    from openvasa.motion.diffusion.model import MOTION_DIM

    shards = sorted(p for folder in folders for p in Path(folder).glob("*.npz"))
    if not shards:
        raise OpenvasaError(f"No shards (*.npz) in {folders}: run `openvasa preprocess` first.")
    clips: dict[str, np.ndarray] = {}
    fps = 25.0
    for shard in shards:
        with np.load(shard) as data:
            if "clip_names" not in data.files:
                raise OpenvasaError(f"{shard.name} does not name its clips (clip_names).")
            fps = float(data["fps"])
            motion = data["motion"]
            if motion.shape[1] != MOTION_DIM:
                raise OpenvasaError(f"{shard.name}: motion is not (T, {MOTION_DIM}).")
            starts = data["clip_starts"]
            for name, a, b in zip(
                data["clip_names"].astype(str), starts[:-1], starts[1:], strict=True
            ):
                clips[str(Path(name).with_suffix(""))] = motion[a:b, 6:58].astype(np.float64)
    return clips, fps


def clip_events(entry: dict):
    """PhonemeEvents (ARPAbet names, stress from GRID_PRONUNCIATIONS) of one aligned clip."""
    from openvasa.audio import PhonemeEvent

    dictionary = [p for word, _, _ in entry["words"] for p in GRID_PRONUNCIATIONS[word].split()]
    phones = entry["phones"]
    if [p.rstrip("012") for p in dictionary] != [p for p, _, _ in phones]:
        dictionary = [p for p, _, _ in phones]  # the aligner chose another pronunciation
    events = []
    for named, (_, start_s, end_s) in zip(dictionary, phones, strict=True):
        stress = int(named[-1]) if named[-1].isdigit() else 0
        events.append(PhonemeEvent(named.rstrip("012"), start_s, end_s, stress))
    return events


class Clip:
    """One aligned clip with its real mouth: everything the fit needs, computed once."""

    def __init__(self, key: str, entry: dict, real: np.ndarray, fps: float, video: Path):
        from openvasa.audio import Audio
        from openvasa.io.video import read_audio_track
        from openvasa.motion import teacher

        self.key, self.fps, self.video = key, fps, video
        self.events = clip_events(entry)
        samples, rate = read_audio_track(video)
        self.audio = Audio.from_array(samples, rate)
        self.real = real  # (T, 52)
        # Real frame i shows the face at i / fps (its presentation time).
        self.times = np.arange(len(real)) / fps
        self.voice = teacher._voice(self.audio, self.audio.duration_s)

    def segments(self, lead_s: float, rate_scale: float):
        """The teacher's coarticulation segments for this clip's phones, moved lead_s earlier,
        with every dominance decay rate scaled by rate_scale."""
        from dataclasses import replace

        from openvasa.motion import teacher
        from openvasa.motion.articulation import articulation

        # The teacher's dominances already carry the shipped table's scale.
        rate_scale = rate_scale / articulation().rate_scale

        events = teacher._check_phonemes(self.events, self.audio.duration_s)
        segments, _, _ = teacher._articulation(
            events, self.audio.duration_s, self.voice, 1.0, self.times
        )
        out = []
        for segment in segments:
            d = segment.dominance
            scaled = replace(
                d,
                anticipation_per_s=d.anticipation_per_s * rate_scale,
                carryover_per_s=d.carryover_per_s * rate_scale,
                lips_anticipation_per_s=(d.lips_anticipation_per_s or d.anticipation_per_s)
                * rate_scale,
            )
            out.append(
                replace(
                    segment,
                    start_s=segment.start_s - lead_s,
                    end_s=segment.end_s - lead_s,
                    dominance=scaled,
                )
            )
        return out


def sound_key(segment) -> str:
    """What the fit measures a segment as: its sound's IPA symbol, or 'sil'."""
    return "sil" if segment.sound is None or segment.sound.viseme == "sil" else segment.sound.symbol


def viseme_key(segment) -> str:
    """The coarser grouping: the segment's viseme."""
    return "sil" if segment.sound is None else segment.sound.viseme


def design(clip: Clip, keys: list[str], lead_s: float, rate_scale: float, key=sound_key):
    """(jaw, lips) design matrices (T, len(keys)): the weight of each sound's target in each
    frame, the jaw's scaled by the stress and loudness gain."""
    from openvasa.motion.visemes import coarticulation_weights

    segments = clip.segments(lead_s, rate_scale)
    jaw_w, lip_w = coarticulation_weights(segments, clip.times)
    column = np.array([keys.index(key(s)) for s in segments])
    gain = np.array([s.jaw_gain for s in segments])
    jaw = np.zeros((len(clip.times), len(keys)))
    lips = np.zeros_like(jaw)
    np.add.at(jaw.T, column, (jaw_w * gain).T)
    np.add.at(lips.T, column, lip_w.T)
    return jaw, lips


def fit_targets(
    clips: list[Clip],
    keys: list[str],
    lead_s: float,
    rate_scale: float,
    ridge: float = 5.0,
    prior: np.ndarray | None = None,
    key=sound_key,
) -> np.ndarray:
    """(len(keys), 52) absolute targets that best reproduce the clips' real mouths through
    the teacher's coarticulation, by least squares per channel (the symmetric pairs fitted as
    one, then set on both sides), each target pulled towards `prior` (len(keys), 52) as much
    as `ridge` frames of data would pull it: a sound heard rarely keeps close to its prior."""
    from openvasa.motion.articulation import FIT_CHANNELS, channel_columns

    prior = np.zeros((len(keys), 52)) if prior is None else prior
    jaw_rows, lip_rows, reals = [], [], []
    for clip in clips:
        jaw, lips = design(clip, keys, lead_s, rate_scale, key)
        jaw_rows.append(jaw)
        lip_rows.append(lips)
        reals.append(clip.real)
    jaw_x, lip_x, real = np.concatenate(jaw_rows), np.concatenate(lip_rows), np.concatenate(reals)
    targets = np.zeros((len(keys), 52))
    for name in FIT_CHANNELS:
        columns = channel_columns(name)
        y = real[:, columns].mean(1)
        x = jaw_x if name == "jawOpen" else lip_x
        gram = x.T @ x + ridge * np.eye(len(keys))
        solution = np.linalg.solve(gram, x.T @ y + ridge * prior[:, columns[0]])
        targets[:, columns] = solution[:, None]
    return targets


def predict(
    clip: Clip,
    keys: list[str],
    targets: np.ndarray,
    lead_s: float,
    rate_scale: float,
    key=sound_key,
):
    """(T, 52) the fitted model's mouth for one clip."""
    from openvasa.motion.articulation import FIT_CHANNELS, channel_columns

    jaw, lips = design(clip, keys, lead_s, rate_scale, key)
    out = np.zeros((len(clip.times), 52))
    for name in FIT_CHANNELS:
        columns = channel_columns(name)
        out[:, columns] = ((jaw if name == "jawOpen" else lips) @ targets[:, columns[0]])[:, None]
    return out


def best_correlation(a: np.ndarray, b: np.ndarray, max_lag: int = 3) -> tuple[float, int]:
    """Pearson correlation of a[t + lag] with b[t] at the best lag in ±max_lag frames (the
    issue's measure); lag > 0: a is late."""
    best = (-2.0, 0)
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    for lag in range(-max_lag, max_lag + 1):
        x, y = (a[lag:], b[: n - lag]) if lag >= 0 else (a[: n + lag], b[-lag:])
        if len(x) > 5 and x.std() > 1e-9 and y.std() > 1e-9:
            r = float(np.corrcoef(x, y)[0, 1])
            if r > best[0]:
                best = (r, lag)
    return best


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    if n < 5 or a[:n].std() < 1e-9 or b[:n].std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


def load_clips(
    shards: list[Path], phones: Path, grid: Path, limit: int | None = None
) -> list[Clip]:
    """The clips that have both a real mouth (shards) and aligned phones, sorted by name."""
    real, fps = read_real_motion(shards)
    aligned = json.loads(Path(phones).read_text())
    by_tail = {"/".join(key.split("/")[-2:]): key for key in aligned}
    clips = []
    names = sorted(k for k in real if k in by_tail)
    if limit:
        names = names[:limit]
    if not names:
        raise OpenvasaError(f"No clip of {shards} has aligned phones in {phones}.")
    for name in names:
        key = by_tail[name]
        clips.append(Clip(name, aligned[key], real[name], fps, Path(grid) / f"{key}.mp4"))
    return clips


def teacher_mouth(clip: Clip, seed: int = 0) -> np.ndarray:
    """(T, 52) blendshapes of the teacher engine driven by the clip's aligned phones and voice."""
    from openvasa.latent.motion import MotionFrame
    from openvasa.motion.teacher import TeacherEngine
    from openvasa.settings import Controls

    motion = TeacherEngine().generate(
        clip.audio, clip.fps, MotionFrame.neutral(), Controls(seed=seed), phonemes=clip.events
    )
    return motion.blendshapes.astype(np.float64)


def rendered_correlation(clip: Clip, analyzer, seed: int = 0) -> tuple[float, int]:
    """The issue's measure on pixels: the teacher's motion rendered from the clip's first
    frame with its own voice, both videos tracked by the face mesh, and the mouth openings
    correlated at the best lag within ±3 frames."""
    from openvasa.evaluation.signals import face_signals
    from openvasa.io.video import iter_video_frames, probe_media
    from openvasa.pipeline import Generator
    from openvasa.settings import OutputSettings

    info = probe_media(clip.video)
    size = max(info.width, info.height)
    size += size % 2
    settings = OutputSettings(fps=clip.fps, size=size, framing="native", engine="teacher")
    generator = Generator(settings, analyzer=analyzer)
    first = next(iter(iter_video_frames(clip.video)))
    real = face_signals(clip.video, analyzer=analyzer, refine_iris=False)
    with tempfile.TemporaryDirectory() as tmp:
        made = Path(tmp) / "made.mp4"
        generator.generate(first, clip.audio, made, seed=seed, phonemes=clip.events)
        generated = face_signals(made, analyzer=analyzer, refine_iris=False)

    def filled(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, np.float64)
        ok = np.isfinite(values)
        return np.interp(np.arange(len(values)), np.flatnonzero(ok), values[ok])

    return best_correlation(filled(generated.mouth_open), filled(real.mouth_open))


def group_of(name: str) -> str:
    return name.split("/")[0]


def cmd_compare(args: argparse.Namespace) -> int:
    from openvasa.motion.articulation import lip_gap

    clips = load_clips(
        [Path(f) for f in args.shards], Path(args.phones), Path(args.grid), args.limit
    )
    if args.every > 1:
        clips = clips[args.offset :: args.every]
    rows = []
    analyzer = None
    for k, clip in enumerate(clips):
        mouth = teacher_mouth(clip)
        r, lag = best_correlation(lip_gap(mouth), lip_gap(clip.real))
        rows.append((clip.key, r, lag))
        line = f"{clip.key:16s} r={r:.3f} lag={lag:+d}"
        if k < args.rendered:
            if analyzer is None:
                from openvasa.face.detect import default_analyzer

                analyzer = default_analyzer()
            r_video, lag_video = rendered_correlation(clip, analyzer)
            line += f"  rendered and tracked: r={r_video:.3f} lag={lag_video:+d}"
        if args.per_clip or k < args.rendered:
            print(line)
    groups: dict[str, list] = {}
    for key, r, lag in rows:
        groups.setdefault(group_of(key), []).append((r, lag))
    print(f"{'group':8s} {'clips':>5s} {'r mean':>7s} {'r median':>8s} {'lag median':>10s}")
    for group, values in sorted(groups.items()):
        rs = np.array([v[0] for v in values])
        lags = np.array([v[1] for v in values])
        print(
            f"{group:8s} {len(values):5d} {rs.mean():7.3f} {np.median(rs):8.3f} "
            f"{np.median(lags):+10.1f}"
        )
    all_r = np.array([r for _, r, _ in rows])
    print(f"{'all':8s} {len(rows):5d} {all_r.mean():7.3f} {np.median(all_r):8.3f}")
    if args.json:
        _write_json(Path(args.json), {k: {"r": r, "lag": lag} for k, r, lag in rows})
    return 0


# --- timing of the real lips ----------------------------------------------------------------
def closed_threshold(gap: np.ndarray, fraction: float = 0.25) -> float:
    """Lip gap below which this clip's lips count as closed: `fraction` of the way from its
    closed level (2nd percentile) to its open level (90th). The lips approach and leave
    contact gradually, so a higher fraction times the closure a little early and its release
    a little late."""
    low, high = np.percentile(gap, [2, 90])
    return float(low + fraction * (high - low))


def _crossing(gap: np.ndarray, times: np.ndarray, i: int, j: int, level: float) -> float:
    """Time between samples i and j where the gap crosses level (linear interpolation)."""
    a, b = gap[i] - level, gap[j] - level
    share = a / (a - b) if a != b else 0.5
    return float(times[i] + share * (times[j] - times[i]))


def bilabial_closures(clips: list[Clip], fraction: float = 0.25) -> dict:
    """Each /p b m/ in running speech: does the real mouth close, and when does it close and
    open relative to the phone's acoustic start and end (s, > 0: after)."""
    from openvasa.motion.articulation import lip_gap

    found: dict[str, dict[str, list[float]]] = {}
    for clip in clips:
        gap = lip_gap(clip.real)
        level = closed_threshold(gap, fraction)
        t = clip.times
        events = clip.events
        for k, event in enumerate(events):
            if event.phoneme not in ("B", "P", "M"):
                continue
            entry = found.setdefault(event.phoneme.lower(), {"closed": [], "onset": [],
                                                            "release": [], "held": [],
                                                            "acoustic": []})  # fmt: skip
            middle = (event.start_s + event.end_s) / 2
            near = np.flatnonzero(np.abs(t - middle) <= 0.5 / clip.fps + 0.02)
            closed = [i for i in near if gap[i] < level]
            entry["closed"].append(float(bool(closed)))
            if not closed:
                continue
            first = last = closed[0]
            while first > 0 and gap[first - 1] < level:
                first -= 1
            while last < len(gap) - 1 and gap[last + 1] < level:
                last += 1
            if first == 0 or last == len(gap) - 1:
                continue
            onset = _crossing(gap, t, first - 1, first, level)
            release = _crossing(gap, t, last, last + 1, level)
            before = events[k - 1] if k else None
            after = events[k + 1] if k + 1 < len(events) else None
            joined_before = before and before.end_s >= event.start_s - 1e-3
            joined_after = after and after.start_s <= event.end_s + 1e-3
            if joined_before and before.phoneme not in "BPM":
                entry["onset"].append(onset - event.start_s)
            if joined_after and after.phoneme not in "BPM":
                entry["release"].append(release - event.end_s)
            if joined_before and joined_after:
                entry["held"].append(release - onset)
                entry["acoustic"].append(event.duration_s)
    return found


def speech_onsets(clips: list[Clip]) -> list[float]:
    """How long before the first sound after the opening silence the lips start to part
    (s), for clips whose first word starts with the lips free (not /p b m/)."""
    from openvasa.motion.articulation import lip_gap

    leads = []
    for clip in clips:
        first = clip.events[0]
        if first.phoneme in ("B", "P", "M") or first.start_s < 0.4:
            continue
        gap = lip_gap(clip.real)
        t = clip.times
        rest_frames = t < first.start_s - 0.25
        after = (t >= first.start_s) & (t <= first.start_s + 0.3)
        if rest_frames.sum() < 3 or not after.any():
            continue
        rest = float(np.median(gap[rest_frames]))
        peak_index = int(np.flatnonzero(after)[np.argmax(gap[after])])
        rise = gap[peak_index] - rest
        if rise < 0.02:  # no clear opening to time
            continue
        level = rest + 0.1 * rise
        i = peak_index
        while i > 0 and gap[i - 1] > level:
            i -= 1
        if i == 0:
            continue
        leads.append(first.start_s - _crossing(gap, t, i - 1, i, level))
    return leads


def speech_offsets(clips: list[Clip]) -> list[float]:
    """How long after the last sound of a clip the lips are closed again (s): where the lip
    gap falls through the clip's closed threshold (see `closed_threshold`)."""
    from openvasa.motion.articulation import lip_gap

    delays = []
    for clip in clips:
        last = clip.events[-1]
        gap = lip_gap(clip.real)
        level = closed_threshold(gap)
        t = clip.times
        after = np.flatnonzero(t >= last.end_s - 0.1)
        if clip.times[-1] - last.end_s < 0.5 or not len(after):
            continue
        closed = [i for i in after if gap[i] < level and i > 0 and gap[i - 1] >= level]
        if closed and t[closed[0]] - last.end_s < 1.0:
            delays.append(_crossing(gap, t, closed[0] - 1, closed[0], level) - last.end_s)
    return delays


# --- the table -----------------------------------------------------------------------------
def _rounded(vector: np.ndarray) -> dict[str, float]:
    from openvasa.motion.articulation import FIT_CHANNELS, channel_columns

    out = {}
    for name in FIT_CHANNELS:
        value = float(vector[channel_columns(name)[0]])
        if abs(value) >= 0.0005:
            out[name] = round(value, 3)
    return out


def _viseme_of_key(key: str) -> str:
    return "sil" if key == "sil" else viseme_of(key)


def viseme_of(symbol: str) -> str:
    from openvasa.motion.visemes import phoneme_sounds

    return phoneme_sounds(symbol)[0].viseme


def score(clips: list[Clip], keys, targets, lead_s, rate_scale, key=sound_key) -> float:
    """Mean over clips of the correlation (at lag 0) of the fitted model's lip gap with the
    real one."""
    from openvasa.motion.articulation import lip_gap

    rs = [
        correlation(lip_gap(predict(c, keys, targets, lead_s, rate_scale, key)), lip_gap(c.real))
        for c in clips
    ]
    return float(np.nanmean(rs))


def monotone(values: list[float], weights: list[float]) -> list[float]:
    """The non-decreasing sequence nearest `values` in weighted least squares (pool adjacent
    violators)."""
    blocks = [[v, w, 1] for v, w in zip(values, weights, strict=True)]
    i = 0
    while i < len(blocks) - 1:
        if blocks[i][0] > blocks[i + 1][0]:
            (v1, w1, n1), (v2, w2, n2) = blocks[i], blocks[i + 1]
            blocks[i : i + 2] = [[(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2]]
            i = max(i - 1, 0)
        else:
            i += 1
    return [v for v, _, n in blocks for _ in range(n)]


def cmd_measure(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from openvasa.latent.motion import BLENDSHAPE_INDEX
    from openvasa.motion.articulation import HEIGHTS, VOWEL_HEIGHTS, lip_gap

    clips = load_clips(
        [Path(f) for f in args.shards], Path(args.phones), Path(args.grid), args.limit
    )
    speaker = sorted({group_of(c.key) for c in clips})
    # Clips held back, never fitted: by default those of `openvasa preprocess`'s first shard,
    # the 50 of train/s1 that the motion model is not trained on either
    # (tools/grid_val_table.py --split heldout).
    held_names = set()
    if args.hold_back:
        with np.load(args.hold_back) as data:
            held_names = {str(Path(n).with_suffix("")) for n in data["clip_names"].astype(str)}
    held_back = [c for c in clips if c.key in held_names]
    fitted = [c for c in clips if c.key not in held_names]
    print(f"{len(fitted)} clips to fit, {len(held_back)} held back ({', '.join(speaker)})")
    keys = sorted({sound_key(s) for c in fitted for s in c.segments(0.0, 1.0)})
    viseme_keys = sorted({viseme_key(s) for c in fitted for s in c.segments(0.0, 1.0)})

    # Timing of the coarticulation: the lead and the decay rates that fit best, chosen on a
    # part of the fitted clips by clips of that part left out of the fit.
    search = fitted[: args.search_clips]
    tune_fit, tune_check = search[: len(search) * 2 // 3], search[len(search) * 2 // 3 :]
    grid = [(lead, scale) for lead in args.leads for scale in args.rate_scales]
    results = []
    for lead, scale in tqdm(grid, desc="lead x rate", unit="fit"):
        # Visemes (fewer, better-determined targets) choose the timing.
        targets = fit_targets(tune_fit, viseme_keys, lead, scale, key=viseme_key)
        results.append(
            (score(tune_check, viseme_keys, targets, lead, scale, viseme_key), lead, scale)
        )
    for r, lead, scale in sorted(results, reverse=True)[:5]:
        print(f"  lead {lead * 1000:+4.0f} ms, rate x{scale:.2f}: r = {r:.3f}")
    _, lead_s, rate_scale = max(results)
    # Each sound is fitted with its viseme's target as the prior it keeps when rarely heard.
    by_viseme = fit_targets(fitted, viseme_keys, lead_s, rate_scale, key=viseme_key)
    prior = np.array([by_viseme[viseme_keys.index(_viseme_of_key(k))] for k in keys])
    targets = fit_targets(fitted, keys, lead_s, rate_scale, args.ridge_frames, prior)
    r_fit = score(fitted, keys, targets, lead_s, rate_scale)
    r_held = score(held_back, keys, targets, lead_s, rate_scale)
    print(f"fitted model: r = {r_fit:.3f} on the fitted clips, {r_held:.3f} held back")

    rest = targets[keys.index("sil")]
    deltas = {k: targets[i] - rest for i, k in enumerate(keys) if k != "sil"}
    weight = {k: 0.0 for k in keys}
    for clip in fitted:
        _, lips = design(clip, keys, lead_s, rate_scale)
        for i, k in enumerate(keys):
            weight[k] += float(lips[:, i].sum())
    visemes: dict[str, np.ndarray] = {}
    for viseme in sorted({viseme_of(k) for k in deltas}):
        members = [k for k in deltas if viseme_of(k) == viseme]
        w = np.array([weight[k] for k in members])
        visemes[viseme] = sum(deltas[k] * wk for k, wk in zip(members, w, strict=True)) / w.sum()
    jaw_column = BLENDSHAPE_INDEX["jawOpen"]
    vowel_jaw: dict[str, float] = {}
    for height in HEIGHTS:
        members = [k for k in deltas if VOWEL_HEIGHTS.get(k) == height]
        if members:
            w = np.array([weight[k] for k in members])
            vowel_jaw[height] = float(
                sum(deltas[k][jaw_column] * wk for k, wk in zip(members, w, strict=True)) / w.sum()
            )
    # The jaw opens further for lower vowels (a monotone order, made so by pooling adjacent
    # heights that the speaker inverts, as British /eI/ opening as far as /E/).
    measured_heights = [h for h in HEIGHTS if h in vowel_jaw]
    height_weight = {
        h: sum(weight[k] for k in deltas if VOWEL_HEIGHTS.get(k) == h) for h in measured_heights
    }
    pooled = monotone([vowel_jaw[h] for h in measured_heights],
                      [height_weight[h] for h in measured_heights])  # fmt: skip
    vowel_jaw.update(zip(measured_heights, pooled, strict=True))
    for h in HEIGHTS:  # heights English lacks: between their measured neighbours
        if h not in vowel_jaw:
            x = [HEIGHTS.index(m) for m in measured_heights]
            vowel_jaw[h] = float(
                np.interp(HEIGHTS.index(h), x, [vowel_jaw[m] for m in measured_heights])
            )
    pairs = [(r, s) for r, s in (("u", "i"), ("o", "e")) if r in deltas and s in deltas]
    rounding = sum(deltas[r] - deltas[s] for r, s in pairs) / max(len(pairs), 1)
    rounding[jaw_column] = 0.0

    closures = bilabial_closures(fitted)
    strict = bilabial_closures(fitted, 0.1)
    onsets = speech_onsets(fitted)
    offsets = speech_offsets(fitted)
    onset_errors = [v for e in closures.values() for v in e["onset"]]
    release_errors = [v for e in closures.values() for v in e["release"]]
    held = [v for e in closures.values() for v in e["held"]]

    def median(values) -> float | None:
        return round(float(np.median(values)), 3) if len(values) else None

    def spread(values) -> dict:
        """Count, median and quartiles (seconds, 3 decimals) of a list of times."""
        quartiles = np.percentile(values, [25, 75]) if values else []
        return {
            "n": len(values),
            "median": median(values),
            "quartiles": [round(float(q), 3) for q in quartiles],
        }

    table = {
        "source": (
            "Measured by tools/measure_articulation.py on the GRID audiovisual sentence corpus "
            "(Cooke, Barker, Cunningham & Shao 2006, J. Acoust. Soc. Am. 120:2421, CC BY 4.0), "
            f"speaker {'/'.join(speaker)}, {len(fitted)} clips; phones force-aligned with "
            "PocketSphinx (en-us acoustic model)."
        ),
        "units": "targets: change of each ARKit blendshape from the speaker's mouth at rest; "
        "times in seconds, > 0 after the acoustic event",
        "sounds": {k: _rounded(v) for k, v in sorted(deltas.items())},
        "visemes": {k: _rounded(v) for k, v in sorted(visemes.items())},
        "rounding": _rounded(rounding),
        "vowel_jaw": {h: round(vowel_jaw[h], 3) for h in HEIGHTS},
        "rest": _rounded(rest),
        "timing": {
            "lead_s": round(lead_s, 3),
            "rate_scale": round(rate_scale, 3),
            "closure_onset_s": median(onset_errors),
            "closure_release_s": median(release_errors),
            # Per bilabial where it was heard often enough, else the pooled figures above.
            "closures": {
                p: [median(e["onset"]), median(e["release"])]
                for p, e in sorted(closures.items())
                if min(len(e["onset"]), len(e["release"])) >= 20
            },
            "min_closure_s": round(float(np.percentile(held, 10)) if held else 0.03, 3),
            "prepare_s": median(onsets),
            "relax_s": median(offsets),
        },
        "measured": {
            "fit_r_fitted": round(r_fit, 3),
            "fit_r_held_back": round(r_held, 3),
            "lead_search": [
                [round(a, 3), round(b * 1000), round(c, 2)]
                for a, b, c in sorted(results, reverse=True)
            ],
            "sound_weight_s": {k: round(weight[k] / clips[0].fps, 1) for k in keys},
            "bilabials": {
                p: {
                    "n": len(e["closed"]),
                    "closed_share": round(float(np.mean(e["closed"])), 3),
                    "onset_median_s": median(e["onset"]),
                    "release_median_s": median(e["release"]),
                    "closed_median_s": median(e["held"]),
                    "acoustic_median_s": median(e["acoustic"]),
                }
                for p, e in sorted(closures.items())
            },
            "bilabials_at_10_percent": {
                p: {
                    "closed_share": round(float(np.mean(e["closed"])), 3),
                    "onset_median_s": median(e["onset"]),
                    "release_median_s": median(e["release"]),
                    "closed_median_s": median(e["held"]),
                }
                for p, e in sorted(strict.items())
            },
            "speech_offset_closure_s": spread(offsets),
            "speech_onset_lead_s": spread(onsets),
            "lip_gap_range": [
                round(float(v), 4)
                for v in np.percentile(
                    np.concatenate([lip_gap(c.real) for c in fitted]), [2, 50, 98]
                )
            ],
        },
    }
    _write_json_pretty(Path(args.out), table)
    print(json.dumps(table["timing"], indent=1))
    print(json.dumps(table["measured"]["bilabials"], indent=1))
    print(f"-> {args.out}")
    return 0


def _write_json_pretty(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)


def cmd_show(args: argparse.Namespace) -> int:
    """Print an articulation table per phoneme class, as Markdown."""
    from openvasa.motion.articulation import lip_gap, load_articulation

    table = load_articulation(args.table)
    raw = json.loads(Path(args.table).read_text())
    weight = raw.get("measured", {}).get("sound_weight_s", {})
    columns = ("jawOpen", "mouthPucker", "mouthFunnel", "mouthPressLeft", "mouthLowerDownLeft")
    from openvasa.latent.motion import BLENDSHAPE_INDEX

    def row(name: str, target: np.ndarray, extra: str = "") -> str:
        values = " | ".join(f"{target[BLENDSHAPE_INDEX[c]]:+.3f}" for c in columns)
        gap = 100 * float(lip_gap(np.clip(target, 0, 1)[None])[0])
        return f"| {name} | {extra} | {values} | {gap:.2f} |"

    header = "| " + " | ".join(("class", "heard (s)", *columns, "lip gap % face")) + " |"
    print(header)
    print("|" + "---|" * (len(columns) + 3))
    for viseme, target in sorted(table.visemes.items()):
        members = [k for k in table.sounds if viseme_of(k) == viseme]
        print(row(f"**{viseme}**", target, "/".join(members)))
        for k in members:
            print(row(f"  {k}", table.sounds[k], f"{weight.get(k, 0):.0f}"))
    print()
    print(
        "vowel height -> jawOpen: " + ", ".join(f"{h} {v:.3f}" for h, v in table.vowel_jaw.items())
    )
    print("rounding (added to a spread vowel): " + json.dumps(raw["rounding"]))
    print("timing: " + json.dumps(raw["timing"]))
    measured = raw.get("measured", {})
    for key in (
        "bilabials",
        "bilabials_at_10_percent",
        "speech_onset_lead_s",
        "speech_offset_closure_s",
    ):
        if key in measured:
            print(f"{key}: {json.dumps(measured[key])}")
    print(
        f"fit: r {measured.get('fit_r_fitted')} fitted, {measured.get('fit_r_held_back')} held back"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    align = sub.add_parser("align", help="force-align GRID phones with PocketSphinx")
    align.add_argument("grid", help="GRID folder (e.g. ../shared/grid)")
    align.add_argument("--out", required=True, help="phones JSON to write (resumes if present)")
    compare = sub.add_parser(
        "compare", help="teacher mouth from the aligned phones vs the real tracked mouth"
    )
    compare.add_argument("shards", nargs="+", help="folders of `openvasa preprocess` shards")
    compare.add_argument("--phones", required=True, help="phones JSON from `align`")
    compare.add_argument("--grid", default="../shared/grid", help="GRID folder (audio)")
    compare.add_argument("--limit", type=int, default=None, help="first N clips only")
    compare.add_argument("--every", type=int, default=1, help="every N-th clip")
    compare.add_argument("--offset", type=int, default=0, help="starting at this clip")
    compare.add_argument("--per-clip", action="store_true", help="print each clip")
    compare.add_argument("--json", default=None, help="write per-clip figures here")
    compare.add_argument(
        "--rendered", type=int, default=0, help="also render and track the first N clips"
    )
    measure = sub.add_parser("measure", help="fit the articulation table to real clips")
    measure.add_argument(
        "shards", nargs="+", help="folders of `openvasa preprocess` shards (train/s1)"
    )
    measure.add_argument("--phones", required=True, help="phones JSON from `align`")
    measure.add_argument("--grid", default="../shared/grid", help="GRID folder (audio)")
    measure.add_argument("--out", required=True, help="articulation table JSON to write")
    measure.add_argument("--limit", type=int, default=None, help="first N clips only")
    measure.add_argument(
        "--hold-back", default=None, help="a shard whose clips are held back from the fit"
    )
    measure.add_argument("--search-clips", type=int, default=150)
    measure.add_argument(
        "--ridge-frames", type=float, default=50.0, help="pull of each sound to its viseme"
    )
    measure.add_argument(
        "--leads", type=float, nargs="+", default=[-0.02, 0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.13]
    )
    measure.add_argument("--rate-scales", type=float, nargs="+", default=[1.0, 1.4, 2.0, 2.8])
    show = sub.add_parser("show", help="print an articulation table per phoneme class")
    show.add_argument(
        "table",
        nargs="?",
        default=str(Path(__file__).resolve().parents[1] / "openvasa/motion/articulation.json"),
    )
    args = parser.parse_args(argv)
    try:
        return {
            "align": cmd_align,
            "measure": cmd_measure,
            "compare": cmd_compare,
            "show": cmd_show,
        }[args.command](args)
    except OpenvasaError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
