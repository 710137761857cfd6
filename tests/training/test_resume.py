"""Preemption safety: SIGTERM -> checkpoint + exit 75, and a re-run ends with bit-identical
weights to an uninterrupted run; checkpoints without a completion marker are never resumed."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from .helpers import REPO, cli_env, run_cli, smoke_args
from trainer import exit_codes

# Randomness everywhere a resume could lose it: dropout (torch RNG), SpecAugment masks (numpy
# RNG), speed perturbation (per-utterance generators), shuffled batches, loader workers.
STEPS = 30
EXTRA = (
    "--max-steps", str(STEPS), "--save-steps", "10", "--eval-steps", "10", "--log-steps", "1",
    "--mask-time-prob", "0.3", "--lora-dropout", "0.1", "--num-workers", "1",
)
WEIGHT_FILES = ("adapter_model.safetensors", "ema_state.safetensors")


def assert_same_weights(a, b) -> None:
    for sub in (f"checkpoint-{STEPS}", "checkpoint-best"):
        for name in WEIGHT_FILES:
            left, right = load_file(str(a / sub / name)), load_file(str(b / sub / name))
            assert left.keys() == right.keys()
            for key in left:
                assert torch.equal(left[key], right[key]), f"{sub}/{name}: {key} differs"


@pytest.fixture(scope="module")
def uninterrupted(smoke_data, tmp_path_factory):
    output = tmp_path_factory.mktemp("uninterrupted") / "run"
    result = run_cli(smoke_args(smoke_data, output, *EXTRA))
    assert result.returncode == 0, result.stderr[-3000:]
    return output


@pytest.mark.slow
def test_sigterm_then_rerun_gives_bit_identical_weights(smoke_data, uninterrupted, tmp_path):
    output = tmp_path / "run"
    args = [sys.executable, "-m", "trainer", *smoke_args(smoke_data, output, *EXTRA)]
    proc = subprocess.Popen(args, cwd=REPO, env=cli_env(), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    for line in proc.stderr:
        if re.search(rf"step 3/{STEPS} ", line):
            proc.send_signal(signal.SIGTERM)
            break
    log = proc.stderr.read()
    assert proc.wait(timeout=120) == exit_codes.PREEMPTED, log[-3000:]
    saved = re.search(r"preempted: saved step (\d+)", log)
    assert saved and int(saved.group(1)) < STEPS
    assert (output / f"checkpoint-{saved.group(1)}" / "COMPLETE").is_file()

    resumed = run_cli(smoke_args(smoke_data, output, *EXTRA))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {output}/checkpoint-{saved.group(1)} at step {saved.group(1)}" in resumed.stderr
    assert_same_weights(uninterrupted, output)


@pytest.mark.slow
def test_checkpoints_without_marker_are_ignored(smoke_data, uninterrupted, tmp_path):
    output = tmp_path / "run"
    shutil.copytree(uninterrupted, output)
    # The newest checkpoint lost its marker (crash during save), plus leftovers of a crashed write.
    (output / f"checkpoint-{STEPS}" / "COMPLETE").unlink()
    shutil.copytree(output / f"checkpoint-{STEPS}", output / "checkpoint-40")
    (output / ".tmp-checkpoint-50-x").mkdir()

    result = run_cli(smoke_args(smoke_data, output, *EXTRA))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resuming from {output}/checkpoint-20 at step 20" in result.stderr
    assert not (output / ".tmp-checkpoint-50-x").exists()
    assert_same_weights(uninterrupted, output)
