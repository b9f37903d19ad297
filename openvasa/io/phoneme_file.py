"""Reading phoneme timings that a user brings from their own TTS engine or aligner.

Two formats, times in seconds from the start of the audio:

JSON (`.json`): a list of phonemes, or an object with a "phonemes" list; each phoneme is an
object with "phoneme" (also "phone", "symbol" or "name"), "start" and "end" (also "start_s",
"end_s"), and optionally "stress" (0 none, 1 primary, 2 secondary), or a list
[phoneme, start, end(, stress)]:

    {"phonemes": [{"phoneme": "h", "start": 0.00, "end": 0.06},
                  {"phoneme": "ə", "start": 0.06, "end": 0.12},
                  {"phoneme": "l", "start": 0.12, "end": 0.21},
                  {"phoneme": "oʊ", "start": 0.21, "end": 0.45, "stress": 1}]}

TSV (any other suffix, e.g. `.tsv`, `.txt`): one phoneme a line, `PHONEME START END [STRESS]`
separated by tabs or spaces; lines starting with `#` and a header line are skipped:

    phoneme  start  end
    h        0.00   0.06
    oʊ       0.21   0.45   1

Phoneme names are IPA (as eSpeak NG, Piper and most neural TTS write them) or CMU ARPAbet
(`HH AH0 L OW1`, as the CMU dictionary and Montreal Forced Aligner write them; the stress
digit then sets the stress). Silence names (`sil`, `sp`, `pau`, `_`, empty) mark pauses.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from openvasa.audio import PhonemeEvent
from openvasa.errors import PhonemeFileError
from openvasa.motion.visemes import arpabet_to_ipa

_NAME_KEYS = ("phoneme", "phone", "symbol", "name")
_START_KEYS = ("start", "start_s")
_END_KEYS = ("end", "end_s")


def read_phonemes(path: str | os.PathLike[str]) -> list[PhonemeEvent]:
    """Read a phoneme timing file (JSON or TSV, see the module docstring).

    Returns the phonemes in time order, names as given (ARPAbet stress digits set `stress`).
    Raises PhonemeFileError, naming the line or item, for anything malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise PhonemeFileError(f"Phoneme file {path} does not exist.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise PhonemeFileError(f"Phoneme file {path.name} is not readable UTF-8 text.") from error
    if path.suffix.lower() == ".json":
        rows = _json_rows(path, text)
    else:
        rows = _tsv_rows(path, text)
    events = [_event(path, where, *row) for where, row in rows]
    if not events:
        raise PhonemeFileError(f"Phoneme file {path.name} lists no phonemes.")
    return sorted(events, key=lambda e: e.start_s)


def _json_rows(path: Path, text: str) -> list[tuple[str, tuple]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise PhonemeFileError(
            f"Phoneme file {path.name} is not valid JSON (line {error.lineno}: {error.msg})."
        ) from None
    if isinstance(data, dict):
        if "phonemes" not in data:
            raise PhonemeFileError(f'Phoneme file {path.name} has no "phonemes" list.')
        data = data["phonemes"]
    if not isinstance(data, list):
        raise PhonemeFileError(f"Phoneme file {path.name} must hold a list of phonemes.")
    rows = []
    for index, item in enumerate(data):
        where = f"item {index + 1}"
        if isinstance(item, dict):
            name = next((item[k] for k in _NAME_KEYS if k in item), None)
            start = next((item[k] for k in _START_KEYS if k in item), None)
            end = next((item[k] for k in _END_KEYS if k in item), None)
            if name is None or start is None or end is None:
                raise PhonemeFileError(
                    f'Phoneme file {path.name}, {where}: needs "phoneme", "start" and '
                    f'"end" (seconds).'
                )
            rows.append((where, (name, start, end, item.get("stress"))))
        elif isinstance(item, list) and len(item) in (3, 4):
            rows.append((where, (*item, None) if len(item) == 3 else tuple(item)))
        else:
            raise PhonemeFileError(
                f"Phoneme file {path.name}, {where}: expected an object or "
                f"[phoneme, start, end], not {json.dumps(item)[:40]}."
            )
    return rows


def _tsv_rows(path: Path, text: str) -> list[tuple[str, tuple]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = stripped.split("\t") if "\t" in stripped else stripped.split()
        fields = [f.strip() for f in fields]
        if len(fields) not in (3, 4):
            raise PhonemeFileError(
                f"Phoneme file {path.name}, line {number}: expected PHONEME START END "
                f"[STRESS], found {len(fields)} fields."
            )
        if not rows and not _is_number(fields[1]):
            continue  # a header line
        rows.append((f"line {number}", (*fields, None) if len(fields) == 3 else tuple(fields)))
    return rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _event(path: Path, where: str, name, start, end, stress) -> PhonemeEvent:
    def seconds(value, what: str) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise PhonemeFileError(
                f"Phoneme file {path.name}, {where}: {what} {value!r} is not a number of seconds."
            ) from None
        if not math.isfinite(number) or number < 0:
            raise PhonemeFileError(
                f"Phoneme file {path.name}, {where}: {what} {value!r} must be ≥ 0 seconds."
            )
        return number

    start_s, end_s = seconds(start, "start"), seconds(end, "end")
    if end_s < start_s:
        raise PhonemeFileError(
            f"Phoneme file {path.name}, {where}: phoneme {name!r} ends ({end_s:g} s) before "
            f"it starts ({start_s:g} s)."
        )
    name = "" if name is None else str(name).strip()
    level = 0
    arpa = arpabet_to_ipa(name) if name else None
    if arpa is not None:
        level = arpa[1]
    if stress not in (None, ""):
        try:
            level = int(stress)
        except (TypeError, ValueError):
            level = -1
        if level not in (0, 1, 2):
            raise PhonemeFileError(
                f"Phoneme file {path.name}, {where}: stress {stress!r} must be 0, 1 or 2."
            )
    return PhonemeEvent(name, start_s, end_s, level)


def write_phonemes(phonemes: list[PhonemeEvent], path: str | os.PathLike[str]) -> None:
    """Write phonemes as JSON (`.json`) or TSV (any other suffix) in the format read above."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        items = [
            {"phoneme": p.phoneme, "start": round(p.start_s, 4), "end": round(p.end_s, 4)}
            | ({"stress": p.stress} if p.stress else {})
            for p in phonemes
        ]
        text = json.dumps({"phonemes": items}, ensure_ascii=False, indent=1) + "\n"
    else:
        lines = ["phoneme\tstart\tend\tstress"] + [
            f"{p.phoneme}\t{p.start_s:.4f}\t{p.end_s:.4f}\t{p.stress}" for p in phonemes
        ]
        text = "\n".join(lines) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
