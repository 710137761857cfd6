"""The local runner: same steps in plan order, stop at the first failure, resume where it stopped.

The trainer is replaced by tests/pipeline/fake_trainer.py through run_local's `command` parameter,
so these tests check the chaining logic, not training (the end-to-end run is the integration test).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from trainer import exit_codes
from trainer.pipeline import config as C
from trainer.pipeline.local import run_local
from trainer.pipeline.plan import Plan, build_plan

FAKE = (sys.executable, str(Path(__file__).with_name("fake_trainer.py")))


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    cfg = C.from_values({"runName": "loc", "embeddedDefault": True, "preset": "demo-small", "ranks": [16, 32]})
    return build_plan(cfg, str(tmp_path / "runs"))


class Fake:
    def __init__(self, tmp_path: Path, plan: Plan, monkeypatch: pytest.MonkeyPatch) -> None:
        self.log, self.spec_path, self.plan = tmp_path / "calls.jsonl", tmp_path / "spec.json", plan
        monkeypatch.setenv("FAKE_TRAINER_LOG", str(self.log))
        monkeypatch.setenv("FAKE_TRAINER_SPEC", str(self.spec_path))
        self.configure()

    def configure(self, **spec: object) -> None:
        markers = {" ".join(j.argv): list(j.markers) for j in self.plan.jobs}
        self.spec_path.write_text(json.dumps({"markers": markers, **spec}), encoding="utf-8")

    def calls(self) -> list[str]:
        """Step names in call order (matched by the arguments), then forget them."""
        lines = self.log.read_text(encoding="utf-8").splitlines() if self.log.exists() else []
        self.log.unlink(missing_ok=True)
        by_argv = {tuple(j.argv): j.name.removeprefix("loc-") for j in self.plan.jobs}
        return [by_argv[tuple(json.loads(line))] for line in lines]


def run(plan: Plan, tmp_path: Path, lines: list[str]) -> int:
    return run_local(plan, tmp_path / "logs", command=FAKE, report=lines.append)


def test_runs_every_step_in_plan_order_then_reports_where_things_are(plan, tmp_path, monkeypatch) -> None:
    fake, lines = Fake(tmp_path, plan, monkeypatch), []
    assert run(plan, tmp_path, lines) == exit_codes.OK
    assert fake.calls() == ["synth", "prepare", "base", "r16-p1", "r16-p2", "r16-p3", "r32-p1", "r32-p2", "r32-p3", "eval"]
    summary = lines[-1]
    assert f"tensorboard --logdir {plan.logdir}" in summary
    assert f"{plan.report_dir}/comparison.md" in summary
    assert f"{plan.logdir}/r32/phase3/checkpoint-best" in summary
    assert "fake trainer: train done" in (tmp_path / "logs" / "loc-r16-p1.log").read_text(encoding="utf-8")


def test_a_second_run_skips_finished_phases(plan, tmp_path, monkeypatch) -> None:
    fake, lines = Fake(tmp_path, plan, monkeypatch), []
    run(plan, tmp_path, lines)
    fake.calls()
    assert run(plan, tmp_path, lines) == exit_codes.OK
    # the shared steps check their own inputs (they are cheap no-ops when up to date)
    assert fake.calls() == ["synth", "prepare", "base"]
    assert sum("skipped" in line for line in lines) == 7


def test_stops_at_the_first_failure_and_resumes_there(plan, tmp_path, monkeypatch) -> None:
    fake, lines = Fake(tmp_path, plan, monkeypatch), []
    fake.configure(fail={"--phase 2 --rank 32": exit_codes.PREEMPTED})
    assert run(plan, tmp_path, lines) == exit_codes.PREEMPTED
    assert fake.calls()[-2:] == ["r32-p1", "r32-p2"]  # nothing after the failed step
    assert any("run the same command again" in line for line in lines)
    fake.configure()
    assert run(plan, tmp_path, lines) == exit_codes.OK
    assert fake.calls() == ["synth", "prepare", "base", "r32-p2", "r32-p3", "eval"]


def test_a_config_error_stops_the_chain_with_its_code(plan, tmp_path, monkeypatch) -> None:
    fake, lines = Fake(tmp_path, plan, monkeypatch), []
    fake.configure(fail={"pretrain-base": exit_codes.CONFIG_ERROR})
    assert run(plan, tmp_path, lines) == exit_codes.CONFIG_ERROR
    assert fake.calls() == ["synth", "prepare", "base"]
    assert any("configuration error" in line for line in lines)


def test_success_without_completion_markers_is_a_failure(plan, tmp_path, monkeypatch) -> None:
    fake, lines = Fake(tmp_path, plan, monkeypatch), []
    fake.configure(no_markers=["--phase 1 --rank 16"])
    assert run(plan, tmp_path, lines) == exit_codes.FAILED
    assert fake.calls()[-1] == "r16-p1"
    assert any("completion markers are missing" in line for line in lines)
