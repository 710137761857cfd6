"""`data prepare --format hf`: every source kind built locally with `datasets` (save_to_disk,
Parquet shards, audiofolder, odd column names), prepared like the JSONL route on the same audio
and text, broken rows skipped and counted, a rerun that decodes only what is missing, exit 78 on
bad input, and a smoke training on each prepared dataset."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.data.hf_datasets import (
    audiofolder,
    corpus_rows,
    odd_parquet,
    parquet_shards,
    save_to_disk_folder,
    stereo_22k,
    write_jsonl,
)
from tests.data.test_prepare import trainer_cli
from tests.training.helpers import run_cli, smoke_args
from trainer.data.audio import decode_audio as decode
from trainer.data.audio import load_audio
from trainer.data.hf_source import AUDIO_DIR, import_hf
from trainer.data.importers import AihubFields
from trainer.data.manifest import load_manifest
from trainer.data.prepare import PrepareOptions, prepare

# The odd-columns source's flags; the other kinds use the default column names.
FIELDS = {"odd_columns": AihubFields(audio_file="wave", text="utterance", speaker_id="who", age="years")}
# The smoke preset's split shares: the tiny corpus's 6 speakers give every split a speaker.
SHARES = dict(val_fraction=0.25, test_fraction=0.25, fractions=(1.0,), curriculum_source="all", unit="jamo", seed=1)


@pytest.fixture(scope="module")
def rows(tiny_corpus, tmp_path_factory) -> list[dict]:
    return corpus_rows(tiny_corpus, tmp_path_factory.mktemp("rows"))


@pytest.fixture(scope="module")
def sources(rows, tmp_path_factory) -> dict[str, Path]:
    """Each source kind on the same utterances (16 kHz mono audio, as the corpus has it)."""
    root = tmp_path_factory.mktemp("hf")
    return {
        "save_to_disk": save_to_disk_folder(rows, root / "saved"),
        "parquet": parquet_shards(rows, root / "parquet"),
        "audiofolder": audiofolder(rows, root / "audiofolder"),
        "odd_columns": odd_parquet(rows, root / "odd" / "data.parquet"),
    }


@pytest.fixture(scope="module")
def jsonl_prepared(rows, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("jsonl")
    manifest = write_jsonl(rows, folder / "rows.jsonl")
    prepare(PrepareOptions(source=str(manifest), out=str(folder / "prepared"), format="jsonl", **SHARES))
    return folder / "prepared"


def _prepare_hf(source: Path, out: Path, fields: AihubFields) -> Path:
    prepare(PrepareOptions(source=str(source), out=str(out), format="hf", fields=fields, **SHARES))
    return out


def _facts(row: dict) -> tuple:
    return row["text"], row["speaker_id"], row["age"], row["duration"]


def _by_text_and_speaker(path: Path) -> dict[tuple, dict]:
    return {(r["text"], r["speaker_id"]): r for r in load_manifest(path)}


@pytest.mark.parametrize("kind", ["save_to_disk", "parquet", "audiofolder", "odd_columns"])
def test_each_source_kind_prepares_like_the_jsonl_route(kind, sources, jsonl_prepared, tmp_path):
    out = _prepare_hf(sources[kind], tmp_path / "prepared", FIELDS.get(kind, AihubFields()))
    expected, got = _by_text_and_speaker(jsonl_prepared / "all.jsonl"), _by_text_and_speaker(out / "all.jsonl")
    assert len(got) == len(expected) == 30
    assert {key: _facts(r) for key, r in got.items()} == {key: _facts(r) for key, r in expected.items()}
    if kind != "odd_columns":  # the others carry genders, ids and split names in default-named columns
        fields = ("utt_id", "gender", "source_split")
        assert {k: [r[f] for f in fields] for k, r in got.items()} == {
            k: [r[f] for f in fields] for k, r in expected.items()
        }
    for name in ("train.jsonl", "val.jsonl", "test.jsonl", "curriculum/phase1.jsonl"):
        assert set(_by_text_and_speaker(out / name)) == set(_by_text_and_speaker(jsonl_prepared / name)), name
    assert (out / "vocab.json").read_text(encoding="utf-8") == (jsonl_prepared / "vocab.json").read_text(
        encoding="utf-8"
    )
    for key, row in got.items():  # written once as 16 kHz 16-bit FLAC, the very same samples
        assert Path(row["audio_filepath"]).parent.parent == out / AUDIO_DIR
        assert sf.info(row["audio_filepath"]).format == "FLAC"
        np.testing.assert_array_equal(load_audio(row["audio_filepath"]), load_audio(expected[key]["audio_filepath"]))
    report = json.loads((out / "import_report.json").read_text(encoding="utf-8"))
    columns = report["columns"]["train"]
    if kind == "odd_columns":
        assert columns["audio"] == "wave" and columns["text"] == "utterance" and columns["speaker_id"] == "who"
        assert columns["age"] == "years" and columns["gender"] is None
    else:
        assert columns["audio"] == "audio" and columns["speaker_id"] in ("client_id", "speaker_id")
        assert columns["text"] == ("transcription" if kind == "audiofolder" else "sentence")
    assert report["format"] == "hf" and report["skipped_total"] == 0


def test_stereo_22k_bytes_and_broken_rows(rows, tmp_path):
    stereo = {r["utt_id"] for r in rows[::4]}
    broken = {
        "audio": [
            {"bytes": b"RIFF not really a wav", "path": "broken.wav"},
            {"bytes": Path(rows[0]["wav"]).read_bytes(), "path": None},
            {"bytes": Path(rows[1]["wav"]).read_bytes(), "path": None},
        ],
        "sentence": ["좋아요", None, "  "],
        "client_id": ["x", "x", "x"],
        "age": ["7", "7", "7"],
        "gender": ["", "", ""],
        "id": ["broken-audio", "no-text", "blank-text"],
    }
    source = save_to_disk_folder(
        rows,
        tmp_path / "saved",
        audio_bytes=lambda r: stereo_22k(r["wav"]) if r["utt_id"] in stereo else Path(r["wav"]).read_bytes(),
        extra={"train": broken},
    )
    out = _prepare_hf(source, tmp_path / "prepared", AihubFields())
    report = json.loads((out / "import_report.json").read_text(encoding="utf-8"))
    assert report["skipped"] == {"missing_transcript": 2, "unreadable_audio": 1}
    assert report["candidates"] == 33 and report["kept"] == 30
    skipped = [json.loads(line) for line in (out / "import_skipped.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(s["reason"] for s in skipped) == ["missing_transcript", "missing_transcript", "unreadable_audio"]
    assert all(s["where"].startswith("train[") for s in skipped)

    kept = {r["utt_id"]: r for r in load_manifest(out / "all.jsonl")}
    originals = {r["utt_id"]: r for r in rows}
    for utt_id in stereo:
        info = sf.info(kept[utt_id]["audio_filepath"])
        assert (info.samplerate, info.channels) == (16000, 1)
        original = load_audio(originals[utt_id]["wav"])
        converted = load_audio(kept[utt_id]["audio_filepath"])
        assert abs(len(converted) - len(original)) <= 2
        n = min(len(original), len(converted))
        # Mixed down (0.9 of the original) and resampled twice: the same signal, scaled.
        assert np.corrcoef(original[:n], converted[:n])[0, 1] > 0.99


def test_audiofolder_row_without_its_file_is_counted(rows, tmp_path):
    folder = audiofolder(rows, tmp_path / "recordings")
    gone = folder / "train" / f"{rows[0]['utt_id']}.wav"
    gone.unlink()
    report = import_hf(str(folder), tmp_path / "imported" / "all.jsonl")
    assert dict(report.skipped) == {"missing_audio": 1} and report.kept == len(rows) - 1
    assert report.examples["missing_audio"] == [f"train[0]: {gone}"]


def test_hub_id_is_read_from_its_snapshot_in_the_cache(sources, tmp_path):
    """Offline (HF_HUB_OFFLINE=1), huggingface_hub serves a Hub id from the cache as a download left it."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf-cache" / "datasets--org--kids"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(sources["parquet"], repo / "snapshots" / commit)
    report = import_hf(
        "org/kids", tmp_path / "imported" / "all.jsonl", splits=["test"], cache=str(tmp_path / "hf-cache")
    )
    assert report.source == "org/kids" and report.kept == 5 and list(report.columns) == ["test"]


