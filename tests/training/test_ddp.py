"""Two-process DDP on CPU (gloo) through `python -m trainer.torchrun`, the launcher the multi-GPU
Jobs use: the run completes and its checkpoint loads, SIGTERM then a rerun ends with the same
weights as an uninterrupted run, and the trainer's exit codes reach the Job."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

from trainer import exit_codes
from trainer.torchrun import job_exit_code

from .helpers import REPO, assert_same_weights, cli_env, run_interrupted, smoke_args

STEPS = 16
# Dropout, SpecAugment and a loader worker per process: randomness a resume must restore per rank.
EXTRA = (
    "--max-batch-seconds",
    "6",
    "--num-workers",
    "1",
    "--max-steps",
    str(STEPS),
    "--save-steps",
    "8",
    "--eval-steps",
    "8",
    "--log-steps",
    "1",
    "--mask-time-prob",
    "0.3",
    "--lora-dropout",
    "0.1",
)


def torchrun(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "trainer.torchrun", "--nproc-per-node", "2", "-m", "trainer", *args]


def run_ddp(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        torchrun(args), cwd=REPO, env=cli_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def uninterrupted(smoke_data, tmp_path_factory):
    output = tmp_path_factory.mktemp("ddp") / "run"
    result = run_ddp(smoke_args(smoke_data, output, *EXTRA))
    assert result.returncode == 0, result.stderr[-4000:]
    assert "2 processes" in result.stderr
    return output


@pytest.mark.slow
def test_two_process_gloo_run_completes_and_checkpoint_loads(uninterrupted):
    from trainer.model import load_adapter_checkpoint
    from trainer.training.checkpoint import RNG_FILE

    assert (uninterrupted / f"checkpoint-{STEPS}" / "COMPLETE").is_file()
    # Each rank's random state is saved, so a DDP run resumes exactly too.
    assert len(torch.load(uninterrupted / f"checkpoint-{STEPS}" / RNG_FILE, weights_only=False)) == 2

    model, processor = load_adapter_checkpoint(uninterrupted / "checkpoint-best")
    silence = processor.feature_extractor([[0.0] * 16000], sampling_rate=16000, return_tensors="pt")
    logits = model(silence.input_values).logits
    assert logits.shape[-1] == len(processor.tokenizer) and torch.isfinite(logits).all()


@pytest.mark.slow
def test_sigterm_to_the_launcher_then_rerun_gives_bit_identical_weights(smoke_data, uninterrupted, tmp_path):
    output = tmp_path / "run"
    # As on Kubernetes: the signal goes to the launcher (the container's main process) only.
    code, log = run_interrupted(
        torchrun(smoke_args(smoke_data, output, *EXTRA)), step=3, env=cli_env(OMP_NUM_THREADS="1")
    )
    assert code == exit_codes.PREEMPTED, log[-4000:]
    assert "Traceback" not in log, log[-4000:]
    saved = [int(s) for s in re.findall(r"preempted: saved step (\d+)", log)]
    assert len(saved) == 2 and len(set(saved)) == 1, log[-4000:]  # both ranks stopped after the same step
    step = saved[0]
    assert step < STEPS

    resumed = run_ddp(smoke_args(smoke_data, output, *EXTRA))
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert f"resuming from {output}/checkpoint-{step} at step {step}" in resumed.stderr
    assert_same_weights(uninterrupted, output, STEPS)


def test_a_configuration_error_reaches_the_job_as_its_exit_code(smoke_data, tmp_path):
    result = run_ddp(smoke_args(smoke_data, tmp_path / "run", "--train-manifest", str(tmp_path / "missing.jsonl")))
    assert result.returncode == exit_codes.CONFIG_ERROR, result.stderr[-4000:]
    assert "missing.jsonl: manifest not found" in result.stderr


@pytest.mark.parametrize(
    ("worker_codes", "job_code"),
    [
        ([78, -15], exit_codes.CONFIG_ERROR),  # one rank's config error; torchrun stopped the other
        ([75, 75], exit_codes.PREEMPTED),
        ([75, 1], exit_codes.FAILED),  # one rank crashed: not a clean preemption
        ([-9], exit_codes.FAILED),
    ],
)
def test_job_exit_code(worker_codes, job_code):
    assert job_exit_code(worker_codes) == job_code
