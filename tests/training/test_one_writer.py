"""A user starts a second `train` on the output folder a first one is still writing (a rerun by
hand, a replacement pod while the old one lives on): the second exits 75 at once with one `error:`
line naming the first's process, touches nothing, and the first goes on undisturbed; once the first
has stopped, the same command resumes its checkpoint."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from trainer import exit_codes
from trainer.lease import lease_uri

from .helpers import REPO, cli_env, run_cli, smoke_args
from .test_exit_codes import assert_one_error_line


def test_second_trainer_on_a_busy_output_exits_75_naming_the_first(smoke_data, tmp_path):
    output = tmp_path / "run"
    args = smoke_args(smoke_data, output, "--max-steps", "400", "--save-steps", "2", "--eval-steps", "400")
    first = subprocess.Popen(
        [sys.executable, "-m", "trainer", *args], cwd=REPO, env=cli_env(), stderr=subprocess.PIPE, text=True
    )
    try:
        log = []
        for line in first.stderr:  # type: ignore[union-attr]
            log.append(line)
            if "step 4/" in line:  # training, and checkpoints are being written
                break
        assert first.poll() is None, "".join(log)[-3000:]
        lease = json.loads(open(lease_uri(str(output)), encoding="utf-8").read())
        assert lease["pid"] == first.pid

        second = run_cli(args)
        assert_one_error_line(second, exit_codes.PREEMPTED, f"process {first.pid}", str(output))
        assert first.poll() is None  # undisturbed
        first.send_signal(signal.SIGTERM)
        rest = first.stderr.read()  # type: ignore[union-attr]
        assert first.wait(timeout=120) == exit_codes.PREEMPTED, rest[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
    assert "Traceback" not in "".join(log) + rest
    saved = max(int(p.name.split("-")[1]) for p in output.glob("checkpoint-[0-9]*"))

    again = run_cli(smoke_args(smoke_data, output, "--max-steps", str(saved + 1), "--eval-steps", "400"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming from {output}/checkpoint-{saved}" in again.stderr
    assert not (tmp_path / ".run.lease").exists()  # released
