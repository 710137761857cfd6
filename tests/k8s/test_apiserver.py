"""Against a real kube-apiserver + controller-manager (v1.20) and etcd on 127.0.0.1.

There is no kubelet: `Kubelet` below finishes pods the way a kubelet reports them (pod phase,
exit code, termination message), and the real job controller turns that into Job conditions.
For marker-check pods it does what the container would do, running the check command's logic on
a local folder standing in for the PVC mounted at /storage.
Fields newer than 1.20 (podFailurePolicy, ...) are dropped by this server; the schema tests cover them.
The engines' CRDs (Argo's Workflow, JobSet; copies in tests/k8s/crds/) are installed for the tests
of the engines' section only, and removed after it.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tools.testenv.kube_server import KubeServer  # noqa: E402
from trainer import exit_codes  # noqa: E402
from trainer.exit_codes import ConfigError  # noqa: E402
from trainer.pipeline import config as C  # noqa: E402
from trainer.pipeline import (  # noqa: E402
    launch,
    markers,
    render,
    values_io,  # noqa: E402
)
from trainer.pipeline import submit_cli as submit  # noqa: E402
from trainer.pipeline.cluster import ENGINES, RUN_KINDS, STORAGE_KIND, WORKFLOW_KIND, Cluster  # noqa: E402
from trainer.pipeline.constants import STORAGE_MOUNT  # noqa: E402
from trainer.pipeline.orchestrator import MISSING, PRESENT, Chain, ChainPlan  # noqa: E402

from . import crds  # noqa: E402
from .helpers import ARGO_CASES, JOBSET_CASES, helm_path, minimum_kube_version, workflow  # noqa: E402

pytestmark = pytest.mark.slow


def wait_for(
    predicate: Callable[[], Any], what: str, timeout_s: float = 30.0, step: Callable[[], Any] = lambda: None
) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        step()
        if result := predicate():
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Kubelet:
    def __init__(self, api: Any, namespace: str, storage: Path) -> None:
        from kubernetes import client

        self.core, self.namespace, self.storage = client.CoreV1Api(api), namespace, storage

    def local(self, uri: str) -> str:
        return uri.replace(STORAGE_MOUNT, str(self.storage), 1)

    def pod(self, job: str) -> Any:
        def pending() -> Any:
            pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"job-name={job}").items
            return next((p for p in pods if p.status.phase in (None, "Pending")), None)

        return wait_for(pending, f"a pod of {job}")

    def finish(self, job: str, exit_code: int = 0, message: str = "") -> None:
        pod = self.pod(job)
        container = pod.spec.containers[0]
        terminated = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error", "message": message}
        self.core.patch_namespaced_pod_status(
            pod.metadata.name,
            self.namespace,
            {
                "status": {
                    "phase": "Succeeded" if exit_code == 0 else "Failed",
                    "containerStatuses": [
                        {
                            "name": container.name,
                            "image": container.image,
                            "imageID": "",
                            "ready": False,
                            "restartCount": 0,
                            "state": {"terminated": terminated},
                        }
                    ],
                }
            },
        )

    def run_marker_check(self, job: str) -> None:
        """What `orchestrator check-marker URI...` reports, computed on the local stand-in storage."""
        uris = self.pod(job).spec.containers[0].args[1:]
        absent = markers.missing([self.local(u) for u in uris])
        self.finish(
            job, exit_codes.MARKERS_MISSING if absent else 0, f"{MISSING} {' '.join(absent)}" if absent else PRESENT
        )

    def run_step(self, job: str, step_markers: list[str], exit_code: int = 0) -> None:
        """A step that succeeds writes its completion markers, as the trainer does."""
        if exit_code == 0:
            for uri in step_markers:
                Path(self.local(uri)).parent.mkdir(parents=True, exist_ok=True)
                Path(self.local(uri)).write_text("{}", encoding="utf-8")
        self.finish(job, exit_code)


def chain_for(api: Any, namespace: str, objects: list[dict], lines: list[str]) -> Chain:
    from kubernetes import client

    plan = ChainPlan.from_data(render.plan_configmap(objects)["data"])
    chain = Chain(client.BatchV1Api(api), client.CoreV1Api(api), namespace, plan, report=lines.append)
    chain.load_status()
    return chain


def job_names(api: Any, namespace: str) -> set[str]:
    from kubernetes import client

    return {j.metadata.name for j in client.BatchV1Api(api).list_namespaced_job(namespace).items}


def small_run(name: str, **values: Any) -> C.PipelineConfig:
    return values_io.from_values(
        {
            "runName": name,
            "ranks": [16],
            "phases": [1, 2],
            "evaluate": False,
            "gpusPerNode": 0,
            "tensorboard": {"enabled": False},
            "storage": {"pvc": {"claimName": "shared"}},
            **values,
        }
    )


# ----------------------------------------------------------------------------- submit


def test_submit_creates_the_objects_and_a_second_submit_is_a_no_op(
    kube: KubeServer, api: Any, namespace: str, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--name", "sub", "--rank", "16", "--kubeconfig", str(kube.kubeconfig), "-n", namespace]
    assert submit.main(argv) == exit_codes.OK
    expected = {
        (o["kind"], o["metadata"]["name"])
        for o in render.render_jinja(values_io.from_values({"runName": "sub", "ranks": [16]}), namespace)
    }
    cluster = Cluster(api, namespace, report=lambda _: None)
    api_versions = {kind: version for version, kind in (*RUN_KINDS, STORAGE_KIND)}
    for kind, name in expected:
        assert cluster.get(api_versions[kind], kind, name) is not None, (kind, name)
    capsys.readouterr()
    assert submit.main(argv) == exit_codes.OK
    assert "nothing to do" in capsys.readouterr().out
    assert submit.main([*argv, "--gpus", "2"]) == exit_codes.CONFIG_ERROR
    assert "different spec" in capsys.readouterr().err
    assert submit.main([*argv, "--gpus", "2", "--force"]) == exit_codes.OK
    assert "replaced" in capsys.readouterr().out
    plan_cm = cluster.get("v1", "ConfigMap", "sub-plan")
    assert '"nvidia.com/gpu": "2"' in plan_cm.data["sub-r16-p1.json"]


def test_server_side_dry_run_accepts_valid_and_catches_an_invalid_object(api: Any, namespace: str) -> None:
    cluster = Cluster(api, namespace, report=lambda _: None)
    objects = render.render_jinja(small_run("dry"), namespace)
    assert cluster.submit(objects, dry_run=True) == "dry-run"
    assert job_names(api, namespace) == set()  # nothing was created
    broken = render.render_jinja(small_run("dry"), namespace)
    plan_cm = render.plan_configmap(broken)
    job = render.job_manifests(broken)["dry-r16-p2"]
    job["spec"]["template"]["spec"]["restartPolicy"] = "Always"  # a Job's pods may not restart forever
    plan_cm["data"]["dry-r16-p2.json"] = json.dumps(job)
    with pytest.raises(ConfigError, match=r"dry-run of Job dry-r16-p2: 422.*restartPolicy"):
        cluster.submit(broken, dry_run=True)
    assert Cluster(api, namespace).get("v1", "ConfigMap", "dry-plan") is None


# ----------------------------------------------------------------------------- the chain


def test_chain_starts_each_phase_only_after_the_previous_completed_with_its_markers(
    api: Any, namespace: str, tmp_path: Path
) -> None:
    cfg = small_run("ch", orchestrator={"chain": "client"})
    objects = render.render_jinja(cfg, namespace)
    Cluster(api, namespace, report=lambda _: None).submit(objects)
    lines: list[str] = []
    chain = chain_for(api, namespace, objects, lines)
    kubelet = Kubelet(api, namespace, tmp_path)
    steps = {s["name"]: s for s in chain.plan.steps}

    assert chain.tick() == "Running"
    assert job_names(api, namespace) == {"ch-r16-p1-check"}
    kubelet.run_marker_check("ch-r16-p1-check")  # nothing on the storage yet
    wait_for(lambda: "ch-r16-p1" in job_names(api, namespace), "phase 1's Job", step=chain.tick)
    assert "ch-r16-p1-check" not in job_names(api, namespace)  # read, then removed
    for _ in range(5):  # while phase 1 runs, phase 2 is not started
        assert chain.tick() == "Running"
    assert not any(n.startswith("ch-r16-p2") for n in job_names(api, namespace))

    kubelet.run_step("ch-r16-p1", steps["ch-r16-p1"]["markers"])
    wait_for(lambda: "ch-r16-p1-verify" in job_names(api, namespace), "the marker check after phase 1", step=chain.tick)
    assert not any(n.startswith("ch-r16-p2") for n in job_names(api, namespace))  # Complete is not enough
    kubelet.run_marker_check("ch-r16-p1-verify")
    wait_for(lambda: "ch-r16-p2-check" in job_names(api, namespace), "phase 2's turn", step=chain.tick)
    kubelet.run_marker_check("ch-r16-p2-check")
    wait_for(lambda: "ch-r16-p2" in job_names(api, namespace), "phase 2's Job", step=chain.tick)
    kubelet.run_step("ch-r16-p2", steps["ch-r16-p2"]["markers"])
    wait_for(lambda: "ch-r16-p2-verify" in job_names(api, namespace), "the check after phase 2", step=chain.tick)
    kubelet.run_marker_check("ch-r16-p2-verify")
    assert wait_for(lambda: chain.tick() == "Succeeded", "the chain to succeed")
    status = Cluster(api, namespace).status("ch")
    assert status["state"] == "Succeeded" and status["steps"] == {"ch-r16-p1": "done", "ch-r16-p2": "done"}


def test_a_failed_phase_stops_the_chain_and_a_forced_resubmit_resumes_it(
    api: Any, namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture, kube: KubeServer
) -> None:
    cfg = small_run("fl", orchestrator={"chain": "client"}, job={"backoffLimit": 0})
    objects = render.render_jinja(cfg, namespace)
    cluster = Cluster(api, namespace, report=lambda _: None)
    cluster.submit(objects)
    lines: list[str] = []
    chain, kubelet = chain_for(api, namespace, objects, lines), Kubelet(api, namespace, tmp_path)
    steps = {s["name"]: s for s in chain.plan.steps}
    chain.tick()
    kubelet.run_marker_check("fl-r16-p1-check")
    wait_for(lambda: "fl-r16-p1" in job_names(api, namespace), "phase 1's Job", step=chain.tick)
    kubelet.run_step("fl-r16-p1", steps["fl-r16-p1"]["markers"])
    wait_for(lambda: "fl-r16-p1-verify" in job_names(api, namespace), "verify 1", step=chain.tick)
    kubelet.run_marker_check("fl-r16-p1-verify")
    wait_for(lambda: "fl-r16-p2-check" in job_names(api, namespace), "check 2", step=chain.tick)
    kubelet.run_marker_check("fl-r16-p2-check")
    wait_for(lambda: "fl-r16-p2" in job_names(api, namespace), "phase 2's Job", step=chain.tick)

    kubelet.run_step("fl-r16-p2", [], exit_code=exit_codes.CONFIG_ERROR)
    assert wait_for(lambda: chain.tick() == "Failed", "the chain to stop")
    status = cluster.status("fl")
    assert status["state"] == "Failed" and status["step"] == "fl-r16-p2"
    assert "exit code 78 (configuration error)" in status["message"] and "kubectl logs" in status["message"]
    assert chain.tick() == "Failed"  # and it stays stopped
    followed: list[str] = []
    assert Cluster(api, namespace, report=followed.append).follow("fl", sleep=pytest.fail) == exit_codes.FAILED
    assert "exit code 78" in followed[-1]

    assert submit.main(["status", "fl", "-n", namespace, "--kubeconfig", str(kube.kubeconfig)]) == exit_codes.OK
    out = capsys.readouterr().out
    assert "Failed" in out and "fl-r16-p1" in out and "done" in out

    cluster.submit(objects, force=True)  # same spec, forced: retry; phase 1 is found done on the storage
    assert job_names(api, namespace) == set()
    chain = chain_for(api, namespace, objects, lines)
    chain.tick()
    kubelet.run_marker_check("fl-r16-p1-check")
    wait_for(lambda: "fl-r16-p2-check" in job_names(api, namespace), "phase 2's turn", step=chain.tick)
    assert "fl-r16-p1" not in job_names(api, namespace)  # skipped, not re-run
    assert chain.states["fl-r16-p1"] == "done"


def service_account_api(kube: KubeServer, api: Any, namespace: str, account: str) -> Any:
    """An ApiClient that calls as the ServiceAccount, with the token its pod would mount."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    secret_name = wait_for(
        lambda: (core.read_namespaced_service_account(account, namespace).secrets or [None])[0],
        "the ServiceAccount's token",
    ).name
    token = base64.b64decode(core.read_namespaced_secret(secret_name, namespace).data["token"]).decode()
    conf = client.Configuration(host=kube.url, api_key={"authorization": f"Bearer {token}"})
    conf.verify_ssl = False
    return client.ApiClient(conf)


