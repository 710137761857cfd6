"""Children's mispronunciations, injected into the synthetic corpus as ground truth for assessment.

A child reads a prompt; each syllable of its pronounced form (trainer.data.phones) is said wrong
with probability `rate`, by one of the child's error kinds that applies to it, chosen at random:
the phonological processes of trainer.data.processes reported at the child's age, and "other" (a
random single-phone edit no process makes, at any age). Errors change phones within a syllable
and never add or remove a syllable, so syllable k of the prompt is syllable k of what was said.
The spoken form is given to espeak as Hangul spelled as pronounced. An error is kept only when
espeak says its word differently with it (its Korean voice makes no difference between some
spellings, e.g. a tense initial between vowels: trainer.data.synth.espeak), and only when g2pK
reads that spelling back as the same phones (otherwise the transcript would not name what was
said: e.g. 먹꼬 said 먹고 is pronounced 먹꼬 again); a dropped error leaves that syllable correct.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trainer.data.phones import PhoneError, Syllable, from_phones, syllables, text_phones
from trainer.data.processes import ERROR_KINDS, ErrorKind
from trainer.data.synth.espeak import sounds_different


@dataclass(frozen=True)
class Reading:
    """One prompt as a child read it."""

    prompt: list[str]  # the words asked for (orthographic)
    said: list[str]  # per word, Hangul spelled as it was said (what espeak speaks)
    transcript: list[str]  # per word, the label: the word, or `(word)/(said)` where it was said wrong
    expected_phones: str  # phones of the prompt's standard pronunciation (spaces between words)
    spoken_phones: str
    errors: list[dict] = field(default_factory=list)  # syllable, word, expected, spoken, pattern (process)


def _words(cut: list[Syllable]) -> list[str]:
    words: dict[int, str] = {}
    for s in cut:
        words[s.word] = words.get(s.word, "") + s.phones
    return [words[k] for k in sorted(words)]


def _reads_back(spelling: str, phones: str) -> bool:
    """Whether g2pK reads `spelling` as `phones` (a spelling it reads as no valid phone string
    does not)."""
    try:
        return text_phones(spelling) == phones
    except PhoneError:
        return False


def _voiced(expected: list[Syllable], k: int, said: Syllable) -> bool:
    """Whether espeak-ng says syllable k's word differently with `said` in its place."""
    word = [s for s in expected if s.word == expected[k].word]
    with_error = "".join(said.phones if s.start == expected[k].start else s.phones for s in word)
    return sounds_different(from_phones("".join(s.phones for s in word)), from_phones(with_error))


def read_prompt(
    words: list[str], rate: float, rng: np.random.Generator, processes: tuple[ErrorKind, ...] = ERROR_KINDS
) -> Reading:
    """Say `words` with each syllable mispronounced with probability `rate` by one of `processes`
    (module docstring)."""
    prompt = " ".join(words)
    expected = syllables(text_phones(prompt))
    spoken = list(expected)
    errors: dict[int, str] = {}
    for k, syllable in enumerate(expected):
        if rate > 0 and rng.random() < rate and (found := [p for p in processes if p.applies(syllable)]):
            process = found[int(rng.integers(len(found)))]
            said = process.say(syllable, rng)
            if _voiced(expected, k, said):
                spoken[k] = said
                errors[k] = process.name
    expected_words, spoken_words = _words(expected), _words(spoken)
    for w, (want, said) in enumerate(zip(expected_words, spoken_words)):
        if want != said and not _reads_back(from_phones(said), said):
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
    if errors and not _reads_back(said_text, " ".join(spoken_words)):
        # Across words g2pK read the mixed spelling differently: the whole prompt is said right.
        return read_prompt(words, 0.0, rng, processes)
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
