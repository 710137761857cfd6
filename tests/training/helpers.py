"""Helpers shared by the trainer tests: running the CLI and the smoke data's arguments."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from trainer.runtime_env import with_cpu_env

REPO = Path(__file__).resolve().parents[2]


def smoke_args(data: Path, output: str | Path, *extra: str) -> list[str]:
    """`train` arguments for the smoke preset on the session's smoke data."""
    prepared = data / "prepared"
    return [
        "train", "--preset", "smoke", "--output", str(output),
        "--train-manifest", str(prepared / "train.jsonl"), "--val-manifest", str(prepared / "val.jsonl"),
        "--vocab", str(prepared), "--model", str(data / "base"), *extra,
    ]


def cli_env(**extra: str) -> dict[str, str]:
    return {**with_cpu_env(os.environ), "PYTHONPATH": str(REPO), **extra}


def run_cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trainer", *args], cwd=REPO, env=env or cli_env(), capture_output=True, text=True, timeout=timeout
    )
