"""How the step Jobs meet the cluster, by both routes (submit.py, the chart): preemption rules, Kueue queues and
priorities, and scheduling constraints that marker checks share with their step."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trainer import exit_codes
from trainer.pipeline import render, values_io

from .helpers import all_manifests, render_by, s3_storage


@pytest.fixture
def rendered(route: str) -> Any:
    def rendered(values: dict[str, Any]) -> list[dict[str, Any]]:
        return render_by(route, values_io.from_values({"runName": "pol", **values}))

    return rendered


def test_preemption_is_ignored_and_a_config_error_fails_at_once(rendered: Any) -> None:
    for name, job in render.job_manifests(rendered({"ranks": [16, 32]})).items():
        rules = job["spec"]["podFailurePolicy"]["rules"]
        by_code = {code: r["action"] for r in rules if "onExitCodes" in r for code in r["onExitCodes"]["values"]}
        assert by_code == {exit_codes.CONFIG_ERROR: "FailJob", exit_codes.PREEMPTED: "Ignore"}, name
        assert {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]} in rules
        assert job["spec"]["activeDeadlineSeconds"] > 0  # what bounds a Job that keeps being preempted


QUEUE, PRIORITY = "kueue.x-k8s.io/queue-name", "kueue.x-k8s.io/priority-class"
KUEUE = {
    "queue": "gpu-team",
    "cpuQueue": "cpu-team",
    "priorityClass": "research",
    "embeddedDefault": True,
    "preset": "smoke",
}


def test_kueue_queues_gpu_steps_apart_from_the_cpu_jobs(rendered: Any) -> None:
    objects = rendered(KUEUE)
    jobs = [o for o in all_manifests(objects) if o["kind"] == "Job"]
    kinds = {j["metadata"]["name"]: j["metadata"]["labels"]["app.kubernetes.io/component"] for j in jobs}
    assert set(kinds.values()) == {"synth", "prepare", "base", "train", "eval", "marker-check", "orchestrator"}
    for job in jobs:
        name, labels = job["metadata"]["name"], job["metadata"]["labels"]
        pod = job["spec"]["template"]["spec"]
        if kinds[name] in ("base", "train", "eval"):
            assert (labels[QUEUE], labels[PRIORITY], pod["priorityClassName"]) == (
                "gpu-team",
                "research",
                "research",
            ), name
        else:  # the chain's own Jobs and the data steps never wait behind GPU work
            assert labels[QUEUE] == "cpu-team" and PRIORITY not in labels and "priorityClassName" not in pod, name


def test_without_kueue_settings_nothing_is_queued(rendered: Any) -> None:
    for obj in all_manifests(rendered({"ranks": [16, 32]})):
        assert not any(k.startswith("kueue.x-k8s.io/") for k in obj["metadata"]["labels"]), obj["metadata"]["name"]
        assert "priorityClassName" not in obj.get("spec", {}).get("template", {}).get("spec", {})


SCHEDULING = {
    "nodeSelector": {"pool": "gpu"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]
            }
        }
    },
}


GPU_NODES = ("nodeSelector", "tolerations", "affinity")


def pod_templates(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every pod template of a run (top-level objects and the plan's Jobs), by object name."""
    return {
        o["metadata"]["name"]: o["spec"]["template"] for o in all_manifests(objects) if "template" in o.get("spec", {})
    }


def requested_gpus(template: dict[str, Any]) -> int:
    return sum(int(c["resources"]["requests"].get("nvidia.com/gpu", 0)) for c in template["spec"]["containers"])


# Storage every node reaches: no pod has to follow another onto a node.
SHARED_STORAGE = [{"pvc": {"accessMode": "ReadWriteMany"}}, s3_storage("s3://bkt/p", secretName="creds")]


