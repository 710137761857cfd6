"""Cross-field checks of a `PipelineConfig`, all problems at once (the JSON schema checks each
value alone; the chart's launcher runs these on the installed values)."""

from __future__ import annotations

from typing import Any

from trainer.config import TrainConfig, build
from trainer.exit_codes import ConfigError
from trainer.pipeline.config import PLAN_OWNED_TRAIN_FIELDS, RESERVED_RUN_NAMES, PipelineConfig


def problems(cfg: PipelineConfig, cluster: bool = True) -> list[str]:
    """Every cross-field problem, all at once.
    `cluster=False` (a `--local` run): S3 credentials are this machine's own (environment,
    profile or instance role), so no Secret or service account is needed."""
    found = []
    if cfg.run_name in RESERVED_RUN_NAMES:
        found.append(f"runName: '{cfg.run_name}' is reserved for the storage layout")
    if cfg.nodes > 1 and cfg.storage.type == "pvc" and cfg.storage.pvc.access_mode != "ReadWriteMany":
        found.append("storage.pvc.accessMode: nodes > 1 needs ReadWriteMany (every node writes the same claim)")
    if cfg.storage.type == "s3":
        if not cfg.storage.s3.prefix:
            found.append("storage.s3.prefix: required when storage.type is s3")
        if cluster and not (cfg.storage.s3.secret_name or cfg.storage.s3.service_account_name):
            found.append("storage.s3: set secretName (credentials Secret) or serviceAccountName (workload identity)")
    if cfg.embedded_default and cfg.data.corpus:
        found.append("data.corpus: the embedded default synthesises its corpus; leave corpus empty")
    if cfg.data.prepare and not (cfg.data.corpus or cfg.data.hub_dataset) and not cfg.embedded_default:
        found.append("data.prepare: needs data.corpus (or data.hubDataset, or embeddedDefault)")
    if cfg.data.format != "hf" and (cfg.data.hub_dataset or cfg.data.hf_splits or cfg.data.hf_config):
        found.append("data.format: hubDataset, hfSplits and hfConfig need format hf")
    if cfg.data.format == "hf" and cfg.embedded_default:
        found.append("data.format: the embedded default's synthetic corpus is aihub")
    if cfg.data.corpus and cfg.data.hub_dataset:
        found.append("data.hubDataset: set data.corpus or data.hubDataset, not both")
    if not cfg.phases and not cfg.evaluate:
        found.append("phases: empty and evaluate is false: nothing to run")
    if cfg.assess and not cfg.evaluate:
        found.append("assess: runs in the comparison Job; needs evaluate")
    if cfg.assess and (cfg.data.prepare or cfg.embedded_default) and cfg.data.unit != "phone":
        found.append("assess: only phone-unit models can be assessed; set data.unit: phone")
    if cfg.assess_speed != 1.0 and not cfg.assess:
        found.append("assessSpeed: the speed of the assessment; set assess: true (or leave assessSpeed at 1)")
    found += _override_problems(cfg.train_overrides)
    return found


def _override_problems(overrides: dict[str, Any]) -> list[str]:
    owned = sorted(PLAN_OWNED_TRAIN_FIELDS & set(overrides))
    if owned:
        return [f"trainOverrides: {', '.join(owned)} set by the plan for each job; not overridable"]
    try:
        build(TrainConfig, overrides, source="trainOverrides")
    except ConfigError as exc:
        return [str(exc)]
    return []
