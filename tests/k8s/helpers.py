"""Shared by the Kubernetes tests: sample run configs, the real helm binaries, every rendered manifest."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.testenv.fetch_helm import binary_path
from trainer.exit_codes import ConfigError
from trainer.pipeline import config as C
from trainer.pipeline import launch, naming, render, values_io

PREPARE_HINT = "run `python -m tools.testenv prepare` (setup: tools/setup.sh --test)"


def s3_storage(prefix: str, **s3: str) -> dict[str, Any]:
    """The `storage` value of an S3 run: the prefix, and the credentials (secretName and endpoint, or
    serviceAccountName for workload identity)."""
    return {"type": "s3", "s3": {"prefix": prefix, **s3}}


WORKLOAD_IDENTITY = s3_storage("s3://asr", serviceAccountName="asr-s3")

# Configurations that between them reach every branch of the templates.
SAMPLES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "embedded-two-ranks": {
        "runName": "demo",
        "embeddedDefault": True,
        "preset": "smoke",
        "ranks": [16, 32],
        "gpusPerNode": 0,
        "data": {"unit": "jamo", "fractions": [0.3, 0.6, 1.0], "valFraction": 0.1},
        "synthetic": {"childSpeakers": 8, "adultSpeakers": 4, "utterancesPerSpeaker": 5},
    },
    "multinode-s3": {
        "runName": "big",
        "ranks": [16, 32],
        "nodes": 2,
        "gpusPerNode": 4,
        "storage": s3_storage("s3://asr-bucket/team", secretName="s3-creds", endpoint="http://minio.storage:9000"),
        "trainOverrides": {
            "learning_rate": 3.0e-4,
            "speed_perturb": [1.0, 0.9],
            "gradient_checkpointing": True,
            "ema_decay": 0,
            "max_steps": 100000,
            "warmup_ratio": 1.0e-5,
            "epochs": 2.5,
        },
        "image": {
            "repository": "registry.example.com:5000/asr/ko-child-asr",
            "tag": "1.2.3",
            "pullSecrets": ["regcred"],
        },
        "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["gpu"]}]}]
                }
            }
        },
    },
    "embedded-phone-assess": {
        "runName": "pron",
        "embeddedDefault": True,
        "preset": "smoke",
        "gpusPerNode": 0,
        "assess": True,
        "data": {"unit": "phone"},
        "synthetic": {"mispronounceRate": 0.15},
    },
    "single-node-multi-gpu": {"runName": "wide", "gpusPerNode": 8, "phases": [2, 3], "evaluate": False},
    "corpus-workload-identity": {
        "runName": "aihub",
        "data": {"prepare": True, "corpus": "corpora/aihub-kids"},
        "storage": WORKLOAD_IDENTITY,
        "tensorboard": {"enabled": False},
    },
    "hf-hub-dataset": {
        "runName": "hfkids",
        "data": {"prepare": True, "format": "hf", "hubDataset": "org/kids", "hfSplits": ["train"], "hfConfig": "clean"},
    },
    "kueue-side-by-side": {
        "runName": "queued",
        "ranks": [16, 32],
        "phases": [1, 2],
        "queue": "gpu-team",
        "cpuQueue": "cpu-team",
        "priorityClass": "research",
        "orchestrator": {"maxParallel": 2},
        "nodeSelector": {"pool": "gpu"},
        "affinity": {
            "podAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 10,
                        "podAffinityTerm": {"labelSelector": {"matchLabels": {"cache": "warm"}}, "topologyKey": "zone"},
                    }
                ]
            }
        },
    },
    "argo-multinode": {
        "runName": "wf",
        "ranks": [16, 32],
        "nodes": 2,
        "gpusPerNode": 4,
        "orchestrator": {"chain": "argo", "maxParallel": 2},
        "storage": {"pvc": {"accessMode": "ReadWriteMany"}},
        "queue": "gpu-team",
    },
    "jobset-kueue": {
        "runName": "gang",
        "ranks": [16],
        "phases": [1, 2],
        "nodes": 4,
        "gpusPerNode": 8,
        "multinode": "jobset",
        "queue": "gpu-team",
        "priorityClass": "research",
        "storage": {"pvc": {"accessMode": "ReadWriteMany"}},
    },
    "eval-only-client-chain": {
        "runName": "evalonly",
        "phases": [],
        "ranks": [16],
        "orchestrator": {"chain": "client"},
        "storage": {"pvc": {"claimName": "shared-data"}},
    },
    "argo-jobset-s3-digest": {
        "runName": "wfs3",
        "phases": [1, 2],
        "nodes": 2,
        "gpusPerNode": 8,
        "multinode": "jobset",
        "orchestrator": {"chain": "argo", "workflowPodGc": "OnPodSuccess", "workflowTtlSeconds": 3600},
        "storage": s3_storage("s3://asr-bucket/team", secretName="s3-creds", endpoint="https://s3.example.com"),
        "image": {"tag": "1.2.3", "digest": "sha256:" + "ab" * 32},
        "nodeSelector": {"pool": "gpu"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
    "argo-indexed-workload-identity-kueue": {
        "runName": "wfwi",
        "ranks": [16, 32],
        "nodes": 2,
        "gpusPerNode": 2,
        "orchestrator": {"chain": "argo", "maxParallel": 2},
        "storage": WORKLOAD_IDENTITY,
        "queue": "gpu-team",
        "cpuQueue": "cpu-team",
        "priorityClass": "research",
    },
}
# Runs that use the engines: one Argo Workflow (chain: argo), JobSets (multinode: jobset).
ARGO_CASES = {
    "embedded": {**SAMPLES["embedded-two-ranks"], "orchestrator": {"chain": "argo"}},
    "multinode": SAMPLES["argo-multinode"],
    "kueue-rwo": {**SAMPLES["kueue-side-by-side"], "orchestrator": {"chain": "argo", "maxParallel": 2}},
}
JOBSET_CASES = {
    "orchestrator": SAMPLES["jobset-kueue"],
    "argo": {**SAMPLES["jobset-kueue"], "orchestrator": {"chain": "argo"}},
}

# Every storage (ReadWriteOnce and ReadWriteMany claims, created and existing, S3 with a Secret and
# with workload identity), chain (orchestrator, client, Argo), multi-node mode (single node,
# Indexed Job, JobSet), Kueue and a digest-pinned image, in some combination.
VARIANTS = {
    **SAMPLES,
    **{f"argo-case-{name}": values for name, values in ARGO_CASES.items()},
    **{f"jobset-case-{name}": values for name, values in JOBSET_CASES.items()},
}


def minimum_kube_version() -> str:
    """The oldest Kubernetes minor the chart declares (Chart.yaml `kubeVersion: ">=1.26.0-0"` -> "1.26")."""
    chart = yaml.safe_load((render.CHART_DIR / "Chart.yaml").read_text(encoding="utf-8"))
    major, minor = re.fullmatch(r">=(\d+)\.(\d+)\.0-0", chart["kubeVersion"]).groups()
    return f"{major}.{minor}"


def helm_path(version: str) -> Path:
    path = binary_path(f"helm-{version}")
    if not path.exists():
        pytest.skip(f"helm {version} not found at {path}: {PREPARE_HINT}")
    return path


def all_manifests(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Top-level objects and the Jobs inside the plan ConfigMap (the steps and their marker checks)."""
    return [*objects, *render.plan_jobs(objects)]


