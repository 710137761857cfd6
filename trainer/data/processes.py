"""Korean children's phonological processes, as data: name, phone rule, ages at which it is reported.

A process rewrites one syllable's phones (trainer.data.phones: onset, vowel, coda). Its rule maps
phones per role; it applies to a syllable when every role of the rule holds one of the rule's
phones there ("" as a target: the phone is left out). The synthetic corpus injects these errors
(trainer.data.synth.mispronounce) and the assessment names what it heard with them (`classify`);
the assessment's detector does not use them: it scores every single-phone edit of a syllable
(trainer.assessment.detect), so an error no process here describes is still found, and named
"other".

The processes and ages follow the Korean child phonology literature: the processes found in 2- to
6-year-olds' picture naming (Kim Y.-T. 1996, "Analysis of phonological processes of Korean
children", U-TAP norms: Kim Y.-T. & Shin 2004), Kim M. & Stoel-Gammon 2011 (word-initial obstruent
development: lenition of tense/aspirated stops, stopping and affrication of ㅅ, velar fronting)
and Pae S. 1994 (liquid development). An age range is where a process is still commonly reported
(its upper bound: the age by which most children have outgrown it); the synthetic children make a
process only at those ages.

| process                  | what changes                           | ages | example       |
|--------------------------|----------------------------------------|------|---------------|
| tense_aspirated_to_plain | tense or aspirated initial said plain  | 3-6  | 토끼 -> 도끼  |
| final_dropped            | final consonant left out               | 3-6  | 곰 -> 고       |
| liquid_gliding           | initial ㄹ + vowel said as a y-glide    | 3-7  | 노라요 -> 노야요 |
| liquid_stopping          | initial ㄹ said as ㄷ                    | 3-5  | 노라요 -> 노다요 |
| diphthong_to_monophthong | glide of a diphthong left out          | 3-8  | 여우 -> 어우   |
| fricative_stopping       | ㅅ ㅆ said as ㄷ ㄸ                      | 3-5  | 사자 -> 다자   |
| affrication              | ㅅ ㅆ said as ㅈ ㅉ                      | 3-7  | 사과 -> 자과   |
| affricate_stopping       | ㅈ ㅊ ㅉ said as ㄷ ㅌ ㄸ                 | 3-5  | 자동차 -> 다동차 |
| velar_fronting           | ㄱ ㅋ ㄲ said as ㄷ ㅌ ㄸ                 | 3-5  | 고기 -> 도기   |
| backing                  | ㄷ ㅌ ㄸ said as ㄱ ㅋ ㄲ                 | 3-5  | 다리 -> 가리   |
| tensing                  | plain ㄱ ㄷ ㅂ ㅅ ㅈ said tense           | 3-6  | 바다 -> 빠다   |
| glottal_deletion         | initial ㅎ left out                     | 3-5  | 하마 -> 아마   |
| final_fronting           | final ㅇ ㄱ said as ㄴ ㄷ                | 3-5  | 공 -> 곤       |
| initial_deletion         | an initial nasal or liquid left out    | 3-4  | 나비 -> 아비   |
| vowel_rounding           | ㅓ ㅡ said rounded, as ㅗ ㅜ              | 3-6  | 어디 -> 오디   |

Children also make errors no documented process describes. `RANDOM_EDIT` ("other") is one: one
phone of the syllable replaced by another of its role, left out, or an onset or final added
(trainer.data.phones.single_edits), drawn among the edits no process of the table makes, at every
child age. The synthetic children make it next to the table's processes (`select`), so a phone
model trained on them hears more than the table's errors, and the assessment's evaluation scores
errors of no known process as one more held-out kind.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Mapping

import numpy as np

from trainer.data.phones import PHONES, Syllable, single_edits, syllables

OTHER = "other"  # what a heard error no process describes is named
ROLES = ("onset", "vowel", "coda")
# Phone-level jamo (trainer.data.phones): initials U+1100.., vowels U+1161.., finals U+11A8...
PLAIN = {"ᄁ": "ᄀ", "ᄄ": "ᄃ", "ᄈ": "ᄇ", "ᄊ": "ᄉ", "ᄍ": "ᄌ", "ᄏ": "ᄀ", "ᄐ": "ᄃ", "ᄑ": "ᄇ", "ᄎ": "ᄌ"}
MONOPHTHONG = {
    "ᅣ": "ᅡ",
    "ᅧ": "ᅥ",
    "ᅭ": "ᅩ",
    "ᅲ": "ᅮ",
    "ᅤ": "ᅢ",
    "ᅨ": "ᅦ",
    "ᅪ": "ᅡ",
    "ᅯ": "ᅥ",
    "ᅫ": "ᅦ",
    "ᅰ": "ᅦ",
    "ᅬ": "ᅦ",
    "ᅱ": "ᅵ",
    "ᅴ": "ᅵ",
}
GLIDE = {"ᅡ": "ᅣ", "ᅥ": "ᅧ", "ᅩ": "ᅭ", "ᅮ": "ᅲ", "ᅦ": "ᅨ"}
# The finals of pronounced Korean (the seven that end a syllable, trainer.data.phones).
FINALS = ("ᆨ", "ᆫ", "ᆮ", "ᆯ", "ᆷ", "ᆸ", "ᆼ")


class _Aged:
    """An error kind made by children aged within `ages` (inclusive)."""

    ages: tuple[int, int]

    def at_age(self, age: int) -> bool:
        return self.ages[0] <= age <= self.ages[1]


@dataclass(frozen=True)
class Process(_Aged):
    """One phonological process: per role, phone -> what is said instead ("" left out)."""

    name: str
    rule: Mapping[str, Mapping[str, str]]
    ages: tuple[int, int]  # inclusive: the ages at which children are reported to make it

    def applies(self, syllable: Syllable) -> bool:
        return all(getattr(syllable, role) in mapping for role, mapping in self.rule.items())

    def apply(self, syllable: Syllable) -> Syllable:
        """`syllable` said with this process (it must apply)."""
        changed = {role: mapping[getattr(syllable, role)] for role, mapping in self.rule.items()}
        return Syllable(
            changed.get("onset", syllable.onset),
            changed.get("vowel", syllable.vowel),
            changed.get("coda", syllable.coda),
            syllable.word,
            syllable.start,
        )

    def say(self, syllable: Syllable, rng: np.random.Generator) -> Syllable:
        """What a child making this process says for `syllable` (it must apply)."""
        return self.apply(syllable)


def _process(name: str, ages: tuple[int, int], **rule: dict[str, str]) -> Process:
    assert set(rule) <= set(ROLES), rule
    return Process(name, MappingProxyType({k: MappingProxyType(v) for k, v in rule.items()}), ages)


PROCESSES: tuple[Process, ...] = (
    _process("tense_aspirated_to_plain", (3, 6), onset=PLAIN),
    _process("final_dropped", (3, 6), coda={c: "" for c in FINALS}),
    _process("liquid_gliding", (3, 7), onset={"ᄅ": ""}, vowel=GLIDE),
    _process("liquid_stopping", (3, 5), onset={"ᄅ": "ᄃ"}),
    _process("diphthong_to_monophthong", (3, 8), vowel=MONOPHTHONG),
    _process("fricative_stopping", (3, 5), onset={"ᄉ": "ᄃ", "ᄊ": "ᄄ"}),
    _process("affrication", (3, 7), onset={"ᄉ": "ᄌ", "ᄊ": "ᄍ"}),
    _process("affricate_stopping", (3, 5), onset={"ᄌ": "ᄃ", "ᄎ": "ᄐ", "ᄍ": "ᄄ"}),
    _process("velar_fronting", (3, 5), onset={"ᄀ": "ᄃ", "ᄏ": "ᄐ", "ᄁ": "ᄄ"}),
    _process("backing", (3, 5), onset={"ᄃ": "ᄀ", "ᄐ": "ᄏ", "ᄄ": "ᄁ"}),
    _process("tensing", (3, 6), onset={"ᄀ": "ᄁ", "ᄃ": "ᄄ", "ᄇ": "ᄈ", "ᄉ": "ᄊ", "ᄌ": "ᄍ"}),
    _process("glottal_deletion", (3, 5), onset={"ᄒ": ""}),
    _process("final_fronting", (3, 5), coda={"ᆼ": "ᆫ", "ᆨ": "ᆮ"}),
    _process("initial_deletion", (3, 4), onset={"ᄂ": "", "ᄆ": "", "ᄅ": ""}),
    _process("vowel_rounding", (3, 6), vowel={"ᅥ": "ᅩ", "ᅳ": "ᅮ"}),
)


@dataclass(frozen=True)
class RandomEdit(_Aged):
    """An error of no process of the table (module docstring): a random single-phone edit."""

    name: str = OTHER
    # Every child age of the synthetic corpus (trainer.data.synth.speakers.CHILD_AGES, not imported:
    # the synth package imports this module).
    ages: tuple[int, int] = (3, 10)

    def applies(self, syllable: Syllable) -> bool:
        return bool(syllable.vowel)

    def say(self, syllable: Syllable, rng: np.random.Generator) -> Syllable:
        known = {p.apply(syllable).phones for p in PROCESSES if p.applies(syllable)}
        edits = [
            parts[0]
            for edit in single_edits(syllable.phones, sorted(PHONES))
            if edit not in known and len(parts := syllables(edit)) == 1 and parts[0].vowel
        ]
        chosen = edits[int(rng.integers(len(edits)))]
        return replace(chosen, word=syllable.word, start=syllable.start)


RANDOM_EDIT = RandomEdit()
ErrorKind = Process | RandomEdit
# What the synthetic children say wrong: the table's processes and errors of none of them.
ERROR_KINDS: tuple[ErrorKind, ...] = (*PROCESSES, RANDOM_EDIT)
BY_NAME: Mapping[str, ErrorKind] = MappingProxyType({p.name: p for p in ERROR_KINDS})


def select(names: tuple[str, ...] | None) -> tuple[ErrorKind, ...]:
    """The error kinds named (all when None: the processes and "other"), in table order; ValueError
    names an unknown one."""
    if names is None:
        return ERROR_KINDS
    unknown = sorted(set(names) - set(BY_NAME))
    if unknown:
        raise ValueError(f"unknown phonological process {', '.join(unknown)} (known: {', '.join(BY_NAME)})")
    return tuple(p for p in ERROR_KINDS if p.name in names)


def classify(expected: Syllable, said: str, processes: tuple[Process, ...] = PROCESSES) -> str:
    """The first process that turns `expected` into the phones `said`, or OTHER."""
    for process in processes:
        if process.applies(expected) and process.apply(expected).phones == said:
            return process.name
    return OTHER
