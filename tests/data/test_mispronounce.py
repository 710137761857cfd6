"""Mispronunciation ground truth in the synthetic corpus: the process table, what the labels
record, that children make only the processes asked for at their age, and that a corpus is the
same for a seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("g2pk", reason="g2pk not installed")

from trainer.data.importers import import_aihub  # noqa: E402
from trainer.data.manifest import load_manifest  # noqa: E402
from trainer.data.phones import PHONES, from_phones, single_edits, syllables, text_phones  # noqa: E402
from trainer.data.processes import BY_NAME, OTHER, PROCESSES, RANDOM_EDIT, classify, select  # noqa: E402
from trainer.data.synth import synthesize_corpus  # noqa: E402
from trainer.data.synth.espeak import sounds_different  # noqa: E402
from trainer.data.synth.mispronounce import read_prompt  # noqa: E402
from trainer.data.text import normalize_transcript, to_units  # noqa: E402

RATE = 0.3


@pytest.mark.parametrize(
    ("expected", "spoken", "process"),
    [
        ("토", "도", "tense_aspirated_to_plain"),
        ("끼", "기", "tense_aspirated_to_plain"),
        ("곰", "고", "final_dropped"),
        ("라", "야", "liquid_gliding"),
        ("라", "다", "liquid_stopping"),
        ("여", "어", "diphthong_to_monophthong"),
        ("귀", "기", "diphthong_to_monophthong"),
        ("사", "다", "fricative_stopping"),
        ("사", "자", "affrication"),
        ("차", "타", "affricate_stopping"),
        ("고", "도", "velar_fronting"),
        ("다", "가", "backing"),
        ("바", "빠", "tensing"),
        ("하", "아", "glottal_deletion"),
        ("공", "곤", "final_fronting"),
        ("나", "아", "initial_deletion"),
        ("어", "오", "vowel_rounding"),
        ("사", "하", OTHER),
        ("사", "사", OTHER),
    ],
)
def test_classify_names_the_process(expected, spoken, process):
    (syllable,) = syllables(text_phones(expected))
    assert classify(syllable, text_phones(spoken)) == process


def test_every_process_is_named_by_what_it_says_and_a_syllable_none_applies_to_stays():
    # Each process changes at least one syllable, and what it says is named by it (or by an
    # earlier process of the table that says the same: ㄹ left out is liquid_gliding's onset too).
    cut = syllables(text_phones("토끼 곰 노라요 여 사 차 고 다 바 하 공 나 어"))
    for process in PROCESSES:
        changed = [s for s in cut if process.applies(s)]
        assert changed, process.name
        for syllable in changed:
            said = process.apply(syllable)
            assert said.phones != syllable.phones
            assert BY_NAME[classify(syllable, said.phones)].apply(syllable).phones == said.phones
    (syllable,) = syllables(text_phones("우"))
    assert not [p.name for p in PROCESSES if p.applies(syllable)]
    assert [p.name for p in select(("backing", "tensing"))] == ["backing", "tensing"]
    with pytest.raises(ValueError, match="no_such"):
        select(("no_such",))


def test_an_other_error_is_one_phone_edit_that_no_process_makes():
    # "other" is what a teacher would see as an error of no known process: never a table process's
    # output (else the held-out evaluation of that process would leak into "other"), always one
    # syllable one edit away, and any role can change.
    cut = syllables(text_phones("토끼 곰 노라요 여 사 차 고 다 바 하 공 나 어 우"))
    roles = set()
    for seed, syllable in enumerate(cut * 20):
        said = RANDOM_EDIT.say(syllable, np.random.default_rng(seed))
        assert said.phones in single_edits(syllable.phones, sorted(PHONES))
        assert (said.word, said.start) == (syllable.word, syllable.start) and said.vowel
        assert classify(syllable, said.phones) == OTHER
        roles |= {r for r in ("onset", "vowel", "coda") if getattr(said, r) != getattr(syllable, r)}
    assert roles == {"onset", "vowel", "coda"}
    assert [p.name for p in select(None)] == [*(p.name for p in PROCESSES), OTHER]


def test_an_error_espeak_does_not_voice_is_not_recorded():
    # espeak-ng's Korean voice says a tense initial between vowels like the plain one: labelling
    # 아기 said 아끼 as an error would ask the model and the assessment to hear what is not there.
    assert not sounds_different("아기", "아끼") and not sounds_different("동셍", "동쎙")
    assert sounds_different("가방", "까방") and sounds_different("아기", "아디")
    tensing = select(("tensing",))
    readings = [read_prompt(["아기", "가방"], 1.0, np.random.default_rng(seed), tensing) for seed in range(5)]
    # 기 -> 끼 between vowels is silent; 가 -> 까 at the word's start is heard (so is 방 -> 빵).
    assert all({e["syllable"] for e in r.errors} == {2, 3} for r in readings)


def test_a_child_makes_only_the_processes_given():
    words = ["사자가", "토끼를", "보고", "달려요"]
    chosen = select(("affrication", "final_dropped"))
    readings = [read_prompt(words, 0.6, np.random.default_rng(seed), chosen) for seed in range(20)]
    made = {e["pattern"] for r in readings for e in r.errors}
    assert made == {"affrication", "final_dropped"}
    assert not any(r.errors for r in (read_prompt(words, 0.9, np.random.default_rng(s), ()) for s in range(5)))


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
            assert error["pattern"] in BY_NAME
            (want,) = syllables(error["expected"])
            if error["pattern"] == OTHER:
                assert classify(want, error["spoken"]) == OTHER
                assert error["spoken"] in single_edits(error["expected"], sorted(PHONES))
            else:
                assert BY_NAME[error["pattern"]].apply(want).phones == error["spoken"]
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
    # A child makes a process only at the ages the table gives it.
    for label in labels.values():
        for error in label["합성정보"]["mispronunciations"]:
            assert BY_NAME[error["pattern"]].at_age(label["녹음자정보"]["age"])

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
    with pytest.raises(ConfigError, match="unknown phonological process nope"):
        synthesize_corpus(tmp_path / "c", 1, 0, 1, seed=0, mispronounce_rate=0.1, processes=("tensing", "nope"))
    with pytest.raises(ConfigError, match="mispronounce-rate"):
        synthesize_corpus(tmp_path / "c", 1, 0, 1, seed=0, processes=("tensing",))
    assert not (tmp_path / "c").exists()
