"""The embedded default end to end, the way a newcomer runs it (`tools/submit.py --local`), with the
small preset: synthetic corpus (adult and child voices, AI Hub layout) -> import/split/curriculum/
vocabulary -> a tiny base trained from scratch on adult voices -> LoRA phases 1, 2, 3 on child
voices -> comparison report. It is also the project's learning test: on held-out child speakers
the adapted model must beat the base it started from (LoRA on an untrained base learns nothing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def submit(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "tools/submit.py", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def cer(summary: dict, model: str, test_set: str) -> float:
    entry = next(m for m in summary["models"] if m["name"] == model)
    return entry["results"][test_set]["metrics"]["cer"]["value"]


SMOKE = ("--phase", "all", "--rank", "32", "--local", "--preset", "smoke")


def test_the_smoke_chain_passes_the_trainers_argument_check(tmp_path):
    done = submit(*SMOKE, "--storage", str(tmp_path), "--dry-run", timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pretrain-base" in done.stdout and "--fractions 0.3 0.6 1" in done.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_smoke_chain_runs_end_to_end(tmp_path):
    """The embedded chain at the smoke preset's size (its `smoke_data`): every step runs, nothing is learnt."""
    done = submit(*SMOKE, "--storage", str(tmp_path), timeout=540)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    [report] = list(tmp_path.glob("smoke-*/report"))
    assert (report / "comparison.md").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.timeout(1500 + 600 + 300)  # above the two runs' own limits, so theirs fire first, with the log
def test_small_demo_chain_learns_and_reports(tmp_path):
    storage = tmp_path / "runs"
    args = ("--phase", "all", "--rank", "32", "--local", "--preset", "demo-small", "--storage", str(storage))
    first = submit(*args, timeout=1500)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]

    [run_dir] = [p for p in storage.iterdir() if (p / "report").is_dir()]
    report = run_dir / "report"
    for name in ("comparison.md", "summary.json", "metrics_per_model.png", "cer_by_age.png"):
        assert (report / name).stat().st_size > 0, name
    for phase in (1, 2, 3):
        out = run_dir / "r32" / f"phase{phase}"
        assert (out / "checkpoint-best" / "COMPLETE").exists()
        assert json.loads((out / "metrics.json").read_text())
        assert list((out / "tensorboard").rglob("events.out.tfevents*")), f"no TensorBoard events for phase {phase}"
    # The runner ends by saying where everything is, and the headline table.
    assert "comparison.md" in first.stdout and "tensorboard --logdir" in first.stdout
    assert "| base |" in first.stdout and "| r32 |" in first.stdout

    summary = json.loads((report / "summary.json").read_text())
    child = summary["main_test_set"]
    base, p1, p2, p3 = (cer(summary, m, child) for m in ("base", "r32-p1", "r32-p2", "r32"))
    print(
        f"child CER: base {base:.3f} -> phase 1 {p1:.3f} -> phase 2 {p2:.3f} -> phase 3 {p3:.3f}; "
        f"adult CER of the base {cer(summary, 'base', 'adult'):.3f}"
    )
    assert p3 < base, (base, p3)
    assert min(p1, p2, p3) < base - 0.03, "the adapters should clearly improve on the base for child voices"
    # The curriculum never hands on a worse model: each phase starts by scoring the checkpoint it
    # warm-starts from, so its best on the child validation set is at least as good...
    val = [json.loads((run_dir / "r32" / f"phase{n}" / "metrics.json").read_text())["best"]["cer"] for n in (1, 2, 3)]
    assert val[0] >= val[1] >= val[2], val
    # ... and on the held-out child speakers it does not get worse by more than sampling noise
    # (a few utterances of one test speaker).
    assert p2 <= p1 + 0.02 and p3 <= p2 + 0.02, (p1, p2, p3)

    # Running the same command again resumes: every finished phase and the report are skipped.
    again = submit(*args, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.stdout.count("skipped") >= 4, again.stdout
