"""Two-process DDP on CPU (torchrun, gloo): the run completes and its checkpoint loads."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from .helpers import REPO, cli_env, smoke_args


@pytest.mark.slow
def test_two_process_gloo_run_completes_and_checkpoint_loads(smoke_data, tmp_path):
    from trainer.model import load_adapter_checkpoint
    from trainer.training.checkpoint import RNG_FILE

    output = tmp_path / "ddp"
    args = smoke_args(smoke_data, output, "--max-batch-seconds", "6", "--num-workers", "0")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "trainer", *args],
        cwd=REPO, env=cli_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "2 processes" in result.stderr
    assert (output / "checkpoint-6" / "COMPLETE").is_file()
    # Each rank's random state is saved, so a DDP run resumes exactly too.
    assert len(torch.load(output / "checkpoint-6" / RNG_FILE, weights_only=False)) == 2

    model, processor = load_adapter_checkpoint(output / "checkpoint-best")
    silence = processor.feature_extractor([[0.0] * 16000], sampling_rate=16000, return_tensors="pt")
    logits = model(silence.input_values).logits
    assert logits.shape[-1] == len(processor.tokenizer) and torch.isfinite(logits).all()
