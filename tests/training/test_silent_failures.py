"""Runs that used to exit 0 with a wrong result (issue 12) now fail with exit 78 and one clear line,
or skip and count what cannot be learned: the five cases by name, plus zero trained audio and
evaluations that scored nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from trainer.exit_codes import CONFIG_ERROR, ConfigError

from .helpers import REPO, run_cli, smoke_args


def _rows(smoke_data: Path, split: str) -> list[dict]:
    path = smoke_data / "prepared" / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _error_line(result) -> str:
    assert result.returncode == CONFIG_ERROR, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result.stderr.strip().splitlines()[-1]


def _run(smoke_data: Path, tmp_path: Path, **overrides):
    from trainer.training.configure import resolve
    from trainer.training.loop import TrainingRun
    from trainer.training.methods import LoraMethod

    prepared = smoke_data / "prepared"
    flags = {
        "output": str(tmp_path / "run"),
        "train_manifest": str(prepared / "train.jsonl"),
        "val_manifest": str(prepared / "val.jsonl"),
        "vocab": str(prepared),
        "model": str(smoke_data / "base"),
        **overrides,
    }
    return TrainingRun(resolve("train", "smoke", None, flags), LoraMethod())


def _nan_audio(rows: list[dict], folder: Path) -> list[dict]:
    """The rows pointing at float WAVs with a valid header and NaN samples: unreadable only once decoded."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for row in rows:
        path = folder / Path(row["audio_filepath"]).name
        samples = sf.read(row["audio_filepath"], dtype="float32")[0]
        sf.write(path, np.full_like(samples, np.nan), 16000, subtype="FLOAT")
        out.append({**row, "audio_filepath": str(path)})
    return out


def test_all_validation_audio_missing_fails_instead_of_scoring_zero(smoke_data, tmp_path):
    val = [
        {**r, "audio_filepath": str(tmp_path / "gone" / Path(r["audio_filepath"]).name)}
        for r in _rows(smoke_data, "val")
    ]
    manifest = _write(tmp_path / "val.jsonl", val)
    result = run_cli(smoke_args(smoke_data, tmp_path / "run", "--val-manifest", str(manifest)))
    n = len(val)
    assert _error_line(result).startswith(
        f"error: val_manifest: skipped {n} of {n} rows (missing_audio {n}), more than max_skipped_val_share=0.05 allows; "
        f"first: {val[0]['utt_id']}: missing_audio: {val[0]['audio_filepath']}"
    )
    assert not (tmp_path / "run" / "metrics.json").exists() and not (tmp_path / "run" / "checkpoint-best").exists()


def test_paths_relative_to_the_working_directory_fail_and_say_how_paths_resolve(smoke_data, tmp_path):
    rows = _rows(smoke_data, "train")
    # Relative to the repository, the CLI's working directory: not how the format defines them.
    from_cwd = [{**r, "audio_filepath": os.path.relpath(r["audio_filepath"], REPO)} for r in rows]
    manifest = _write(tmp_path / "manifests" / "train.jsonl", from_cwd)
    result = run_cli(smoke_args(smoke_data, tmp_path / "run", "--train-manifest", str(manifest)))
    line = _error_line(result)
    assert line.startswith(
        f"error: train_manifest: skipped {len(rows)} of {len(rows)} rows (missing_audio {len(rows)})"
    )
    expected = os.path.normpath(manifest.parent / from_cwd[0]["audio_filepath"])
    assert f"first: {rows[0]['utt_id']}: missing_audio: {expected}" in line
    assert line.endswith("(relative audio_filepath values are read from the manifest's own folder)")

    # The same rows relative to the manifest's folder are all found.
    from_manifest = [{**r, "audio_filepath": os.path.relpath(r["audio_filepath"], manifest.parent)} for r in rows]
    run = _run(smoke_data, tmp_path, train_manifest=str(_write(manifest, from_manifest)))
    assert len(run.data.train_rows) == len(rows) and run.data.train_skips.skipped == 0


def test_duration_ten_times_too_small_is_skipped_and_batches_use_measured_durations(smoke_data, tmp_path):
    rows = _rows(smoke_data, "train")[:10]  # one bad row in ten: above the default cap (5%)
    measured = [sf.info(r["audio_filepath"]).duration for r in rows]
    # Row 0 claims a tenth of its length; the others claim 0.3 s more than they hold (within tolerance).
    claimed = [{**r, "duration": (m / 10 if i == 0 else m + 0.3)} for i, (r, m) in enumerate(zip(rows, measured))]
    manifest = _write(tmp_path / "train.jsonl", claimed)
    with pytest.raises(
        ConfigError, match=rf"train_manifest: skipped 1 of {len(rows)} rows \(duration_mismatch 1\), more than"
    ):
        _run(smoke_data, tmp_path, train_manifest=str(manifest))

    run = _run(smoke_data, tmp_path, train_manifest=str(manifest), max_skipped_train_share=0.5)
    assert dict(run.data.train_skips.counts) == {"duration_mismatch": 1}
    assert run.data.train_skips.examples[0]["utt_id"] == rows[0]["utt_id"]
    assert list(run.data.sampler.durations) == pytest.approx(measured[1:])

    # evaluate: hours and duration bins from the audio too.
    from trainer.evaluation.config import EvalConfig
    from trainer.evaluation.evaluate import PREDICTIONS_FILE, evaluate

    report = evaluate(
        str(smoke_data / "base"),
        manifest,
        str(tmp_path / "eval"),
        EvalConfig(num_workers=0, bootstrap=10),
        progress=False,
    )
    assert report["test_set"]["skipped"]["by_reason"] == {"duration_mismatch": 1}
    assert report["test_set"]["hours"] == pytest.approx(sum(measured[1:]) / 3600)
    predictions = [
        json.loads(line) for line in (tmp_path / "eval" / PREDICTIONS_FILE).read_text(encoding="utf-8").splitlines()
    ]
    assert sorted(p["duration"] for p in predictions) == pytest.approx(sorted(measured[1:]))


