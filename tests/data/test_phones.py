"""Phone units: targets from the pronounced form (g2pK rules), readable output, syllables, and
`data prepare --unit phone` with the vocabulary from the training split only."""

from __future__ import annotations

import json
import re
import unicodedata

import pytest

pytest.importorskip("g2pk", reason="g2pk not installed")

from trainer.data.manifest import load_manifest  # noqa: E402
from trainer.data.phones import (  # noqa: E402
    PHONES,
    PhoneError,
    from_phones,
    g2pk_name,
    load_g2pk,
    pronounce,
    syllables,
    text_phones,
    to_phones,
)
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


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        # Corrupt cells of g2pK 0.9.4's rule table: a coda cluster or ㅆ before ㅋ ㅌ ㅍ, ㅍ
        # before ㄹ. Expected: the cluster's consonant (rules 9-11), the next onset and the word
        # delimiter kept, ㅍ nasalised like ㅂ (rules 18-19).
        ("닭 키우기", "닥 키우기"),  # g2pK: 다1)이우기
        ("흙 케이크", "흑 케이크"),  # g2pK: 흐1)에이크
        ("있 풀", "읻 풀"),  # g2pK: 읻1풀
        ("읊 키", "읍 키"),  # g2pK: 읍 ᆸ 피
        ("흙투성이", "흑투성이"),  # g2pK: 흑푸성이
        ("닭털", "닥털"),  # g2pK: 닥펄
        ("값 키", "갑 키"),  # g2pK: 갑 피
        ("앞로", "암노"),  # g2pK: 안노
        # Upstream misses (the standard's examples where it has them), suffixed forms included:
        # rule 15, a coda before a real morpheme's vowel, and rule 29, ㄴ inserted in a compound.
        ("겉옷", "거돋"),
        ("겉옷이", "거도시"),
        ("윗옷", "위돋"),
        ("헛웃음", "허두슴"),
        ("헛웃음이", "허두스미"),
        ("첫인상이", "처딘상이"),
        ("웃어른", "우더른"),
        ("맛없어요", "마덥써요"),
        ("한여름", "한녀름"),
        ("한여름에", "한녀르메"),
        ("늦여름", "는녀름"),
        ("알약을", "알랴글"),
        ("옛이야기", "옌니야기"),
        ("뒷일", "뒨닐"),
        ("집안일", "지반닐"),
        ("이번 한여름", "이번 한녀름"),
    ],
)
def test_corrected_g2pk_follows_the_standard_pronunciation(written, spoken):
    assert pronounce(written) == spoken
    assert text_phones(written) == jamo(spoken)


def test_a_coda_before_a_vowel_initial_word_keeps_the_word_delimiter():
    # g2pK's ㅀ + word end cell wrote "ᆯ" without the delimiter that every other coda keeps.
    assert text_phones("싫 어").count(" ") == 1


@pytest.mark.parametrize(
    ("text", "pronounced", "complaint"),
    [
        ("닭 키우기", "다1)이우기", "'1', ')' not phones"),  # g2pK 0.9.4's corrupt output
        ("읊 키", "읍 \u11b8 피", "outside any syllable"),  # a coda without a vowel
        ("개", "개", "not phones"),  # ㅐ is grouped with ㅔ: never a target
        ("ㅋㅋ", "ㅋㅋ", "not phones"),  # compatibility jamo are letters, not phones
    ],
)
def test_phone_strings_outside_the_inventory_are_refused(text, pronounced, complaint):
    with pytest.raises(PhoneError, match=re.escape(complaint)) as caught:
        to_units(text, "phone", pronounced)
    assert caught.value.reason == "invalid_phones"


def test_latin_letters_are_never_pronounced_whatever_nltk_has(monkeypatch):
    """With NLTK's cmudict installed g2pK spells TV as 티비, with the offline stand-in it keeps TV:
    targets would depend on the machine. They never convert English: such a text has no target."""
    load_g2pk()  # g2pk's import needs the offline cmudict stand-in in place
    import g2pk.english
    from nltk.corpus import cmudict

    installed = {"tv": [["T", "IY1", "V", "IY1"]]}  # cmudict's entry
    assert g2pk.english.convert_eng("TV를 봤다", installed) == "티비를 봤다"
    try:
        monkeypatch.setattr(cmudict, "dict", lambda: installed)
        load_g2pk.cache_clear()
        pronounce.cache_clear()
        with pytest.raises(PhoneError, match="'T', 'V' not phones"):
            to_units("TV를 봤다", "phone")
    finally:
        load_g2pk.cache_clear()
        pronounce.cache_clear()
    assert g2pk_name().endswith("+latin-unconverted")


@pytest.mark.slow
def test_every_syllable_alone_and_before_a_suffix_has_phones_of_the_inventory():
    """All 11,172 Hangul syllables, alone and before 이, 다, 도 (~45k g2pK calls, ~100 s on an idle
    core): valid phone strings (text_phones raises otherwise) of PHONES only."""
    failures = []
    for code in range(0xAC00, 0xD7A4):
        for text in (chr(code), chr(code) + "이", chr(code) + "다", chr(code) + "도"):
            try:
                phones = text_phones(text)
            except PhoneError as exc:
                failures.append(str(exc))
                continue
            if not set(phones) <= PHONES:
                failures.append(f"{text!r} -> {phones!r}")
    assert failures == [], f"{len(failures)} texts, e.g. {failures[:5]}"


def test_import_skips_and_counts_texts_without_phones(tmp_path):
    import numpy as np
    import soundfile as sf

    from trainer.data.importers import ImportOptions, import_generic

    lines = []
    for name, text in (("latin", "TV를 봤다"), ("hangul", "닭 키우기")):
        sf.write(tmp_path / f"{name}.wav", np.zeros(16000, dtype=np.float32), 16000)
        lines.append({"audio_filepath": f"{name}.wav", "text": text, "speaker_id": "s1"})
    jsonl = tmp_path / "list.jsonl"
    jsonl.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    report = import_generic(jsonl, "jsonl", tmp_path / "out" / "all.jsonl", options=ImportOptions(unit="phone"))
    assert report.kept == 1 and dict(report.skipped) == {"invalid_phones": 1}
    (row,) = load_manifest(tmp_path / "out" / "all.jsonl")
    assert row["pronounced"] == "닥 키우기"


def test_changed_phone_rules_make_prepared_phone_data_stale(tmp_path, monkeypatch):
    """`data prepare` reuses a folder whose inputs hash matches: for phone units the hash covers
    the G2P and its corrections, whose targets the rows carry."""
    from trainer.data import phones
    from trainer.data.prepare import PrepareOptions, inputs_hash

    (tmp_path / "list.jsonl").write_text("", encoding="utf-8")
    options = {
        unit: PrepareOptions(source=str(tmp_path / "list.jsonl"), out="x", unit=unit) for unit in ("phone", "jamo")
    }
    before = {unit: inputs_hash(o) for unit, o in options.items()}
    monkeypatch.setattr(phones, "PRONUNCIATION_EXCEPTIONS", {**phones.PRONUNCIATION_EXCEPTIONS, "솜이불": "솜니불"})
    assert inputs_hash(options["phone"]) != before["phone"]
    assert inputs_hash(options["jamo"]) == before["jamo"]


def test_g2pk_compiles_its_patterns_once_per_process(monkeypatch):
    """g2pK's ~570 patterns overflow Python's default regex cache: each sentence recompiled them."""
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
