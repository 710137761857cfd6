"""Importing real releases: audio matched as AI Hub ships it, rows checked as training will check
them, and bad bytes or odd files counted or named instead of crashing."""

from __future__ import annotations

import json

import pytest

from trainer.data.importers import REPORT_FILE, import_aihub, import_generic
from trainer.data.manifest import load_manifest
from trainer.exit_codes import ConfigError

from .aihub_files import audio_file, label_file


def test_real_release_layout_with_wavp_file_names(tmp_path):
    """Labels in `라벨링데이터/TL_*` whose `fileNm` ends in `.wavp`, audio in `원천데이터/TS_*`."""
    root = tmp_path / "corpus"
    labels, sources = root / "1.Training" / "02.라벨링데이터", root / "1.Training" / "01.원천데이터"
    for zip_no in (1, 2):
        for k in range(3):
            name = f"KID_000000000{zip_no}-1_7_F_0000{k}"
            label_file(
                labels / f"TL_0{zip_no}.아동" / "spk" / f"{name}.json",
                "사과를 먹어요",
                file_name=f"{name}.wavp",
                seconds=1.0,
            )
            audio_file(sources / f"TS_0{zip_no}.아동" / "spk" / f"{name}.wav", 1.0)
    report = import_aihub(root, tmp_path / "out" / "all.jsonl")
    assert report.kept == 6 and not report.skipped
    assert dict(report.audio_match) == {"fileNm_suffix": 6}
    saved = json.loads((tmp_path / "out" / REPORT_FILE).read_text(encoding="utf-8"))
    assert saved["audio_match"] == {"fileNm_suffix": 6}


def test_each_matching_rule_and_the_paired_folder(tmp_path):
    root = tmp_path / "corpus"
    labels, sources = root / "라벨링데이터" / "Training", root / "원천데이터" / "Training"
    # Same file name in two zips: the label's own zip (TL_02 -> TS_02) decides, not the first found.
    label_file(labels / "TL_02" / "same.json", "둘째 묶음", file_name="same.wav")
    audio_file(sources / "TS_01" / "same.wav", 2.0)
    paired = audio_file(sources / "TS_02" / "same.wav", 1.0)
    label_file(labels / "TL_01" / "upper.json", "대문자 이름", file_name="UPPER.WAV")
    audio_file(sources / "TS_01" / "upper.wav", 1.0)
    label_file(labels / "TL_01" / "stem_only.json", "이름 없음", file_name="elsewhere/nothing_like_it.wav")
    audio_file(sources / "TS_01" / "stem_only.wav", 1.0)
    label_file(labels / "TL_01" / "lost.json", "어디 있니", file_name="lost.wavp")
    # Audio in a deeper folder of the paired split than its label.
    label_file(labels / "TL_03" / "deep.json", "깊은 곳", file_name="deep.wav")
    deep = audio_file(sources / "TS_03" / "session" / "mic" / "deep.wav", 1.0)
    report = import_aihub(root, tmp_path / "all.jsonl")
    assert dict(report.audio_match) == {"fileNm": 3, "label_stem": 1}
    assert dict(report.skipped) == {"missing_audio": 1}
    rows = {r["utt_id"]: r for r in load_manifest(tmp_path / "all.jsonl")}
    assert rows["same"]["audio_filepath"] == str(paired) and rows["deep"]["audio_filepath"] == str(deep)
    assert {r["source_split"] for r in rows.values()} == {"Training"}


def test_rows_are_checked_as_training_checks_them(tmp_path):
    root = tmp_path / "corpus" / "1.Training"
    label_file(root / "ok.json", "안녕", seconds=1.0)
    audio_file(root / "ok.wav", 1.0)
    # recrdTime 10x too small: the label describes some other recording.
    label_file(root / "ten_x.json", "안녕", seconds=0.3)
    audio_file(root / "ten_x.wav", 3.0)
    # 0.6 s is 29 frames of 20 ms: too few for 40 syllables.
    label_file(root / "chatty.json", "가나다라마바사아자차" * 4)
    audio_file(root / "chatty.wav", 0.6)
    (root / "folder.wav").mkdir()
    label_file(root / "folder.json", "폴더예요")
    report = import_aihub(root.parent, tmp_path / "all.jsonl")
    assert report.kept == 1
    assert dict(report.skipped) == {"duration_mismatch": 1, "labels_too_long": 1, "not_a_file": 1}
    assert "label says 0.300 s, audio has 3.000 s" in report.examples["duration_mismatch"][0]


