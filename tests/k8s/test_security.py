"""Restricted Pod security on every pod a run creates and on the chart's own, API tokens only in the
orchestrator and the chart's launcher, and no credential value anywhere in the manifests."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from trainer.pipeline import config as C
from trainer.pipeline import naming, render, values_io
from trainer.pipeline.constants import POD_UID

from .helpers import VARIANTS, all_manifests, helm_template, render_by, s3_storage

SCRATCH = {"/tmp", "/home/trainer", "/cache/huggingface"}


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "Pod":
            yield name, obj["spec"]
        elif "template" in obj.get("spec", {}):
            yield name, obj["spec"]["template"]["spec"]
        for replicated in obj.get("spec", {}).get("replicatedJobs", []):  # a JobSet's Jobs
            yield f"{name}/{replicated['name']}", replicated["template"]["spec"]["template"]["spec"]


def restricted_problems(name: str, pod: dict[str, Any]) -> list[str]:
    problems = []
    sc = pod.get("securityContext", {})
    if not (sc.get("runAsNonRoot") and sc.get("runAsUser") == POD_UID >= 10000):
        problems.append(f"{name}: pod must run as non-root uid {POD_UID} (>= 10000, the image's user)")
    if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{name}: seccomp RuntimeDefault")
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        problems.append(f"{name}: host namespaces")
    token = pod.get("automountServiceAccountToken")
    if (
        name.endswith(("-orchestrator", "-launcher")) != (token is True) or token is None
    ):  # (Argo's executor: its config)
        problems.append(f"{name}: API token mounted={token} (only the orchestrator and the launcher get one)")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    if any("hostPath" in v for v in volumes.values()):
        problems.append(f"{name}: hostPath volume")
    for c in pod["containers"] + pod.get("initContainers", []):
        csc = c.get("securityContext", {})
        if csc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}/{c['name']}: allowPrivilegeEscalation must be false")
        if csc.get("capabilities", {}).get("drop") != ["ALL"] or csc.get("capabilities", {}).get("add"):
            problems.append(f"{name}/{c['name']}: capabilities must drop ALL and add none")
        if csc.get("privileged") or csc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}/{c['name']}: read-only root filesystem, unprivileged")
        writable = {m["mountPath"] for m in c.get("volumeMounts", []) if "emptyDir" in volumes[m["name"]]}
        if not SCRATCH <= writable:
            problems.append(f"{name}/{c['name']}: emptyDirs for {sorted(SCRATCH - writable)} missing")
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        if env.get("HOME") != "/home/trainer" or env.get("HF_HOME") != "/cache/huggingface":
            problems.append(f"{name}/{c['name']}: HOME and HF_HOME must point at the emptyDirs")
    return problems


def test_every_pod_is_restricted(sample: tuple[str, C.PipelineConfig]) -> None:
    _, cfg = sample
    objects = all_manifests(render.render_jinja(cfg, "asr"))
    specs = list(pod_specs(objects))
    assert len(specs) >= 3
    assert [p for name, pod in specs for p in restricted_problems(name, pod)] == []


def test_the_charts_pods_are_restricted(helm3: Path) -> None:
    """The launcher Job and the `helm test` pod."""
    out = subprocess.run(
        [str(helm3), "template", "t", str(render.CHART_DIR)], capture_output=True, text=True, check=True
    ).stdout
    specs = dict(pod_specs([o for o in yaml.safe_load_all(out) if o]))
    assert sorted(specs) == ["Job/t-launcher", "Pod/t-check-config"]
    assert [p for name, pod in specs.items() for p in restricted_problems(name, pod)] == []


def test_the_walk_catches_a_privileged_container() -> None:
    objects = all_manifests(render.render_jinja(values_io.from_values({"runName": "s"}), "asr"))
    name, pod = next(pod_specs(render.job_manifests(objects).values()))
    pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    assert restricted_problems(name, pod)


def test_orchestrator_role_is_limited_to_what_the_chain_needs() -> None:
    objects = render.render_jinja(values_io.from_values({"runName": "s"}), "asr")
    role = next(o for o in objects if o["kind"] == "Role")
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): r for r in role["rules"]}
    assert set(rules[(("batch",), ("jobs",))]["verbs"]) == {"create", "get", "list", "watch", "delete"}
    assert set(rules[(("",), ("pods",))]["verbs"]) == {"get", "list", "watch"}
    assert rules[(("",), ("configmaps",))]["resourceNames"] == ["s-status"]
    assert len(rules) == 3
    assert not any(o["kind"] in ("ClusterRole", "ClusterRoleBinding", "Secret") for o in objects)


def _grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    """(API group, resource, verb, object name or '*') for every permission the rules grant."""
    return {
        (group, resource, verb, name)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        for name in rule.get("resourceNames") or ["*"]
    }


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_launchers_role_is_exactly_what_creating_the_run_needs(variant: str, helm3: Path) -> None:
    """Create each object of the run, read its values and plan ConfigMaps, and hold every permission
    of the Roles it creates (Kubernetes lets no one grant more than it holds): that and nothing more."""
    values = VARIANTS[variant]
    cfg = values_io.from_values(values)
    run = naming.run_name(cfg)
    chart = helm_template(values_io.to_values(cfg), run, "asr", helm3)
    [role] = [o for o in chart if o["kind"] == "Role"]
    objects = render.render_jinja(cfg, "asr")
    needed = {("", "configmaps", "get", f"{run}-values"), ("", "configmaps", "get", f"{run}-plan")}
    for obj in objects:
        group = obj["apiVersion"].rpartition("/")[0]
        resource = {"NetworkPolicy": "networkpolicies"}.get(obj["kind"], obj["kind"].lower() + "s")
        needed.add((group, resource, "create", "*"))
        if obj["kind"] == "Role":
            needed |= _grants(obj["rules"])
    assert _grants(role["rules"]) == needed


SECRET_KEY, KEY_ID = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY", "AKIAIOSFODNN7EXAMPLE"


@pytest.fixture
def keys_in_env(monkeypatch: pytest.MonkeyPatch) -> C.PipelineConfig:
    """An S3 run with a Secret, submitted from a shell that has the keys in its environment."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    return values_io.from_values({"runName": "sec", "storage": s3_storage("s3://bkt/p", secretName="creds")})


