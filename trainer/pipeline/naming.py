"""A run's name: the given one, or one derived from a digest of what the run computes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from trainer.config import PLAN_SET, RUNTIME, TrainConfig, fields_with
from trainer.pipeline.config import MAX_RUN_NAME, PipelineConfig, camel
from trainer.pipeline.values_io import to_values


def settings_hash(cfg: PipelineConfig, length: int = 64) -> str:
    """Hash of what the run computes: every setting that is not RUNTIME (scheduling, storage, the
    run name), at its full value, and the `train` / `pretrain-base` / `compare` settings its jobs
    resolve (preset, overrides and defaults). A default that changes between releases changes the
    hash, so a resubmitted run gets a new name instead of skipping steps finished under the old
    default; changing e.g. the queue or --max-parallel keeps the name, and so the outputs."""
    return hashlib.sha256(json.dumps(result_settings(cfg), sort_keys=True).encode()).hexdigest()[:length]


def result_settings(cfg: PipelineConfig) -> dict[str, Any]:
    """What `settings_hash` digests (JSON-ready)."""
    from trainer.evaluation.config import EvalConfig
    from trainer.training.configure import resolve

    def train_settings(command: str, flags: dict[str, Any]) -> dict[str, Any]:
        # PLAN_SET fields (paths, phase, rank) follow from the pipeline's own settings.
        resolved = dataclasses.asdict(resolve(command, cfg.preset or None, None, flags, check=False))
        skip = fields_with(TrainConfig, PLAN_SET) | fields_with(TrainConfig, RUNTIME)
        return {k: v for k, v in resolved.items() if k not in skip}

    out: dict[str, Any] = {"pipeline": _result_values(cfg)}
    out["train"] = {str(p): train_settings("train", {**cfg.train_overrides, "phase": p}) for p in cfg.phases}
    if cfg.embedded_default:
        out["pretrain_base"] = train_settings("pretrain-base", {})
    if cfg.evaluate:
        out["compare"] = {
            k: v for k, v in dataclasses.asdict(EvalConfig()).items() if k not in fields_with(EvalConfig, RUNTIME)
        }
    return json.loads(json.dumps(out))


def _result_values(obj: Any) -> dict[str, Any]:
    """`to_values` of `obj` without its RUNTIME fields, at every level."""
    runtime = fields_with(type(obj), RUNTIME)
    values = to_values(obj)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name in runtime:
            del values[camel(f.name)]
        elif dataclasses.is_dataclass(value):
            values[camel(f.name)] = _result_values(value)
    return values


def run_name(cfg: PipelineConfig) -> str:
    """The given run name, or one derived from the config: same config -> same name (idempotent submits)."""
    if cfg.run_name:
        return cfg.run_name
    ranks = "-".join(f"r{r}" for r in cfg.ranks)
    return f"{cfg.preset or 'asr'}-{ranks}"[: MAX_RUN_NAME - 7].rstrip("-") + "-" + settings_hash(cfg, 6)
