"""Korean normalisation cases, units and the vocabulary (checked against the real HF tokenizer)."""

from __future__ import annotations

import json
import unicodedata

import pytest

from trainer.data.text import (
    PAD,
    UNK,
    WORD_DELIMITER,
    build_vocab,
    from_units,
    load_unit,
    normalize_transcript,
    save_vocab,
    to_units,
)
from trainer.exit_codes import ConfigError


@pytest.mark.parametrize(
    ("raw", "spoken", "orthographic"),
    [
        ("사과를 먹어요.", "사과를 먹어요", None),
        (unicodedata.normalize("NFD", "강아지가 뛰어요"), "강아지가 뛰어요", None),
        ("(3월)/(삼 월)에 가요", "삼 월에 가요", "3월에 가요"),
        ("(NO:음) 사과 (SP:사) 사과 주세요", "사과 사과 주세요", None),
        ("b/ 어/ 그러니까 n/ 학교+ 학교에 l/ 가요*", "어 그러니까 학교 학교에 가요", None),
        ("o/ u/ 엄마!  아빠?? ~ 안녕", "엄마 아빠 안녕", None),
        ("(SN:) (FP:어)", "", None),
        ("abc 2개, 사과", "abc 2개 사과", None),
    ],
)
def test_normalize_transcript(raw, spoken, orthographic):
    assert normalize_transcript(raw) == spoken
    assert normalize_transcript(raw, dual="orthographic") == (orthographic or spoken)


@pytest.mark.parametrize(
    "invisible",
    ["\u200b", "\u200c", "\u200d", "\u00ad", "\ufeff"],
    ids=["zero-width space", "ZWNJ", "ZWJ", "soft hyphen", "BOM"],
)
def test_invisible_format_characters_are_removed_not_spaced(invisible):
    assert normalize_transcript(f"학교{invisible}에 가") == "학교에 가"
    assert normalize_transcript(f"{invisible}(3월)/(삼 월{invisible})에 가요") == "삼 월에 가요"


def test_normalize_rejects_unknown_side():
    with pytest.raises(ConfigError, match="dual"):
        normalize_transcript("가", dual="both")


def test_jamo_units_round_trip():
    text = "강아지가 뛰어요"
    units = to_units(text, "jamo")
    assert len(units) > len(text) and all(0x1100 <= ord(c) <= 0x11FF or c == " " for c in units)
    assert from_units(units, "jamo") == text
    assert to_units(text, "syllable") == text


def test_build_vocab_layout_and_determinism():
    vocab = build_vocab(["사과 먹어요", "강아지"], "syllable")
    assert list(vocab)[:3] == [PAD, UNK, WORD_DELIMITER]
    assert list(vocab.values()) == list(range(len(vocab)))
    assert set(vocab) - {PAD, UNK, WORD_DELIMITER} == set("사과먹어요강아지")
    assert list(vocab)[3:] == sorted(list(vocab)[3:])
    assert build_vocab(["강아지", "사과 먹어요"], "syllable") == vocab
    with pytest.raises(ConfigError, match="no characters"):
        build_vocab(["", " "], "jamo")


def test_saved_vocab_loads_in_the_hf_ctc_tokenizer(tmp_path):
    from transformers import Wav2Vec2CTCTokenizer

    texts = ["강아지가 뛰어요", "사과를 먹어요"]
    save_vocab(build_vocab(texts, "jamo"), tmp_path, "jamo")
    assert load_unit(tmp_path) == "jamo"
    assert json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))[PAD] == 0
    tokenizer = Wav2Vec2CTCTokenizer(
        str(tmp_path / "vocab.json"), unk_token=UNK, pad_token=PAD, word_delimiter_token=WORD_DELIMITER
    )
    ids = tokenizer(to_units(texts[0], "jamo")).input_ids
    assert tokenizer.unk_token_id not in ids
    decoded = tokenizer.decode(ids, group_tokens=False)
    assert from_units(decoded, "jamo") == texts[0]


def test_load_unit_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="text_units.json: not found"):
        load_unit(tmp_path)
    (tmp_path / "text_units.json").write_text('{"unit": "word"}', encoding="utf-8")
    with pytest.raises(ConfigError, match="unit"):
        load_unit(tmp_path)