@pytest.mark.parametrize("storage", SHARED_STORAGE)
def test_without_a_read_write_once_claim_only_gpu_pods_go_to_the_gpu_nodes(rendered: Any, storage: dict) -> None:
    """Marker checks, data steps and TensorBoard use no GPU: nothing draws them onto (or scales up)
    the GPU nodes; the GPU steps carry the GPU nodes' constraints."""
    templates = pod_templates(rendered({**SCHEDULING, "embeddedDefault": True, "preset": "smoke", "storage": storage}))
    checks = [n for n in templates if n.endswith(("-check", "-verify"))]
    assert checks and {"pol-prepare", "pol-synth", "pol-tensorboard", "pol-orchestrator"} <= set(templates)
    for name, template in templates.items():
        pod = template["spec"]
        if requested_gpus(template):
            assert {k: pod.get(k) for k in GPU_NODES} == SCHEDULING, name
        else:
            assert not any(k in pod for k in GPU_NODES), name


def test_marker_checks_see_the_storage_as_their_step_does_without_a_gpu(rendered: Any) -> None:
    objects = rendered({**SCHEDULING, "ranks": [16], "storage": {"pvc": {"accessMode": "ReadWriteMany"}}})
    steps = render.job_manifests(objects)
    checks = {j["metadata"]["name"]: j for j in render.plan_jobs(objects) if j["metadata"]["name"] not in steps}
    assert sorted(checks) == sorted(f"{s}{suffix}" for s in steps for suffix in ("-check", "-verify"))
    for name, check in checks.items():
        pod = check["spec"]["template"]["spec"]
        assert "nvidia.com/gpu" not in json.dumps(pod["containers"][0]["resources"]), name
        assert pod["containers"][0]["args"][0] == "check-marker"
        storage = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "storage")
        assert storage["readOnly"] is True


@pytest.mark.parametrize("gpus_per_node", [0, 1, 8])
def test_each_step_requests_the_gpus_its_processes_use(rendered: Any, gpus_per_node: int) -> None:
    """Training runs one torchrun process per GPU; the tiny base and the evaluation are one process
    (no torchrun): one GPU at most, whatever gpusPerNode says."""
    objects = rendered({"gpusPerNode": gpus_per_node, "embeddedDefault": True, "preset": "smoke"})
    steps = render.job_manifests(objects)
    gpus = {name: requested_gpus(job["spec"]["template"]) for name, job in steps.items()}
    assert gpus == {
        "pol-synth": 0,
        "pol-prepare": 0,
        "pol-base": min(gpus_per_node, 1),
        "pol-r32-p1": gpus_per_node,
        "pol-r32-p2": gpus_per_node,
        "pol-r32-p3": gpus_per_node,
        "pol-eval": min(gpus_per_node, 1),
    }
    for name in ("pol-base", "pol-eval"):
        assert "command" not in steps[name]["spec"]["template"]["spec"]["containers"][0], name  # one process


def test_status_reports_a_step_that_kueue_holds_suspended() -> None:
    from kubernetes.client import V1Job, V1JobSpec, V1JobStatus

    from trainer.pipeline.cluster import _job_summary

    queued = V1Job(spec=V1JobSpec(template={}, suspend=True), status=V1JobStatus())
    admitted = V1Job(spec=V1JobSpec(template={}, suspend=False), status=V1JobStatus(active=1))
    assert "suspended" in _job_summary(queued) and "Kueue" in _job_summary(queued)
    assert _job_summary(admitted) == "Job active 1"


