"""README.md of an export: Hugging Face model-card metadata and the facts it is built from."""

import json
import shutil

import pytest

from trainer.data.manifest import load_manifest
from trainer.evaluation.breakdown import data_summary
from trainer.evaluation.config import EvalConfig
from trainer.evaluation.evaluate import evaluate
from trainer.evaluation.export import export_merged
from trainer.evaluation.model_card import CARD_FILE
from trainer.exit_codes import ConfigError


def test_data_summary_counts_hours_speakers_and_ages():
    rows = [
        {"duration": 1800.0, "speaker_id": "a", "age": 5, "gender": "F"},
        {"duration": 1800.0, "speaker_id": "a", "age": 5, "gender": "F"},
        {"duration": 3600.0, "speaker_id": "b", "age": 9, "gender": "M"},
        {"duration": 360.0, "speaker_id": "c", "age": None, "gender": None},
    ]
    summary = data_summary(rows)
    assert summary["hours"] == pytest.approx(2.1) and (summary["utterances"], summary["speakers"]) == (4, 3)
    assert summary["utterances_by_age_group"] == {"3-5": 2, "8-10": 1, "unknown": 1}
    assert summary["utterances_by_gender"] == {"female": 2, "male": 1, "unknown": 1}


def test_model_card_has_metadata_training_data_and_test_metrics(eval_models, eval_corpus, tmp_path):
    from huggingface_hub import ModelCard

    # An adapter checkpoint as training leaves it: its metrics.json summarises the training manifest.
    adapter = tmp_path / "checkpoint-best"
    shutil.copytree(eval_models["adapter"], adapter)
    train_rows = load_manifest(eval_corpus["all"])
    metrics = {
        "phase": 3,
        "steps": 10,
        "metric": "cer",
        "best": {"step": 8, "cer": 0.123},
        "train_data": data_summary(train_rows),
    }
    (adapter / "metrics.json").write_text(json.dumps(metrics))
    test = tmp_path / "test-eval"
    report = evaluate(
        str(adapter), eval_corpus["test"], str(test), EvalConfig(num_workers=0, bootstrap=20), progress=False
    )

    out = tmp_path / "export"
    export_merged(str(adapter), str(out), ["hf", "onnx-int8"], test_report=str(test), license="apache-2.0")
    card = ModelCard.load(out / CARD_FILE)
    data = card.data
    assert (data.language, data.license, data.pipeline_tag) == ("ko", "apache-2.0", "automatic-speech-recognition")
    assert data.base_model is None  # a local base folder is no Hub id
    assert {"lora", "children-speech", "onnx"} <= set(data.tags)
    results = {r.metric_type: r.metric_value for r in data.eval_results}
    assert results["cer"] == pytest.approx(round(100 * report["metrics"]["cer"]["value"], 2))
    assert set(results) == {"cer", "wer", "per"}
    text = card.text
    assert "rank 4" in text and eval_models["base"] in text
    hours = sum(r["duration"] for r in train_rows) / 3600
    speakers = len({r["speaker_id"] for r in train_rows})
    assert f"{hours:.2f} h, {len(train_rows)} utterances from {speakers} speakers" in text
    assert "best validation CER 12.3% at step 8" in text
    for group, stats in report["breakdowns"]["age_group"].items():
        assert f"| {group} | {stats['count']} |" in text
    assert "## Intended use and limits" in text and "## Licence notes" in text
    assert "`onnx/model_quantized.onnx`" in text and "`onnx/model.onnx`" not in text


def test_model_card_says_what_is_missing(eval_models, tmp_path):
    out = tmp_path / "export"
    export_merged(eval_models["adapter"], str(out))
    text = (out / CARD_FILE).read_text(encoding="utf-8")
    assert text.startswith("---\n") and "language: ko" in text
    assert "Not recorded" in text and "no test metrics" in text
    with pytest.raises(ConfigError, match="test_report"):
        export_merged(eval_models["adapter"], str(tmp_path / "x"), test_report=str(tmp_path / "missing"))
