"""Per-syllable verdicts: the expected phones against the phones the model recognised.

The two phone sequences (word delimiters left out) are aligned by Levenshtein distance (jiwer).
Each expected syllable then gets the recognised phones aligned to its own phones, plus those
inserted inside it, and a verdict:

    correct       it was said as expected
    substituted   something else was said (`said`: what, as Hangul, e.g. 도 for 토, 고 for 곰)
    deleted       none of its phones were said

Phones recognised between two syllables (or before the first, after the last) belong to no
expected syllable: they are reported as `inserted` entries, placed after syllable `after`
(-1: before the first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import jiwer

from trainer.data.phones import Syllable, from_phones
from trainer.data.processes import classify

CORRECT, SUBSTITUTED, DELETED, INSERTED = "correct", "substituted", "deleted", "inserted"
NOTHING = "∅"  # the other side of a deletion or insertion in the confusion counts


@dataclass(frozen=True)
class PhoneAlignment:
    """Per expected phone: the recognised phone aligned to it ("" if deleted) and the phones
    inserted before it; `trailing`: phones inserted after the last."""

    aligned: list[str]
    inserted_before: list[str]
    trailing: str


def align_phones(expected: str, recognised: str) -> PhoneAlignment:
    want = [c for c in expected if not c.isspace()]
    got = [c for c in recognised if not c.isspace()]
    aligned = [""] * len(want)
    before = [""] * len(want)
    trailing = ""
    if not want:
        return PhoneAlignment(aligned, before, "".join(got))
    if not got:
        return PhoneAlignment(aligned, before, "")
    chunks = jiwer.process_words(" ".join(want), " ".join(got)).alignments[0]
    for chunk in chunks:
        if chunk.type in ("equal", "substitute"):
            for k in range(chunk.ref_end_idx - chunk.ref_start_idx):
                aligned[chunk.ref_start_idx + k] = got[chunk.hyp_start_idx + k]
        elif chunk.type == "insert":
            extra = "".join(got[chunk.hyp_start_idx : chunk.hyp_end_idx])
            if chunk.ref_start_idx < len(want):
                before[chunk.ref_start_idx] += extra
            else:
                trailing += extra
    return PhoneAlignment(aligned, before, trailing)


def syllable_verdicts(cut: Sequence[Syllable], recognised: str) -> tuple[list[dict], list[dict], list[tuple[str, str]]]:
    """(one entry per expected syllable of `cut`, inserted entries, (expected, said) phone pairs
    that differ)."""
    alignment = align_phones("".join(s.phones for s in cut), recognised)
    entries, inserted, confusions = [], [], []
    for k, syllable in enumerate(cut):
        span = range(syllable.start, syllable.start + len(syllable))
        if alignment.inserted_before[syllable.start]:
            inserted.append(_inserted(k - 1, alignment.inserted_before[syllable.start]))
            confusions += [(NOTHING, p) for p in alignment.inserted_before[syllable.start]]
        said = "".join(
            (alignment.inserted_before[i] if i != syllable.start else "") + alignment.aligned[i] for i in span
        )
        for i in span:
            if alignment.aligned[i] != expected_phone(syllable, i):
                confusions.append((expected_phone(syllable, i), alignment.aligned[i] or NOTHING))
            if i != syllable.start:
                confusions += [(NOTHING, p) for p in alignment.inserted_before[i]]
        entries.append(_entry(k, syllable, said))
    if alignment.trailing:
        inserted.append(_inserted(len(cut) - 1, alignment.trailing))
        confusions += [(NOTHING, p) for p in alignment.trailing]
    return entries, inserted, confusions


def expected_phone(syllable: Syllable, index: int) -> str:
    return syllable.phones[index - syllable.start]


def _entry(k: int, syllable: Syllable, said: str) -> dict:
    verdict = CORRECT if said == syllable.phones else DELETED if not said else SUBSTITUTED
    entry = {"index": k, "word": syllable.word, "expected": from_phones(syllable.phones), "verdict": verdict}
    if verdict == SUBSTITUTED:
        entry["said"] = from_phones(said)
        entry["pattern"] = classify(syllable, said)
    return entry


def _inserted(after: int, phones: str) -> dict:
    return {"after": after, "verdict": INSERTED, "said": from_phones(phones)}
