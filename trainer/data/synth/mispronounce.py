"""Children's mispronunciations, injected into the synthetic corpus as ground truth for assessment.

A child reads a prompt; each syllable of its pronounced form (trainer.data.phones) is said wrong
with probability `rate`, by one of the error patterns reported for Korean children's speech
(phonological processes that persist into the early school years):

| pattern                  | what changes                                   | example      |
|--------------------------|------------------------------------------------|--------------|
| tense_aspirated_to_plain | a tense or aspirated initial said plain        | 토끼 -> 도끼 |
| final_dropped            | the final consonant left out                   | 곰 -> 고     |
| liquid_gliding           | initial ㄹ said as a glide (ㄹ + V -> yV)       | 노라요 -> 노야요 |
| liquid_stopping          | initial ㄹ said as ㄷ                            | 노라요 -> 노다요 |
| diphthong_to_monophthong | the glide of a diphthong left out              | 여우 -> 어우 |

A syllable where none applies is said right. Errors change phones within a syllable and never add
or remove one, so syllable k of the prompt is syllable k of what was said. The spoken form is
given to espeak as Hangul spelled as pronounced, and an error is kept only when g2pK reads that
spelling back as the same phones (otherwise the transcript would not name what was said: e.g.
먹꼬 said 먹고 is pronounced 먹꼬 again); a dropped error leaves that syllable correct.

`classify(expected, spoken)` names the pattern of any expected/spoken syllable pair, so the
assessment report groups detected errors by the same names; `applicable` and `mispronounce` are
also the errors the assessment's detector anticipates (trainer.assessment.detect).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trainer.data.phones import Syllable, from_phones, syllables, text_phones

PATTERNS = (
    "tense_aspirated_to_plain",
    "final_dropped",
    "liquid_gliding",
    "liquid_stopping",
    "diphthong_to_monophthong",
)
OTHER = "other"
LIQUID = "\u1105"  # initial ㄹ
STOP = "\u1103"  # initial ㄷ
# Tense ㄲㄸㅃㅆㅉ and aspirated ㅋㅌㅍㅊ initials -> plain ㄱㄷㅂㅅㅈ.
PLAIN = {
    "\u1101": "\u1100",
    "\u1104": "\u1103",
    "\u1108": "\u1107",
    "\u110a": "\u1109",
    "\u110d": "\u110c",
    "\u110f": "\u1100",
    "\u1110": "\u1103",
    "\u1111": "\u1107",
    "\u110e": "\u110c",
}
# Diphthong -> the monophthong a child says for it (ㅑㅕㅛㅠㅒㅖ, ㅘㅝㅙㅞㅚㅟ, ㅢ).
MONOPHTHONG = {
    "\u1163": "\u1161",
    "\u1167": "\u1165",
    "\u116d": "\u1169",
    "\u1172": "\u116e",
    "\u1164": "\u1162",
    "\u1168": "\u1166",
    "\u116a": "\u1161",
    "\u116f": "\u1165",
    "\u116b": "\u1166",
    "\u1170": "\u1166",
    "\u116c": "\u1166",
    "\u1171": "\u1175",
    "\u1174": "\u1175",
}
# ㄹ + vowel said as a glide: the vowel with a y-glide (ㅏㅓㅗㅜㅔ -> ㅑㅕㅛㅠㅖ).
GLIDE = {"\u1161": "\u1163", "\u1165": "\u1167", "\u1169": "\u116d", "\u116e": "\u1172", "\u1166": "\u1168"}


@dataclass(frozen=True)
class Reading:
    """One prompt as a child read it."""

    prompt: list[str]  # the words asked for (orthographic)
    said: list[str]  # per word, Hangul spelled as it was said (what espeak speaks)
    transcript: list[str]  # per word, the label: the word, or `(word)/(said)` where it was said wrong
    expected_phones: str  # phones of the prompt's standard pronunciation (spaces between words)
    spoken_phones: str
    errors: list[dict] = field(default_factory=list)  # syllable, word, expected, spoken, pattern


def mispronounce(syllable: Syllable, pattern: str) -> Syllable:
    """`syllable` said with error `pattern` (one of `applicable(syllable)`)."""
    onset, vowel, coda = syllable.onset, syllable.vowel, syllable.coda
    if pattern == "tense_aspirated_to_plain":
        onset = PLAIN[onset]
    elif pattern == "final_dropped":
        coda = ""
    elif pattern == "liquid_gliding":
        onset, vowel = "", GLIDE[vowel]
    elif pattern == "liquid_stopping":
        onset = STOP
    else:
        vowel = MONOPHTHONG[vowel]
    return Syllable(onset, vowel, coda, syllable.word, syllable.start)


def applicable(syllable: Syllable) -> list[str]:
    """The patterns that can change this syllable, in PATTERNS order."""
    found = []
    if syllable.onset in PLAIN:
        found.append("tense_aspirated_to_plain")
    if syllable.coda:
        found.append("final_dropped")
    if syllable.onset == LIQUID and syllable.vowel in GLIDE:
        found.append("liquid_gliding")
    if syllable.onset == LIQUID:
        found.append("liquid_stopping")
    if syllable.vowel in MONOPHTHONG:
        found.append("diphthong_to_monophthong")
    return found


def classify(expected: str, spoken: str) -> str:
    """The pattern that turns the expected syllable's phones into the spoken ones, or "other"."""
    (want,), said = syllables(expected), syllables(spoken)
    if len(said) == 1:
        for pattern in applicable(want):
            if mispronounce(want, pattern).phones == said[0].phones:
                return pattern
    return OTHER


