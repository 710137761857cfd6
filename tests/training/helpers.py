"""Helpers shared by the trainer tests: running the CLI and the smoke data's arguments."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from trainer.runtime_env import with_cpu_env

REPO = Path(__file__).resolve().parents[2]


def smoke_settings(data: Path, output: str | Path, **changes: Any) -> dict[str, Any]:
    """The smoke preset's files on the session's smoke data, as TrainConfig fields (`changes`: other
    fields, or other values for these)."""
    prepared = data / "prepared"
    return {
        "output": str(output),
        "train_manifest": str(prepared / "train.jsonl"),
        "val_manifest": str(prepared / "val.jsonl"),
        "vocab": str(prepared),
        "model": str(data / "base"),
        **changes,
    }


def smoke_args(data: Path, output: str | Path, *extra: str, command: str = "train", **changes: Any) -> list[str]:
    """`command` arguments for the smoke preset on the session's smoke data (`smoke_settings`, each
    field as its flag; a field changed to None is left out), then `extra`."""
    flags = [
        text
        for field, value in smoke_settings(data, output, **changes).items()
        if value is not None
        for text in (f"--{field.replace('_', '-')}", str(value))
    ]
    return [command, "--preset", "smoke", *flags, *extra]


def smoke_config(data: Path, output: str | Path, **overrides: Any):
    """The resolved smoke-preset TrainConfig on the session's smoke data (`overrides`: its fields)."""
    from trainer.training.configure import resolve

    return resolve("train", "smoke", None, smoke_settings(data, output, **overrides))


def cli_env(**extra: str) -> dict[str, str]:
    return {**with_cpu_env(os.environ), "PYTHONPATH": str(REPO), **extra}


def run_interrupted(
    cmd: list[str], step: int, env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[int, str]:
    """Run `cmd` (a training command), send it SIGTERM once it logs `step`; its exit code and log."""
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env or cli_env(), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    head = []
    for line in proc.stderr:  # type: ignore[union-attr]
        head.append(line)
        if re.search(rf"step {step}/\d+ ", line):
            proc.send_signal(signal.SIGTERM)
            break
    log = "".join(head) + proc.stderr.read()  # type: ignore[union-attr]
    return proc.wait(timeout=timeout), log


def run_cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trainer", *args],
        cwd=REPO,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


WEIGHT_FILES = ("adapter_model.safetensors", "ema_state.safetensors")


def assert_same_weights(a: Path, b: Path, steps: int) -> None:
    """The final and best checkpoints of two runs hold bit-identical adapter and EMA weights."""
    import torch
    from safetensors.torch import load_file

    for sub in (f"checkpoint-{steps}", "checkpoint-best"):
        for name in WEIGHT_FILES:
            left, right = load_file(str(a / sub / name)), load_file(str(b / sub / name))
            assert left.keys() == right.keys()
            for key in left:
                assert torch.equal(left[key], right[key]), f"{sub}/{name}: {key} differs"