def test_orchestrator_service_account_can_run_the_chain_and_nothing_more(
    kube: KubeServer, api: Any, namespace: str
) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    objects = render.render_jinja(small_run("rb"), namespace)
    Cluster(api, namespace, report=lambda _: None).submit(objects)
    sa_api = service_account_api(kube, api, namespace, "rb-orchestrator")

    lines: list[str] = []
    chain = chain_for(sa_api, namespace, objects, lines)
    assert chain.tick() == "Running"  # created a Job, patched its status ConfigMap
    assert "rb-r16-p1-check" in job_names(api, namespace)
    sa_core = client.CoreV1Api(sa_api)
    for forbidden in (
        lambda: sa_core.list_namespaced_secret(namespace),
        lambda: sa_core.create_namespaced_config_map(namespace, {"metadata": {"name": "x"}}),
        lambda: sa_core.patch_namespaced_config_map("rb-plan", namespace, {"data": {"plan.json": "{}"}}),
        lambda: sa_core.delete_collection_namespaced_pod(namespace),
        lambda: client.BatchV1Api(sa_api).list_namespaced_job("default"),
    ):
        with pytest.raises(ApiException) as info:
            forbidden()
        assert info.value.status == 403


# ----------------------------------------------------------------------------- cancel, helm install


def test_cancel_deletes_the_run_and_keeps_its_storage_unless_asked(api: Any, namespace: str, kube: KubeServer) -> None:
    objects = render.render_jinja(values_io.from_values({"runName": "cx", "ranks": [16]}), namespace)
    cluster = Cluster(api, namespace, report=lambda _: None)
    cluster.submit(objects)
    assert submit.main(["cancel", "cx", "-n", namespace, "--kubeconfig", str(kube.kubeconfig)]) == exit_codes.OK
    assert all(not cluster.run_objects("cx", *kind) for kind in RUN_KINDS)
    assert cluster.get("v1", "PersistentVolumeClaim", "cx-storage") is not None
    cluster.cancel("cx", delete_storage=True)
    wait_for(lambda: cluster.get("v1", "PersistentVolumeClaim", "cx-storage") is None, "the claim to go")


