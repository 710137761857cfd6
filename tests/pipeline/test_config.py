"""PipelineConfig: one validated description of a run; clear errors naming the field."""

from __future__ import annotations

import pytest

from trainer.config import parse_config
from trainer.exit_codes import ConfigError
from trainer.pipeline import config as C
from trainer.pipeline import naming, values_io


def errors_of(values: dict) -> str:
    with pytest.raises(ConfigError) as info:
        values_io.from_values(values)
    return str(info.value)


def test_defaults_are_valid_and_round_trip_through_values() -> None:
    cfg = values_io.from_values({})
    assert cfg == C.PipelineConfig()
    assert values_io.from_values(values_io.to_values(cfg)) == cfg


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"runName": "Has_Upper"}, "runName"),
        ({"runName": "x" * 41}, "runName"),
        ({"runName": "data"}, "reserved"),
        ({"ranks": [0]}, "ranks.0"),
        ({"ranks": [16, 16]}, "ranks"),
        ({"phases": [4]}, "phases.0"),
        ({"gpusPerNode": -1}, "gpusPerNode"),
        ({"resources": {"trainer": {"memory": "lots"}}}, "resources.trainer.memory"),
        ({"resources": {"trainer": {"cpu": 8}}}, "resources.trainer.cpu"),  # integer quantity
        ({"resources": {"shmSize": "-1Gi"}}, "resources.shmSize"),
        ({"storage": {"pvc": {"accessMode": "ReadOnlyMany"}}}, "storage.pvc.accessMode"),
        ({"nodeSelector": {"bad key!": "v"}}, "nodeSelector"),
        ({"tolerations": [{"key": "k", "operator": "Sometimes"}]}, "tolerations.0.operator"),
        ({"unknownSetting": 1}, "unknownSetting"),
        ({"trainOverrides": {"no_such_field": 1}}, "no_such_field"),
        ({"trainOverrides": {"vocab": "/x"}}, "vocab"),  # set by the plan
        ({"trainOverrides": {"learning_rate": "fast"}}, "learning_rate"),
        ({"trainOverrides": {"ema_decay": 1.5}}, "ema_decay"),  # TrainConfig's own check
    ],
)
def test_bad_values_are_rejected_naming_the_field(values: dict, field: str) -> None:
    assert field in errors_of(values)


def test_all_problems_are_reported_at_once() -> None:
    message = errors_of({"ranks": [0], "runName": "A", "gpusPerNode": -1})
    assert "ranks.0" in message and "runName" in message and "gpusPerNode" in message


def test_cross_field_problems() -> None:
    assert "ReadWriteMany" in errors_of({"nodes": 2})
    assert values_io.from_values({"nodes": 2, "storage": {"pvc": {"accessMode": "ReadWriteMany"}}}).nodes == 2
    assert "secretName" in errors_of({"storage": {"type": "s3", "s3": {"prefix": "s3://bkt/p"}}})
    assert "nothing to run" in errors_of({"phases": [], "evaluate": False})
    assert "assessSpeed" in errors_of({"assessSpeed": 0.9})
    assert "assessSpeed" in errors_of({"assess": True, "assessSpeed": 3.0})  # outside the schema's range


def test_trailing_newline_is_rejected_although_the_pattern_matches() -> None:
    """Python's `$` matches before a final newline; the explicit control-character check catches it."""
    assert "control characters" in errors_of({"runName": "ok\n"})


def test_values_files_read_numbers_like_helm() -> None:
    values = parse_config("trainOverrides:\n  learning_rate: 1e-4\n  epochs: 3\n", "v.yaml")
    assert values["trainOverrides"] == {"learning_rate": 1e-4, "epochs": 3}
    with pytest.raises(ConfigError, match="v.yaml"):
        parse_config("a: [", "v.yaml")


def test_run_name_is_derived_from_the_config() -> None:
    a, b = values_io.from_values({"ranks": [16, 32]}), values_io.from_values({"ranks": [16, 32]})
    c = values_io.from_values({"ranks": [16, 32], "gpusPerNode": 2})
    assert naming.run_name(a) == naming.run_name(b) != naming.run_name(c)
    # how the steps are chained is not what they compute: a resumed run keeps its name and outputs
    assert naming.run_name(
        values_io.from_values({"ranks": [16, 32], "orchestrator": {"maxParallel": 1}})
    ) == naming.run_name(a)
    assert naming.run_name(a).startswith("asr-r16-r32-") and len(naming.run_name(a)) <= C.MAX_RUN_NAME
    assert naming.run_name(values_io.from_values({"runName": "mine"})) == "mine"
    many = values_io.from_values({"ranks": list(range(1, 40)), "preset": "demo-small"})
    assert len(naming.run_name(many)) <= C.MAX_RUN_NAME and not naming.run_name(many).endswith("--")


def test_a_default_changed_by_a_release_renames_the_run(monkeypatch, tmp_path) -> None:
    """The run name digests the settings' full values: a resubmit after a release that changed a
    default must not find the old run's finished steps under the same name and skip them."""
    import dataclasses

    from trainer.training import configure

    old = values_io.from_values({"ranks": [16]})
    new = dataclasses.replace(old, data=dataclasses.replace(old.data, val_fraction=0.1))
    monkeypatch.setattr(C, "PipelineConfig", lambda: new)  # the new release's defaults
    assert naming.run_name(new) != naming.run_name(old)

    # A preset's (or TrainConfig's) default reaches the train jobs as resolved settings.
    preset = (configure.PRESET_DIR / "xlsr.yaml").read_text(encoding="utf-8")
    assert "learning_rate: 3.0e-4" in preset
    (tmp_path / "xlsr.yaml").write_text(preset.replace("learning_rate: 3.0e-4", "learning_rate: 1.0e-4"), "utf-8")
    before = naming.run_name(old)
    monkeypatch.setattr(configure, "PRESET_DIR", tmp_path)
    assert naming.run_name(old) != before


@pytest.mark.parametrize(
    "scheduling",
    [
        {"queue": "gpu"},
        {"cpuQueue": "cpu"},
        {"priorityClass": "high"},
        {"orchestrator": {"maxParallel": 1, "chain": "argo"}},
        {"image": {"pullPolicy": "Always", "pullSecrets": ["regcred"]}},
        {"nodeSelector": {"gpu": "h100"}},
        {"resources": {"trainer": {"memory": "64Gi"}}},
        {"job": {"backoffLimit": 5}},
        {"tensorboard": {"enabled": False}},
        {"storage": {"type": "s3", "s3": {"prefix": "s3://bucket/p", "secretName": "creds"}}},
    ],
)
def test_scheduling_settings_keep_the_run_name(scheduling: dict) -> None:
    assert naming.run_name(values_io.from_values({"ranks": [16], **scheduling})) == naming.run_name(
        values_io.from_values({"ranks": [16]})
    )


@pytest.mark.parametrize(
    "result",
    [
        {"gpusPerNode": 2},
        {"image": {"tag": "0.2.0"}},
        {"trainOverrides": {"learning_rate": 1e-3}},
        {"data": {"valFraction": 0.1}},
        {"phases": [1, 2]},
        {"preset": "demo"},
    ],
)
def test_settings_that_change_results_rename_the_run(result: dict) -> None:
    assert naming.run_name(values_io.from_values({"ranks": [16], **result})) != naming.run_name(
        values_io.from_values({"ranks": [16]})
    )
