"""The step keeps loss and grad norm on the device and reads them only at log steps: the logged
numbers must be the ones the old per-step reads (`float(loss)`, `float(grad_norm)`) gave."""

from __future__ import annotations

import json
import logging
import re

import pytest

from trainer.training import loop, run_data
from trainer.training.loop import TrainingRun
from trainer.training.methods import LoraMethod

from .helpers import smoke_config

GRAD_ACCUM = 2


def test_logged_loss_grad_norm_and_audio_are_the_steps_values(smoke_data, tmp_path, caplog):
    cfg = smoke_config(
        smoke_data, tmp_path / "run", grad_accum=GRAD_ACCUM, max_steps=4, log_steps=1, eval_steps=100, save_steps=100
    )
    run = TrainingRun(cfg, LoraMethod())
    losses: list[float] = []
    norms: list[float] = []
    seconds: list[float] = []
    forward, clip, next_batch = run._forward_loss, run.acc.clip_grad_norm_, run._next_batch

    def forward_read_each_step(batch):
        loss = forward(batch)
        losses.append(float(loss.detach() / GRAD_ACCUM))  # what the step used to add up, one host read each
        return loss

    def clip_read_each_step(*args, **kwargs):
        norm = clip(*args, **kwargs)
        norms.append(float(norm))
        return norm

    def next_batch_counted(batches):
        batch = next_batch(batches)
        seconds.append(batch["seconds"])
        return batch

    run._forward_loss, run.acc.clip_grad_norm_, run._next_batch = (
        forward_read_each_step,
        clip_read_each_step,
        next_batch_counted,
    )
    with caplog.at_level(logging.INFO, logger=loop._log.name):
        assert run.train() == 0

    lines = [r.getMessage() for r in caplog.records if re.match(r"step \d+/", r.getMessage())]
    assert len(lines) == 4
    for step, line in enumerate(lines):
        old_loss = sum(losses[step * GRAD_ACCUM : (step + 1) * GRAD_ACCUM])
        assert f"loss {old_loss:.4f} |" in line
        assert f"grad_norm {norms[step]:.3f} |" in line
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["train_audio_hours"] == pytest.approx(sum(seconds) / 3600)
    assert 0 <= metrics["train_padding_fraction"] < 1 and 0 <= metrics["epoch_plan"]["padding"] < 1
    assert 1 <= metrics["epoch_plan"]["shapes"] <= metrics["epoch_plan"]["batches"]


def test_default_loader_workers_come_from_the_cpus_the_process_has(monkeypatch):
    monkeypatch.setattr(run_data, "usable_cpus", lambda: 16)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert run_data.loader_workers(-1) == 15
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # four trainer processes on the node share them
    assert run_data.loader_workers(-1) == 3
    assert run_data.loader_workers(2) == 2
    monkeypatch.setattr(run_data, "usable_cpus", lambda: 1)
    assert run_data.loader_workers(-1) == 1
