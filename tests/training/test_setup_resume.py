"""Interrupted setup steps restart cleanly when rerun: a SIGKILL while `smoke-data` builds the smoke
preset's data, or while `data synth` writes its first file, leaves nothing the next run refuses."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from trainer.data.synth import synthesize_corpus
from trainer.data.synth.corpus import SUMMARY_FILE
from trainer.training.smoke import READY

from .helpers import REPO, cli_env, run_cli, smoke_args


@pytest.mark.slow
def test_smoke_data_build_killed_then_rerun_succeeds(tmp_path):
    data = tmp_path / "smoke-data"
    args = ["smoke-data", "--out", str(data)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainer", *args],
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not any(data.rglob("*.wav")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # in the middle of synthesising the corpus
    proc.wait()
    assert any(data.rglob("*.wav")) and not (data / READY).exists()

    result = run_cli(args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (data / READY).is_file() and (data / "base" / "config.json").is_file()
    output = tmp_path / "run"
    trained = run_cli(smoke_args(data, output, "--max-steps", "1", "--eval-steps", "1"))
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert (output / "checkpoint-1" / "COMPLETE").is_file()
    again = run_cli(args)
    assert again.returncode == 0 and "nothing to do" in again.stderr


def test_synth_killed_while_writing_its_first_file_restarts(tmp_path):
    out = tmp_path / "corpus"
    out.mkdir()
    (out / f".{SUMMARY_FILE}.k1ll3d.tmp").write_text('{"par')  # what atomic_write leaves on SIGKILL
    summary = synthesize_corpus(out, 1, 0, 1, seed=0)
    assert summary["complete"] and summary["utterances"] == 1