def test_rerun_decodes_only_missing_audio(sources, tmp_path, monkeypatch):
    import trainer.data.hf_source as hf_source

    out = tmp_path / "prepared"
    options = PrepareOptions(source=str(sources["parquet"]), out=str(out), format="hf", workers=2, **SHARES)
    prepare(options)
    flacs = sorted((out / AUDIO_DIR).rglob("*.flac"))
    assert len(flacs) == 30
    for path in flacs[:5]:  # as if the first run had been stopped before these
        path.unlink()
    first = (out / "all.jsonl").read_text(encoding="utf-8")
    decoded = []
    monkeypatch.setattr(
        hf_source, "decode_audio", lambda data, name, **kw: decoded.append(name) or decode(data, name, **kw)
    )
    prepare(dataclasses.replace(options, workers=1), force=True)  # one process: the calls are counted here
    assert len(decoded) == 5
    assert (out / "all.jsonl").read_text(encoding="utf-8") == first
    assert sorted((out / AUDIO_DIR).rglob("*.flac")) == flacs

    args = (
        "data",
        "prepare",
        "--format",
        "hf",
        "--dataset",
        sources["parquet"],
        "--out",
        tmp_path / "cli",
        "--fractions",
        "1",
    )
    first, again = trainer_cli(*args), trainer_cli(*args)
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert "up to date" not in first.stdout and "up to date" in again.stdout


