"""Importers on a synthesised AI Hub tree and on a tree of broken files, with exact counts."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from trainer.data.importers import REPORT_FILE, SKIPPED_FILE, AihubFields, ImportOptions, import_aihub, import_generic
from trainer.data.manifest import load_manifest
from trainer.exit_codes import ConfigError

from .aihub_files import audio_file, label_file


@pytest.fixture()
def broken_tree(tmp_path) -> Path:
    """16 labels: 6 usable (some unusual), 10 broken in 10 different ways, plus a top-level JSON."""
    root = tmp_path / "corpus"
    train, val = root / "1.Training", root / "2.Validation"
    label_file(train / "ok_1.json", "사과를 먹어요.")
    audio_file(train / "ok_1.wav", 2.0)
    # AI Hub's separate trees: audio found by name within the same top-level folder.
    label_file(
        train / "라벨링데이터" / "s2" / "ok_2.json", "강아지가 귀여워요", speaker="1000000002-1", age=4, gender="남"
    )
    audio_file(train / "원천데이터" / "s2" / "ok_2.wav", 1.5)
    label_file(train / "stereo.json", "우유 주세요")
    audio_file(train / "stereo.wav", 2.0, rate=44100, channels=2)
    nfd_name = unicodedata.normalize("NFD", "아기_말")
    label_file(train / f"{nfd_name}.json", unicodedata.normalize("NFD", "아기가 웃어요"), file_name=f"{nfd_name}.wav")
    audio_file(train / f"{nfd_name}.wav", 1.2)
    label_file(train / "bom.json", "엄마 안녕", bom=True)
    audio_file(train / "bom.wav", 1.0)
    # No speaker fields: speaker, age and gender come from the AI Hub-style file name.
    label_file(train / "KID_0000000777-1_5_M_00001.json", "공룡이 커요", speaker=None)
    audio_file(train / "KID_0000000777-1_5_M_00001.wav", 1.0)

    label_file(train / "no_wav.json", "집에 가자")
    label_file(train / "zero.json", "집에 가자")
    (train / "zero.wav").write_bytes(b"")
    label_file(train / "truncated.json", "집에 가자")
    whole = audio_file(tmp_path / "whole.wav", 2.0).read_bytes()
    (train / "truncated.wav").write_bytes(whole[: len(whole) // 2])
    label_file(train / "clip50ms.json", "집")
    audio_file(train / "clip50ms.wav", 0.05)
    label_file(train / "malformed.json", raw='{"발화정보": {"stt": "집에 가자",')
    audio_file(train / "malformed.wav", 1.0)
    label_file(train / "no_stt.json", None)
    audio_file(train / "no_stt.wav", 1.0)
    label_file(train / "only_tags.json", "(NO:음) b/")
    audio_file(train / "only_tags.wav", 1.0)
    label_file(train / "anonymous.json", "누구야", speaker=None)
    audio_file(train / "anonymous.wav", 1.0)
    label_file(train / "long.json", "길어요")
    audio_file(train / "long.wav", 31.0)
    label_file(val / "ok_1.json", "같은 이름")  # same utt_id as 1.Training/ok_1
    audio_file(val / "ok_1.wav", 1.0)

    (root / "dataset_info.json").write_text('{"name": "not a label"}', encoding="utf-8")
    return root


def test_broken_tree_exact_counts(broken_tree, tmp_path):
    out = tmp_path / "prepared" / "all.jsonl"
    report = import_aihub(broken_tree, out, options=ImportOptions(workers=1))
    assert report.candidates == 16
    assert report.kept == 6
    assert dict(report.skipped) == {
        "missing_audio": 1,
        "empty_audio": 1,
        "unreadable_audio": 1,
        "too_short": 1,
        "too_long": 1,
        "bad_label_json": 1,
        "missing_transcript": 1,
        "empty_transcript": 1,
        "missing_speaker": 1,
        "duplicate_utt_id": 1,
    }
    assert "truncated" in report.examples["unreadable_audio"][0]
    assert report.audio_formats == {"16000Hz/1ch/PCM_16": 5, "44100Hz/2ch/PCM_16": 1}

    rows = {r["utt_id"]: r for r in load_manifest(out)}
    nfc_name = unicodedata.normalize("NFC", "아기_말")
    assert set(rows) == {"ok_1", "ok_2", "stereo", nfc_name, "bom", "KID_0000000777-1_5_M_00001"}
    assert rows["ok_1"]["text"] == "사과를 먹어요" and rows["ok_1"]["source_split"] == "1.Training"
    assert rows[nfc_name]["text"] == "아기가 웃어요"  # NFC, whatever the label held
    assert rows["ok_2"]["audio_filepath"].endswith("원천데이터/s2/ok_2.wav")
    assert (rows["ok_2"]["age"], rows["ok_2"]["gender"]) == (4, "M")
    assert rows["stereo"]["duration"] == pytest.approx(2.0)
    fallback = rows["KID_0000000777-1_5_M_00001"]
    assert (fallback["speaker_id"], fallback["age"], fallback["gender"]) == ("0000000777-1", 5, "M")

    saved = json.loads((out.parent / REPORT_FILE).read_text(encoding="utf-8"))
    assert saved["kept"] == 6 and saved["skipped_total"] == 10
    skipped = load_skipped(out.parent / SKIPPED_FILE)
    assert sorted(s["reason"] for s in skipped) == sorted(report.skipped.elements())


def load_skipped(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_parallel_import_writes_the_same_manifest(broken_tree, tmp_path):
    import_aihub(broken_tree, tmp_path / "a" / "all.jsonl", options=ImportOptions(workers=1))
    import_aihub(broken_tree, tmp_path / "b" / "all.jsonl", options=ImportOptions(workers=2))
    assert (tmp_path / "a" / "all.jsonl").read_bytes() == (tmp_path / "b" / "all.jsonl").read_bytes()


def test_synthetic_corpus_imports_completely(tiny_corpus, tmp_path):
    summary = json.loads((tiny_corpus / "synth_summary.json").read_text(encoding="utf-8"))
    report = import_aihub(tiny_corpus, tmp_path / "all.jsonl", options=ImportOptions(workers=2))
    assert report.kept == summary["utterances"] == 30
    assert sum(report.skipped.values()) == 0
    assert report.unknown_fields == {"age": 0, "gender": 0, "snr_db": 0}
    by_folder: dict[str, int] = {}
    for key, entry in summary["by_folder_and_group"].items():
        by_folder[key.split("/")[0]] = by_folder.get(key.split("/")[0], 0) + entry["utterances"]
    assert dict(report.source_splits) == by_folder
    speakers = {s["speaker_id"]: s for s in summary["speakers"]}
    for row in load_manifest(tmp_path / "all.jsonl"):
        speaker = speakers[row["speaker_id"]]
        assert (row["age"], row["gender"], row["source_split"]) == (
            speaker["age"],
            speaker["gender"],
            speaker["source_split"],
        )
        label = json.loads(
            Path(row["audio_filepath"].replace("원천데이터", "라벨링데이터"))
            .with_suffix(".json")
            .read_text(encoding="utf-8")
        )
        # The fluent sentence: disfluency tags in the raw label are normalised away.
        assert row["text"] == label["합성정보"]["text"]
        assert row["snr_db"] == label["합성정보"]["snrDb"]


def test_configurable_label_fields(tmp_path):
    root = tmp_path / "corpus"
    label = {
        "전사정보": {"LabelText": "사과 주세요"},
        "화자정보": {"SpeakerID": "A17", "Age": "6세", "Gender": "Female"},
    }
    (root / "3.Test").mkdir(parents=True)
    (root / "3.Test" / "cmd_001.json").write_text(json.dumps(label, ensure_ascii=False), encoding="utf-8")
    audio_file(root / "3.Test" / "cmd_001.wav", 1.0)
    fields = AihubFields(
        text="전사정보.LabelText", speaker_id="화자정보.SpeakerID", age="화자정보.Age", gender="화자정보.Gender"
    )
    import_aihub(root, tmp_path / "all.jsonl", fields=fields)
    (row,) = load_manifest(tmp_path / "all.jsonl")
    assert (row["text"], row["speaker_id"], row["age"], row["gender"], row["source_split"]) == (
        "사과 주세요",
        "A17",
        6,
        "F",
        "3.Test",
    )


def test_output_inside_root_and_empty_root_are_config_errors(tmp_path):
    (tmp_path / "corpus").mkdir()
    with pytest.raises(ConfigError, match="lies inside --root"):
        import_aihub(tmp_path / "corpus", tmp_path / "corpus" / "out" / "all.jsonl")
    with pytest.raises(ConfigError, match="no \\*.json labels"):
        import_aihub(tmp_path / "corpus", tmp_path / "all.jsonl")


def test_generic_jsonl_and_csv(tmp_path):
    audio_file(tmp_path / "audio" / "a.wav", 1.0)
    audio_file(tmp_path / "audio" / "KID_0000000003-1_8_F_00001.wav", 1.0)
    lines = [
        {"path": "audio/a.wav", "transcript": "사과!", "speaker": "s1", "age": 9, "gender": "M", "snr_db": 17},
        {"audio_filepath": "audio/KID_0000000003-1_8_F_00001.wav", "text": "바나나"},
        {"audio_filepath": "audio/none.wav", "text": "없어요", "speaker_id": "s2"},
        {"audio_filepath": "audio/a.wav", "speaker_id": "s3"},
    ]
    jsonl = tmp_path / "list.jsonl"
    jsonl.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n{broken\n", encoding="utf-8")
    report = import_generic(jsonl, "jsonl", tmp_path / "out" / "all.jsonl")
    assert report.kept == 2
    assert dict(report.skipped) == {"missing_audio": 1, "missing_transcript": 1, "bad_label_json": 1}
    first, second = load_manifest(tmp_path / "out" / "all.jsonl")
    assert (first["utt_id"], first["text"], first["speaker_id"], first["snr_db"]) == ("a", "사과", "s1", 17.0)
    assert (second["speaker_id"], second["age"], second["gender"]) == ("0000000003-1", 8, "F")

    csv_path = tmp_path / "list.csv"
    csv_path.write_text("\ufeffaudio_filepath,text,speaker_id,age\naudio/a.wav,우유 주세요,s9,\n", encoding="utf-8")
    report = import_generic(csv_path, "csv", tmp_path / "csv" / "all.jsonl")
    (row,) = load_manifest(tmp_path / "csv" / "all.jsonl")
    assert report.kept == 1 and (row["text"], row["speaker_id"], row["age"]) == ("우유 주세요", "s9", None)
