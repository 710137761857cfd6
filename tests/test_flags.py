"""A user mistypes a flag or gives a value of the wrong type: every entry point (`python -m trainer`,
`tools/submit.py`, the console scripts, the orchestrator) exits 78 with one `error:` line naming
the flag, as the README's exit-code list promises, not argparse's usage block and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainer import exit_codes

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("cmd", "named"),
    [
        ([sys.executable, "-m", "trainer", "train", "--learnig-rate", "1e-4"], "--learnig-rate"),
        ([sys.executable, "-m", "trainer", "data", "split", "--seed", "seven"], "--seed"),
        ([sys.executable, "-m", "trainer", "evaluat"], "evaluat"),
        ([sys.executable, "tools/submit.py", "--local", "--gpus", "two"], "--gpus"),
        ([sys.executable, "tools/submit.py", "status"], "run"),
        ([str(BIN / "ko-child-asr"), "export", "--adapter", "a", "--output", "o", "--fromat", "onnx"], "--fromat"),
        ([str(BIN / "ko-child-asr-submit"), "--phaze", "1"], "--phaze"),
        ([sys.executable, "-m", "trainer.pipeline.orchestrator", "run"], "--plan-dir"),
    ],
    ids=[
        "trainer-typo",
        "trainer-not-a-number",
        "trainer-command",
        "submit-not-a-number",
        "submit-missing",
        "console-trainer",
        "console-submit",
        "orchestrator-missing",
    ],
)
def test_mistyped_flag_exits_78_with_one_error_line(cmd, named):
    if not Path(cmd[0]).is_file():
        pytest.skip(f"{cmd[0]}: console script not installed")
    result = _run(cmd)
    assert result.returncode == exit_codes.CONFIG_ERROR, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert named in lines[0]


def test_help_still_exits_0():
    result = _run([sys.executable, "-m", "trainer", "train", "--help"])
    assert result.returncode == 0 and "--learning-rate" in result.stdout
