"""Run a plan as local processes: the same steps, in the same order, with the same `python -m trainer`
arguments that the Kubernetes Jobs get; a local folder (or an s3:// prefix) stands in for the PVC.

    python tools/submit.py --phase all --rank 32 --local

A phase or evaluation whose completion markers exist is skipped, so running the same command again
resumes the chain where it stopped: a failed or interrupted step is run again and resumes from its
own latest checkpoint (the trainer does that); the data and base-model steps notice themselves that
they are up to date. The first failure stops the chain. Each step's output is shown
and also written to <logs>/<step>.log.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable, Sequence

from trainer import exit_codes
from trainer.pipeline import markers
from trainer.pipeline.orchestrator import EXIT_MEANINGS
from trainer.pipeline.plan import CHECKPOINT_BEST, REPORT_MARKER, Plan, PlannedJob
from trainer.runtime_env import with_cpu_env
from trainer.storage import is_s3

TRAINER = (sys.executable, "-m", "trainer")


def _run_step(cmd: list[str], log_path: Path) -> int:
    """Run one step, showing its output and appending it to `log_path`.

    The step runs in its own session, so Ctrl-C reaches only this runner, which passes it on as
    SIGTERM: the trainer's preemption path (finish the step, save a checkpoint, exit 75).
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
        while True:
            try:
                for line in proc.stdout:  # type: ignore[union-attr]
                    sys.stdout.write(line)
                    log.write(line)
                return proc.wait()
            except KeyboardInterrupt:
                proc.send_signal(signal.SIGTERM)  # and keep showing its output until it has saved


def run_local(
    plan: Plan,
    log_dir: Path,
    command: Sequence[str] = TRAINER,
    report: Callable[[str], None] = print,
) -> int:
    """Run every step not yet done; the exit code of the first failure, else 0.

    `command` is what the step arguments are appended to (tests put a stand-in trainer there).
    """
    report(f"run {plan.run}: {len(plan.jobs)} steps, storage {plan.root}, logs {log_dir}")
    for index, job in enumerate(plan.jobs, start=1):
        head = f"[{index}/{len(plan.jobs)}] {job.name}"
        if job.skippable and not markers.missing(job.markers):
            report(f"{head}: done earlier (completion markers exist), skipped")
            continue
        cmd = [*command, *job.argv]
        log_path = log_dir / f"{job.name}.log"
        report(f"{head}: {shlex.join(cmd)}")
        code = _run_step(cmd, log_path)
        if code != exit_codes.OK:
            meaning = EXIT_MEANINGS.get(code, "failed")
            report(f"{head}: {meaning} (exit code {code}); log: {log_path}")
            report("the chain stopped here; run the same command again to resume from this step")
            return code
        absent = markers.missing(job.markers)
        if absent:
            report(f"{head}: exited 0 but its completion markers are missing: {', '.join(absent)}")
            return exit_codes.FAILED
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
        lines.append(f"  comparison:    {job.output}/{REPORT_MARKER}")
        if not is_s3(job.output):
            lines += [f"  chart:         {path}" for path in sorted(Path(job.output).glob("*.png"))]
            tables += _headline_table(Path(job.output) / REPORT_MARKER)
    lines.append(f"  step logs:     {log_dir}")
    lines.append(f"  TensorBoard:   tensorboard --logdir {plan.logdir}")
    return "\n".join(lines + tables)


def _headline_table(report: Path) -> list[str]:
    """The first table of comparison.md (one row per model), to show the result at a glance."""
    text = report.read_text(encoding="utf-8").splitlines() if report.exists() else []
    start = next((i for i, line in enumerate(text) if line.startswith("|")), None)
    if start is None:
        return []
    end = next((i for i in range(start, len(text)) if not text[i].startswith("|")), len(text))
    return ["", *text[start:end]]