CI_VALUES = render.CHART_DIR / "ci" / "ci-values.yaml"


def for_this_server(version: str) -> list[str]:
    """helm install flags for this v1.20 server, which does not know the launcher Job's
    podFailurePolicy: no check against its OpenAPI schema, and for Helm 4 no server-side apply
    (whose typed patch refuses the field); the server drops the field, as it does for submit.py."""
    return ["--disable-openapi-validation", *(["--server-side=false"] if version == "v4" else [])]


@pytest.fixture(scope="module")
def chart_for_this_server(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart with its kubeVersion lowered to this v1.20 server's, which Helm would otherwise
    refuse (test_helm_refuses_a_server_older_than_the_charts_minimum): what the install tests check
    (objects created, hooks, notes, kept claim) does not depend on the newer fields, which this
    server drops anyway; the schema tests check those (test_manifest_schemas.py)."""
    chart = tmp_path_factory.mktemp("chart") / render.CHART_DIR.name
    shutil.copytree(render.CHART_DIR, chart)
    meta = chart / "Chart.yaml"
    text, count = re.subn(r"(?m)^kubeVersion: .*$", 'kubeVersion: ">=1.20.0-0"', meta.read_text(encoding="utf-8"))
    assert count == 1
    meta.write_text(text, encoding="utf-8")
    return chart


def test_helm_refuses_a_server_older_than_the_charts_minimum(kube: KubeServer, namespace: str, tmp_path: Path) -> None:
    """kubeVersion is enforced: on this v1.20 server, podFailurePolicy would be dropped silently."""
    proc = subprocess.run(
        [str(helm_path("v3")), "install", "old", str(render.CHART_DIR), "-n", namespace, "-f", str(CI_VALUES)],
        capture_output=True,
        text=True,
        env=helm_env(kube, tmp_path),
    )
    assert proc.returncode != 0
    assert f"chart requires kubeVersion: >={minimum_kube_version()}.0-0" in proc.stderr, proc.stderr


def helm_env(kube: KubeServer, home: Path) -> dict[str, str]:
    return {
        "KUBECONFIG": str(kube.kubeconfig),
        "HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "HELM_CACHE_HOME": str(home / "helm-cache"),
        "HELM_CONFIG_HOME": str(home / "helm-config"),
        "HELM_DATA_HOME": str(home / "helm-data"),
    }


@pytest.mark.parametrize("version", ["v3", "v4"])
def test_helm_install_succeeds(
    version: str, kube: KubeServer, api: Any, namespace: str, chart_for_this_server: Path
) -> None:
    helm = helm_path(version)
    release = f"ci{version}"
    env = helm_env(kube, kube.workdir)
    proc = subprocess.run(
        [str(helm), "install", release, str(chart_for_this_server), "-n", namespace, "-f", str(CI_VALUES)]
        + for_this_server(version),
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"kubectl logs -n {namespace} job/{release}-launcher" in proc.stdout  # NOTES
    assert f"kubectl logs -n {namespace} -f job/{release}-orchestrator" in proc.stdout
    assert f"kubectl port-forward -n {namespace} svc/{release}-tensorboard 6006:6006" in proc.stdout
    cluster = Cluster(api, namespace)
    assert cluster.get("batch/v1", "Job", f"{release}-launcher") is not None
    run_the_launcher(kube, api, namespace, release)
    plan = ChainPlan.from_data(dict(cluster.get("v1", "ConfigMap", f"{release}-plan").data))
    assert [s["kind"] for s in plan.steps] == ["synth", "prepare", "base", "train", "train", "train", "eval"]
    assert cluster.get("batch/v1", "Job", f"{release}-orchestrator") is not None
    proc = subprocess.run([str(helm), "uninstall", release, "-n", namespace], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    # The run's objects are owned by the values ConfigMap: the garbage collector removes them; not the claim.
    wait_for(lambda: cluster.get("batch/v1", "Job", f"{release}-orchestrator") is None, "the run to go")
    assert cluster.get("v1", "ConfigMap", f"{release}-plan") is None
    assert cluster.get("v1", "PersistentVolumeClaim", f"{release}-storage") is not None


def run_the_launcher(kube: KubeServer, api: Any, namespace: str, release: str) -> None:
    """What the chart's launcher pod does, with its ServiceAccount's token: its Role is enough to
    create the run (a Role granting more than it holds would be refused). Twice, as a restarted pod
    would: the second keeps what the first created."""
    launcher_api = service_account_api(kube, api, namespace, f"{release}-launcher")
    for _ in range(2):
        assert launch.launch(launcher_api, namespace, f"{release}-values") == exit_codes.OK


def test_the_launcher_refuses_bad_values_and_a_run_of_another_spec(api: Any, namespace: str) -> None:
    """Values the Python checks refuse: one error line, exit 78, nothing created. A run of the same
    name submitted with another spec is left alone."""
    from kubernetes import client

    def values_configmap(name: str, values: dict[str, Any]) -> None:
        body = {"metadata": {"name": name}, "data": {launch.VALUES_KEY: json.dumps(values)}}
        client.CoreV1Api(api).create_namespaced_config_map(namespace, body)

    cluster = Cluster(api, namespace, report=lambda _: None)
    values_configmap("bad-values", {"runName": "bad", "nodes": 2})  # multi-node on a ReadWriteOnce claim
    assert exit_codes.run_main(lambda: launch.launch(api, namespace, "bad-values")) == exit_codes.CONFIG_ERROR
    assert cluster.run_objects("bad", "v1", "ConfigMap") == []
    cluster.submit(render.render_jinja(small_run("other"), namespace))
    values_configmap("other-values", values_io.to_values(small_run("other", gpusPerNode=2)))
    with pytest.raises(ConfigError, match="run other exists with a different spec"):
        launch.launch(api, namespace, "other-values")


# ----------------------------------------------------------------------------- chains side by side


def test_the_ranks_chains_run_side_by_side_and_a_failure_stops_only_its_own(
    api: Any, namespace: str, tmp_path: Path
) -> None:
    cfg = values_io.from_values(
        {
            "runName": "dag",
            "ranks": [16, 32],
            "phases": [1, 2],
            "gpusPerNode": 0,
            "tensorboard": {"enabled": False},
            "storage": {"pvc": {"claimName": "shared"}},
            "orchestrator": {"chain": "client"},
            "job": {"backoffLimit": 0},
        }
    )
    objects = render.render_jinja(cfg, namespace)
    Cluster(api, namespace, report=lambda _: None).submit(objects)
    chain, kubelet = chain_for(api, namespace, objects, []), Kubelet(api, namespace, tmp_path)
    steps = {s["name"]: s for s in chain.plan.steps}
    jobs = lambda: job_names(api, namespace)  # noqa: E731

    assert chain.tick() == "Running"
    assert {"dag-r16-p1-check", "dag-r32-p1-check"} <= jobs()  # both chains look at once
    for rank in (16, 32):
        kubelet.run_marker_check(f"dag-r{rank}-p1-check")
    wait_for(lambda: {"dag-r16-p1", "dag-r32-p1"} <= jobs(), "both phase-1 Jobs", step=chain.tick)
    assert not any(n.startswith(("dag-r16-p2", "dag-r32-p2", "dag-eval")) for n in jobs())  # neither has finished

    kubelet.run_step("dag-r16-p1", [], exit_code=exit_codes.FAILED)  # r16 fails ...
    wait_for(lambda: chain.states.get("dag-r16-p1") == "failed", "r16 phase 1 to fail", step=chain.tick)
    assert chain.states["dag-r16-p2"] == "blocked" and chain.states["dag-eval"] == "blocked"
    assert chain.tick() == "Running"  # ... and r32 carries on
    kubelet.run_step("dag-r32-p1", steps["dag-r32-p1"]["markers"])
    wait_for(lambda: "dag-r32-p1-verify" in jobs(), "r32 phase 1's verification", step=chain.tick)
    kubelet.run_marker_check("dag-r32-p1-verify")
    wait_for(lambda: "dag-r32-p2-check" in jobs(), "r32 phase 2's turn", step=chain.tick)
    kubelet.run_marker_check("dag-r32-p2-check")
    wait_for(lambda: "dag-r32-p2" in jobs(), "r32 phase 2's Job", step=chain.tick)
    kubelet.run_step("dag-r32-p2", steps["dag-r32-p2"]["markers"])
    wait_for(lambda: "dag-r32-p2-verify" in jobs(), "r32 phase 2's verification", step=chain.tick)
    kubelet.run_marker_check("dag-r32-p2-verify")
    assert wait_for(lambda: chain.tick() == "Failed", "the run to end")
    assert not any(n.startswith(("dag-r16-p2", "dag-eval")) for n in jobs())
    status = Cluster(api, namespace).status("dag")
    assert status["steps"] == {
        "dag-r16-p1": "failed",
        "dag-r16-p2": "blocked",
        "dag-r32-p1": "done",
        "dag-r32-p2": "done",
        "dag-eval": "blocked",
    }
    assert status["step"] == "dag-r16-p1" and "Job dag-r16-p1 failed" in status["message"]


def test_evaluation_starts_only_after_both_chains_and_max_parallel_bounds_the_steps(
    api: Any, namespace: str, tmp_path: Path
) -> None:
    cfg = values_io.from_values(
        {
            "runName": "ev",
            "ranks": [16, 32],
            "phases": [1],
            "gpusPerNode": 0,
            "tensorboard": {"enabled": False},
            "storage": {"pvc": {"claimName": "shared"}},
            "orchestrator": {"chain": "client", "maxParallel": 1},
        }
    )
    objects = render.render_jinja(cfg, namespace)
    Cluster(api, namespace, report=lambda _: None).submit(objects)
    chain, kubelet = chain_for(api, namespace, objects, []), Kubelet(api, namespace, tmp_path)
    steps = {s["name"]: s for s in chain.plan.steps}
    jobs = lambda: job_names(api, namespace)  # noqa: E731

    chain.tick()
    assert jobs() == {"ev-r16-p1-check"}  # one step at a time
    for step in ("ev-r16-p1", "ev-r32-p1"):
        kubelet.run_marker_check(f"{step}-check")
        wait_for(lambda: step in jobs(), f"{step}'s Job", step=chain.tick)  # noqa: B023 (waited for within the iteration)
        assert not any(n.startswith("ev-eval") for n in jobs())  # a chain is still unfinished
        if step == "ev-r16-p1":
            assert "ev-r32-p1-check" not in jobs()  # maxParallel 1: r32 waits for r16
        kubelet.run_step(step, steps[step]["markers"])
        wait_for(lambda: f"{step}-verify" in jobs(), f"{step}'s verification", step=chain.tick)  # noqa: B023 (waited for within the iteration)
        kubelet.run_marker_check(f"{step}-verify")
        wait_for(lambda: chain.states.get(step) == "done", f"{step} done", step=chain.tick)  # noqa: B023 (waited for within the iteration)
    wait_for(lambda: "ev-eval-check" in jobs(), "the evaluation's turn", step=chain.tick)
    kubelet.run_marker_check("ev-eval-check")
    wait_for(lambda: "ev-eval" in jobs(), "the evaluation Job", step=chain.tick)


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--chain", "argo"], "Workflow (argoproj.io/v1alpha1, Argo Workflows, for --chain argo)"),
        (
            ["--nodes", "2", "--multinode", "jobset", "--access-mode", "ReadWriteMany"],
            "JobSet (jobset.x-k8s.io/v1alpha2, JobSet",
        ),
    ],
)
def test_an_engine_the_cluster_lacks_is_one_clear_error(
    flags: list[str], needle: str, kube: KubeServer, namespace: str, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--name", "eng", "--rank", "16", *flags, "--kubeconfig", str(kube.kubeconfig), "-n", namespace]
    assert submit.main(argv) == exit_codes.CONFIG_ERROR
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert submit.main([*argv, "--dry-run"]) == exit_codes.CONFIG_ERROR


# ----------------------------------------------------------------------------- the engines' CRDs installed


@pytest.fixture(scope="class")
def engine_crds(kube: KubeServer) -> Any:
    """Argo's Workflow and JobSet served by the test server for one class of tests, removed after it, so
    the tests of a cluster without the engines see none whatever the order."""
    from kubernetes import client, config
    from kubernetes.dynamic import DynamicClient

    api = config.new_client_from_config(config_file=str(kube.kubeconfig))
    extensions, apis = client.ApiextensionsV1Api(api), client.ApisApi(api)
    installed = [crds.for_old_servers(crds.load(relative)) for relative in (crds.ARGO_WORKFLOW, crds.JOBSET)]
    for crd in installed:
        extensions.create_custom_resource_definition(crd, _preload_content=False)

    def established(name: str) -> bool:
        crd = json.loads(extensions.read_custom_resource_definition(name, _preload_content=False).data)
        return any(
            c["type"] == "Established" and c["status"] == "True"
            for c in (crd.get("status") or {}).get("conditions") or []
        )

    def served_groups() -> set[str]:
        return {group.name for group in apis.get_api_versions().groups}

    groups = {crd["spec"]["group"] for crd in installed}
    for name in (crd["metadata"]["name"] for crd in installed):
        wait_for(lambda name=name: established(name), f"CRD {name} to be established")
    yield
    for crd in installed:
        extensions.delete_custom_resource_definition(crd["metadata"]["name"], _preload_content=False)
    wait_for(lambda: not groups & served_groups(), "the engines' API groups to go", timeout_s=60)
    DynamicClient(api).resources.invalidate_cache()  # the discovery cache on disk, which later clients read


def dry_run(api: Any, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the server would store it (created with dryRun=All)."""
    from kubernetes.dynamic import DynamicClient

    resource = DynamicClient(api).resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    return resource.create(body=obj, namespace=namespace, dry_run="All").to_dict()


def lost(sent: Any, stored: Any, path: str = "") -> list[str]:
    """What of `sent` the server did not keep as sent: a v1.20 server prunes fields its CRD does not
    know instead of rejecting them (fields it adds, defaults and metadata, are not losses)."""
    if isinstance(sent, dict) and isinstance(stored, dict):
        return [
            loss
            for key, value in sent.items()
            for loss in (lost(value, stored[key], f"{path}.{key}") if key in stored else [f"{path}.{key}: pruned"])
        ]
    if isinstance(sent, list) and isinstance(stored, list) and len(sent) == len(stored):
        return [loss for i, (a, b) in enumerate(zip(sent, stored)) for loss in lost(a, b, f"{path}[{i}]")]
    return [] if sent == stored else [f"{path}: sent {sent!r}, stored {stored!r}"]


ENGINE_CASES = {
    **{f"argo-{name}": values for name, values in ARGO_CASES.items()},
    **{f"jobset-{name}": values for name, values in JOBSET_CASES.items()},
}


@pytest.mark.usefixtures("engine_crds")
class TestWithTheEnginesInstalled:
    @pytest.mark.parametrize("case", sorted(ENGINE_CASES))
    def test_the_server_keeps_every_field_of_each_workflow_and_jobset(
        self, case: str, renderer: Any, api: Any, namespace: str
    ) -> None:
        values = ENGINE_CASES[case]
        objects = renderer(values, namespace)
        engine_objects = [o for o in [*objects, *render.job_manifests(objects).values()] if o["kind"] in ENGINES]
        assert {o["kind"] for o in engine_objects} == {
            kind
            for kind, used in [
                ("Workflow", values.get("orchestrator", {}).get("chain") == "argo"),
                ("JobSet", values.get("multinode") == "jobset"),
            ]
            if used
        }
        for obj in engine_objects:
            assert lost(obj, dry_run(api, namespace, obj)) == [], f"{obj['kind']} {obj['metadata']['name']}"
        assert (
            Cluster(api, namespace, report=lambda _: None).submit(objects, dry_run=True) == "dry-run"
        )  # the whole run

    def test_a_field_the_crd_does_not_know_is_pruned_and_seen(self, api: Any, namespace: str) -> None:
        wf = workflow(render.render_jinja(values_io.from_values(ARGO_CASES["embedded"]), namespace))
        wf["spec"]["templates"][0]["dag"]["tasks"][0]["dependsOn"] = ["x"]  # Argo's field is `depends`
        assert lost(wf, dry_run(api, namespace, wf)) == [".spec.templates[0].dag.tasks[0].dependsOn: pruned"]

    @pytest.mark.parametrize("version", ["v3", "v4"])
    def test_helm_install_with_the_argo_chain_succeeds(
        self, version: str, kube: KubeServer, api: Any, namespace: str, tmp_path: Path, chart_for_this_server: Path
    ) -> None:
        helm, release, env = helm_path(version), f"wf{version}", helm_env(kube, tmp_path)
        proc = subprocess.run(
            [
                str(helm),
                "install",
                release,
                str(chart_for_this_server),
                "-n",
                namespace,
                "-f",
                str(CI_VALUES),
                "--set",
                "orchestrator.chain=argo",
                *for_this_server(version),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr
        assert f"Then the Argo Workflow {release} runs the steps" in proc.stdout  # NOTES
        cluster = Cluster(api, namespace)
        run_the_launcher(kube, api, namespace, release)
        assert cluster.get(*WORKFLOW_KIND, release) is not None
        assert cluster.get("batch/v1", "Job", f"{release}-orchestrator") is None
        proc = subprocess.run(
            [str(helm), "uninstall", release, "-n", namespace], capture_output=True, text=True, env=env
        )
        assert proc.returncode == 0, proc.stderr
        wait_for(lambda: cluster.get(*WORKFLOW_KIND, release) is None, "the Workflow to go")
