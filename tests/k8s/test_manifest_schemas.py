"""Every rendered object of both routes (submit.py, the chart's launcher), over the variant matrix (helpers.VARIANTS), is valid as a
current API server sees it on create:
- Kubernetes objects against the OpenAPI schemas (kubernetes-validate) of the chart's minimum version
  (Chart.yaml kubeVersion) and of 1.35, strictly: an unknown or misplaced field fails;
- Argo Workflows and JobSets against their CRDs: schema, strictly, and CEL rules (tests/k8s/crds.py).
That includes the Jobs kept in the plan ConfigMap (steps and marker checks), the objects each
Workflow template creates, a JobSet's replicated Job, and the chart's own objects: the values
ConfigMap, the launcher Job and its RBAC, and the `helm test` pod."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Iterator

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

from trainer.pipeline import naming, render, values_io

from . import crds
from .helpers import VARIANTS, all_manifests, helm_template, minimum_kube_version

VERSIONS = (minimum_kube_version(), "1.35")
CRDS = {"Workflow": crds.ARGO_WORKFLOW, "JobSet": crds.JOBSET}


def _replicated_jobs(obj: dict[str, Any]) -> list[dict[str, Any]]:
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


def _created(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects a Workflow's resource templates create."""
    templates = obj.get("spec", {}).get("templates", []) if obj["kind"] == "Workflow" else []
    return [json.loads(t["resource"]["manifest"]) for t in templates if "resource" in t]


def everything(objects: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every object a run creates: top-level, in the plan ConfigMap, made by the Workflow, and the
    Jobs inside JobSets."""
    for one in [*all_manifests(objects), *(made for obj in objects for made in _created(obj))]:
        yield one
        yield from _replicated_jobs(one)


def invalid(objects: list[dict[str, Any]], versions: tuple[str, ...] = VERSIONS) -> list[str]:
    problems = []
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] in CRDS:
            problems += [f"{name}: {p}" for p in crds.problems(crds.load(CRDS[obj["kind"]]), obj)]
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                problems.append(f"{version} {name}: {'.'.join(map(str, exc.path))}: {exc.message}")
    return problems


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_object_of_every_variant_is_valid(variant: str, renderer: Any) -> None:
    objects = list(everything(renderer(VARIANTS[variant])))
    assert invalid(objects) == []


def test_the_matrix_reaches_every_kind_and_storage() -> None:
    """The matrix above is what it says: every kind of object a run can create, on every storage."""
    kinds, storages = set(), set()
    for values in VARIANTS.values():
        cfg = values_io.from_values(values)
        kinds |= {o["kind"] for o in everything(render.render_jinja(cfg, "asr"))}
        s3 = cfg.storage.s3
        storages.add(
            ("s3", "secret" if s3.secret_name else "workload-identity")
            if cfg.storage.type == "s3"
            else ("pvc", cfg.storage.pvc.access_mode, "existing" if cfg.storage.pvc.claim_name else "created")
        )
    assert {"Workflow", "JobSet", "Job", "Deployment", "PersistentVolumeClaim", "ConfigMap"} <= kinds
    assert {
        ("s3", "secret"),
        ("s3", "workload-identity"),
        ("pvc", "ReadWriteOnce", "created"),
        ("pvc", "ReadWriteMany", "created"),
        ("pvc", "ReadWriteOnce", "existing"),
    } <= storages


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_charts_own_objects_are_valid(variant: str, helm3: Path) -> None:
    cfg = values_io.from_values(VARIANTS[variant])
    assert invalid(helm_template(values_io.to_values(cfg), naming.run_name(cfg), "asr", helm3)) == []


def test_helm_test_pod_is_valid(helm3: Path) -> None:
    out = subprocess.run(
        [str(helm3), "template", "t", str(render.CHART_DIR), "--show-only", "templates/tests/check-config.yaml"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert invalid([yaml.safe_load(out)]) == []


def _jobs(values: dict[str, Any]) -> list[dict[str, Any]]:
    objects = everything(render.render_jinja(values_io.from_values({"runName": "v", **values}), "asr"))
    return [o for o in objects if o["kind"] == "Job"]


def test_pod_failure_policies_are_valid_on_every_schema_from_the_minimum_on() -> None:
    """A step, an Indexed step and a marker check against every schema kubernetes-validate ships
    from the chart's minimum on (their podFailurePolicy rules changed shape across them)."""
    minimum = tuple(map(int, minimum_kube_version().split(".")))
    versions = tuple(v for v in all_versions() if tuple(map(int, v.split(".")[:2])) >= minimum)
    jobs = [
        j
        for j in _jobs({"nodes": 2, "storage": {"pvc": {"accessMode": "ReadWriteMany"}}})
        if j["metadata"]["name"] in ("v-r32-p1", "v-r32-p2-check")
    ]
    assert len(jobs) == 2 and len(versions) >= 10
    assert invalid(jobs, versions) == []


def test_validation_catches_a_misplaced_field() -> None:
    job = render.job_manifests(render.render_jinja(values_io.from_values({"runName": "v"}), "asr"))["v-r32-p1"]
    job["spec"]["template"]["spec"]["containers"][0]["gpu"] = 1
    assert all(v in " ".join(invalid([job])) for v in VERSIONS)


def test_validation_uses_the_minimum_versions_schema() -> None:
    """A podFailurePolicy rule without onPodConditions is what the 1.26-1.28 schemas refuse, 1.35's not."""
    [job] = [j for j in _jobs({}) if j["metadata"]["name"] == "v-r32-p1"]
    for rule in job["spec"]["podFailurePolicy"]["rules"]:
        if "onExitCodes" in rule:
            del rule["onPodConditions"]
    found = invalid([job])
    assert found and all(p.startswith(f"{minimum_kube_version()} ") and "onPodConditions" in p for p in found)


def test_validation_catches_a_broken_cel_rule_inside_a_workflow() -> None:
    objects = render.render_jinja(values_io.from_values({**VARIANTS["argo-case-embedded"], "runName": "v"}), "asr")
    wf = next(o for o in objects if o["kind"] == "Workflow")
    task = next(t for t in wf["spec"]["templates"][0]["dag"]["tasks"] if "depends" in t)
    task["continueOn"] = {"failed": True}
    assert invalid([wf]) == [
        f"Workflow/v: .spec.templates[0].dag.tasks[{wf['spec']['templates'][0]['dag']['tasks'].index(task)}]: "
        "cannot use 'continueOn' when using 'depends'"
    ]
