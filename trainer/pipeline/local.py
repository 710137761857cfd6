"""Run a plan as local processes: the same steps, with the same `python -m trainer` arguments that the
Kubernetes Jobs get; a local folder (or an s3:// prefix) stands in for the PVC.

    python tools/submit.py --phase all --rank 16 32 --local --max-parallel 2

Steps start in plan order once the steps they depend on are done (trainer.pipeline.dag), at most
`plan.max_parallel` at a time (`--local` default 1: one chain after the other; 2 runs two ranks'
chains side by side). A phase or evaluation whose completion markers exist is skipped, so running
the same command again resumes where it stopped: a failed or interrupted step is run again and
resumes from its own latest checkpoint (the trainer does that); the data and base-model steps
notice themselves that they are up to date. A failure stops the steps that depend on it; the other
chains finish. Each step's output is shown (prefixed with the step's name when steps run side by
side) and also written to <logs>/<step>.log.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable, Sequence

from trainer import exit_codes
from trainer.layout import CHECKPOINT_BEST, COMPARISON_FILE
from trainer.pipeline import dag, markers
from trainer.pipeline.orchestrator import EXIT_MEANINGS
from trainer.pipeline.plan import Plan, PlannedJob
from trainer.runtime_env import with_cpu_env
from trainer.storage import join, open_store

TRAINER = (sys.executable, "-m", "trainer")


class _Steps:
    """The step processes running now, so that Ctrl-C reaches each of them."""

    def __init__(self) -> None:
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self.interrupted = False

    def run(self, cmd: list[str], log_path: Path, prefix: str) -> int:
        """Run one step, showing its output (each line after `prefix`) and appending it to `log_path`.

        The step runs in its own session, so Ctrl-C reaches only this runner, which passes it on
        as SIGTERM (`interrupt`): the trainer's preemption path (finish the step, save a
        checkpoint, exit 75).
        """
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"$ {shlex.join(cmd)}\n")
            log.flush()
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=True,
                env=with_cpu_env(os.environ),
            )
            with self._lock:
                self._procs.add(proc)
            try:
                for line in proc.stdout:  # type: ignore[union-attr]
                    sys.stdout.write(prefix + line)
                    log.write(line)
                return proc.wait()
            finally:
                with self._lock:
                    self._procs.discard(proc)

    def interrupt(self) -> None:
        self.interrupted = True
        with self._lock:
            for proc in self._procs:
                proc.send_signal(signal.SIGTERM)


def run_local(
    plan: Plan,
    log_dir: Path,
    command: Sequence[str] = TRAINER,
    report: Callable[[str], None] = print,
) -> int:
    """Run every step not yet done; the exit code of the first failure, else 0.

    `command` is what the step arguments are appended to (tests put a stand-in trainer there).
    """
    max_parallel = plan.max_parallel or len(plan.jobs)
    report(
        f"run {plan.run}: {len(plan.jobs)} steps, at most {max_parallel} at a time, storage {plan.root}, logs {log_dir}"
    )
    by_name = {job.name: job for job in plan.jobs}
    heads = {job.name: f"[{i}/{len(plan.jobs)}] {job.name}" for i, job in enumerate(plan.jobs, start=1)}
    graph = [(job.name, job.depends_on) for job in plan.jobs]
    states: dict[str, str] = {}
    codes: list[int] = []
    steps = _Steps()
    running: dict[Future, PlannedJob] = {}

    def finish(job: PlannedJob, code: int) -> None:
        head, log_path = heads[job.name], log_dir / f"{job.name}.log"
        absent = markers.missing(job.markers) if code == exit_codes.OK else []
        if code == exit_codes.OK and not absent:
            states[job.name] = dag.DONE
            return
        states[job.name] = dag.FAILED
        if code == exit_codes.OK:
            report(f"{head}: exited 0 but its completion markers are missing: {', '.join(absent)}")
            code = exit_codes.FAILED
        else:
            report(f"{head}: {EXIT_MEANINGS.get(code, 'failed')} (exit code {code}); log: {log_path}")
        codes.append(code)

    def start_ready(pool: ThreadPoolExecutor) -> bool:
        """Block what cannot run, start what can; whether a step was skipped as done (its dependents
        may be startable at once, without waiting for a running step)."""
        for name, cause in dag.newly_blocked(graph, states).items():
            states[name] = dag.BLOCKED
            report(f"{heads[name]}: not started ({by_name[cause].name} failed)")
        ready = [] if steps.interrupted else dag.startable(graph, states, max_parallel)
        skipped = False
        for name in ready:
            job = by_name[name]
            if job.skippable and not markers.missing(job.markers):
                report(f"{heads[name]}: done earlier (completion markers exist), skipped")
                states[name] = dag.DONE
                skipped = True
                continue
            cmd = [*command, *job.argv]
            report(f"{heads[name]}: {shlex.join(cmd)}")
            states[name] = "running"
            prefix = f"{name.removeprefix(plan.run + '-')}| " if max_parallel > 1 else ""
            running[pool.submit(steps.run, cmd, log_dir / f"{name}.log", prefix)] = job
        return skipped

    with ThreadPoolExecutor(max_workers=max_parallel) as pool:
        while True:
            try:
                if start_ready(pool):  # skipped steps' dependents may start now, beside the running ones
                    continue
                if not running:
                    break
                # A timeout, so a Ctrl-C that the kernel hands to another thread of this process
                # (the flag is set, this wait is not interrupted) is raised here within a second.
                finished, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in finished:
                    finish(running.pop(future), future.result())
            except KeyboardInterrupt:  # pass it on; keep showing their output until they have saved
                steps.interrupt()
    if codes or steps.interrupted:
        report("the chain stopped; run the same command again to resume from the unfinished steps")
        return codes[0] if codes else exit_codes.PREEMPTED
    report(summary(plan, log_dir))
    return exit_codes.OK


def _of_kind(plan: Plan, kind: str) -> list[PlannedJob]:
    return [j for j in plan.jobs if j.kind == kind]


def summary(plan: Plan, log_dir: Path) -> str:
    """Where everything is, once the chain is done."""
    lines = [f"run {plan.run}: all {len(plan.jobs)} steps done"]
    for job in _of_kind(plan, "prepare"):
        lines.append(f"  data:          {job.output}")
    for job in _of_kind(plan, "base"):
        lines.append(f"  base model:    {job.output}")
    for job in _of_kind(plan, "train"):
        lines.append(f"  r{job.rank} phase {job.phase}:   {job.output}/{CHECKPOINT_BEST}")
    tables: list[str] = []
    for job in _of_kind(plan, "eval"):
        lines.append(f"  comparison:    {job.output}/{COMPARISON_FILE}")
        report = open_store(job.output)
        charts = [name for name in report.list_files() if "/" not in name and name.endswith(".png")]
        lines += [f"  chart:         {join(job.output, name)}" for name in charts]
        tables += _headline_table(report.read_text(COMPARISON_FILE) or "")
    lines.append(f"  step logs:     {log_dir}")
    lines.append(f"  TensorBoard:   tensorboard --logdir {plan.logdir}")
    return "\n".join(lines + tables)


def _headline_table(report: str) -> list[str]:
    """The first table of comparison.md (one row per model), to show the result at a glance."""
    text = report.splitlines()
    start = next((i for i, line in enumerate(text) if line.startswith("|")), None)
    if start is None:
        return []
    end = next((i for i in range(start, len(text)) if not text[i].startswith("|")), len(text))
    return ["", *text[start:end]]
