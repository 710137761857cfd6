"""The chain: runs a run's steps as Kubernetes Jobs, following the plan's dependencies, without holding GPUs.

    python -m trainer.pipeline.orchestrator run --plan-dir /plan          (the in-cluster CPU Job)
    python -m trainer.pipeline.orchestrator check-marker URI [URI ...]    (the marker-check Jobs)
    python -m trainer.pipeline.orchestrator check-plan --plan-dir /plan   (`helm test`)

`tools/submit.py --chain client` runs the same `Chain` from a laptop instead.

A step starts once every step it depends on is done (trainer.pipeline.dag): the chains of
different LoRA ranks run side by side, at most the plan's `maxParallel` steps at a time (0: all),
and the evaluation waits for the last phase of every rank. For each step (the plan ConfigMap:
plan.json + one Job manifest per step):
1. phases and evaluation only: a small CPU Job `<step>-check` looks for the step's completion
   markers on the storage (it mounts the PVC read-only, or reads S3 with the step's own
   credentials); present: the step is already done (a re-submitted or resumed run skips it);
2. otherwise the step's Job is created, and followed until `Complete` or `Failed`;
3. when Complete, `<step>-verify` checks the markers again; only then is the step done.
Check Jobs are deleted once read. A Failed Job or a missing marker stops the steps that depend on
it (they are `blocked`); the other chains carry on. The status ConfigMap `<run>-status` holds every
step's state and why a step failed; once nothing can run any more, this process exits 1 if a
step failed.

Why check Jobs rather than reading the storage here: a ReadWriteOnce claim can be attached to one
node only, and the orchestrator would pin it away from the GPU nodes for the whole chain; and the
orchestrator needs no storage credentials. The chain's progress is kept in the status ConfigMap,
so a restarted orchestrator (node loss) carries on where it was.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

from trainer import exit_codes
from trainer.pipeline import dag
from trainer.pipeline import markers as marker_store
from trainer.pipeline.plan import CHECK_SUFFIX, VERIFY_SUFFIX

TERMINATION_LOG = "/dev/termination-log"
PRESENT = "present"
MISSING = "missing"
EXIT_MEANINGS = {
    exit_codes.CONFIG_ERROR: "configuration error",
    exit_codes.PREEMPTED: "interrupted (preempted, or storage unreachable); a rerun resumes from the last checkpoint",
}
_log = logging.getLogger("orchestrator")


class StepFailed(Exception):
    """A step's Job failed, or it completed without its markers: the chain stops."""


# ----------------------------------------------------------------------------- plan from the ConfigMap


@dataclass
class ChainPlan:
    run: str
    steps: list[dict[str, Any]]  # {name, kind, markers, dependsOn}, in order
    manifests: dict[str, dict[str, Any]]  # Job name -> manifest: the steps and their marker checks
    max_parallel: int = 0  # steps started and not finished, at most (0: no bound)

    @classmethod
    def from_data(cls, data: dict[str, str]) -> "ChainPlan":
        """From the plan ConfigMap's data (or the files of its mounted volume)."""
        plan = json.loads(data["plan.json"])
        manifests = {key.removesuffix(".json"): json.loads(value) for key, value in data.items() if key != "plan.json"}
        return cls(plan["run"], plan["jobs"], manifests, plan["maxParallel"])

    @property
    def graph(self) -> list[tuple[str, list[str]]]:
        return [(s["name"], s["dependsOn"]) for s in self.steps]

    @classmethod
    def from_dir(cls, directory: str | Path) -> "ChainPlan":
        directory = Path(directory)
        return cls.from_data({p.name: p.read_text(encoding="utf-8") for p in directory.glob("*.json")})


# ----------------------------------------------------------------------------- the chain


JOBSET_GROUP, JOBSET_VERSION, JOBSET_PLURAL = "jobset.x-k8s.io", "v1alpha2", "jobsets"
JOBSET_POD_LABEL = "jobset.sigs.k8s.io/jobset-name"


def jobset_outcome(jobset: dict[str, Any]) -> tuple[Optional[str], str]:
    """('Completed' | 'Failed' | None while it runs, why it failed) from a JobSet's status."""
    status = jobset.get("status") or {}
    failed = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Failed" and c.get("status") == "True"), {}
    )
    return status.get("terminalState"), f"{failed.get('reason', '')}: {failed.get('message', '')}".strip(": ")


