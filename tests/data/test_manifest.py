"""Manifest format: validation errors name file, line and field; skip-and-count; atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.data.manifest import (
    REQUIRED_FIELDS,
    ManifestError,
    load_manifest,
    read_manifest,
    validate_row,
    write_manifest,
)
from trainer.exit_codes import ConfigError

GOOD = {
    "utt_id": "u1",
    "audio_filepath": "audio/u1.wav",
    "duration": 2.5,
    "text": "사과를 먹어요",
    "speaker_id": "s1",
    "age": 5,
    "gender": "F",
    "snr_db": 12.5,
}


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_valid_rows_keep_extra_fields_and_resolve_relative_paths(tmp_path):
    rows = [
        dict(GOOD, source_split="1.Training", note={"k": [1]}),
        dict(GOOD, utt_id="u2", audio_filepath="/abs/u2.wav", age=None, gender=None, snr_db=None),
    ]
    path = _write_lines(tmp_path / "m.jsonl", [json.dumps(r, ensure_ascii=False) for r in rows])
    first, second = load_manifest(path)
    assert first["audio_filepath"] == str(tmp_path / "audio" / "u1.wav")
    assert first["source_split"] == "1.Training" and first["note"] == {"k": [1]}
    assert list(first)[: len(REQUIRED_FIELDS)] == list(REQUIRED_FIELDS)
    assert second["audio_filepath"] == "/abs/u2.wav" and second["age"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"duration": 0}, "duration"),
        ({"duration": "2.5"}, "duration"),
        ({"text": "  "}, "text"),
        ({"age": 5.5}, "age"),
        ({"age": True}, "age"),
        ({"gender": "female"}, "gender"),
        ({"snr_db": "loud"}, "snr_db"),
        ({"speaker_id": ""}, "speaker_id"),
        ({"utt_id": 7}, "utt_id"),
    ],
)
def test_bad_field_is_named_with_file_and_line(tmp_path, change, field):
    path = _write_lines(tmp_path / "m.jsonl", [json.dumps(GOOD), "", json.dumps({**GOOD, "utt_id": "u2", **change})])
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert str(caught.value).startswith(f"{path}:3: field '{field}'")
    assert isinstance(caught.value, ConfigError)


def test_missing_field_bad_json_and_duplicates_are_errors_or_skipped_and_counted(tmp_path):
    missing = {k: v for k, v in GOOD.items() if k != "speaker_id"}
    lines = [
        json.dumps(GOOD),
        "{not json",
        json.dumps(dict(missing, utt_id="u2")),
        json.dumps(GOOD),
        "[1, 2]",
        json.dumps(dict(GOOD, utt_id="u3")),
    ]
    path = _write_lines(tmp_path / "m.jsonl", lines)
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: field '\*': not valid JSON"):
        load_manifest(path)
    stats: dict[str, int] = {}
    rows = load_manifest(path, skip_invalid=True, stats=stats)
    assert [r["utt_id"] for r in rows] == ["u1", "u3"]
    assert stats == {"bad_json": 1, "missing_field": 1, "duplicate_utt_id": 1, "not_an_object": 1}


def test_speaker_id_int_becomes_string_and_bom_is_tolerated(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes("\ufeff".encode() + json.dumps(dict(GOOD, speaker_id=42)).encode() + b"\n")
    assert load_manifest(path)[0]["speaker_id"] == "42"


def test_validate_row_returns_canonical_types():
    row = validate_row(dict(GOOD, duration=3, snr_db=10), "x:1")
    assert isinstance(row["duration"], float) and isinstance(row["snr_db"], float)


def test_missing_manifest_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="manifest not found"):
        list(read_manifest(tmp_path / "nope.jsonl"))


def test_write_is_atomic_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.jsonl"
    assert write_manifest([GOOD], path) == 1
    before = path.read_bytes()

    def rows_then_crash():
        yield dict(GOOD, utt_id="new")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_manifest(rows_then_crash(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    assert json.loads(before)["text"] == "사과를 먹어요"