def _words(cut: list[Syllable]) -> list[str]:
    words: dict[int, str] = {}
    for s in cut:
        words[s.word] = words.get(s.word, "") + s.phones
    return [words[k] for k in sorted(words)]


def read_prompt(words: list[str], rate: float, rng: np.random.Generator) -> Reading:
    """Say `words` with each syllable mispronounced with probability `rate` (module docstring)."""
    prompt = " ".join(words)
    expected = syllables(text_phones(prompt))
    spoken = list(expected)
    errors: dict[int, str] = {}
    for k, syllable in enumerate(expected):
        if rate > 0 and rng.random() < rate and (patterns := applicable(syllable)):
            pattern = patterns[int(rng.integers(len(patterns)))]
            spoken[k] = mispronounce(syllable, pattern)
            errors[k] = pattern
    expected_words, spoken_words = _words(expected), _words(spoken)
    for w, (want, said) in enumerate(zip(expected_words, spoken_words)):
        if want != said and text_phones(from_phones(said)) != said:
            # g2pK would not read this spelling back as what was said: the word is said right.
            spoken = [expected[k] if s.word == w else s for k, s in enumerate(spoken)]
            errors = {k: p for k, p in errors.items() if expected[k].word != w}
    spoken_words = _words(spoken)
    transcript = [
        word if want == said else f"({word})/({from_phones(said)})"
        for word, want, said in zip(words, expected_words, spoken_words)
    ]
    said_text = " ".join(
        word if want == said else from_phones(said) for word, want, said in zip(words, expected_words, spoken_words)
    )
    if errors and text_phones(said_text) != " ".join(spoken_words):
        # Across words g2pK read the mixed spelling differently: the whole prompt is said right.
        return read_prompt(words, 0.0, rng)
    return Reading(
        prompt=list(words),
        said=[from_phones(w) for w in spoken_words],
        transcript=transcript,
        expected_phones=" ".join(expected_words),
        spoken_phones=" ".join(spoken_words),
        errors=[
            {
                "syllable": k,
                "word": expected[k].word,
                "expected": expected[k].phones,
                "spoken": spoken[k].phones,
                "pattern": pattern,
            }
            for k, pattern in sorted(errors.items())
        ],
    )
