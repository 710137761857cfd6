"""The chart with the real helm binaries (v3 and v4): lint, template, schema and value checks (those
of each value at install time, the cross-field ones in its launcher)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

import trainer
from trainer import exit_codes
from trainer.exit_codes import ConfigError
from trainer.pipeline import launch
from trainer.pipeline.render import CHART_DIR

from .helpers import all_manifests, values_configmap

CI_VALUES = CHART_DIR / "ci" / "ci-values.yaml"


def helm_run(helm: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(helm), *args], capture_output=True, text=True)


@pytest.mark.parametrize("values", [None, CI_VALUES], ids=["defaults", "ci-values"])
def test_lint_strict(helm: Path, values: Path | None) -> None:
    proc = helm_run(helm, "lint", "--strict", str(CHART_DIR), *(["-f", str(values)] if values else []))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_template_ci_values_is_a_tiny_cpu_run(helm: Path) -> None:
    proc = helm_run(helm, "template", "ci", str(CHART_DIR), "-f", str(CI_VALUES), "--namespace", "ci")
    assert proc.returncode == 0, proc.stderr
    objects = [o for o in yaml.safe_load_all(proc.stdout) if o]
    kinds = sorted({o["kind"] for o in objects})
    assert kinds == ["ConfigMap", "Job", "NetworkPolicy", "Pod", "Role", "RoleBinding", "ServiceAccount"]
    cfg = launch.values_config(values_configmap(objects))
    run = launch.run_objects(cfg, "ci")  # what the launcher creates, the trainer's argument check passed
    assert {o["kind"] for o in run} >= {"PersistentVolumeClaim", "Deployment", "Job", "NetworkPolicy", "Service"}
    assert "nvidia.com/gpu" not in json.dumps(all_manifests(run))  # CPU only


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        (["--set", "runName=Bad_Name"], "runName"),
        (["--set", "misspelled=1"], "misspelled"),
        (["--set", "resources.trainer.cpu=8"], "cpu"),  # an integer quantity: strings only
        (["--set", "ranks={0}"], "ranks"),
        (["--set", "storage.type=nfs"], "type"),
        (["--set-string", "nodeSelector.gpu=a b"], "nodeSelector"),
        (["--set", "trainOverrides.output=/x"], "trainOverrides"),
        (["--set", "trainOverrides.learning_rate=fast"], "learning_rate"),
    ],
)
def test_schema_rejects_bad_values(helm: Path, override: list[str], needle: str) -> None:
    proc = helm_run(helm, "template", "x", str(CHART_DIR), *override)
    assert proc.returncode != 0
    assert "schema" in proc.stderr and needle in proc.stderr


def test_cross_field_checks_fail_once_with_every_problem(helm: Path) -> None:
    """The schema passes each of these values; the launcher lists every problem, then exits 78."""
    proc = helm_run(
        helm,
        "template",
        "x",
        str(CHART_DIR),
        "--set",
        "nodes=2",
        "--set",
        "storage.type=s3",
        "--set",
        "embeddedDefault=true",
        "--set",
        "data.corpus=c",
    )
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(ConfigError) as refused:
        launch.values_config(values_configmap([o for o in yaml.safe_load_all(proc.stdout) if o]))
    for problem in ("storage.s3.prefix: required", "storage.s3: set secretName", "data.corpus: the embedded default"):
        assert problem in str(refused.value)


def test_release_name_longer_than_the_run_name_limit_is_refused(helm3: Path) -> None:
    proc = helm_run(helm3, "template", "r" * 41, str(CHART_DIR))
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(ConfigError, match="runName: 'r{41}' is too long"):
        launch.values_config(values_configmap([o for o in yaml.safe_load_all(proc.stdout) if o]))


def test_no_checksum_or_random_annotations_in_templates() -> None:
    """Job pod templates are immutable: nothing that changes between renders of the same values."""
    for path in (CHART_DIR / "templates").rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"checksum/|randAlpha|randNumeric|uuidv4|\bnow\b|genCA|genPrivateKey", text), path


def test_chart_app_version_is_the_trainer_version() -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["appVersion"] == trainer.__version__


def test_the_launcher_outside_a_cluster_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert launch.main(["--values-configmap", "x-values"]) == exit_codes.CONFIG_ERROR
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no in-cluster account") and "\n" not in err
