"""Mispronunciation ground truth in the synthetic corpus: the patterns, what the labels record,
and that a corpus is the same for a seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("g2pk", reason="g2pk not installed")

from trainer.data.importers import import_aihub  # noqa: E402
from trainer.data.manifest import load_manifest  # noqa: E402
from trainer.data.phones import from_phones, syllables, text_phones  # noqa: E402
from trainer.data.synth import synthesize_corpus  # noqa: E402
from trainer.data.synth.mispronounce import OTHER, PATTERNS, applicable, classify, read_prompt  # noqa: E402
from trainer.data.text import normalize_transcript, to_units  # noqa: E402

RATE = 0.3


@pytest.mark.parametrize(
    ("expected", "spoken", "pattern"),
    [
        ("토", "도", "tense_aspirated_to_plain"),
        ("끼", "기", "tense_aspirated_to_plain"),
        ("곰", "고", "final_dropped"),
        ("라", "야", "liquid_gliding"),
        ("라", "다", "liquid_stopping"),
        ("여", "어", "diphthong_to_monophthong"),
        ("귀", "기", "diphthong_to_monophthong"),
        ("사", "가", OTHER),
    ],
)
def test_classify_names_the_patterns(expected, spoken, pattern):
    assert classify(text_phones(expected), text_phones(spoken)) == pattern


def test_a_syllable_without_a_matching_pattern_is_never_changed():
    (syllable,) = syllables(text_phones("사"))
    assert applicable(syllable) == []


def test_reading_records_prompt_phones_and_errors():
    words = ["토끼가", "빨리", "달려요"]
    readings = [read_prompt(words, 0.5, np.random.default_rng(seed)) for seed in range(30)]
    assert all(r.expected_phones == text_phones("토끼가 빨리 달려요") for r in readings)
    with_errors = [r for r in readings if r.errors]
    assert len(with_errors) > 10
    for reading in with_errors:
        expected, spoken = syllables(reading.expected_phones), syllables(reading.spoken_phones)
        assert len(expected) == len(spoken)  # errors stay within a syllable
        wrong = {k for k, (e, s) in enumerate(zip(expected, spoken)) if e.phones != s.phones}
        assert wrong == {e["syllable"] for e in reading.errors}
        for error in reading.errors:
            assert error["pattern"] in PATTERNS
            assert classify(error["expected"], error["spoken"]) == error["pattern"]
        # What g2pK reads from the transcript's spoken side is what was said.
        spoken_text = normalize_transcript(" ".join(reading.transcript), "spoken")
        assert normalize_transcript(" ".join(reading.transcript), "orthographic") == " ".join(words)
        assert to_units(spoken_text, "phone") == reading.spoken_phones
        assert [from_phones(w) for w in reading.spoken_phones.split()] == reading.said
    assert read_prompt(words, 0.0, np.random.default_rng(0)).errors == []


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mispronounced") / "corpus"
    synthesize_corpus(root, 3, 1, 4, seed=2, workers=2, mispronounce_rate=RATE)
    return root


def _labels(root: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(root.rglob("*.json")) if p.parent != root}


def test_corpus_labels_carry_the_ground_truth(corpus, tmp_path):
    labels = _labels(corpus)
    truth = {name: label["합성정보"] for name, label in labels.items()}
    assert all({"prompt", "expectedPhones", "spokenPhones", "mispronunciations"} <= set(t) for t in truth.values())
    children = [t for t in truth.values() if t["group"] == "child"]
    adults = [t for t in truth.values() if t["group"] == "adult"]
    assert sum(len(t["mispronunciations"]) for t in children) > 0
    assert all(not t["mispronunciations"] and t["spokenPhones"] == t["expectedPhones"] for t in adults)

    import_aihub(corpus, tmp_path / "all.jsonl")
    rows = load_manifest(tmp_path / "all.jsonl")
    assert len(rows) == len(labels)
    for row in rows:
        fact = truth[row["utt_id"] + ".json"]
        assert row["prompt"] == fact["prompt"] and row["mispronunciations"] == fact["mispronunciations"]
        # The transcript's spoken side is what the child said: a phone model learns that.
        assert to_units(row["text"], "phone") == fact["spokenPhones"]


def test_same_seed_same_errors(corpus, tmp_path):
    again = tmp_path / "again"
    synthesize_corpus(again, 3, 1, 4, seed=2, workers=1, mispronounce_rate=RATE)
    assert _labels(again) == _labels(corpus)
    assert [p.read_bytes() for p in sorted(again.rglob("*.wav"))] == [
        p.read_bytes() for p in sorted(corpus.rglob("*.wav"))
    ]


def test_rate_outside_zero_to_one_is_bad_input(tmp_path):
    from trainer.exit_codes import ConfigError

    with pytest.raises(ConfigError, match="mispronounce-rate"):
        synthesize_corpus(tmp_path / "c", 1, 0, 1, seed=0, mispronounce_rate=1.5)
    assert not (tmp_path / "c").exists()
