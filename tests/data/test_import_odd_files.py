"""A user imports files as real tools leave them: float WAVs with NaN or infinite samples (kept,
they would be skipped by training only later) are skipped at import and counted; AI Hub labels
written by macOS tools, whose Hangul JSON keys are NFD, are read like any other label."""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import soundfile as sf

from trainer.data.audio import AudioError
from trainer.data.importers import import_aihub, import_generic
from trainer.data.manifest import load_manifest
from trainer.data.screening import audio_skip_reason

from .aihub_files import RATE, audio_file, label_file


def test_float_wav_with_nan_or_inf_samples_is_skipped_at_import(tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    rows = []
    for name, poison in (("clean", None), ("nan", np.nan), ("inf", np.inf)):
        data = (0.1 * np.sin(np.arange(RATE) * 0.01)).astype(np.float32)
        if poison is not None:
            data[RATE // 2] = poison
        sf.write(audio / f"{name}.wav", data, RATE, subtype="FLOAT")
        rows.append({"audio_filepath": f"audio/{name}.wav", "text": "사과", "speaker_id": name})
    source = tmp_path / "list.jsonl"
    source.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    report = import_generic(source, "jsonl", tmp_path / "out" / "all.jsonl")
    assert [r["utt_id"] for r in load_manifest(tmp_path / "out" / "all.jsonl")] == ["clean"]
    assert report.skipped == {audio_skip_reason(AudioError("unreadable", "x")): 2}, report.skipped
    assert "NaN or infinite" in json.dumps(report.to_dict(), ensure_ascii=False)


def test_labels_with_nfd_json_keys_are_read(tmp_path):
    root = tmp_path / "corpus"
    for k in range(2):
        name = f"KID_0000000001-1_7_F_0000{k}"
        path = root / "라벨링데이터" / f"{name}.json"
        label_file(path, "사과를 먹어요", seconds=1.0)
        nfd = unicodedata.normalize("NFD", path.read_text(encoding="utf-8")) if k else path.read_text(encoding="utf-8")
        path.write_text(nfd, encoding="utf-8")
        audio_file(root / "원천데이터" / f"{name}.wav", 1.0)
    report = import_aihub(root, tmp_path / "out" / "all.jsonl")
    assert report.kept == 2 and not report.skipped, report.skipped
    assert {r["text"] for r in load_manifest(tmp_path / "out" / "all.jsonl")} == {"사과를 먹어요"}
