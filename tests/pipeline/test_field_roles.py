"""TrainConfig's field roles (metadata, trainer.config.PLAN_SET and RUNTIME) match what the code
that reads them does: the plan sets exactly the PLAN_SET fields, trainOverrides refuses each of
them, and the base model's input digest changes with every setting except the RUNTIME ones."""

from __future__ import annotations

import dataclasses

import pytest

from trainer.config import PLAN_SET, RUNTIME, TrainConfig, fields_with
from trainer.exit_codes import ConfigError
from trainer.pipeline import values_io
from trainer.pipeline.plan import build_plan, train_flag


def test_the_plan_sets_exactly_the_plan_set_fields() -> None:
    plan = build_plan(values_io.from_values({"runName": "roles", "embeddedDefault": True, "ranks": [16]}), "/storage")
    given = {a for j in plan.jobs if j.kind in ("base", "train") for a in j.argv if a.startswith("--")}
    assert {f.name for f in dataclasses.fields(TrainConfig) if train_flag(f.name) in given} == fields_with(
        TrainConfig, PLAN_SET
    )


@pytest.mark.parametrize("name", sorted(fields_with(TrainConfig, PLAN_SET)))
def test_train_overrides_refuse_every_plan_set_field(name: str) -> None:
    value = getattr(TrainConfig(), name)
    with pytest.raises(ConfigError, match=f"trainOverrides.*{name}"):
        values_io.from_values({"trainOverrides": {name: value}})


def test_the_base_digest_ignores_runtime_settings_only(tmp_path) -> None:
    from trainer.training.pretrain import inputs_digest

    for name in ("train.jsonl", "val.jsonl", "text_units.json"):
        (tmp_path / name).write_text(name, encoding="utf-8")
    (tmp_path / "vocab.json").write_text('{"[PAD]": 0, "[UNK]": 1, "|": 2, "ㄱ": 3}', encoding="utf-8")
    cfg = TrainConfig(
        train_manifest=str(tmp_path / "train.jsonl"), val_manifest=str(tmp_path / "val.jsonl"), vocab=str(tmp_path)
    )
    runtime = fields_with(TrainConfig, RUNTIME)
    assert {"output", "num_workers", "device"} <= runtime
    other = {
        "output": "/elsewhere",
        "device": "cpu",
        "num_workers": 7,
        "log_steps": 3,
        "save_steps": 9,
        "keep_last": 9,
        "compile_encoder": True,
    }
    assert runtime <= set(other), f"give the new runtime settings a changed value here: {runtime - set(other)}"
    assert inputs_digest(dataclasses.replace(cfg, **{k: other[k] for k in runtime})) == inputs_digest(cfg)
    assert inputs_digest(dataclasses.replace(cfg, learning_rate=1e-3)) != inputs_digest(cfg)
