"""Every model in a comparison is scored on the same test rows: what a model cannot write
(characters outside its vocabulary, more labels than its frames) is its error, not a skip."""

import pytest

from trainer.compare import REPORT_FILE, check_same_rows, compare
from trainer.data.manifest import load_manifest, write_manifest
from trainer.evaluation.config import EvalConfig
from trainer.evaluation.random_models import write_random_models
from trainer.exit_codes import ConfigError

CFG = EvalConfig(num_workers=0, batch_seconds=8.0, bootstrap=50)
TINY = dict(hidden_size=32, num_layers=2, num_heads=2, conv_channels=32)


def test_models_with_different_vocabularies_are_scored_on_the_same_rows(eval_models, eval_corpus, tmp_path):
    rows = load_manifest(eval_corpus["test"])
    # A vocabulary of one syllable: most test rows are all [UNK] for this model, the rest mostly so.
    one_syllable = write_random_models(tmp_path / "narrow", ["가"], rank=4, frozen_layers=1, lora_std=0.5, **TINY)
    # More labels than any model's frames for its clip: no model can write it in full.
    chatty = {**rows[0], "utt_id": "chatty", "text": "가나다라마바사 " * 40}
    manifest = tmp_path / "test.jsonl"
    write_manifest([*rows, chatty], manifest)

    summary = compare(
        {"wide": eval_models["base"], "narrow": one_syllable["base"]},
        {"test": str(manifest)},
        str(tmp_path / "report"),
        CFG,
        progress=False,
    )

    results = {m["name"]: m["results"]["test"] for m in summary["models"]}
    # All rows but the unreadable one, for both models.
    assert results["wide"]["scored"] == results["narrow"]["scored"] == len(rows)
    assert results["wide"]["skipped"] == results["narrow"]["skipped"] == 1
    narrow_limits = results["narrow"]["model_limits"]["by_reason"]
    assert narrow_limits["all_unknown"] > 0 and narrow_limits["labels_too_long"] == 1
    assert results["wide"]["model_limits"]["by_reason"] == {"labels_too_long": 1}
    # The narrow model pays for what it cannot write.
    assert results["narrow"]["metrics"]["cer"]["value"] >= 0.9
    report = (tmp_path / "report" / REPORT_FILE).read_text(encoding="utf-8")
    assert "Rows a model cannot write in full, scored as its errors: wide: labels_too_long 1; narrow: " in report


def _report(sha: str, skipped: list[str]) -> dict:
    return {"test_set": {"sha256": sha, "skipped": {"utt_ids": skipped}}}


def test_compare_refuses_models_scored_on_different_rows():
    same = {"a": {"test": _report("s", ["x"])}, "b": {"test": _report("s", ["x"])}}
    check_same_rows(same)
    with pytest.raises(
        ConfigError, match=r"'test': b and a were scored on different rows \(1 skipped by one only, first y\)"
    ):
        check_same_rows({**same, "b": {"test": _report("s", ["x", "y"])}})
    with pytest.raises(ConfigError, match="different manifests"):
        check_same_rows({**same, "b": {"test": _report("t", ["x"])}})