def test_invalid_utf8_is_a_counted_skip_in_jsonl_and_a_named_error_in_csv(tmp_path):
    audio_file(tmp_path / "a.wav", 1.0)
    good = json.dumps({"audio_filepath": "a.wav", "text": "사과", "speaker_id": "s1"}, ensure_ascii=False).encode()
    jsonl = tmp_path / "list.jsonl"
    jsonl.write_bytes(good + b"\n" + b'{"audio_filepath": "a.wav", "text": "\xff\xfe", "speaker_id": "s2"}\n')
    report = import_generic(jsonl, "jsonl", tmp_path / "out" / "all.jsonl")
    assert report.kept == 1 and dict(report.skipped) == {"bad_encoding": 1}
    offset = len(good) + 1 + len(b'{"audio_filepath": "a.wav", "text": "')
    assert report.examples["bad_encoding"] == [
        f"{jsonl}:2: not valid UTF-8 at byte offset {offset} (invalid start byte)"
    ]

    csv_path = tmp_path / "list.csv"
    csv_path.write_bytes("audio_filepath,text,speaker_id\na.wav,사과,s1\n".encode() + b"a.wav,\xc3(,s2\n")
    with pytest.raises(ConfigError, match=rf"^{csv_path}:3: not valid UTF-8 at byte offset \d+"):
        import_generic(csv_path, "csv", tmp_path / "csv" / "all.jsonl")


def test_hostile_labels_and_lists_are_counted_or_named_not_tracebacks(tmp_path):
    from trainer.data.manifest import load_manifest as read
    from trainer.data.prepare import PrepareOptions, inputs_hash

    root = tmp_path / "corpus" / "1.Training"
    label_file(root / "ok.json", "안녕")
    audio_file(root / "ok.wav", 1.0)
    prefix = '{"발화정보": {"stt": "caf'.encode()
    (root / "latin1.json").write_bytes(prefix + b'\xe9"}}')  # Latin-1, not UTF-8
    (root / "deep.json").write_text("[" * 100000 + "]" * 100000, encoding="utf-8")
    label_file(root / "dangling.json", "링크")
    (root / "dangling.wav").symlink_to(tmp_path / "nowhere.wav")
    report = import_aihub(root.parent, tmp_path / "out" / "all.jsonl")
    assert report.kept == 1
    assert dict(report.skipped) == {"bad_encoding": 1, "bad_label_json": 1, "missing_audio": 1}
    assert report.examples["bad_encoding"] == [
        f"{root / 'latin1.json'}: line 1: not valid UTF-8 at byte offset {len(prefix)} (invalid continuation byte)"
    ]
    inputs_hash(PrepareOptions(source=str(root.parent), out=str(tmp_path / "prepared")))  # dangling link: no crash

    # A NUL byte in a path is a missing file; an oversized CSV field names its line.
    jsonl = tmp_path / "list.jsonl"
    jsonl.write_text(
        json.dumps({"audio_filepath": "a\u0000.wav", "text": "사과", "speaker_id": "s1"}) + "\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=rf"first: {jsonl}:1: missing_audio: "):
        import_generic(jsonl, "jsonl", tmp_path / "j" / "all.jsonl")
    csv_path = tmp_path / "big.csv"
    csv_path.write_text(
        "audio_filepath,text,speaker_id\na.wav,사과,s1\na.wav," + "가" * 200000 + ",s2\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=rf"^{csv_path}:3: not readable as CSV \(field larger than field limit"):
        import_generic(csv_path, "csv", tmp_path / "c" / "all.jsonl")
    with pytest.raises(ConfigError, match="manifest not readable"):
        read(tmp_path)


def test_an_import_that_kept_nothing_fails_naming_the_first_skip(tmp_path):
    root = tmp_path / "corpus" / "1.Training"
    label_file(root / "a.json", "안녕", file_name="a.flac")
    with pytest.raises(
        ConfigError,
        match=rf"^import: no usable utterance in .*; first: {root / 'a.json'}: missing_audio: {root / 'a.flac'}$",
    ):
        import_aihub(root.parent, tmp_path / "out" / "all.jsonl")
    assert json.loads((tmp_path / "out" / REPORT_FILE).read_text(encoding="utf-8"))["skipped"] == {"missing_audio": 1}
