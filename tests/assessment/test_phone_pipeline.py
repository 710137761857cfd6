"""A phone-unit model from end to end through the command line, as a user runs it: a synthetic
corpus whose children mispronounce, `data prepare --unit phone`, a few `train` steps, `evaluate`
(PER on the model's own phones), `assess --calibrate` on the validation set and `assess
--calibration` with its threshold."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("g2pk", reason="g2pk not installed")

from tests.training.helpers import run_cli, smoke_args  # noqa: E402
from trainer.assessment.assess import CALIBRATION_FILE, REPORT_FILE, SUMMARY_FILE  # noqa: E402
from trainer.data.manifest import load_manifest  # noqa: E402


def ok(args: list[str]) -> None:
    done = run_cli([str(a) for a in args])
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_a_phone_model_trained_through_the_cli_is_evaluated_and_assessed(tmp_path):
    from trainer.data.synth import synthesize_corpus
    from trainer.training.smoke import make_random_base

    corpus, prepared, run = tmp_path / "corpus", tmp_path / "prepared", tmp_path / "run"
    synthesize_corpus(corpus, 4, 0, 3, seed=7, workers=1, mispronounce_rate=0.3)
    split = ["--val-fraction", "0.25", "--test-fraction", "0.25", "--fractions", "1.0", "--curriculum-source", "all"]
    ok(["data", "prepare", "--root", corpus, "--out", prepared, "--unit", "phone", *split])
    assert json.loads((prepared / "text_units.json").read_text())["unit"] == "phone"
    make_random_base(prepared, tmp_path / "base", seed=0)
    # smoke_args reads tmp_path as the smoke data: prepared/ and base/ below it.
    ok(smoke_args(tmp_path, run, "--max-steps", "2", "--eval-steps", "2", "--save-steps", "2"))
    model = run / "checkpoint-best"

    ok(["evaluate", "--model", model, "--manifest", prepared / "test.jsonl", "--output", tmp_path / "eval"])
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["model"]["unit"] == "phone" and metrics["g2p"].startswith("model-phones")
    assert "per" in metrics["metrics"]

    # The training split for both: a few-utterance corpus's validation and test prompts hold
    # phones its vocabulary (built from the training transcripts) lacks; this checks the plumbing.
    calibrate = ["--manifest", prepared / "train.jsonl", "--output", tmp_path / "cal", "--calibrate"]
    ok(["assess", "--model", model, *calibrate])
    threshold = json.loads((tmp_path / "cal" / CALIBRATION_FILE).read_text(encoding="utf-8"))["threshold"]
    test = ["--manifest", prepared / "train.jsonl", "--output", tmp_path / "test", "--calibration", tmp_path / "cal"]
    ok(["assess", "--model", model, *test])
    summary = json.loads((tmp_path / "test" / SUMMARY_FILE).read_text(encoding="utf-8"))
    assert summary["threshold"]["value"] == threshold
    # Every row is assessed or skipped with its reason (a prompt phone only a mispronunciation
    # removed from the transcripts is not in the vocabulary).
    assert summary["utterances"] > 0
    assert summary["utterances"] + summary["skipped"]["count"] == len(load_manifest(prepared / "train.jsonl"))
    assert "ground_truth" in summary and (tmp_path / "test" / REPORT_FILE).is_file()
