"""Render docs/teacher_<lang>.png: text spoken by the astronaut portrait with the teacher engine.

For each language this runs the real command

    openvasa generate astronaut.png --text "…" --lang xx -o OUT.mp4 --motion-out OUT.csv

then reads the video back and lays out frames (each labelled with its time and the phoneme
sounding then) above a timeline of jawOpen, mouthClose, blinks and head pitch, with /p b m/
shaded.

python tools/teacher_sheets.py [OUT_DIR] [--keep VIDEO_DIR]
"""

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from skimage import data

from openvasa.audio import synthesize_speech
from openvasa.cli import main as openvasa_main
from openvasa.io.motion_file import read_motion
from openvasa.io.video import read_video

TEXTS = {
    "de": "Guten Morgen! Ich heiße Vasa. Mein Bild spricht mit Ihnen, bitte hören Sie zu.",
    "fr": "Bonjour, je m'appelle Vasa. Mon image parle avec vous, à bientôt!",
    # eSpeak NG reads kana, not kanji.
    "ja": "こんにちは、わたしは ヴァサ です。 みなさん、 はじめまして。 よろしく おねがいします。",
}
ROMAJI = '"Konnichiwa, watashi wa Vasa desu. Minasan, hajimemashite. Yoroshiku onegaishimasu."'
TILE = 200
COLUMNS = 8
ROWS = 3


def _font(size: int):
    """A font with IPA letters (DejaVu Sans, where the system has it)."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def _text(image: np.ndarray, xy: tuple[int, int], text: str, size: int = 13) -> np.ndarray:
    """Draw text (any Unicode the font has) on an RGB array, returning the new array."""
    canvas = Image.fromarray(image)
    ImageDraw.Draw(canvas).text(xy, text, fill=(255, 255, 255), font=_font(size))
    return np.asarray(canvas).copy()


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    cv2.rectangle(tile, (0, 0), (tile.shape[1], 20), (0, 0, 0), -1)
    return _text(tile, (4, 2), text)


def _timeline(motion, phonemes, width: int, height: int = 170) -> np.ndarray:
    panel = np.full((height, width, 3), 24, np.uint8)
    n = len(motion)
    x = (np.arange(n) + 0.5) / n * width
    for event in phonemes:
        if event.phoneme in ("p", "b", "m"):
            x0 = int(event.start_s * motion.fps / n * width)
            x1 = max(int(event.end_s * motion.fps / n * width), x0 + 1)
            cv2.rectangle(panel, (x0, 0), (x1, height), (70, 70, 120), -1)
    tracks = [
        ("jawOpen", motion.channel("jawOpen"), (255, 255, 255), 0.0, 0.7),
        ("mouthClose", motion.channel("mouthClose"), (0, 220, 255), 0.0, 0.7),
        ("eyeBlink", motion.channel("eyeBlinkLeft"), (255, 220, 0), 0.0, 1.0),
        ("head pitch", motion.channel("pitch_deg"), (255, 80, 255), None, None),
    ]
    for row, (name, values, colour, lo, hi) in enumerate(tracks):
        if lo is None:
            lo, hi = float(values.min()) - 0.5, float(values.max()) + 0.5
        y = height - 8 - (np.clip((values - lo) / (hi - lo), 0, 1) * (height - 30))
        points = np.stack([x, y], 1).astype(np.int32)
        cv2.polylines(panel, [points], False, colour, 1, cv2.LINE_AA)
        cv2.putText(panel, name, (6 + 110 * row, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, colour, 1)
    return panel


def sheet(lang: str, text: str, out_dir: Path, work: Path) -> Path:
    portrait = work / "astronaut.png"
    if not portrait.exists():
        cv2.imwrite(str(portrait), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    video, motion_file = work / f"teacher_{lang}.mp4", work / f"teacher_{lang}.csv"
    argv = ["generate", str(portrait), "--text", text, "--lang", lang, "-o", str(video)]
    status = openvasa_main([*argv, "--motion-out", str(motion_file), "--seed", "3", "-q"])
    if status != 0:
        raise SystemExit(f"openvasa generate failed for {lang}")
    frames, fps = read_video(video)
    motion = read_motion(motion_file)
    # The same synthesis again, for the phoneme labels (eSpeak NG is deterministic to a few ms).
    phonemes = synthesize_speech(text, lang=lang).phonemes
    face = frames[0].shape[0]
    top, left, size = int(0.08 * face), int(0.18 * face), int(0.64 * face)
    count = COLUMNS * ROWS
    picks = np.linspace(2, len(frames) - 3, count).round().astype(int)
    tiles = []
    for index in picks:
        crop = frames[index, top : top + size, left : left + size]
        tile = cv2.resize(crop, (TILE, TILE), interpolation=cv2.INTER_AREA).copy()
        t = (index + 0.5) / fps
        sounding = next((p.phoneme for p in phonemes if p.start_s <= t < p.end_s), "·")
        tiles.append(_label(tile, f"{t:5.2f} s  /{sounding}/"))
    grid = np.concatenate(
        [np.concatenate(tiles[r * COLUMNS : (r + 1) * COLUMNS], 1) for r in range(ROWS)], 0
    )
    title = np.full((30, grid.shape[1], 3), 0, np.uint8)
    caption = f'{lang}: "{text}"' if lang != "ja" else f"ja: {ROMAJI}"
    title = _text(title, (6, 6), caption[:120], 15)
    picture = np.concatenate([title, grid, _timeline(motion, phonemes, grid.shape[1])], 0)
    out = out_dir / f"teacher_{lang}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=Path("docs"))
    parser.add_argument("--keep", type=Path, help="keep the videos and motion files here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for lang, text in TEXTS.items():
            print(f"wrote {sheet(lang, text, args.out_dir, work)}")


if __name__ == "__main__":
    sys.exit(main())
