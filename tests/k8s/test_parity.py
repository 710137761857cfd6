"""`helm install` of the chart creates what `tools/submit.py` renders: the chart holds the values,
and its launcher renders the run from them with the same code (trainer.pipeline.launch). What is
left to go wrong is the trip of the values through the chart (defaults, number forms, runName)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.exit_codes import ConfigError
from trainer.pipeline import config as C
from trainer.pipeline import launch, render, values_io

from .helpers import helm_template, launched, render_through_chart, s3_storage, values_configmap


def test_the_chart_route_creates_what_submit_renders(sample: tuple[str, C.PipelineConfig], helm: Path) -> None:
    name, cfg = sample
    assert render_through_chart(cfg, "asr", helm) == render.render_jinja(cfg, "asr"), name


def test_every_sample_passes_the_trainers_argument_check(sample: tuple[str, C.PipelineConfig]) -> None:
    """What submit.py and the chart's launcher check before creating anything (a run that fails it is refused)."""
    name, cfg = sample
    assert launch.run_objects(cfg, "asr"), name


def test_the_values_reach_the_launcher(helm3: Path) -> None:
    """The comparison is not vacuous: a changed setting changes what the launcher creates."""
    a = render.render_jinja(values_io.from_values({"runName": "p"}), "asr")
    b = render_through_chart(values_io.from_values({"runName": "p", "gpusPerNode": 2}), "asr", helm3)
    assert render.plan_configmap(a) != render.plan_configmap(b)


def test_the_release_name_is_the_run_name_unless_given(helm3: Path) -> None:
    objects = launched({}, "rel", "asr", helm3)
    assert render.plan_configmap(objects)["metadata"]["name"] == "rel-plan"


@pytest.mark.parametrize(
    "values",
    [
        {"nodes": 2},  # multi-node on a ReadWriteOnce claim
        {"storage": s3_storage("s3://bkt/p")},  # no credentials
        {"data": {"prepare": True}},  # nothing to prepare
        {"phases": [], "evaluate": False},  # nothing to run
        {"embeddedDefault": True, "data": {"corpus": "c"}},
        {"data": {"prepare": True, "hubDataset": "org/kids"}},  # a Hub id needs format hf
        {"embeddedDefault": True, "data": {"format": "hf"}},  # the synthetic corpus is aihub
        {"data": {"prepare": True, "format": "hf", "corpus": "c", "hubDataset": "org/kids"}},
        {"assess": True, "evaluate": False},  # assess runs in the comparison Job
        {"assess": True, "embeddedDefault": True},  # the models would write syllables
        {"assessSpeed": 0.9},  # a speed for an assessment that does not run
    ],
)
def test_the_launcher_refuses_the_cross_field_problems_submit_refuses(values: dict, helm3: Path) -> None:
    """The chart's schema passes them (it checks each value alone); the launcher's Python checks,
    the ones `submit.py` runs, refuse them with the same problem lines."""
    with pytest.raises(ConfigError) as direct:
        values_io.from_values({"runName": "p", **values})
    raw = values_io.merge(values_io.to_values(C.PipelineConfig(run_name="p")), values)
    stored = values_configmap(helm_template(raw, "p", "asr", helm3))
    with pytest.raises(ConfigError) as refused:
        launch.values_config(stored)
    problems = str(direct.value).split(":", 1)[1]
    assert problems in str(refused.value)


@pytest.mark.parametrize(
    "values",
    [
        {"trainOverrides": {"save_steps": 0}},  # out of the field's bounds
        {"trainOverrides": {"speed_perturb": [1.0, -0.9]}},
    ],
)
def test_the_chart_refuses_what_the_schema_refuses(values: dict, helm3: Path) -> None:
    with pytest.raises(ConfigError):
        values_io.from_values({"runName": "p", **values})
    raw = values_io.merge(values_io.to_values(C.PipelineConfig(run_name="p")), values)
    with pytest.raises(ConfigError, match="helm template failed"):
        helm_template(raw, "p", "asr", helm3)
