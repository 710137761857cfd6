"""A run on a cluster through the `kubernetes` client: submit (idempotent), status, logs, cancel,
follow, and the client-side chain. `tools/submit.py` is the command line over these.

Idempotency: the plan ConfigMap carries a hash of the run's objects (renderer-neutral, see
render.normalise). Submitting the same spec again changes nothing; a different spec under the same
run name is refused unless forced, which cancels the old objects (storage is kept, so finished
steps are found done by their markers and skipped) and creates the new ones.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import urllib3

from trainer import exit_codes
from trainer.exit_codes import ConfigError
from trainer.pipeline import dag, render
from trainer.pipeline.orchestrator import JOBSET_POD_LABEL, Chain, ChainPlan
from trainer.pipeline.plan import CHECK_SUFFIX, VERIFY_SUFFIX

# Deletion order for cancel: what creates Jobs first (the Argo Workflow, the orchestrator Job), then
# the steps, then the rest. Kinds the cluster does not serve (no Argo installed) are passed over.
WORKFLOW_KIND = ("argoproj.io/v1alpha1", "Workflow")
RUN_KINDS = (
    WORKFLOW_KIND,
    ("jobset.x-k8s.io/v1alpha2", "JobSet"),
    ("batch/v1", "Job"),
    ("apps/v1", "Deployment"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("v1", "ServiceAccount"),
)
STORAGE_KIND = ("v1", "PersistentVolumeClaim")
CONNECT_TIMEOUT_S = 10
# What provides the kinds a run may need beyond Kubernetes itself, and the setting that asks for it.
ENGINES = {
    "Workflow": "Argo Workflows, for --chain argo",
    "JobSet": "JobSet, for --multinode jobset",
}
Report = Callable[[str], None]


def connect(kubeconfig: Optional[str] = None, context: Optional[str] = None) -> tuple[Any, str]:
    """An ApiClient for the kubeconfig (or the in-cluster account) and its default namespace."""
    from kubernetes import client, config

    try:
        config.load_kube_config(config_file=kubeconfig, context=context)
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        if context:
            active = next(c for c in contexts if c["name"] == context)
        namespace = active.get("context", {}).get("namespace", "default")
    except config.ConfigException as exc:
        try:
            config.load_incluster_config()
        except config.ConfigException:
            raise ConfigError(f"no cluster: {exc} (use --render-only DIR, or --local)") from None
        namespace = "default"
    api = client.ApiClient()
    try:  # a wrong server address or a cluster that is down: one line now, not a traceback later
        client.VersionApi(api).get_code(_request_timeout=CONNECT_TIMEOUT_S)
    except urllib3.exceptions.HTTPError as exc:
        raise ConfigError(
            f"cluster API {api.configuration.host} does not answer ({type(exc).__name__}); "
            "check --kubeconfig / --context"
        ) from None
    except client.ApiException as exc:
        if exc.status == 401:  # 403 is left to the calls that need the permission
            raise ConfigError(
                f"cluster API {api.configuration.host}: 401 Unauthorized; check the kubeconfig's credentials"
            ) from None
    return api, namespace


def spec_hash(objects: list[dict[str, Any]]) -> str:
    canonical = json.dumps(sorted(render.normalise(objects).items(), key=lambda kv: kv[0]), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _api_error(exc: Any, what: str) -> ConfigError:
    """The API server's message (e.g. a 422's field errors) as a readable error."""
    try:
        message = json.loads(exc.body).get("message", exc.body)
    except (TypeError, ValueError):
        message = exc.body or exc.reason
    return ConfigError(f"{what}: {exc.status} {exc.reason}: {message}")


@dataclass
class Cluster:
    api: Any  # kubernetes.client.ApiClient
    namespace: str
    report: Report = print

    def _dynamic(self) -> Any:
        from kubernetes.dynamic import DynamicClient

        if not hasattr(self, "_dyn"):
            self._dyn = DynamicClient(self.api)
        return self._dyn

    def _resource(self, api_version: str, kind: str) -> Any:
        return self._dynamic().resources.get(api_version=api_version, kind=kind)

    def get(self, api_version: str, kind: str, name: str) -> Optional[Any]:
        from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

        try:
            return self._resource(api_version, kind).get(name=name, namespace=self.namespace)
        except (NotFoundError, ResourceNotFoundError):  # no such object, or the cluster lacks the kind
            return None

    def _create(self, obj: dict[str, Any], dry_run: bool, exist_ok: bool = False) -> bool:
        """Whether it was created: False for one already there that may be kept (the storage claim,
        or any object with exist_ok)."""
        from kubernetes.dynamic.exceptions import ConflictError, DynamicApiError

        what = f"{obj['kind']} {obj['metadata']['name']}"
        try:
            self._resource(obj["apiVersion"], obj["kind"]).create(
                body=obj, namespace=self.namespace, dry_run="All" if dry_run else None
            )
        except ConflictError:
            if (obj["apiVersion"], obj["kind"]) == STORAGE_KIND:
                self.report(f"{what}: exists, kept (it holds the run's data)")
            elif exist_ok:
                self.report(f"{what}: exists, kept")
            else:
                raise ConfigError(f"{what} already exists (cancel the run first, or --force)") from None
            return False
        except DynamicApiError as exc:
            raise _api_error(exc, f"{'dry-run of ' if dry_run else ''}{what}") from None
        return True

    # -- submit
    def _require_kinds(self, objects: list[dict[str, Any]]) -> None:
        """Every kind the run creates is served here (Argo's Workflow, JobSet), or one clear error."""
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        missing = []
        for api_version, kind in sorted({(o["apiVersion"], o["kind"]) for o in objects}):
            try:
                self._resource(api_version, kind)
            except ResourceNotFoundError:
                missing.append(f"{kind} ({api_version}{', ' + ENGINES[kind] if kind in ENGINES else ''})")
        if missing:
            raise ConfigError(f"the cluster does not serve {', '.join(missing)}: install it, or choose another engine")

    def _stamp(self, objects: list[dict[str, Any]]) -> tuple[str, str]:
        """(run name, hash of this spec), the plan ConfigMap stamped with the hash."""
        plan_cm = render.plan_configmap(objects)
        digest = spec_hash(objects)
        plan_cm["metadata"].setdefault("annotations", {})[render.SPEC_HASH_ANNOTATION] = digest
        return plan_cm["metadata"]["labels"][render.RUN_LABEL], digest

    def _submitted_hash(self, run: str) -> Optional[str]:
        """The spec hash of the run already in the cluster ("" if unstamped), None if there is none."""
        existing = self.get("v1", "ConfigMap", f"{run}-plan")
        return None if existing is None else (existing.metadata.annotations or {}).get(render.SPEC_HASH_ANNOTATION, "")

    def submit(self, objects: list[dict[str, Any]], force: bool = False, dry_run: bool = False) -> str:
        """Create the run's objects; 'created', 'unchanged', 'replaced' or 'dry-run'."""
        run, digest = self._stamp(objects)
        everything = [*objects, *render.plan_jobs(objects)]
        self._require_kinds(everything)
        if dry_run:
            for obj in everything:
                self._create(obj, dry_run=True)
                self.report(f"{obj['kind']} {obj['metadata']['name']}: accepted by the server (dry run)")
            return "dry-run"
        existing = self._submitted_hash(run)
        outcome = "created"
        if existing is not None:
            if existing == digest and not force:
                self.report(f"run {run}: already submitted with this spec; nothing to do")
                return "unchanged"
            if not force:
                raise ConfigError(
                    f"run {run} exists with a different spec; --force replaces it (storage is kept, finished "
                    "steps are skipped), or choose another --name"
                )
            self.cancel(run, delete_storage=False)
            outcome = "replaced"
        for obj in objects:
            self._create(obj, dry_run=False)
            self.report(f"{obj['kind']} {obj['metadata']['name']}: created")
        return outcome

    def ensure(self, objects: list[dict[str, Any]], owner: dict[str, Any]) -> None:
        """Create whichever of the run's objects is missing, each but the storage claim owned by
        `owner` (deleting the owner deletes them): the chart's launcher Job, which a restarted pod
        reruns to finish what an earlier attempt began. ConfigError when the run exists with
        another spec (another release or submit under the same run name)."""
        run, digest = self._stamp(objects)
        self._require_kinds([*objects, *render.plan_jobs(objects)])
        if self._submitted_hash(run) not in (None, digest):
            raise ConfigError(f"run {run} exists with a different spec: cancel it, or choose another runName")
        for obj in objects:
            if (obj["apiVersion"], obj["kind"]) != STORAGE_KIND:  # the claim outlives the run: checkpoints
                obj["metadata"]["ownerReferences"] = [owner]
            if self._create(obj, dry_run=False, exist_ok=True):
                self.report(f"{obj['kind']} {obj['metadata']['name']}: created")

    # -- cancel
    def run_objects(self, run: str, api_version: str, kind: str) -> list[Any]:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            resource = self._resource(api_version, kind)
        except ResourceNotFoundError:  # a kind this cluster does not serve holds no objects of the run
            return []
        items = resource.get(namespace=self.namespace, label_selector=f"{render.RUN_LABEL}={run}").items
        orchestrator_first = sorted(items, key=lambda o: not o.metadata.name.endswith("-orchestrator"))
        return orchestrator_first

    def cancel(self, run: str, delete_storage: bool = False, timeout_s: float = 120.0) -> int:
        """Delete every object of the run (the PVC only with delete_storage); returns how many."""
        from kubernetes.dynamic.exceptions import NotFoundError

        kinds = [*RUN_KINDS, STORAGE_KIND] if delete_storage else list(RUN_KINDS)
        deleted = 0
        for _ in range(2):  # a second pass catches a Job the orchestrator created meanwhile
            for api_version, kind in kinds:
                for obj in self.run_objects(run, api_version, kind):
                    try:
                        self._resource(api_version, kind).delete(
                            name=obj.metadata.name, namespace=self.namespace, propagation_policy="Background"
                        )
                        deleted += 1
                        self.report(f"{kind} {obj.metadata.name}: deleted")
                    except NotFoundError:
                        pass
        deadline = time.monotonic() + timeout_s
        while any(self.run_objects(run, *kind) for kind in kinds) and time.monotonic() < deadline:
            time.sleep(0.5)
        return deleted

    # -- status
    def status(self, run: str) -> dict[str, Any]:
        cm = self.get("v1", "ConfigMap", f"{run}-status")
        if cm is None:
            raise ConfigError(f"run {run}: not found in namespace {self.namespace}")
        data = dict(cm.data or {})
        jobs = {j.metadata.name: j for j in self.run_objects(run, "batch/v1", "Job")}
        workflow = self.get(*WORKFLOW_KIND, run)
        if workflow is not None:  # chain: argo; the Workflow's nodes say where each step is
            plan = ChainPlan.from_data(dict(self.get("v1", "ConfigMap", f"{run}-plan").data))
            wf = workflow.to_dict()
            st = workflow_status(plan.steps, wf.get("status") or {})
            return {**st, "jobs": {name: _job_summary(job) for name, job in jobs.items()}}
        return {
            "state": data.get("state", "Pending"),
            "message": data.get("message", ""),
            "step": data.get("step", ""),
            "steps": json.loads(data.get("steps", "{}")),
            "failures": json.loads(data.get("failures", "{}")),
            "jobs": {name: _job_summary(job) for name, job in jobs.items()},
        }

    def status_text(self, run: str) -> str:
        st = self.status(run)
        plan = ChainPlan.from_data(dict(self.get("v1", "ConfigMap", f"{run}-plan").data))
        lines = [
            f"run {run} (namespace {self.namespace}): {st['state']}" + (f" - {st['message']}" if st["message"] else "")
        ]
        for step in plan.steps:
            name = step["name"]
            detail = st["failures"].get(name) or st["jobs"].get(name, "")
            lines.append(f"  {name:<48} {st['steps'].get(name, 'pending'):<10} {detail}")
        lines += [
            f"logs:        python tools/submit.py logs {run} -n {self.namespace}"
            + (f"   (kubectl logs -n {self.namespace} -f job/{st['step']})" if st["step"] else ""),
            f"TensorBoard: kubectl port-forward -n {self.namespace} svc/{run}-tensorboard 6006:6006",
        ]
        return "\n".join(lines)

    # -- logs
    def _pods(self, job: str) -> list[Any]:
        from kubernetes import client

        core = client.CoreV1Api(self.api)
        pods = (
            core.list_namespaced_pod(self.namespace, label_selector=f"job-name={job}").items
            or core.list_namespaced_pod(self.namespace, label_selector=f"{JOBSET_POD_LABEL}={job}").items
        )  # a JobSet step
        return sorted(pods, key=lambda p: p.metadata.creation_timestamp)

    def logs(self, job: str, follow: bool = False) -> Iterator[str]:
        """The log lines of the step's newest pod (following it while it runs)."""
        from kubernetes import client

        pods = self._pods(job)
        if not pods:
            raise ConfigError(f"no pod of job {job} yet")
        stream = client.CoreV1Api(self.api).read_namespaced_pod_log(
            pods[-1].metadata.name, self.namespace, follow=follow, _preload_content=False
        )
        for line in stream:
            yield line.decode("utf-8", errors="replace").rstrip("\n")

    def follow(self, run: str, poll_seconds: float = 10.0, sleep: Callable[[float], None] = time.sleep) -> int:
        """--wait: report the chain's progress and stream each step's logs until it ends."""
        seen_message, streamed = "", set()
        while True:
            st = self.status(run)
            if st["message"] != seen_message:
                seen_message = st["message"]
                self.report(f"[{st['state']}] {st['step']}: {seen_message}")
            if st["state"] in ("Succeeded", "Failed"):
                return exit_codes.OK if st["state"] == "Succeeded" else exit_codes.FAILED
            step = st["step"]
            pods = self._pods(step) if step and st["steps"].get(step) == "running" else []
            running = [p for p in pods if p.status.phase == "Running" and p.metadata.name not in streamed]
            if running:
                streamed.add(running[-1].metadata.name)
                for line in self.logs(step, follow=True):
                    self.report(line)
            else:
                sleep(poll_seconds)

    # -- client chain
    def run_chain(self, objects: list[dict[str, Any]], poll_seconds: float) -> int:
        """--chain client: this process follows the plan (no orchestrator Job, no RBAC)."""
        from kubernetes import client

        plan = ChainPlan.from_data(render.plan_configmap(objects)["data"])
        chain = Chain(client.BatchV1Api(self.api), client.CoreV1Api(self.api), self.namespace, plan, report=self.report)
        return chain.run(poll_seconds)


def workflow_status(steps: list[dict[str, Any]], status: dict[str, Any]) -> dict[str, Any]:
    """Each step's state from an Argo Workflow's nodes (tasks <step>-check, <step>, <step>-verify)."""
    nodes = {n.get("displayName"): n for n in (status.get("nodes") or {}).values()}
    phase = status.get("phase") or "Pending"
    states, failures = {}, {}
    for step in steps:
        name = step["name"]
        check, job, verify = (nodes.get(name + suffix, {}) for suffix in (CHECK_SUFFIX, "", VERIFY_SUFFIX))
        phases = (check.get("phase"), job.get("phase"), verify.get("phase"))
        if phases[2] == "Succeeded" or phases[1] == "Skipped":
            state = dag.DONE
        elif failed := next((n for n in (job, verify) if n.get("phase") in ("Failed", "Error")), None):
            state, failures[name] = dag.FAILED, failed.get("message", "failed")
        elif phases[2] in ("Pending", "Running"):
            state = "verifying"
        elif phases[1] in ("Pending", "Running"):
            state = "running"
        elif phases[0] in ("Pending", "Running"):
            state = "checking"
        else:
            state = dag.BLOCKED if phase in ("Failed", "Error") else dag.PENDING
        states[name] = state
    running = [name for name, state in states.items() if state == "running"]
    failed_steps = [name for name, state in states.items() if state == dag.FAILED]
    return {
        "state": "Failed" if phase == "Error" else phase,
        "message": status.get("message", ""),
        "step": (running or failed_steps or [""])[0],
        "steps": states,
        "failures": failures,
    }


def _job_summary(job: Any) -> str:
    status = job.status
    conditions = [c.type for c in (status.conditions or []) if c.status == "True"]
    parts = [f"{n} {getattr(status, n)}" for n in ("active", "succeeded", "failed") if getattr(status, n, None)]
    if job.spec.suspend and "Complete" not in conditions and "Failed" not in conditions:
        parts.append("suspended: queued, waiting for Kueue to admit it")
    return "Job " + (", ".join(conditions + parts) or "created")
