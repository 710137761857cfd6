"""trainer.layout holds both ends of the storage layout together: every completion marker the plan
waits for, and every prepared file a later job reads, is what its producer really writes.

The producers run for real and write exactly where the plan says: `data synth`, `data prepare` and
`pretrain-base` with the plan's own arguments (a tiny corpus; a tiny base model, two steps),
`train` and `compare` with the smoke preset on the session's smoke data into the plan's phase and
report folders.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.helpers import smoke_args
from trainer import exit_codes
from trainer.cli import main
from trainer.pipeline import values_io
from trainer.pipeline.plan import Plan, PlannedJob, build_plan
from trainer.runtime_env import with_cpu_env

REPO = Path(__file__).resolve().parents[2]


def tiny_plan(root: Path) -> Plan:
    return build_plan(
        values_io.from_values(
            {
                "runName": "lay",
                "embeddedDefault": True,
                "ranks": [4],
                "phases": [1],
                "synthetic": {"childSpeakers": 6, "adultSpeakers": 6, "utterancesPerSpeaker": 3, "workers": 1},
                "data": {"valFraction": 0.2, "testFraction": 0.2, "fractions": [1.0]},
            }
        ),
        str(root),
    )


def job(plan: Plan, kind: str) -> PlannedJob:
    [found] = [j for j in plan.jobs if j.kind == kind]
    return found


def missing(paths) -> list[str]:
    return [p for p in paths if not Path(p).exists()]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Plan:
    """The tiny plan with its `data synth` and `data prepare` run as the plan says."""
    plan = tiny_plan(tmp_path_factory.mktemp("layout"))
    for kind in ("synth", "prepare"):
        assert main(list(job(plan, kind).argv)) == exit_codes.OK
    return plan


def test_synth_and_prepare_write_what_the_plan_waits_for_and_what_later_jobs_read(prepared) -> None:
    for kind in ("synth", "prepare"):
        assert not missing(job(prepared, kind).markers), kind
    data = job(prepared, "prepare").output
    read_later = [a for j in prepared.jobs if j.kind in ("base", "train", "eval") for a in j.argv if a.startswith(data)]
    read_later += [a.split("=", 1)[1] for j in prepared.jobs for a in j.argv if a.startswith("adult=")]
    assert len(read_later) >= 6  # both pretraining manifests, curriculum, validation and test sets, vocabulary
    assert not missing(read_later)


def test_pretrain_base_writes_what_the_plan_waits_for(prepared) -> None:
    base = job(prepared, "base")
    tiny = ["--max-steps", "2", "--hidden-size", "32", "--num-layers", "2", "--num-workers", "0"]
    assert main([*base.argv, *tiny]) == exit_codes.OK
    assert not missing(base.markers)


@pytest.mark.slow
def test_train_and_compare_write_what_the_plan_waits_for(tmp_path, smoke_data) -> None:
    plan = tiny_plan(tmp_path)
    train, report = job(plan, "train"), job(plan, "eval")

    def run(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "trainer", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            env={**with_cpu_env(os.environ), "PYTHONPATH": str(REPO)},
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]

    run(*smoke_args(smoke_data, train.output))
    assert not missing(train.markers)
    run(
        "compare",
        "--model",
        f"base={smoke_data / 'base'}",
        "--model",
        f"r4={Path(train.output) / 'checkpoint-best'}",
        "--manifest",
        str(smoke_data / "prepared" / "test.jsonl"),
        "--output",
        report.output,
    )
    assert not missing(report.markers)
