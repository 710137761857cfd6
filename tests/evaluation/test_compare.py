"""`compare`: the same test sets through several models into summary.json, comparison.md and
charts; finished runs are reused."""

import json

from peft.tuners.tuners_utils import BaseTuner

from trainer.compare import REPORT_FILE, SUMMARY_FILE, compare, run_dir
from trainer.data.manifest import load_manifest, write_manifest
from trainer.evaluation.config import EvalConfig
from trainer.evaluation.evaluate import METRICS_FILE
from trainer.evaluation.export import export_merged
from trainer.evaluation.report import AGE_CHART, METRICS_CHART

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CFG = EvalConfig(num_workers=0, batch_seconds=8.0, bootstrap=200)


def test_compare_writes_report_and_reuses_finished_runs(eval_models, eval_corpus, tmp_path, monkeypatch):
    merged = tmp_path / "merged"
    export_merged(eval_models["adapter"], str(merged))
    merges = []
    merge = BaseTuner.merge_and_unload
    monkeypatch.setattr(BaseTuner, "merge_and_unload", lambda self, *a, **kw: merges.append(1) or merge(self, *a, **kw))
    models = {"base": eval_models["base"], "r4": eval_models["adapter"], "r4-merged": str(merged)}
    adult = tmp_path / "adult.jsonl"
    write_manifest(load_manifest(eval_corpus["adult"]), adult)  # absolute audio paths
    test_sets = {"test": str(eval_corpus["test"]), "adult": str(adult)}
    out = tmp_path / "report"

    summary = compare(models, test_sets, str(out), CFG, progress=False)

    assert json.loads((out / SUMMARY_FILE).read_text(encoding="utf-8")) == summary
    for chart in (METRICS_CHART, AGE_CHART):
        assert (out / chart).read_bytes()[:8] == PNG_MAGIC
    entries = {m["name"]: m for m in summary["models"]}
    assert list(entries) == list(models)
    assert summary["baseline"] == "base" and entries["base"]["relative_speed"] == 1.0
    assert entries["r4"]["r"] == entries["r4-merged"]["r"] == 4
    # The adapter's speed is also taken merged (what is shipped), on the same utterances, with the
    # same transcripts; models that are not adapters have only one speed.
    assert entries["r4"]["relative_speed_merged"] > 0
    assert entries["r4"]["results"]["test"]["speed"]["merged_differing"] == 0
    assert "merged_differing" not in entries["r4"]["results"]["adult"]["speed"]  # timed on the main set only
    assert len(merges) == 1  # the adapter is merged once
    assert entries["base"]["relative_speed_merged"] is None and entries["r4-merged"]["relative_speed_merged"] is None
    assert entries["r4"]["results"]["test"]["metrics"] == entries["r4-merged"]["results"]["test"]["metrics"]
    assert entries["r4"]["results"]["test"]["metrics"] != entries["base"]["results"]["test"]["metrics"]
    assert entries["base"]["results"]["adult"]["scored"] == 6
    assert entries["base"]["results"]["test"]["skipped"] == 1

    report = (out / REPORT_FILE).read_text(encoding="utf-8")
    assert "| Model | r | Unit | Parameters | WER | sWER | CER | JER | PER | Inference speed |" in report
    assert "## CER per test set" in report and "adult (6 utt.)" in report
    assert "## CER by age group" in report and "| Model | 3-5 | 6-7 | unknown |" in report
    for name in models:
        assert f"| {name} |" in report
    adapter_row = next(line for line in report.splitlines() if line.startswith("| r4 |"))  # the first table's
    assert adapter_row.count("(unmerged ") == 1

    # Second run: nothing changed, every run reused; a changed test set is evaluated again.
    stamps = {(m, s): (out / "runs" / m / s / METRICS_FILE).stat().st_mtime_ns for m in models for s in test_sets}
    compare(models, test_sets, str(out), CFG, progress=False)
    assert stamps == {
        (m, s): (out / "runs" / m / s / METRICS_FILE).stat().st_mtime_ns for m in models for s in test_sets
    }
    write_manifest(load_manifest(adult)[:3], adult)
    again = compare(models, test_sets, str(out), CFG, progress=False)
    assert all(m["results"]["adult"]["scored"] == 3 for m in again["models"])
    assert (out / "runs" / "base" / "test" / METRICS_FILE).stat().st_mtime_ns == stamps[("base", "test")]
    # A model re-exported at the same path is evaluated again.
    export_merged(eval_models["adapter"], str(merged))
    compare(models, test_sets, str(out), CFG, progress=False)
    assert (out / "runs" / "r4-merged" / "test" / METRICS_FILE).stat().st_mtime_ns != stamps[("r4-merged", "test")]
    assert (out / "runs" / "r4" / "test" / METRICS_FILE).stat().st_mtime_ns == stamps[("r4", "test")]
    assert run_dir(str(out), "base", "adult") == str(out / "runs" / "base" / "adult")
