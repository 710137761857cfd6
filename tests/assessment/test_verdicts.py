"""Per-syllable verdicts from expected vs recognised phones."""

from __future__ import annotations

import pytest

pytest.importorskip("g2pk", reason="g2pk not installed")

from trainer.assessment.verdicts import NOTHING, syllable_verdicts  # noqa: E402
from trainer.data.phones import syllables, text_phones  # noqa: E402


def verdicts(expected: str, recognised: str):
    return syllable_verdicts(syllables(text_phones(expected)), text_phones(recognised))


def test_correct_and_substituted_syllables_with_their_pattern():
    entries, inserted, confusions = verdicts("토끼가 좋아요", "도끼가 조아요")
    assert [e["verdict"] for e in entries] == ["substituted"] + ["correct"] * 5
    assert entries[0]["said"] == "도" and entries[0]["pattern"] == "tense_aspirated_to_plain"
    assert [e["word"] for e in entries] == [0, 0, 0, 1, 1, 1]
    assert not inserted and confusions == [("\u1110", "\u1103")]


def test_final_dropped_is_a_substitution_and_a_lost_syllable_a_deletion():
    entries, _, confusions = verdicts("곰 사과", "고 사")
    assert [(e["verdict"], e.get("said"), e.get("pattern")) for e in entries] == [
        ("substituted", "고", "final_dropped"),
        ("correct", None, None),
        ("deleted", None, None),
    ]
    assert ("\u11b7", NOTHING) in confusions


def test_phones_between_syllables_are_insertions():
    entries, inserted, _ = verdicts("사과", "사과나")
    assert all(e["verdict"] == "correct" for e in entries)
    assert inserted == [{"after": 1, "verdict": "inserted", "said": "나"}]
    entries, inserted, _ = verdicts("사과", "")
    assert all(e["verdict"] == "deleted" for e in entries) and not inserted
