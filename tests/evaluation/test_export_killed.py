"""A user's `export` is killed (SIGKILL: OOM killer, node loss) while it writes: the rerun takes
over the dead process's lease, removes the partial model copy the killed one staged beside the
output (`.tmp-<name>-*`) and finishes; nothing hidden is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _export(adapter: str, output: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "trainer",
        "export",
        "--adapter",
        adapter,
        "--output",
        str(output),
        "--format",
        "hf",
        "onnx",
    ]


def test_rerun_after_export_killed_mid_write_cleans_its_staging(eval_models, tmp_path):
    output = tmp_path / "exports" / "exp"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed = subprocess.Popen(_export(eval_models["adapter"], output), cwd=REPO, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not list(output.parent.glob(".tmp-exp-*")) and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, "export finished before it could be killed mid-write"
    assert list(output.parent.glob(".tmp-exp-*")) and (output.parent / ".exp.lease").exists()

    rerun = subprocess.run(_export(eval_models["adapter"], output), cwd=REPO, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert (output / "model.safetensors").is_file() and (output / "onnx" / "model.onnx").is_file()
    assert sorted(p.name for p in output.parent.iterdir()) == ["exp"]  # no staging copy, no lease