def claim_users(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The pod templates that mount the storage claim, by object name."""
    return {
        o["metadata"]["name"]: o["spec"]["template"]
        for o in all_manifests(objects)
        if any(
            "persistentVolumeClaim" in v
            for v in o.get("spec", {}).get("template", {}).get("spec", {}).get("volumes", [])
        )
    }


def test_pods_of_a_read_write_once_claim_share_its_node(rendered: Any) -> None:
    own_term = {"labelSelector": {"matchLabels": {"cache": "warm"}}, "topologyKey": "zone"}
    affinity = {**SCHEDULING["affinity"], "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [own_term]}}
    objects = rendered(
        {**SCHEDULING, "affinity": affinity, "ranks": [16, 32], "embeddedDefault": True, "preset": "smoke"}
    )
    users = claim_users(objects)
    assert "pol-tensorboard" in users and "pol-r32-p1-check" in users and "pol-prepare" in users
    term = {
        "labelSelector": {"matchLabels": {render.CLAIM_LABEL: "pol-storage"}},
        "topologyKey": "kubernetes.io/hostname",
    }
    for name, template in users.items():
        assert template["metadata"]["labels"][render.CLAIM_LABEL] == "pol-storage", name
        required = template["spec"]["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term in required, name
    gpu_side = users["pol-tensorboard"]["spec"]  # it anchors the claim's node: the GPU steps must fit there
    assert (
        gpu_side["nodeSelector"] == SCHEDULING["nodeSelector"] and gpu_side["tolerations"] == SCHEDULING["tolerations"]
    )
    assert gpu_side["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == [own_term, term]
    assert gpu_side["affinity"]["nodeAffinity"] == SCHEDULING["affinity"]["nodeAffinity"]
    for name, template in users.items():  # CPU pods too: the claim holds them on the GPU node
        pod = template["spec"]
        assert (pod["nodeSelector"], pod["tolerations"]) == (SCHEDULING["nodeSelector"], SCHEDULING["tolerations"]), (
            name
        )


@pytest.mark.parametrize("storage", SHARED_STORAGE)
def test_shared_storage_pins_nothing(rendered: Any, storage: dict[str, Any]) -> None:
    for obj in all_manifests(rendered({"storage": storage})):
        template = obj.get("spec", {}).get("template", {})
        assert render.CLAIM_LABEL not in template.get("metadata", {}).get("labels", {}), obj["metadata"]["name"]
        assert "affinity" not in template.get("spec", {}), obj["metadata"]["name"]


def test_check_marker_answers_with_its_exit_code_and_termination_message(tmp_path: Any) -> None:
    from trainer.pipeline.orchestrator import main

    done, log = tmp_path / "metrics.json", tmp_path / "termination-log"
    done.write_text("{}", encoding="utf-8")
    assert main(["check-marker", str(done), "--termination-log", str(log)]) == exit_codes.OK
    assert log.read_text(encoding="utf-8") == "present"
    missing = tmp_path / "COMPLETE"
    assert main(["check-marker", str(done), str(missing), "--termination-log", str(log)]) == exit_codes.MARKERS_MISSING
    assert log.read_text(encoding="utf-8") == f"missing {missing}"


def test_a_digest_pins_every_container_image(rendered: Any) -> None:
    digest = "sha256:" + "0f" * 32
    images = {
        c["image"]
        for o in all_manifests(rendered({"image": {"tag": "1.2", "digest": digest}}))
        for c in o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    }
    assert images == {f"ghcr.io/example/ko-child-asr:1.2@{digest}"}


def _selected(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    return policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()


def test_network_policies_admit_only_the_rendezvous_and_tensorboard(rendered: Any) -> None:
    objects = rendered({"nodes": 2, "storage": {"pvc": {"accessMode": "ReadWriteMany"}}})
    policies = {o["metadata"]["name"]: o for o in objects if o["kind"] == "NetworkPolicy"}
    assert set(policies) == {"pol-deny-ingress", "pol-rendezvous", "pol-tensorboard"}
    pods = {
        o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"]
        for o in all_manifests(objects)
        if "template" in o.get("spec", {})
    }
    deny = policies["pol-deny-ingress"]
    assert all(_selected(deny, labels) for labels in pods.values()) and "ingress" not in deny["spec"]
    rendezvous = policies["pol-rendezvous"]
    assert {n for n, labels in pods.items() if _selected(rendezvous, labels)} == {
        "pol-r32-p1",
        "pol-r32-p2",
        "pol-r32-p3",
    }
    [peers] = rendezvous["spec"]["ingress"][0]["from"]
    assert peers["podSelector"] == rendezvous["spec"]["podSelector"]  # from the run's own training pods only
    tensorboard = policies["pol-tensorboard"]
    assert {n for n, labels in pods.items() if _selected(tensorboard, labels)} == {"pol-tensorboard"}
    assert tensorboard["spec"]["ingress"] == [{"ports": [{"port": 6006, "protocol": "TCP"}]}]


def test_a_single_node_run_without_tensorboard_admits_nothing(rendered: Any) -> None:
    objects = rendered({"tensorboard": {"enabled": False}})
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "NetworkPolicy"] == ["pol-deny-ingress"]


def test_tensorboard_is_probed(rendered: Any) -> None:
    deployment = next(o for o in rendered({}) if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/", "port": "http"}, probe
