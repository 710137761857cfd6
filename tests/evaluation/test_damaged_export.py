"""A user evaluates an export whose files were damaged in transit (a truncated merged model, an
empty config.json next to the ONNX graph): one `error:` line naming the file, exit 78, no
SafetensorError or JSONDecodeError traceback (trainer.model.artefact)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trainer import exit_codes

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exported(eval_models, tmp_path_factory) -> Path:
    from trainer.evaluation.export import export_merged

    out = tmp_path_factory.mktemp("damaged") / "exp"
    export_merged(eval_models["adapter"], str(out), ("hf", "onnx"))
    return out


def _truncate_weights(folder: Path) -> tuple[str, str]:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return str(folder), "model.safetensors"


def _empty_config_beside_onnx(folder: Path) -> tuple[str, str]:
    (folder / "config.json").write_text("", encoding="utf-8")
    return str(folder / "onnx" / "model.onnx"), "config.json: empty"


@pytest.mark.parametrize("damage", [_truncate_weights, _empty_config_beside_onnx], ids=["merged", "onnx"])
def test_evaluating_a_damaged_export_names_the_file(exported, eval_corpus, tmp_path, damage):
    folder = tmp_path / "exp"
    shutil.copytree(exported, folder)
    model, named = damage(folder)
    result = subprocess.run(
        [sys.executable, "-m", "trainer", "evaluate", "--model", model, "--manifest", str(eval_corpus["test"])]
        + ["--output", str(tmp_path / "eval")],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == exit_codes.CONFIG_ERROR, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert named in errors[0] and str(folder) in errors[0]