def test_empty_all_unknown_and_too_long_labels_are_skipped_and_counted(smoke_data, tmp_path):
    rows = _rows(smoke_data, "train")
    shortest = min(rows, key=lambda r: r["duration"])
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 40)
    bad = [
        {**rows[0], "utt_id": "bad-empty", "text": "!!! ..."},  # nothing left after normalisation
        {**rows[1], "utt_id": "bad-unknown", "text": "XYZ QRS"},  # every unit is [UNK] in a Hangul vocabulary
        {**shortest, "utt_id": "bad-too-long", "text": "가나다라마바사 " * 30},
        {**rows[2], "utt_id": "bad-garbage", "audio_filepath": str(garbage)},
        {**rows[3], "utt_id": "bad-missing", "audio_filepath": str(tmp_path / "missing.wav")},
    ]
    manifest = _write(tmp_path / "train.jsonl", rows + bad)
    args = smoke_args(
        smoke_data,
        tmp_path / "run",
        "--train-manifest",
        str(manifest),
        "--max-skipped-train-share",
        "0.5",
        "--max-steps",
        "2",
        "--eval-steps",
        "2",
    )
    result = run_cli(args)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    train = metrics["skipped_rows"]["train"]
    assert train["by_reason"] == {
        "all_unknown": 1,
        "empty_transcript": 1,
        "labels_too_long": 1,
        "missing_audio": 1,
        "unreadable_audio": 1,
    }
    assert (train["total"], train["skipped"]) == (len(rows) + 5, 5)
    assert {e["utt_id"] for e in train["examples"]} == {b["utt_id"] for b in bad}
    assert metrics["skipped_rows"]["val"]["skipped"] == 0
    assert "train_manifest: skipped bad-unknown (all_unknown)" in result.stderr
    summary = [line for line in result.stderr.splitlines() if "skipped rows: train_manifest: skipped 5 of" in line]
    assert len(summary) == 1 and "val_manifest: skipped 0 of" in summary[0]


def test_unknown_device_or_missing_cuda_is_a_config_error(smoke_data, tmp_path):
    line = _error_line(run_cli(smoke_args(smoke_data, tmp_path / "run", "--device", "gpu")))
    assert line == "error: preset smoke: device: must be one of auto, cpu, cuda, got 'gpu'"
    line = _error_line(
        run_cli(["evaluate", "--model", "m", "--manifest", "x.jsonl", "--output", "o", "--device", "gpu"])
    )
    assert line == "error: flags: device: must be auto, cpu, cuda or cuda:N, got 'gpu'"
    assert not (tmp_path / "run").exists()
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="^device: cuda requested but no GPU is visible$"):
            _run(smoke_data, tmp_path, device="cuda")


def test_zero_trained_audio_fails(smoke_data, tmp_path):
    manifest = _write(tmp_path / "train.jsonl", _nan_audio(_rows(smoke_data, "train"), tmp_path / "nan"))
    run = _run(smoke_data, tmp_path, train_manifest=str(manifest), max_steps=1, eval_steps=5)
    with pytest.raises(ConfigError, match=r"^train_manifest: no audio was trained on in 1 steps"):
        run.train()
    assert not (tmp_path / "run" / "metrics.json").exists() and not (tmp_path / "run" / "checkpoint-best").exists()


def test_an_evaluation_that_scored_nothing_is_an_error(smoke_data, tmp_path):
    from trainer.evaluation.config import EvalConfig
    from trainer.evaluation.evaluate import evaluate

    val = _nan_audio(_rows(smoke_data, "val"), tmp_path / "nan")
    manifest = _write(tmp_path / "val.jsonl", val)
    run = _run(smoke_data, tmp_path, val_manifest=str(manifest), max_steps=1, eval_steps=1)
    with pytest.raises(ConfigError, match=rf"^val_manifest: evaluation at step 1 scored 0 of {len(val)} rows"):
        run.train()
    assert not (tmp_path / "run" / "checkpoint-best").exists()

    with pytest.raises(
        ConfigError,
        match=rf"skipped {len(val)} of {len(val)} rows \(unreadable_audio {len(val)}\): nothing left to score",
    ):
        evaluate(
            str(smoke_data / "base"),
            manifest,
            str(tmp_path / "eval"),
            EvalConfig(num_workers=0, bootstrap=10),
            progress=False,
        )
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_an_empty_validation_set_fails_naming_why(smoke_data, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^val_manifest: {empty}: no rows$"):
        _run(smoke_data, tmp_path, val_manifest=str(empty))
    row = _rows(smoke_data, "val")[0]
    invalid = _write(tmp_path / "invalid.jsonl", [{**row, "duration": -1.0}])
    with pytest.raises(
        ConfigError, match=rf"^{invalid}:1: field 'duration': must be a positive number of seconds, got -1.0$"
    ):
        _run(smoke_data, tmp_path, val_manifest=str(invalid))