def test_bad_input_exits_78_naming_the_flag(sources, tmp_path):
    out = tmp_path / "prepared"
    cases = [
        (["--dataset", sources["parquet"], "--split", "dev"], "--split: dev not in"),
        (["--dataset", sources["parquet"], "--field-text", "words"], "--field-text: no column 'words'"),
        (["--dataset", sources["odd_columns"]], "--field-audio-file:"),
        (["--dataset", "nobody/no-such-dataset"], "--dataset: nobody/no-such-dataset is no local path"),
        (["--dataset", tmp_path / "missing" / "folder"], "--dataset:"),
        (["--dataset", sources["parquet"], "--root", sources["parquet"]], "--format hf needs --dataset"),
    ]
    for flags, message in cases:
        done = trainer_cli("data", "prepare", "--format", "hf", "--out", out, *flags)
        assert done.returncode == 78, (flags, done.stderr)
        assert done.stderr.startswith("error: ") and message in done.stderr, (flags, done.stderr)
        assert done.stderr.count("\n") == 1, done.stderr
    done = trainer_cli("data", "prepare", "--root", sources["parquet"], "--split", "train", "--out", out)
    assert done.returncode == 78 and "only with --format hf, not aihub" in done.stderr, done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["save_to_disk", "parquet", "audiofolder", "odd_columns"])
def test_smoke_training_on_each_prepared_source(kind, sources, tmp_path):
    from trainer.training.smoke import make_random_base

    prepared = _prepare_hf(sources[kind], tmp_path / "prepared", FIELDS.get(kind, AihubFields()))
    make_random_base(prepared, tmp_path / "base", seed=0)
    result = run_cli(smoke_args(tmp_path, tmp_path / "run"))  # tmp_path/prepared, tmp_path/base
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["finished"] and metrics["train_utterances"] == len(load_manifest(prepared / "train.jsonl"))
