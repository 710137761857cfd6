"""`evaluate` end to end on synthetic speech: files, counts, skipped audio, batching."""

import json

import pytest

from trainer.data.manifest import load_manifest
from trainer.evaluation.config import EvalConfig
from trainer.evaluation.evaluate import METRICS_FILE, PREDICTIONS_FILE, evaluate, load_model, score_utterances
from trainer.evaluation.inference import length_sorted_batches, transcribe
from trainer.evaluation.metrics import METRICS
from trainer.model.transcriber import CtcTranscriber
from trainer.storage import MARKER

CFG = EvalConfig(num_workers=0, batch_seconds=8.0, bootstrap=200)


@pytest.fixture(scope="module")
def adapter_report(eval_models, eval_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate") / "adapter"
    report = evaluate(eval_models["adapter"], eval_corpus["test"], str(out), CFG, progress=False)
    return report, out


def test_writes_metrics_and_predictions(adapter_report):
    report, out = adapter_report
    assert json.loads((out / METRICS_FILE).read_text(encoding="utf-8")) == report
    assert (out / MARKER).is_file()  # published atomically, like a checkpoint
    predictions = [json.loads(line) for line in (out / PREDICTIONS_FILE).read_text(encoding="utf-8").splitlines()]
    assert len(predictions) == report["test_set"]["scored"] == 12
    assert all(p["hypothesis"] for p in predictions)  # random weights still emit characters
    for metric in METRICS:
        stat = report["metrics"][metric]
        # The headline is the corpus rate of the per-utterance edits written out.
        total = sum(p["errors"][metric] for p in predictions) / sum(p["ref_len"][metric] for p in predictions)
        assert stat["value"] == pytest.approx(total)
        assert stat["ci_low"] <= stat["value"] <= stat["ci_high"]
    model = report["model"]
    assert (model["kind"], model["r"], model["unit"]) == ("adapter", 4, "syllable")
    assert 0 < model["adapter_params"] < model["total_params"]
    assert report["speed"]["real_time_factor"] > 0


def test_the_trainers_validation_subset_scores_as_evaluate_does(adapter_report, eval_models, eval_corpus):
    """The trainer's validation scores CER and WER through score_utterances too (metrics ("cer",
    "wer")): the same references and per-utterance edits as the full evaluation wrote."""
    _, out = adapter_report
    predictions = [json.loads(line) for line in (out / PREDICTIONS_FILE).read_text(encoding="utf-8").splitlines()]
    rows = {row["utt_id"]: row for row in load_manifest(eval_corpus["test"])}
    scored = [rows[p["utt_id"]] for p in predictions]
    scores = score_utterances(
        load_model(eval_models["adapter"]).codec,
        [row["text"] for row in scored],
        [row.get("pronounced") for row in scored],
        [p["hypothesis"] for p in predictions],
        ("cer", "wer"),
    )
    assert scores.references == [p["reference"] for p in predictions]
    assert list(scores.edits) == ["cer", "wer"] and scores.phonemes == []
    for metric in ("cer", "wer"):
        assert [(e.errors, e.ref_len) for e in scores.edits[metric]] == [
            (p["errors"][metric], p["ref_len"][metric]) for p in predictions
        ]


def test_corrupt_audio_is_skipped_and_counted(adapter_report):
    report, _ = adapter_report
    test_set = report["test_set"]
    assert test_set["utterances"] == 13
    assert test_set["skipped"]["count"] == 1
    assert test_set["skipped"]["utt_ids"] == ["broken"]
    assert sum(test_set["skipped"]["by_reason"].values()) == 1


def test_breakdown_counts_add_up_to_the_scored_set(adapter_report):
    report, _ = adapter_report
    for dimension, groups in report["breakdowns"].items():
        assert sum(g["count"] for g in groups.values()) == report["test_set"]["scored"], dimension
        for group in groups.values():
            assert set(METRICS) <= set(group)
    assert list(report["breakdowns"]["age_group"]) == ["3-5", "6-7", "unknown"]
    assert report["breakdowns"]["age_group"]["unknown"]["count"] == 1


def test_batched_transcripts_equal_one_at_a_time(eval_models, eval_corpus):
    rows = load_manifest(eval_corpus["test"])
    loaded = load_model(eval_models["adapter"])
    transcriber = CtcTranscriber(loaded.model, loaded.codec)
    # Batched with audio read by two worker processes vs one at a time in this process.
    batched = transcribe(transcriber, rows, max_batch_seconds=60.0, num_workers=2, progress=False)
    single = transcribe(transcriber, rows, max_batch_seconds=0.01, num_workers=0, progress=False)
    assert len(length_sorted_batches([r["duration"] for r in rows], 60.0)) < len(rows)
    assert batched.hypotheses == single.hypotheses
    assert len(batched.hypotheses) == len(rows) - 1
    assert batched.skipped == single.skipped and list(batched.skipped) == ["broken"]


def test_length_sorted_batches_respect_the_padded_budget():
    durations = [3.0, 0.5, 7.0, 1.0, 1.2, 2.9, 9.5, 0.7]
    batches = length_sorted_batches(durations, 6.0)
    assert sorted(i for b in batches for i in b) == list(range(len(durations)))
    flat = [durations[i] for b in batches for i in b]
    assert flat == sorted(durations, reverse=True)
    for batch in batches:
        padded = len(batch) * max(durations[i] for i in batch)
        assert padded <= 6.0 or len(batch) == 1
