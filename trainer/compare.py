"""`python -m trainer compare`: several models on the same test set(s) -> one report. Above both
trainer.evaluation and trainer.assessment (it runs evaluations and, with --assess, assessments).

Each (model, test set) pair is an ordinary evaluation in `DIR/runs/<model>/<test set>/`; a pair
whose finished metrics.json has the same fingerprint (model URI and files, manifest checksum,
G2P, chunking) is reused, so re-running an interrupted or extended comparison only evaluates what is missing.
Every model must have been scored on the same rows of each test set (`check_same_rows`; exit 78
otherwise): evaluation skips only rows that no model can be scored on.
Besides the main test set (`--manifest`, named "test") extra ones can be named
(`--manifest-extra adult=test_adult.jsonl`), e.g. to show the base model's gap between adult
and child speakers. Outputs in DIR:

    summary.json          every model's info, headline metrics per test set, breakdowns,
                          inference speed relative to the baseline (base) model (adapters:
                          also merged, as `trainer export` ships them; trainer.evaluation.speed),
                          confidence calibration
    comparison.md         the tables (model, r, unit, parameters, WER, sWER, CER, JER, PER, speed;
                          CER per test set; CER per age group; deployment formats: size on disk
                          and speed of merged / ONNX / int8 exports relative to the PyTorch
                          merged model; confidence calibration); written last, it marks a
                          finished comparison
    metrics_per_model.png, cer_by_age.png, calibration.png
    assessment/<model>/   with --assess: `trainer assess` of every phone-unit model on the main
                          test set (rows' `prompt`), summarised in comparison.md
    assessment-calibration/<model>/  with --assess-calibration MANIFEST: `trainer assess
                          --calibrate` on that labelled manifest, whose threshold the test uses

An export's ONNX files are models like any other (`--model int8=EXPORT/onnx/model_quantized.onnx`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from trainer import storage
from trainer.data.manifest import atomic_write, write_json
from trainer.evaluation.config import EvalConfig
from trainer.evaluation.evaluate import LoadedModel, evaluate, fingerprint, load_model, model_unit, read_report
from trainer.evaluation.g2p import g2p_for_unit, make_g2p
from trainer.evaluation.speed import relative_speeds
from trainer.exit_codes import ConfigError
from trainer.layout import ASSESSMENT_CALIBRATION_DIR, ASSESSMENT_DIR
from trainer.layout import COMPARISON_FILE as REPORT_FILE

MAIN_TEST_SET = "test"
SUMMARY_FILE = "summary.json"
_log = logging.getLogger(__name__)


def run_dir(output: str, model: str, test_set: str) -> str:
    return storage.join(output, "runs", model, test_set)


def compare(
    models: dict[str, str],
    test_sets: dict[str, str],
    output: str,
    cfg: EvalConfig,
    baseline: Optional[str] = None,
    progress: bool = True,
    assess_phones: bool = False,
    assess_calibration: Optional[str] = None,
    assess_speed: float = 1.0,
) -> dict[str, Any]:
    """Evaluate every model (name -> URI) on every test set (name -> manifest; the first is the
    main one) and write the comparison report into `output`. Returns the summary.

    `assess_phones`: also assess pronunciation with every phone-unit model on the main test set,
    with the decision threshold calibrated first on the labelled manifest `assess_calibration`, each
    recording played `assess_speed` times faster before the phone models (calibration included)."""
    if not models or not test_sets:
        raise ConfigError("compare: give at least one --model NAME=URI and a --manifest")
    if baseline is not None and baseline not in models:
        raise ConfigError(f"baseline: {baseline!r} is not one of the models ({', '.join(models)})")
    for set_name, manifest in test_sets.items():
        if not storage.local_file(manifest).is_file():
            raise ConfigError(f"test set {set_name!r}: manifest {manifest} not found")
    if assess_calibration and not assess_phones:
        raise ConfigError("--assess-calibration: calibrates the assessment; give --assess too")
    if assess_calibration and not storage.local_file(assess_calibration).is_file():
        raise ConfigError(f"--assess-calibration: manifest {assess_calibration} not found")
    if assess_speed != 1.0:
        from trainer.assessment.assess import check_speed

        if not assess_phones:
            raise ConfigError("--assess-speed: sets the assessment's speed; give --assess too")
        check_speed(assess_speed, "--assess-speed")
    g2p = make_g2p(cfg.g2p)
    units = {name: model_unit(uri) for name, uri in models.items()}
    if assess_phones and "phone" not in units.values():
        raise ConfigError("--assess: none of the models writes phones (train on `data prepare --unit phone`)")
    main = next(iter(test_sets))
    reports: dict[str, dict[str, dict]] = {}
    # Loaded once each, kept for the speed pass (an adapter's merged copy is made once too).
    loaded_models: dict[str, LoadedModel] = {}

    def loaded(name: str) -> LoadedModel:
        if name not in loaded_models:
            loaded_models[name] = load_model(models[name])
        return loaded_models[name]

    for name, uri in models.items():
        reports[name] = {}
        scorer = g2p_for_unit(units[name], g2p)
        for set_name, manifest in test_sets.items():
            where = run_dir(output, name, set_name)
            previous = read_report(where)
            if previous is not None and previous.get("fingerprint") == fingerprint(uri, manifest, scorer, cfg):
                _log.info("%s on %s: reusing %s", name, set_name, where)
                reports[name][set_name] = previous
                continue
            # The speed column reads the main test set: the merged copy is timed there only.
            reports[name][set_name] = evaluate(
                uri,
                manifest,
                where,
                cfg,
                g2p=scorer,
                loaded=loaded(name),
                progress=progress,
                time_merged=set_name == main,
            )
    check_same_rows(reports)

    baseline = pick_baseline(models, reports, main, baseline)
    speeds = relative_speeds({name: loaded(name) for name in models}, baseline, test_sets[main], cfg)
    summary = build_summary(models, test_sets, reports, baseline, speeds)
    if assess_phones:
        from trainer.assessment.assess import assess

        summary["assessments"] = {}
        for name, uri in models.items():
            if units[name] != "phone":
                continue
            calibration = None
            if assess_calibration:
                calibration = storage.join(output, ASSESSMENT_CALIBRATION_DIR, name)
                assess(uri, assess_calibration, calibration, cfg, progress=progress, calibrate=True, speed=assess_speed)
            assessed = assess(
                uri,
                test_sets[main],
                assessment_dir(output, name),
                cfg,
                progress=progress,
                calibration=calibration,
                speed=assess_speed,
            )
            summary["assessments"][name] = _assessment_headline(assessed)
    _publish_report(output, summary)
    return summary


def check_same_rows(reports: dict[str, dict[str, dict]]) -> None:
    """ConfigError unless, on each test set, every model was scored on the same rows (same
    manifest, same skipped rows): metrics over different subsets are not comparable."""
    first_name, first_runs = next(iter(reports.items()))
    for name, runs in reports.items():
        for set_name, run in runs.items():
            ours, theirs = run["test_set"], first_runs[set_name]["test_set"]
            if ours["sha256"] != theirs["sha256"]:
                raise ConfigError(
                    f"test set {set_name!r}: {name} and {first_name} were scored on different manifests "
                    f"(sha256 {ours['sha256'][:12]} vs {theirs['sha256'][:12]})"
                )
            differing = sorted(set(ours["skipped"]["utt_ids"]) ^ set(theirs["skipped"]["utt_ids"]))
            if differing:
                raise ConfigError(
                    f"test set {set_name!r}: {name} and {first_name} were scored on different rows "
                    f"({len(differing)} skipped by one only, first {', '.join(differing[:5])}): audio readable "
                    f"in some runs only? Check it, then delete runs/<model>/{set_name} in the output to evaluate again"
                )


def assessment_dir(output: str, model: str) -> str:
    return storage.join(output, ASSESSMENT_DIR, model)


def _assessment_headline(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("utterances", "syllables", "verdicts", "threshold", "speed", "ground_truth")
    return {k: summary[k] for k in keys if k in summary}


def pick_baseline(
    models: dict[str, str], reports: dict[str, dict[str, dict]], main: str, baseline: Optional[str]
) -> str:
    """The named baseline, else the first base model, else the first model."""
    if baseline is not None:
        return baseline
    return next((n for n in models if reports[n][main]["model"]["kind"] == "base"), next(iter(models)))


def build_summary(
    models: dict[str, str],
    test_sets: dict[str, str],
    reports: dict[str, dict[str, dict]],
    baseline: str,
    speeds: dict[str, dict[str, Optional[float]]],
) -> dict[str, Any]:
    """`speeds`: trainer.evaluation.speed.relative_speeds of the models against `baseline`."""
    main = next(iter(test_sets))
    entries = []
    for name in models:
        runs = reports[name]
        entries.append(
            {
                "name": name,
                **runs[main]["model"],
                # Throughput relative to the baseline's (0.98 = 2% slower), and for an adapter its
                # merged export's (what is shipped): timed alternately in one process.
                **speeds[name],
                "g2p": runs[main]["g2p"],
                "results": {
                    set_name: {
                        "metrics": run["metrics"],
                        "scored": run["test_set"]["scored"],
                        "skipped": run["test_set"]["skipped"]["count"],
                        "model_limits": run["test_set"]["model_limits"],
                        "speed": run["speed"],
                        "breakdowns": run["breakdowns"],
                        "confidence": run.get("confidence"),  # absent in reports from before confidences
                    }
                    for set_name, run in runs.items()
                },
            }
        )
    first = reports[next(iter(models))]
    # The G2P of the grapheme models (phone models read their own phones; see entries' "g2p").
    graphemes = [reports[n][main] for n in models if reports[n][main]["model"]["unit"] != "phone"]
    return {
        "main_test_set": main,
        "baseline": baseline,
        "g2p": (graphemes or [first[main]])[0]["g2p"],
        "test_sets": {
            set_name: {k: run["test_set"][k] for k in ("manifest", "sha256", "utterances", "hours")}
            for set_name, run in first.items()
        },
        "models": entries,
    }


def _publish_report(output: str, summary: dict[str, Any]) -> None:
    from trainer.evaluation.report import render_markdown, write_charts

    def write(folder: Path) -> None:
        write_charts(summary, folder)
        write_json(summary, folder / SUMMARY_FILE)
        with atomic_write(folder / REPORT_FILE) as fh:  # last: marks a finished comparison
            fh.write(render_markdown(summary))

    # The report files sit next to runs/ and assessment/: published into the output folder itself
    # (publishing it as a folder would replace those), the report last.
    storage.publish_files(output, write, last=REPORT_FILE)
