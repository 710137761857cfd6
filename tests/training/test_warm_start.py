"""Curriculum phases: phase 2 starts from phase 1's best adapter weights with a fresh optimizer,
schedule and step count (not a resume of phase 1's training state), and scores them first."""

from __future__ import annotations

import json

import pytest
import torch
from peft import get_peft_model_state_dict
from safetensors.torch import load_file

from trainer.training.loop import TrainingRun
from trainer.training.methods import LoraMethod

from .helpers import run_cli, smoke_args, smoke_config


@pytest.mark.slow
def test_phase2_warm_starts_from_phase1_best_with_fresh_optimizer(smoke_data, tmp_path):
    phase1 = tmp_path / "phase1"
    first = run_cli(smoke_args(smoke_data, phase1, "--phase", "1", "--max-steps", "6"))
    assert first.returncode == 0, first.stderr[-3000:]
    best = load_file(str(phase1 / "checkpoint-best" / "adapter_model.safetensors"))
    assert json.loads((phase1 / "metrics.json").read_text())["phase"] == 1

    cfg = smoke_config(smoke_data, tmp_path / "phase2", phase=2, max_steps=4, init_from=str(phase1 / "checkpoint-best"))
    run = TrainingRun(cfg, LoraMethod())
    start = get_peft_model_state_dict(run.acc.unwrap_model(run.model))
    assert start.keys() == best.keys()
    assert all(torch.equal(start[k], best[k]) for k in best)
    assert run.resumed_from is None and run.progress.step == 0
    assert run.optimizer.state_dict()["state"] == {}  # no moments carried over from phase 1
    assert run.train() == 0

    phase2 = tmp_path / "phase2"
    optimizer = torch.load(phase2 / "checkpoint-4" / "optimizer.pt")
    assert {int(s["step"]) for s in optimizer["state"].values()} == {4}  # 4 steps, not 6 + 4
    state = json.loads((phase2 / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["step"] == 4 and state["config"]["init_from"] == str(phase1 / "checkpoint-best")
    metrics = json.loads((phase2 / "metrics.json").read_text())
    assert metrics["phase"] == 2 and metrics["wer_target"] == 0.18 and isinstance(metrics["target_met"], bool)
    # Phase 2 first scores what it starts from (phase 1's best, on the same validation set), so its
    # own best can only be as good or better: the curriculum never hands on a worse checkpoint.
    phase1_best = json.loads((phase1 / "metrics.json").read_text())["best"]
    assert state["history"][0]["step"] == 0
    assert state["history"][0]["cer"] == pytest.approx(phase1_best["cer"], abs=1e-9)
    assert metrics["best"]["cer"] <= phase1_best["cer"] + 1e-9


def test_init_from_an_adapter_of_another_rank_is_a_config_error(smoke_data, tmp_path):
    phase1 = tmp_path / "phase1"
    assert run_cli(smoke_args(smoke_data, phase1, "--max-steps", "1")).returncode == 0
    result = run_cli(
        smoke_args(smoke_data, tmp_path / "p2", "--rank", "8", "--init-from", str(phase1 / "checkpoint-best"))
    )
    assert result.returncode == 78
    assert "r=4 does not match this run's r=8" in result.stderr
