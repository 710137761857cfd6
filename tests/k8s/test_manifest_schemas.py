"""Every rendered object of both renderers (including the step Jobs kept in the plan ConfigMap,
their marker-check Jobs and the `helm test` pod) is valid against the Kubernetes 1.29 and 1.33
OpenAPI schemas, strictly: an unknown or misplaced field fails."""

from __future__ import annotations

import subprocess
from pathlib import Path

import kubernetes_validate
import yaml

from trainer.pipeline import config as C
from trainer.pipeline import render

from .helpers import all_manifests

VERSIONS = ("1.29", "1.33")


# Objects of other engines' CRDs: tests/k8s/test_engines.py validates them against those CRDs.
CUSTOM_API_GROUPS = ("argoproj.io/", "jobset.x-k8s.io/")


def _replicated_jobs(obj: dict) -> list[dict]:
    """A JobSet's Jobs as Job objects, so that their spec is validated like every other Job's."""
    return [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"{obj['metadata']['name']}-{r['name']}"},
            "spec": r["template"]["spec"],
        }
        for r in obj.get("spec", {}).get("replicatedJobs", [])
    ]


def _invalid(objects: list[dict]) -> list[str]:
    problems = []
    objects = [*objects, *(job for obj in objects for job in _replicated_jobs(obj))]
    for version in VERSIONS:
        for obj in objects:
            if obj["apiVersion"].startswith(CUSTOM_API_GROUPS):
                continue
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                problems.append(
                    f"{version} {obj['kind']}/{obj['metadata']['name']}: {'.'.join(map(str, exc.path))}: {exc.message}"
                )
    return problems


def test_jinja_objects_are_valid(sample: tuple[str, C.PipelineConfig]) -> None:
    _, cfg = sample
    assert _invalid(all_manifests(render.render_jinja(cfg, "asr"))) == []


def test_helm_objects_are_valid(sample: tuple[str, C.PipelineConfig], helm3: Path) -> None:
    _, cfg = sample
    assert _invalid(all_manifests(render.render_helm(cfg, "asr", helm=str(helm3)))) == []


def test_helm_test_pod_is_valid(helm3: Path) -> None:
    out = subprocess.run(
        [str(helm3), "template", "t", str(render.CHART_DIR), "--show-only", "templates/tests/check-config.yaml"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert _invalid([yaml.safe_load(out)]) == []


def test_validation_catches_a_misplaced_field() -> None:
    """The check itself: a field in the wrong place is reported."""
    job = render.job_manifests(render.render_jinja(C.from_values({"runName": "v"}), "asr"))["v-r32-p1"]
    job["spec"]["template"]["spec"]["containers"][0]["gpu"] = 1
    assert _invalid([job])
