"""`chain: argo`: the plan as one Argo Workflow, validated strictly against Argo's own CRD (a copy in
tests/k8s/crds/) and checked to mirror the plan's DAG and Jobs; `--multinode jobset`: JobSets, likewise.
Creating them in a real API server with the CRDs installed: test_apiserver.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from trainer.pipeline import render, values_io
from trainer.pipeline.cluster import workflow_status

from . import crds
from .helpers import ARGO_CASES, JOBSET_CASES, SAMPLES, workflow


@pytest.mark.parametrize("case", sorted(ARGO_CASES))
def test_the_workflow_is_valid_against_argos_crd_strictly(case: str, renderer: Any) -> None:
    crd = crds.load(crds.ARGO_WORKFLOW)
    objects = renderer(ARGO_CASES[case])
    assert crds.problems(crd, workflow(objects)) == []
    assert not any(o["kind"] == "Job" and o["metadata"]["name"].endswith("-orchestrator") for o in objects)


def test_strict_validation_catches_a_misplaced_field() -> None:
    crd = crds.load(crds.ARGO_WORKFLOW)
    wf = workflow(render.render_jinja(values_io.from_values(ARGO_CASES["embedded"]), "asr"))
    wf["spec"]["templates"][0]["dag"]["tasks"][0]["dependsOn"] = ["x"]
    assert any("dependsOn" in p for p in crds.problems(crd, wf))


def test_the_crds_cel_rules_are_evaluated_at_their_depth() -> None:
    """Argo's rule on each DAG task (continueOn beside depends, as this chart once rendered) and its
    rule on the template list; JobSet's rule on its spec. Each fails the object it should."""
    wf = workflow(render.render_jinja(values_io.from_values(ARGO_CASES["embedded"]), "asr"))
    tasks = wf["spec"]["templates"][0]["dag"]["tasks"]
    index = next(i for i, t in enumerate(tasks) if "depends" in t)
    tasks[index]["continueOn"] = {"failed": True}
    wf["spec"]["templates"][1]["container"] = {"image": "x"}  # beside its resource: two template types
    assert crds.problems(crds.load(crds.ARGO_WORKFLOW), wf) == [
        ".spec.templates: template must have at most one template type",
        f".spec.templates[0].dag.tasks[{index}]: cannot use 'continueOn' when using 'depends'",
    ]
    jobset = render.job_manifests(render.render_jinja(values_io.from_values(JOBSET_CASES["orchestrator"]), "asr"))[
        "gang-r16-p1"
    ]
    jobset["spec"]["startupPolicy"] = {"startupPolicyOrder": "InOrder"}
    jobset["spec"]["replicatedJobs"][0]["dependsOn"] = [{"name": "x", "status": "Ready"}]
    assert crds.problems(crds.load(crds.JOBSET), jobset) == [
        ".spec: StartupPolicy and DependsOn APIs are mutually exclusive"
    ]


