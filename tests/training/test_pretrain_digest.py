"""The stand-in base is rebuilt exactly when what its weights depend on changes: the data, the
settings, and the architecture the code builds from them (not only the TrainConfig fields)."""

from __future__ import annotations

import trainer.model.scratch as scratch
from trainer.training.configure import resolve
from trainer.training.pretrain import inputs_digest


def test_digest_follows_settings_and_architecture_not_bookkeeping(smoke_data, monkeypatch):
    prepared = smoke_data / "prepared"
    flags = {
        "train_manifest": str(prepared / "train.jsonl"),
        "val_manifest": str(prepared / "val.jsonl"),
        "vocab": str(prepared),
        "output": "base",
        "max_steps": 4,
    }
    cfg = resolve("pretrain-base", "demo-small", None, flags)
    digest = inputs_digest(cfg)
    assert (
        inputs_digest(resolve("pretrain-base", "demo-small", None, {**flags, "log_steps": 7, "output": "elsewhere"}))
        == digest
    )
    assert inputs_digest(resolve("pretrain-base", "demo-small", None, {**flags, "hidden_size": 64})) != digest
    monkeypatch.setattr(scratch, "SCRATCH_FRONT_END", {**scratch.SCRATCH_FRONT_END, "conv_channels": 48})
    assert inputs_digest(cfg) != digest
