"""Text for the synthetic corpus: phonotactically plausible sentences in many languages.

No text corpus ships with openvasa, and the motion generator learns sounds, not meanings. So a
sentence here is a string of the language's own function words and of pseudo-words built from
the language's spelling of its syllables (onset + vowel + coda), with numbers now and then
(eSpeak NG reads them in the language) and punctuation that gives pauses and intonation.
eSpeak NG's letter-to-sound rules then turn the spelling into that language's phonemes.
"""

from __future__ import annotations

import numpy as np

_L = str.split

# language: (onsets, vowels, codas, function words)
_INVENTORIES: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {
    "en": (
        _L("b d f g h k l m n p r s t v w y ch sh th br pl st gr cl sp tr fl"),
        _L("a e i o u ee oo ai ou ea oa ay"),
        ["", "", "n", "t", "d", "s", "m", "l", "r", "k", "p", "nd", "st", "ng", "ck", "sh"],
        _L("the a and to of in is my we you it with but so very this that"),
    ),
    "de": (
        _L("b d f g h k l m n p r s t w z sch pf st sp br tr kl fr gr"),
        _L("a e i o u ä ö ü ei au eu ie"),
        ["", "", "n", "t", "r", "s", "ch", "l", "m", "ng", "nd", "st", "ck", "tz"],
        _L("der die das und ist ein mit nicht wir ich sie auf zu im sehr"),
    ),
    "fr": (
        _L("b d f g j l m n p r s t v ch qu br pl tr cr gr"),
        _L("a e i o u ou ai au eau on an in é è oi eu"),
        ["", "", "", "r", "l", "s", "n", "t"],
        _L("le la les et est un une de avec pour nous vous il elle dans très"),
    ),
    "es": (
        _L("b c d f g l m n p r s t v ch ll pr tr bl gr"),
        _L("a e i o u ue ie ia"),
        ["", "", "n", "s", "r", "l"],
        _L("el la los y es un una de con para que en muy"),
    ),
    "it": (
        _L("b c d f g l m n p r s t v z gl sc pr tr br"),
        _L("a e i o u ia io"),
        ["", "", "", "n", "l", "r"],
        _L("il la e è un una di con per che non molto"),
    ),
    "pt": (
        _L("b c d f g l m n p r s t v ch lh nh pr tr"),
        _L("a e i o u ã õ ão ei ou"),
        ["", "", "s", "r", "l", "m"],
        _L("o a e é um uma de com para que não muito"),
    ),
    "nl": (
        _L("b d f g h k l m n p r s t v w z sch st sp"),
        _L("a e i o u aa ee oo ij ui ou eu oe ie"),
        ["", "", "n", "t", "r", "s", "l", "m", "k", "ng"],
        _L("de het en is een met niet wij ik zij op heel"),
    ),
}
# Japanese: eSpeak NG reads kana (not kanji); words are 2–4 morae, with particles between.
_KANA = list(
    "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわん"
    "がぎぐげござじずぜぞだでどばびぶべぼぱぴぷぺぽ"
)
_JA_PARTICLES = ["は", "が", "を", "に", "で", "と", "の", "も"]
_JA_ENDINGS = ["です", "ます", "でした", "ました", "ですね", "でしょう"]


def _pseudo_word(rng: np.random.Generator, onsets, vowels, codas) -> str:
    syllables = int(rng.choice([1, 1, 2, 2, 2, 3]))
    return "".join(
        str(rng.choice(onsets)) + str(rng.choice(vowels)) + str(rng.choice(codas))
        for _ in range(syllables)
    )


def _japanese_sentence(rng: np.random.Generator) -> str:
    parts = []
    for _ in range(int(rng.integers(2, 5))):
        word = "".join(rng.choice(_KANA, int(rng.integers(2, 5))))
        parts.append(word + str(rng.choice(_JA_PARTICLES)))
        if rng.random() < 0.25:
            parts[-1] += "、"
    verb = "".join(rng.choice(_KANA, int(rng.integers(2, 4))))
    return "".join(parts) + verb + str(rng.choice(_JA_ENDINGS)) + str(rng.choice(["。", "か。"]))


def sentence(lang: str, rng: np.random.Generator) -> str:
    """One sentence of `lang` (an eSpeak NG language code; the part before '-' picks the
    inventory, and languages without one get the English spelling rules' syllables)."""
    base = lang.split("-")[0].lower()
    if base == "ja":
        return _japanese_sentence(rng)
    onsets, vowels, codas, function_words = _INVENTORIES.get(base, _INVENTORIES["en"])
    words = []
    for _ in range(int(rng.integers(3, 11))):
        roll = rng.random()
        if roll < 0.35:
            words.append(str(rng.choice(function_words)))
        elif roll < 0.4:
            words.append(str(int(rng.integers(2, 2000))))
        else:
            words.append(_pseudo_word(rng, onsets, vowels, codas))
        if len(words) > 2 and rng.random() < 0.12:
            words[-1] += ","
    words[0] = words[0][:1].upper() + words[0][1:]
    return " ".join(words).rstrip(",") + str(rng.choice([".", ".", ".", "?", "!"]))


def utterance(lang: str, rng: np.random.Generator) -> str:
    """One to three sentences: about 2–12 s of speech."""
    return " ".join(sentence(lang, rng) for _ in range(int(rng.integers(1, 4))))
