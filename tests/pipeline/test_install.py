"""The distribution works without the source checkout: `pip install .` into a fresh environment,
then `ko-child-asr-submit` run from another folder renders the same manifests as the checkout
(the k8s/ and charts/ templates travel as package data). An editable install renders too."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from trainer import exit_codes
from trainer.pipeline import submit_cli

REPO = Path(__file__).resolve().parents[2]
RUN = ["--phase", "all", "--rank", "16", "32", "--name", "installed", "--storage-pvc", "asr-data"]


def _fresh_env(root: Path) -> Path:
    """A new virtual environment whose dependencies come from this one (no downloads): a .pth
    line adds this environment's site-packages after its own, without running the .pth files
    there (so this checkout's own editable install stays out of it). Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "shared-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return python


def _install(python: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-build-isolation", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _render_with(script: Path, where: Path) -> dict[str, str]:
    """Run the console script in `where`, with nothing of the checkout on the path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [str(script), *RUN, "--render-only", "out"], cwd=where, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {p.name: p.read_text(encoding="utf-8") for p in sorted((where / "out").glob("*.yaml"))}


@pytest.mark.slow
def test_installed_and_editable_packages_render_what_the_checkout_renders(tmp_path: Path) -> None:
    expected_dir = tmp_path / "from-checkout"
    assert submit_cli.main([*RUN, "--render-only", str(expected_dir)]) == exit_codes.OK
    expected = {p.name: p.read_text(encoding="utf-8") for p in sorted(expected_dir.glob("*.yaml"))}
    assert len(expected) > 5

    installed = _fresh_env(tmp_path / "venv")
    _install(installed, ".")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert _render_with(installed.parent / "ko-child-asr-submit", elsewhere) == expected
    # It rendered from the package's own copy of the templates, not from this checkout.
    where = subprocess.run(
        [str(installed), "-c", "from trainer.pipeline import render; print(render.K8S_DIR, render.CHART_DIR)"],
        cwd=elsewhere,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(p).is_dir() and REPO not in Path(p).parents for p in where), where

    editable = _fresh_env(tmp_path / "venv-editable")
    _install(editable, "-e", ".")
    other = tmp_path / "other"
    other.mkdir()
    assert _render_with(editable.parent / "ko-child-asr-submit", other) == expected