def _condition(job: Any, kind: str) -> Optional[Any]:
    for cond in (job.status.conditions or []) if job.status else []:
        if cond.type == kind and cond.status == "True":
            return cond
    return None


@dataclass
class Chain:
    """Follows one run's plan; `tick()` advances it as far as the cluster allows."""

    batch: Any  # kubernetes.client.BatchV1Api
    core: Any  # kubernetes.client.CoreV1Api
    namespace: str
    plan: ChainPlan
    report: Callable[[str], None] = print
    states: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # step -> why it failed or is blocked

    @property
    def status_name(self) -> str:
        return f"{self.plan.run}-status"

    # -- Kubernetes calls
    def _read_job(self, name: str) -> Optional[Any]:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.batch.read_namespaced_job(name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _jobsets(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.core.api_client)

    def _read_jobset(self, name: str) -> Optional[dict[str, Any]]:
        from kubernetes.client.exceptions import ApiException

        try:
            return self._jobsets().get_namespaced_custom_object(
                JOBSET_GROUP, JOBSET_VERSION, self.namespace, JOBSET_PLURAL, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _create_job(self, body: dict[str, Any]) -> None:
        """Create a step's Job (or a multi-node step's JobSet) or check Job."""
        from kubernetes.client.exceptions import ApiException

        try:
            if body["kind"] == "JobSet":
                self._jobsets().create_namespaced_custom_object(
                    JOBSET_GROUP, JOBSET_VERSION, self.namespace, JOBSET_PLURAL, body
                )
            else:
                self.batch.create_namespaced_job(self.namespace, body)
        except ApiException as exc:
            if exc.status != 409:  # already there: created by an earlier run of this process
                raise

    def _pods(self, job_name: str, label: str = "job-name") -> list[Any]:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"{label}={job_name}").items
        return sorted(pods, key=lambda p: p.metadata.creation_timestamp or datetime.min.replace(tzinfo=timezone.utc))

    def load_status(self) -> None:
        data = self.core.read_namespaced_config_map(self.status_name, self.namespace).data or {}
        self.states = json.loads(data.get("steps", "{}"))
        self.failures = json.loads(data.get("failures", "{}"))

    def save_status(self, state: str, message: str, step: str = "") -> None:
        data = {
            "state": state,
            "message": message,
            "step": step,
            "steps": json.dumps(self.states),
            "failures": json.dumps(self.failures),
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        self.core.patch_namespaced_config_map(self.status_name, self.namespace, {"data": data})

    # -- one step
    def _set(self, step: str, state: str, message: str) -> None:
        self.states[step] = state
        self.report(f"{step}: {message}")
        self.save_status("Running", message, step)

    def _marker_result(self, job_name: str) -> Optional[bool]:
        """None while the check runs; True/False when it reported; StepFailed if it could not run.

        The result is the check pod's termination message, read as soon as a pod reports it
        (a check that finds markers missing exits MARKERS_MISSING, so its Job does not complete).
        """
        job = self._read_job(job_name)
        if job is None:
            return None
        for pod in reversed(self._pods(job_name)):
            for status in (pod.status.container_statuses or []) if pod.status else []:
                terminated = status.state.terminated if status.state else None
                message = (terminated.message or "").strip() if terminated else ""
                if message.startswith((PRESENT, MISSING)):
                    # Read: remove it, so `kubectl get jobs` shows the steps themselves.
                    self.batch.delete_namespaced_job(job_name, self.namespace, propagation_policy="Background")
                    return message.startswith(PRESENT)
        if cond := _condition(job, "Failed"):
            raise StepFailed(
                f"marker check {job_name} failed ({cond.reason}); see kubectl logs -n {self.namespace} job/{job_name}"
            )
        if _condition(job, "Complete"):
            raise StepFailed(f"marker check {job_name} completed without a result")
        return None

    def _failure(self, name: str, why: str, pod_label: str = "job-name") -> str:
        codes = [
            s.state.terminated.exit_code
            for pod in self._pods(name, pod_label)
            for s in (pod.status.container_statuses or [])
            if pod.status
            if s.state and s.state.terminated
        ]
        if codes:
            why += f"; last exit code {codes[-1]}"
            if codes[-1] in EXIT_MEANINGS:
                why += f" ({EXIT_MEANINGS[codes[-1]]})"
        pods = f"job/{name}" if pod_label == "job-name" else f"-l {pod_label}={name}"
        return f"{why}; see kubectl logs -n {self.namespace} {pods}"

    def _finished(self, name: str, manifest: dict[str, Any]) -> bool:
        """Whether the step's Job (or JobSet) completed; StepFailed if it failed."""
        if manifest["kind"] == "JobSet":
            jobset = self._read_jobset(name)
            if jobset is None:  # deleted behind our back (or never created): create it again
                self._create_job(manifest)
                return False
            outcome, why = jobset_outcome(jobset)
            if outcome == "Failed":
                raise StepFailed(self._failure(name, f"JobSet {name} failed ({why})", JOBSET_POD_LABEL))
            return outcome == "Completed"
        job = self._read_job(name)
        if job is None:
            self._create_job(manifest)
            return False
        if cond := _condition(job, "Failed"):
            raise StepFailed(self._failure(name, f"Job {name} failed ({cond.reason}: {cond.message})"))
        return _condition(job, "Complete") is not None

    def advance(self, step: dict[str, Any]) -> str:
        """Move one step along as far as it can go now; returns its state."""
        name, markers = step["name"], step["markers"]
        manifest = self.plan.manifests[name]
        state = self.states.get(name, dag.PENDING)
        if state == dag.PENDING and not step["skippable"]:
            self._create_job(manifest)
            self._set(name, "running", f"created Job {name}")
            state = "running"
        if state == dag.PENDING:
            self._create_job(self.plan.manifests[name + CHECK_SUFFIX])
            self._set(name, "checking", "looking for the completion markers of an earlier run")
            state = "checking"
        if state == "checking":
            found = self._marker_result(name + CHECK_SUFFIX)
            if found is None:
                return state
            if found:
                self._set(name, "done", "already done (completion markers exist); skipped")
                return "done"
            self._create_job(manifest)
            self._set(name, "running", f"created Job {name}")
            state = "running"
        if state == "running":
            finished = self._finished(name, manifest)
            if not finished:
                return state
            self._create_job(self.plan.manifests[name + VERIFY_SUFFIX])
            self._set(name, "verifying", f"{manifest['kind']} {name} Complete; checking its completion markers")
            state = "verifying"
        if state == "verifying":
            found = self._marker_result(name + VERIFY_SUFFIX)
            if found is None:
                return state
            if not found:
                raise StepFailed(f"Job {name} completed but its completion markers are missing: {', '.join(markers)}")
            self._set(name, "done", "done")
        return self.states[name]

    def tick(self) -> str:
        """Advance every step that can move; 'Running', 'Succeeded' or 'Failed' (status ConfigMap updated).

        Steps already under way are followed first, so one that finishes frees its place (and
        its dependents) in the same tick; then the steps whose turn has come are started, and
        last the pending steps behind a failure are blocked (`startable` never starts them).
        """
        by_name = {s["name"]: s for s in self.plan.steps}
        for step in self.plan.steps:
            if self.states.get(step["name"]) in dag.ACTIVE:
                self._advance_or_stop(step)
        for name in dag.startable(self.plan.graph, self.states, self.plan.max_parallel):
            self._advance_or_stop(by_name[name])
        for name, cause in dag.newly_blocked(self.plan.graph, self.states).items():
            self._stop(name, dag.BLOCKED, f"not started: {cause} failed")
        state = dag.outcome(by_name, self.states)
        if state == "Succeeded":
            self.save_status(state, f"all {len(self.plan.steps)} steps done")
        elif state == "Failed":
            failed = [n for n in by_name if self.states.get(n) == dag.FAILED]
            self.save_status(
                state, "chain stopped: " + "; ".join(self.failures.get(n, f"{n} failed") for n in failed), failed[0]
            )
        return state

    def _advance_or_stop(self, step: dict[str, Any]) -> None:
        try:
            self.advance(step)
        except StepFailed as exc:
            self._stop(step["name"], dag.FAILED, str(exc))

    def _stop(self, name: str, state: str, why: str) -> None:
        self.failures[name] = why
        self.states[name] = state
        self.report(f"{name}: {state.upper()}: {why}")
        self.save_status("Running", f"{name} {state}: {why}", name)

    def run(self, poll_seconds: float, sleep: Callable[[float], None] = time.sleep) -> int:
        self.load_status()
        while (state := self.tick()) == "Running":
            sleep(poll_seconds)
        self.report(f"chain {state.lower()}")
        return exit_codes.OK if state == "Succeeded" else exit_codes.FAILED


# ----------------------------------------------------------------------------- plan checks


def argv_problems(argv: list[str]) -> list[str]:
    """What `python -m trainer <argv>` would reject before doing any work (flags, presets, values)."""
    from trainer.cli import build_parser
    from trainer.exit_codes import ConfigError

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args = build_parser().parse_args(argv)
    except SystemExit:
        return [f"{' '.join(argv[:2])}: {stderr.getvalue().strip().splitlines()[-1]}"]
    try:
        if args.command in ("train", "pretrain-base"):
            from trainer.config import TrainConfig
            from trainer.training.configure import resolve

            flags = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__}
            resolve(args.command, args.preset, args.config, flags)
        elif args.command == "compare":
            from trainer.config import build
            from trainer.evaluation.cli import named_values
            from trainer.evaluation.config import EvalConfig

            named_values(args.model, "--model")
            named_values(args.manifest_extra, "--manifest-extra")
            build(EvalConfig, {k: v for k, v in vars(args).items() if k in EvalConfig.__dataclass_fields__})
    except ConfigError as exc:
        return [f"{argv[0]}: {exc}"]
    return []


def step_job_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    """The Job spec of a step: its Job's, or its JobSet's replicated Job's."""
    return (
        manifest["spec"]["replicatedJobs"][0]["template"]["spec"] if manifest["kind"] == "JobSet" else manifest["spec"]
    )


def plan_problems(plan: ChainPlan) -> list[str]:
    problems = []
    for step in plan.steps:
        name, manifest = step["name"], plan.manifests[step["name"]]
        argv = step_job_spec(manifest)["template"]["spec"]["containers"][0]["args"]
        problems += [f"{name}: {p}" for p in argv_problems(argv)]
    return problems


# ----------------------------------------------------------------------------- command line


def _cmd_run(args: argparse.Namespace) -> int:
    from kubernetes import client, config

    config.load_incluster_config()
    chain = Chain(
        client.BatchV1Api(), client.CoreV1Api(), args.namespace, ChainPlan.from_dir(args.plan_dir), report=_log.info
    )
    return chain.run(args.poll_seconds)


def _cmd_check_marker(args: argparse.Namespace) -> int:
    absent = marker_store.missing(args.uris)
    message = f"{MISSING} {' '.join(absent)}" if absent else PRESENT
    print(message)
    log = Path(args.termination_log)
    if log.parent.is_dir():
        with contextlib.suppress(OSError):
            log.write_text(message, encoding="utf-8")
    return exit_codes.MARKERS_MISSING if absent else exit_codes.OK


def _cmd_check_plan(args: argparse.Namespace) -> int:
    problems = plan_problems(ChainPlan.from_dir(args.plan_dir))
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print("plan OK: every step's arguments are accepted by the trainer")
    return exit_codes.CONFIG_ERROR if problems else exit_codes.OK


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    parser = exit_codes.ArgumentParser(
        prog="python -m trainer.pipeline.orchestrator", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="follow the plan until it succeeds or a step fails")
    p.add_argument("--plan-dir", required=True, help="the mounted plan ConfigMap")
    p.add_argument("--namespace", default=os.environ.get("POD_NAMESPACE", "default"))
    p.add_argument("--poll-seconds", type=float, default=30.0)
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser(
        "check-marker",
        help="report whether every URI exists (termination message; "
        f"exit {exit_codes.MARKERS_MISSING} if one is missing)",
    )
    p.add_argument("uris", nargs="+")
    p.add_argument("--termination-log", default=TERMINATION_LOG)
    p.set_defaults(func=_cmd_check_marker)
    p = sub.add_parser("check-plan", help="check every step's trainer arguments without running anything")
    p.add_argument("--plan-dir", required=True)
    p.set_defaults(func=_cmd_check_plan)
    args = parser.parse_args(argv)
    return exit_codes.run_main(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