def workflow(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "Workflow")


def helm_template(values: dict[str, Any], release: str, namespace: str, helm: Path) -> list[dict[str, Any]]:
    """The chart's own objects (`helm template`, the `helm test` pod left out) for these values;
    ConfigError with helm's message when it refuses them (the values schema)."""
    with tempfile.TemporaryDirectory() as tmp:
        values_file = Path(tmp) / "values.json"
        values_file.write_text(json.dumps(values), encoding="utf-8")
        proc = subprocess.run(
            [str(helm), "template", release, str(render.CHART_DIR), "-n", namespace, "-f", str(values_file)]
            + ["--skip-tests"],
            capture_output=True,
            text=True,
        )
    if proc.returncode != 0:
        raise ConfigError(f"helm template failed: {proc.stderr.strip()}")
    return [o for o in yaml.safe_load_all(proc.stdout) if o]


def values_configmap(chart_objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in chart_objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-values"))


def launched(values: dict[str, Any], release: str, namespace: str, helm: Path) -> list[dict[str, Any]]:
    """What `helm install` of these values ends up creating: the objects the chart's launcher renders
    from the values ConfigMap that the chart holds (before it checks the plan's trainer arguments)."""
    cfg = launch.values_config(values_configmap(helm_template(values, release, namespace, helm)))
    return render.render_jinja(cfg, namespace)


def render_through_chart(cfg: C.PipelineConfig, namespace: str, helm: Path) -> list[dict[str, Any]]:
    """The run's objects by the chart's route, the release named after the run."""
    return launched(values_io.to_values(cfg), naming.run_name(cfg), namespace, helm)


# The two ways a run's objects get made: submit.py renders them, or `helm install` stores the values
# and the chart's launcher renders them in the cluster.
ROUTES = ("submit", "chart")


def render_by(route: str, cfg: C.PipelineConfig, namespace: str = "asr") -> list[dict[str, Any]]:
    """The run's objects by this route (the chart's needs helm v3: the test skips without it)."""
    if route == "chart":
        return render_through_chart(cfg, namespace, helm_path("v3"))
    return render.render_jinja(cfg, namespace)
