"""Phone units: targets from the pronounced form (g2pK rules), readable output, syllables, and
`data prepare --unit phone` with the vocabulary from the training split only."""

from __future__ import annotations

import json
import unicodedata

import pytest

pytest.importorskip("g2pk", reason="g2pk not installed")

from trainer.data.manifest import load_manifest  # noqa: E402
from trainer.data.phones import from_phones, pronounce, syllables, text_phones, to_phones  # noqa: E402
from trainer.data.text import WORD_DELIMITER, build_vocab, from_units, load_unit, to_units  # noqa: E402


def jamo(text: str) -> str:
    """Hand-written expectation: the jamo of a Hangul spelling, silent initials removed."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if c != "\u110b")


@pytest.mark.parametrize(
    ("written", "spoken"),
    [("국물", "궁물"), ("같이", "가치"), ("신라", "실라"), ("밥을 먹어요", "바블 머거요"), ("좋아해요", "조아헤요")],
)
def test_phone_units_follow_the_standard_pronunciation(written, spoken):
    assert pronounce(written) == spoken
    assert to_units(written, "phone") == jamo(spoken)
    assert from_units(to_units(written, "phone"), "phone") == spoken
    # A row prepared with its pronounced form gives the same units without a g2pK call.
    assert to_units(written, "phone", pronounced=spoken) == to_units(written, "phone")


def test_g2pk_compiles_its_patterns_once_per_process(monkeypatch):
    """g2pK's ~570 patterns overflow Python's default regex cache: each sentence recompiled them."""
    import re

    pronounce("나는 사과를 먹어요")  # loads g2pK and fills the pattern cache
    compiled = []
    real_compile = re._compiler.compile
    monkeypatch.setattr(re._compiler, "compile", lambda *a, **k: compiled.append(a[0]) or real_compile(*a, **k))
    assert pronounce("우리 강아지는 밥을 잘 먹어요").endswith("바블 잘 머거요")
    assert compiled == []


def test_phones_have_no_silent_initial_and_keep_the_word_delimiter():
    phones = text_phones("우리 같이 놀자")
    assert "\u110b" not in phones and phones.count(" ") == 2
    assert phones.split() == [jamo("우리"), jamo("가치"), jamo("놀자")]
    # Final ㅇ (/ŋ/) is a phone and a different unit from the silent initial.
    assert "\u11bc" in text_phones("강아지")


def test_from_phones_round_trips_any_phone_string():
    for phones in [
        jamo("궁물"),
        jamo("아이"),
        "\u1100\u1102\u1161",
        "\u11ab\u1100\u1161",
        jamo("앙") + " " + jamo("오이"),
    ]:
        assert to_phones(from_phones(phones)) == phones


def test_syllables_of_phones():
    cut = syllables(text_phones("같이 놀자"))
    assert [from_phones(s.phones) for s in cut] == ["가", "치", "놀", "자"]
    assert [s.word for s in cut] == [0, 0, 1, 1]
    assert [s.start for s in cut] == [0, 2, 4, 7]
    assert cut[2].coda == "\u11af" and cut[1].onset == "\u110e"
    # Recognised output may hold consonants without a vowel: each gets a syllable of its own.
    stray = syllables("\u1100\u1102\u1161\u11ab")
    assert [s.phones for s in stray] == ["\u1100", "\u1102\u1161\u11ab"]


def test_phone_vocabulary():
    vocab = build_vocab(["국물", "같이 놀자"], "phone")
    assert WORD_DELIMITER in vocab
    assert "\u11bc" in vocab and "\u110e" in vocab  # 궁's final ㅇ, 치's ㅊ (from 같이)
    assert "\u11a8" not in vocab and "\u110b" not in vocab  # 국's final ㄱ was never said; no silent ㅇ


def test_prepare_phone_units(tiny_corpus, tmp_path, monkeypatch):
    from trainer.data import importers
    from trainer.data import prepare as prepare_module
    from trainer.data.prepare import PrepareOptions, prepare

    out = tmp_path / "prepared"
    written = []
    for module in (importers, prepare_module):
        write = module.write_manifest
        monkeypatch.setattr(module, "write_manifest", lambda rows, path, w=write: written.append(path) or w(rows, path))
    prepare(
        PrepareOptions(
            source=str(tiny_corpus),
            out=str(out),
            val_fraction=0.2,
            test_fraction=0.2,
            fractions=(1.0,),
            unit="phone",
            workers=2,
        )
    )
    assert load_unit(out) == "phone"
    assert written.count(out / "all.jsonl") == 1  # imported with its pronounced forms, written once
    assert all(r["pronounced"] == pronounce(r["text"]) for r in load_manifest(out / "all.jsonl"))
    train = load_manifest(out / "train.jsonl")
    assert all(r["pronounced"] == pronounce(r["text"]) for r in train)
    vocab = json.loads((out / "vocab.json").read_text(encoding="utf-8"))
    assert vocab == build_vocab([r["text"] for r in train], "phone")
    held_out = {c for r in load_manifest(out / "test.jsonl") for c in to_units(r["text"], "phone")} - {" "}
    train_units = {c for r in train for c in to_units(r["text"], "phone")} - {" "}
    # Vocabulary from the training split only: units that only the test split has are not in it.
    assert not (held_out - train_units) & set(vocab)
