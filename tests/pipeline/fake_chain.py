"""The local runner with tests/pipeline/fake_trainer.py in place of the trainer: it writes the
markers the plan expects (or fails where a test says), so chaining logic is tested without training."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from trainer.pipeline import values_io
from trainer.pipeline.local import run_local
from trainer.pipeline.plan import Plan, build_plan

FAKE = (sys.executable, str(Path(__file__).with_name("fake_trainer.py")))


def plan_with(tmp_path: Path, max_parallel: int) -> Plan:
    cfg = values_io.from_values(
        {
            "runName": "loc",
            "embeddedDefault": True,
            "preset": "demo-small",
            "ranks": [16, 32],
            "orchestrator": {"maxParallel": max_parallel},
        }
    )
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
