"""The Jinja2 templates (k8s/) and the Helm chart render the same objects for the same values."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.exit_codes import ConfigError
from trainer.pipeline import config as C
from trainer.pipeline import render, values_io


def test_jinja_and_helm_render_the_same_objects(sample: tuple[str, C.PipelineConfig], helm: Path) -> None:
    name, cfg = sample
    jinja = render.normalise(render.render_jinja(cfg, "asr"))
    helm_objects = render.normalise(render.render_helm(cfg, "asr", helm=str(helm)))
    assert sorted(jinja) == sorted(helm_objects), name
    for key in jinja:
        assert jinja[key] == helm_objects[key], f"{name}: {key} differs"


def test_normalise_keeps_real_differences(helm3: Path) -> None:
    """The comparison is not vacuous: a changed setting shows up after normalisation."""
    a = render.normalise(render.render_jinja(values_io.from_values({"runName": "p"}), "asr"))
    b = render.normalise(
        render.render_helm(values_io.from_values({"runName": "p", "gpusPerNode": 2}), "asr", helm=str(helm3))
    )
    assert a[("ConfigMap", "p-plan")] != b[("ConfigMap", "p-plan")]


@pytest.mark.parametrize(
    "values",
    [
        {"nodes": 2},  # multi-node on a ReadWriteOnce claim
        {"storage": {"type": "s3", "s3": {"prefix": "s3://bkt/p"}}},  # no credentials
        {"data": {"prepare": True}},  # nothing to prepare
        {"phases": [], "evaluate": False},  # nothing to run
        {"embeddedDefault": True, "data": {"corpus": "c"}},
        {"data": {"prepare": True, "hubDataset": "org/kids"}},  # a Hub id needs format hf
        {"embeddedDefault": True, "data": {"format": "hf"}},  # the synthetic corpus is aihub
        {"data": {"prepare": True, "format": "hf", "corpus": "c", "hubDataset": "org/kids"}},
        {"assess": True, "evaluate": False},  # assess runs in the comparison Job
        {"assess": True, "embeddedDefault": True},  # the models would write syllables
        {"trainOverrides": {"save_steps": 0}},  # out of the field's bounds
        {"trainOverrides": {"speed_perturb": [1.0, -0.9]}},
    ],
)
def test_both_front_ends_reject_the_same_cross_field_problems(values: dict, helm3: Path) -> None:
    with pytest.raises(ConfigError):
        values_io.from_values({"runName": "p", **values})
    raw = values_io.merge(values_io.to_values(C.PipelineConfig(run_name="p")), values)
    with pytest.raises(ConfigError, match="helm template failed"):
        render.helm_template(raw, "p", "asr", helm=str(helm3))