def assert_no_key(objects: list[dict[str, Any]]) -> None:
    text = json.dumps(objects)
    assert SECRET_KEY not in text and KEY_ID not in text


def test_no_secret_value_in_any_manifest(keys_in_env: C.PipelineConfig, route: str) -> None:
    """Credentials are referenced (a Secret volume), never copied, even when the submitting shell has them."""
    assert_no_key(all_manifests(render_by(route, keys_in_env)))


def test_no_secret_value_in_the_charts_own_objects(keys_in_env: C.PipelineConfig, helm3: Path) -> None:
    assert_no_key(helm_template(values_io.to_values(keys_in_env), "sec", "asr", helm3))


CREDENTIALS = "[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"


def test_s3_credentials_reach_boto3_only_as_a_read_only_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, s3_server: Any, route: str
) -> None:
    """storage.s3.secretName: every pod that uses the storage mounts the Secret's credentials file
    read-only and points AWS_SHARED_CREDENTIALS_FILE at it; no env var comes from a Secret (checkov
    CKV_K8S_35). Laid out as the kubelet lays out the Secret (under tmp_path), the container's own
    env is all boto3 needs to reach the S3 server, and a wrong file is refused."""
    values = {
        "runName": "cred",
        "storage": s3_storage("s3://bkt/p", secretName="creds", endpoint=s3_server.endpoint),
    }
    envs = []
    for name, pod in pod_specs(all_manifests(render_by(route, values_io.from_values(values)))):
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            assert not any("valueFrom" in e and "secretKeyRef" in e["valueFrom"] for e in c["env"]), name
            env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
            mounts = [(m, volumes[m["name"]]["secret"]) for m in c["volumeMounts"] if "secret" in volumes[m["name"]]]
            if "AWS_ENDPOINT_URL" not in env:  # the orchestrator reads no storage
                assert not mounts, name
                continue
            [(mount, secret)] = mounts
            assert mount["readOnly"] is True and secret["secretName"] == "creds", name
            assert secret["items"] == [{"key": C.S3_CREDENTIALS_KEY, "path": C.S3_CREDENTIALS_KEY}], name
            assert env["AWS_SHARED_CREDENTIALS_FILE"] == f"{mount['mountPath']}/{C.S3_CREDENTIALS_KEY}", name
            envs.append(env)
    assert len(envs) >= 5 and all(env == envs[0] for env in envs)
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    credentials = tmp_path / envs[0]["AWS_SHARED_CREDENTIALS_FILE"].lstrip("/")  # the Secret's key, as mounted
    credentials.parent.mkdir(parents=True)
    for name, value in envs[0].items():
        monkeypatch.setenv(name, str(credentials) if name == "AWS_SHARED_CREDENTIALS_FILE" else value)

    def list_buckets() -> Any:
        import boto3

        return boto3.session.Session(region_name="us-east-1").client("s3").list_buckets()

    credentials.write_text(CREDENTIALS.format(key="test", secret="test"), encoding="utf-8")
    assert "Buckets" in list_buckets()
    credentials.write_text(CREDENTIALS.format(key="test", secret="wrong"), encoding="utf-8")
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        list_buckets()
