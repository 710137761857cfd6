"""Preemption safety: SIGTERM -> checkpoint + exit 75, and a re-run ends with bit-identical
weights to an uninterrupted run; checkpoints without a completion marker are never resumed."""

from __future__ import annotations

import re
import shutil
import sys

import pytest

from trainer import exit_codes

from .helpers import assert_same_weights, run_cli, run_interrupted, smoke_args

# Randomness everywhere a resume could lose it: dropout (torch RNG), SpecAugment masks (numpy
# RNG), speed perturbation (per-utterance generators), shuffled batches, loader workers.
STEPS = 30
EXTRA = (
    "--max-steps",
    str(STEPS),
    "--save-steps",
    "10",
    "--eval-steps",
    "10",
    "--log-steps",
    "1",
    "--mask-time-prob",
    "0.3",
    "--lora-dropout",
    "0.1",
    "--num-workers",
    "1",
)


@pytest.fixture(scope="module")
def uninterrupted(smoke_data, tmp_path_factory):
    output = tmp_path_factory.mktemp("uninterrupted") / "run"
    result = run_cli(smoke_args(smoke_data, output, *EXTRA))
    assert result.returncode == 0, result.stderr[-3000:]
    return output


@pytest.mark.slow
def test_sigterm_then_rerun_gives_bit_identical_weights(smoke_data, uninterrupted, tmp_path):
    output = tmp_path / "run"
    code, log = run_interrupted([sys.executable, "-m", "trainer", *smoke_args(smoke_data, output, *EXTRA)], step=3)
    assert code == exit_codes.PREEMPTED, log[-3000:]
    saved = re.search(r"preempted: saved step (\d+)", log)
    assert saved and int(saved.group(1)) < STEPS
    assert (output / f"checkpoint-{saved.group(1)}" / "COMPLETE").is_file()

    resumed = run_cli(smoke_args(smoke_data, output, *EXTRA))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {output}/checkpoint-{saved.group(1)} at step {saved.group(1)}" in resumed.stderr
    assert_same_weights(uninterrupted, output, STEPS)


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
    assert_same_weights(uninterrupted, output, STEPS)