def test_transition_rules_are_left_to_updates() -> None:
    """JobSet marks fields immutable with `self == oldSelf`; a create has no old object, so no error."""
    schema = {"type": "object", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutable"}]}
    assert crds.cel_problems(schema, {"a": 1}) == []
    assert crds.cel_problems({**schema, "x-kubernetes-validations": [{"rule": "self.a == 2"}]}, {"a": 1}) == [
        "<root>: self.a == 2"
    ]


@pytest.mark.parametrize("case", ["embedded", "argo-jobset-s3-digest"])
def test_argo_deletes_its_pods_and_the_finished_workflow(case: str, renderer: Any) -> None:
    values = ARGO_CASES.get(case) or SAMPLES[case]
    orchestrator = values_io.from_values(values).orchestrator
    spec = workflow(renderer(values))["spec"]
    assert spec["podGC"] == {"strategy": orchestrator.workflow_pod_gc}
    assert spec["ttlStrategy"] == {"secondsAfterCompletion": orchestrator.workflow_ttl_seconds}
    assert ("argo-jobset-s3-digest" == case) == (spec["ttlStrategy"]["secondsAfterCompletion"] == 3600)


@pytest.mark.parametrize("case", sorted(ARGO_CASES))
def test_the_dag_is_the_plan_and_each_template_creates_the_plans_job(case: str, renderer: Any) -> None:
    objects = renderer(ARGO_CASES[case])
    wf = workflow(objects)
    templates = {t["name"]: t for t in wf["spec"]["templates"]}
    tasks = {t["name"]: t for t in templates["plan"]["dag"]["tasks"]}
    assert templates["plan"]["dag"]["failFast"] is False  # a failure stops only what depends on it
    plan = json.loads(render.plan_configmap(objects)["data"]["plan.json"])
    assert templates["plan"].get("parallelism", 0) == plan["maxParallel"]
    stored = {job["metadata"]["name"]: job for job in render.plan_jobs(objects)}
    assert set(tasks) == set(stored) == set(templates) - {"plan"}
    for name, template in templates.items():
        if name != "plan":  # the very Job the orchestrator would create
            assert json.loads(template["resource"]["manifest"]) == stored[name]
            assert template["resource"]["action"] == "create" and template["resource"]["setOwnerReference"]
    for step in plan["jobs"]:
        name, first = step["name"], step["name"] + ("-check" if step["skippable"] else "")
        # a plain task name in `depends` means Succeeded or Skipped: a skipped (already done) step counts
        after = tasks[first].get("depends", "").split(" && ") if step["dependsOn"] else []
        assert sorted(after) == sorted(d + "-verify" for d in step["dependsOn"]), name
        assert tasks[name + "-verify"]["depends"] == name
        if step["skippable"]:  # skip-if-done: the step and its verification run only when the check failed
            assert tasks[name]["depends"] == f"{first}.Succeeded || {first}.Failed"
            for task in (name, name + "-verify"):
                assert tasks[task]["when"] == f"{{{{tasks.{first}.status}}}} == Failed"
    evaluation = next(s for s in plan["jobs"] if s["kind"] == "eval")  # waits for every rank's chain
    ranks = ARGO_CASES[case]["ranks"]
    assert {d.rsplit("-p", 1)[0] for d in evaluation["dependsOn"]} == {f"{plan['run']}-r{r}" for r in ranks}
    assert tasks[evaluation["name"] + "-check"]["depends"] == " && ".join(
        d + "-verify" for d in evaluation["dependsOn"]
    )


def _matches(condition: str, obj: dict[str, Any]) -> list[bool]:
    """Each term of a resource template's condition evaluated as Argo does (gjson path, operator, value)."""
    results = []
    for term in condition.split(","):
        path, op, value = re.fullmatch(r"\s*([\w.]+)\s*(==|>)\s*(\w+)\s*", term).groups()
        node: Any = obj
        for part in path.split("."):
            node = (
                node[int(part)]
                if isinstance(node, list) and part.isdigit() and int(part) < len(node)
                else (node.get(part) if isinstance(node, dict) else None)
            )
        results.append(node is not None and (str(node) == value if op == "==" else int(node) > int(value)))
    return results


JOB_STATES = {  # what a Job's status looks like (Kubernetes 1.31+ adds FailureTarget, Kueue Suspended)
    "failed by exit 78": {
        "failed": 1,
        "conditions": [{"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}],
    },
    "queued, then failed": {
        "failed": 4,
        "conditions": [
            {"type": "Suspended", "status": "False"},
            {"type": "FailureTarget", "status": "True"},
            {"type": "Failed", "status": "True"},
        ],
    },
    "failed (old cluster)": {"failed": 4, "conditions": [{"type": "Failed", "status": "True"}]},
    "retrying a failed pod": {"failed": 1, "active": 1},
    "preempted, ignored": {"active": 1},
    "complete": {
        "succeeded": 1,
        "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}],
    },
}


def test_success_and_failure_conditions_see_a_failed_job() -> None:
    wf = workflow(render.render_jinja(values_io.from_values(ARGO_CASES["embedded"]), "asr"))
    resource = next(t for t in wf["spec"]["templates"] if t["name"] == "demo-r16-p1")["resource"]
    outcome = {}
    for what, status in JOB_STATES.items():
        job = {"status": status}
        failed, succeeded = (
            any(_matches(resource["failureCondition"], job)),
            all(_matches(resource["successCondition"], job)),
        )
        outcome[what] = "failed" if failed else "succeeded" if succeeded else "waiting"
    assert outcome == {
        "failed by exit 78": "failed",
        "queued, then failed": "failed",
        "failed (old cluster)": "failed",
        "retrying a failed pod": "waiting",
        "preempted, ignored": "waiting",
        "complete": "succeeded",
    }


def test_a_multinode_step_succeeds_when_every_node_did() -> None:
    wf = workflow(render.render_jinja(values_io.from_values(ARGO_CASES["multinode"]), "asr"))
    templates = {t["name"]: t["resource"] for t in wf["spec"]["templates"] if "resource" in t}
    assert templates["wf-r16-p1"]["successCondition"] == "status.succeeded > 1"  # 2 nodes
    assert templates["wf-r16-p1-verify"]["successCondition"] == "status.succeeded > 0"


def test_status_of_an_argo_run_reads_the_workflows_nodes() -> None:
    steps = [{"name": n} for n in ("r-base", "r-r16-p1", "r-r32-p1", "r-r16-p2", "r-eval")]
    nodes = {
        "a": {"displayName": "r-base-verify", "phase": "Succeeded"},
        "b": {"displayName": "r-r16-p1-check", "phase": "Succeeded"},
        "c": {"displayName": "r-r16-p1", "phase": "Skipped"},
        "d": {"displayName": "r-r32-p1-check", "phase": "Failed"},
        "e": {
            "displayName": "r-r32-p1",
            "phase": "Failed",
            "message": "failure condition 'status.conditions.1.type == Failed'",
        },
        "f": {"displayName": "r-r16-p2-check", "phase": "Failed"},
        "g": {"displayName": "r-r16-p2", "phase": "Running"},
    }
    st = workflow_status(steps, {"phase": "Running", "nodes": nodes})
    assert st["steps"] == {
        "r-base": "done",
        "r-r16-p1": "done",
        "r-r32-p1": "failed",
        "r-r16-p2": "running",
        "r-eval": "pending",
    }
    assert st["step"] == "r-r16-p2" and "conditions" in st["failures"]["r-r32-p1"]
    assert workflow_status(steps, {"phase": "Failed", "nodes": nodes})["steps"]["r-eval"] == "blocked"


# ----------------------------------------------------------------------------- JobSet


@pytest.mark.parametrize("case", sorted(JOBSET_CASES))
def test_multinode_jobset_steps_are_valid_jobsets_that_restart_the_group(case: str, renderer: Any) -> None:
    crd = crds.load(crds.JOBSET)
    objects = renderer(JOBSET_CASES[case])
    steps = render.job_manifests(objects)
    jobsets = {name: s for name, s in steps.items() if s["kind"] == "JobSet"}
    assert sorted(jobsets) == ["gang-r16-p1", "gang-r16-p2"]  # training steps; the evaluation is one pod
    assert not any(o["kind"] == "Service" and o["metadata"]["name"] == "gang-ddp" for o in objects)  # JobSet's own DNS
    for name, jobset in jobsets.items():
        assert crds.problems(crd, jobset) == [], name
        spec = jobset["spec"]
        assert spec["failurePolicy"]["maxRestarts"] == 3 and spec["failurePolicy"]["restartStrategy"] == "Recreate"
        assert spec["failurePolicy"]["rules"] == [
            {"name": "config-error", "action": "FailJobSet", "onJobFailureReasons": ["PodFailurePolicy"]}
        ]
        [replicated] = spec["replicatedJobs"]
        job = replicated["template"]["spec"]
        assert (replicated["replicas"], job["completions"], job["parallelism"], job["backoffLimit"]) == (1, 4, 4, 0)
        assert "subdomain" not in job["template"]["spec"]  # the JobSet names the pods
        command = job["template"]["spec"]["containers"][0]["command"]
        assert f"--master-addr={name}-node-0-0.{name}" in command
        # Kueue admits the JobSet as one workload: the queue is on it, not on its Job
        assert jobset["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-team"
        assert not any(k.startswith("kueue.x-k8s.io/") for k in replicated["template"]["metadata"]["labels"])
        assert job["template"]["spec"]["priorityClassName"] == "research"
    role = next(o for o in objects if o["kind"] == "Role")
    assert {"apiGroups": ["jobset.x-k8s.io"], "resources": ["jobsets"]}.items() <= role["rules"][1].items()
    if case == "argo":
        templates = {t["name"]: t for t in workflow(objects)["spec"]["templates"]}
        assert templates["gang-r16-p1"]["resource"]["successCondition"] == "status.terminalState == Completed"
        assert templates["gang-r16-p1"]["resource"]["failureCondition"] == "status.terminalState == Failed"
        assert json.loads(templates["gang-r16-p1"]["resource"]["manifest"]) == jobsets["gang-r16-p1"]


def test_the_chain_creates_and_follows_a_jobset(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes.client.exceptions import ApiException

    from trainer.pipeline.orchestrator import Chain, ChainPlan, StepFailed

    objects = render.render_jinja(values_io.from_values(JOBSET_CASES["orchestrator"]), "asr")
    plan = ChainPlan.from_data(render.plan_configmap(objects)["data"])

    class JobSets:  # the custom-objects API, holding one JobSet
        def __init__(self) -> None:
            self.stored: dict[str, Any] = {}

        def create_namespaced_custom_object(
            self, group: str, version: str, namespace: str, plural: str, body: dict
        ) -> None:
            assert (group, version, plural) == ("jobset.x-k8s.io", "v1alpha2", "jobsets")
            self.stored[body["metadata"]["name"]] = json.loads(json.dumps(body))

        def get_namespaced_custom_object(
            self, group: str, version: str, namespace: str, plural: str, name: str
        ) -> dict:
            if name not in self.stored:
                raise ApiException(status=404)
            return self.stored[name]

    class Core:
        def list_namespaced_pod(self, namespace: str, label_selector: str) -> Any:
            assert label_selector == "jobset.sigs.k8s.io/jobset-name=gang-r16-p1"
            return type("Pods", (), {"items": []})()

    jobsets = JobSets()
    chain = Chain(batch=None, core=Core(), namespace="asr", plan=plan, report=lambda _: None)
    monkeypatch.setattr(chain, "_jobsets", lambda: jobsets)
    manifest = plan.manifests["gang-r16-p1"]
    assert chain._finished("gang-r16-p1", manifest) is False and "gang-r16-p1" in jobsets.stored  # created
    assert chain._finished("gang-r16-p1", manifest) is False  # running
    jobsets.stored["gang-r16-p1"]["status"] = {"terminalState": "Completed"}
    assert chain._finished("gang-r16-p1", manifest) is True
    jobsets.stored["gang-r16-p1"]["status"] = {
        "terminalState": "Failed",
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "FailedJobs",
                "message": "jobset failed due to PodFailurePolicy",
            }
        ],
    }
    with pytest.raises(
        StepFailed, match=r"JobSet gang-r16-p1 failed \(FailedJobs: .*PodFailurePolicy\).*-l jobset.sigs"
    ):
        chain._finished("gang-r16-p1", manifest)


def test_the_workflow_takes_the_check_job_suffixes_from_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The marker checks' name suffixes are spelled once (trainer.pipeline.plan), not in the template."""
    monkeypatch.setattr(render, "CHECK_SUFFIX", "-chk")
    monkeypatch.setattr(render, "VERIFY_SUFFIX", "-ver")
    objects = render.render_jinja(values_io.from_values(ARGO_CASES["embedded"]), "asr")
    tasks = {t["name"] for t in workflow(objects)["spec"]["templates"][0]["dag"]["tasks"]}
    stored = {job["metadata"]["name"] for job in render.plan_jobs(objects)}
    assert tasks == stored and any(n.endswith("-chk") for n in tasks) and any(n.endswith("-ver") for n in tasks)
