"""The command line as users and Jobs call it: the smoke preset as its file says, log lines, exit codes."""

from __future__ import annotations

import json
import re

import pytest

from .helpers import run_cli, smoke_args


@pytest.mark.slow
def test_smoke_preset_runs_as_its_file_says(tmp_path):
    data, output = tmp_path / "smoke-data", tmp_path / "smoke"
    built = run_cli(["smoke-data", "--out", str(data)])
    assert built.returncode == 0, built.stderr[-3000:]
    prepared = data / "prepared"
    for name in ("train.jsonl", "val.jsonl", "test.jsonl", "vocab.json"):
        assert (prepared / name).is_file()
    result = run_cli(smoke_args(data, output))
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoints = [p for p in output.glob("checkpoint-[0-9]*") if (p / "COMPLETE").is_file()]
    assert len(checkpoints) >= 2
    for name in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "trainer_state.json",
        "ema_state.safetensors",
        "optimizer.pt",
        "scheduler.pt",
        "rng_state.pth",
        "vocab.json",
        "text_units.json",
    ):
        assert (checkpoints[0] / name).is_file(), name
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["finished"] and metrics["best"]["step"] in (3, 6)
    assert json.loads((output / "checkpoint-best" / "metrics.json").read_text()) == metrics
    # What an export's model card says about the training data.
    data = metrics["train_data"]
    assert data["utterances"] == metrics["train_utterances"] == sum(data["utterances_by_age_group"].values())
    assert data["hours"] > 0 and data["speakers"] >= 1
    assert list((output / "tensorboard").glob("events.out.tfevents.*"))
    assert re.search(r"parameters, [\d,]+ trainable", result.stderr)
    line = re.search(
        r"step 1/6 \| epoch [\d.]+ \| loss [\d.]+ \| lr [\d.e+-]+ \| grad_norm [\d.]+ \| [\d.]+ audio-s/s \| "
        r"padding [\d.]+% \| \d+ shapes \| loader wait \d+% \| eta \S+",
        result.stderr,
    )
    assert line, result.stderr[-2000:]


def test_smoke_preset_without_data_exits_78_naming_the_flag(tmp_path):
    result = run_cli(["train", "--preset", "smoke", "--output", str(tmp_path / "run")])
    assert result.returncode == 78
    assert result.stderr.strip().splitlines()[-1].startswith("error: vocab: required")
    assert not (tmp_path / "run" / "smoke-data").exists()


def test_bad_configuration_exits_78(smoke_data, tmp_path):
    result = run_cli(smoke_args(smoke_data, tmp_path / "run", "--rank", "0"))
    assert result.returncode == 78 and "rank" in result.stderr
    result = run_cli(smoke_args(smoke_data, tmp_path / "run", "--train-manifest", str(tmp_path / "none.jsonl")))
    assert result.returncode == 78 and "none.jsonl" in result.stderr


@pytest.mark.slow
def test_pretrain_base_builds_once_and_serves_as_train_base(smoke_data, tmp_path):
    base = tmp_path / "base"
    tiny = ["--max-steps", "4", "--hidden-size", "32", "--num-layers", "2"]
    args = smoke_args(smoke_data, base, *tiny, command="pretrain-base", model=None)
    first = run_cli(args)
    assert first.returncode == 0, first.stderr[-3000:]
    for name in ("config.json", "model.safetensors", "vocab.json", "text_units.json", "base_build.json", "COMPLETE"):
        assert (base / name).is_file(), name
    assert "0 trainable" not in first.stderr and "(scratch)" in first.stderr

    again = run_cli(args)
    assert again.returncode == 0 and "up to date" in again.stderr

    # Killed while publishing: marker gone, a file half-replaced, the staging folder left behind.
    built = (base / "model.safetensors").read_bytes()
    (base / "COMPLETE").unlink()
    (base / "model.safetensors").write_bytes(built[:100])
    (base / ".tmp-base-killed").mkdir()
    republished = run_cli(args)
    assert republished.returncode == 0, republished.stderr[-3000:]
    assert (base / "COMPLETE").is_file() and (base / "model.safetensors").read_bytes() == built
    assert not (base / ".tmp-base-killed").exists()

    train = run_cli(smoke_args(smoke_data, tmp_path / "lora", "--max-steps", "2", model=base))
    assert train.returncode == 0, train.stderr[-3000:]
    assert "new CTC head" not in train.stderr  # the base was trained on this vocabulary


def test_early_stopping_after_patience_evaluations_without_improvement(smoke_data, tmp_path):
    # With a zero learning rate the validation CER cannot improve after the first evaluation.
    args = smoke_args(smoke_data, tmp_path / "run", "--learning-rate", "0", "--eval-steps", "1", "--patience", "2")
    result = run_cli(args)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (metrics["stop_reason"], metrics["steps"], metrics["best"]["step"]) == ("early_stopping", 3, 1)
