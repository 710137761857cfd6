"""A vocabulary the base was not trained with (the real case: XLS-R has no Korean head) gets a new
CTC head that trains, saves, loads and can have its own learning rate; CTC's blank-only plateau is
reported in the log."""

from __future__ import annotations

import json

import pytest
import torch

from trainer.model import load_adapter_checkpoint
from trainer.training.checkpoint import OPTIMIZER_FILE

from .helpers import run_cli, smoke_args


@pytest.fixture(scope="module")
def syllable_vocab(smoke_data, tmp_path_factory):
    """The smoke base is trained on jamo units; syllables need a new head."""
    folder = tmp_path_factory.mktemp("syllables")
    result = run_cli(
        [
            "data",
            "vocab",
            "--manifest",
            str(smoke_data / "prepared" / "train.jsonl"),
            "--unit",
            "syllable",
            "--out",
            str(folder),
        ]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return folder


def test_new_head_trains_saves_and_loads_with_its_own_learning_rate(smoke_data, syllable_vocab, tmp_path):
    vocab_size = len(json.loads((syllable_vocab / "vocab.json").read_text(encoding="utf-8")))
    output = tmp_path / "run"
    result = run_cli(
        smoke_args(smoke_data, output, "--learning-rate", "0.001", "--head-learning-rate", "0.01", vocab=syllable_vocab)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"new CTC head for a {vocab_size}-unit vocabulary" in result.stderr

    groups = torch.load(output / "checkpoint-6" / OPTIMIZER_FILE)["param_groups"]
    assert [g["initial_lr"] for g in groups] == [0.001, 0.01]
    assert len(groups[1]["params"]) == 2  # the head's weight and bias

    model, processor = load_adapter_checkpoint(output / "checkpoint-best")
    assert len(processor.tokenizer) == vocab_size
    silence = processor.feature_extractor([[0.0] * 16000], sampling_rate=16000, return_tensors="pt")
    assert model(silence.input_values).logits.shape[-1] == vocab_size


def test_blank_only_output_after_warmup_is_reported(smoke_data, syllable_vocab, tmp_path):
    # This seed and learning rate put the new head on CTC's blank plateau within 24 steps.
    extra = (
        "--max-steps",
        "24",
        "--eval-steps",
        "8",
        "--warmup-ratio",
        "0",
        "--learning-rate",
        "0.01",
        "--ema-decay",
        "0",
    )
    result = run_cli(smoke_args(smoke_data, tmp_path / "run", *extra, vocab=syllable_vocab))
    assert result.returncode == 0, result.stderr[-3000:]
    history = json.loads((tmp_path / "run" / "checkpoint-24" / "trainer_state.json").read_text(encoding="utf-8"))[
        "history"
    ]
    plateau = [h["step"] for h in history if h["empty_fraction"] >= 0.95]
    assert plateau, history
    assert f"blank-only output: 100% of validation hypotheses are empty at step {plateau[0]}" in result.stderr
    # not before it happens (the run's last line may name step 8 as its best)
    assert history[0]["empty_fraction"] < 0.95 and "empty at step 8" not in result.stderr
