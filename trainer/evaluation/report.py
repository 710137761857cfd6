"""The human side of a comparison: `comparison.md` tables and PNG charts, from summary.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from trainer.data.manifest import atomic_write
from trainer.layout import ASSESSMENT_DIR, ASSESSMENT_REPORT_FILE

METRIC_LABELS = {"wer": "WER", "swer": "sWER", "cer": "CER", "jer": "JER", "per": "PER"}
CHART_METRICS = ("wer", "swer", "cer", "per")
METRICS_CHART = "metrics_per_model.png"
AGE_CHART = "cer_by_age.png"
CALIBRATION_CHART = "calibration.png"
# Kinds of model that ship to apps; the deployment table compares them with the PyTorch merged one.
DEPLOYMENT_KINDS = ("merged", "onnx", "onnx-int8")


def _pct(stat: dict[str, float], ci: bool = True) -> str:
    text = f"{100 * stat['value']:.1f}%"
    return f"{text} [{100 * stat['ci_low']:.1f}, {100 * stat['ci_high']:.1f}]" if ci else text


def _count(n: int) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= size:
            return f"{n / size:.1f}{suffix}"
    return str(n)


def _parameters(model: dict[str, Any]) -> str:
    if model["kind"] == "base":
        return _count(model["total_params"])
    merged = " (merged)" if model["kind"] == "merged" else ""
    return f"+{_count(model['adapter_params'])}{merged}"


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]


def age_groups(summary: dict[str, Any]) -> list[str]:
    """Age groups present in any model's main-test-set breakdown, in breakdown order."""
    main = summary["main_test_set"]
    groups: list[str] = []
    for model in summary["models"]:
        for group in model["results"][main]["breakdowns"]["age_group"]:
            if group not in groups:
                groups.append(group)
    return groups


def _speed(unmerged: Optional[float], merged: Optional[float]) -> str:
    if not unmerged:
        return "-"
    return f"{100 * merged:.0f}% (unmerged {100 * unmerged:.0f}%)" if merged else f"{100 * unmerged:.0f}%"


def render_markdown(summary: dict[str, Any]) -> str:
    main = summary["main_test_set"]
    test_set = summary["test_sets"][main]
    first = summary["models"][0]["results"][main]
    lines = [
        "# Model comparison",
        "",
        f"Test set `{main}`: {first['scored']} utterances scored ({test_set['hours']:.2f} h), "
        f"{first['skipped']} skipped (unusable audio, empty transcript or duration mismatch; counted by reason in "
        "each metrics.json), the same rows for every model; rows a model cannot write in full (characters "
        "outside its vocabulary, more labels than its frames) count as its errors, from "
        f"`{test_set['manifest']}`. PER from `{summary['g2p']}` phonemes; phone-unit models are scored on "
        "their own phone output (no G2P of the hypothesis) against the reference's g2pK phones, and their "
        "WER/CER compare pronounced spellings. In brackets: bootstrap 95% "
        "confidence interval over utterances. sWER: WER with the hypothesis re-spaced like the reference "
        f"(KsponSpeech); CER without spaces. Inference speed: throughput relative to `{summary['baseline']}` "
        "(forward passes timed alternately in one process on the same utterances); for an adapter, of its merged export (what `trainer export` ships), "
        "with the unmerged adapter in brackets.",
        "",
    ]
    header = ["Model", "r", "Unit", "Parameters", *(METRIC_LABELS[m] for m in METRIC_LABELS), "Inference speed"]
    rows = []
    for model in summary["models"]:
        metrics = model["results"][main]["metrics"]
        speed = model["relative_speed"]
        rows.append(
            [
                model["name"],
                str(model["r"]) if model["r"] else "-",
                model["unit"],
                _parameters(model),
                *(_pct(metrics[m]) for m in METRIC_LABELS),
                _speed(speed, model.get("relative_speed_merged")),
            ]
        )
    lines += markdown_table(header, rows)
    limited = [
        f"{m['name']}: " + ", ".join(f"{reason} {n}" for reason, n in limits["by_reason"].items())
        for m in summary["models"]
        if (limits := m["results"][main]["model_limits"])["count"]
    ]
    if limited:
        lines += ["Rows a model cannot write in full, scored as its errors: " + "; ".join(limited) + ".", ""]

    if len(summary["test_sets"]) > 1:
        names = list(summary["test_sets"])
        lines += ["## CER per test set", ""]
        lines += markdown_table(
            ["Model", *(f"{n} ({summary['test_sets'][n]['utterances']} utt.)" for n in names)],
            [[m["name"], *(_pct(m["results"][n]["metrics"]["cer"]) for n in names)] for m in summary["models"]],
        )

    groups = age_groups(summary)
    lines += [f"## CER by age group (`{main}`)", "", "Cells: CER (utterances).", ""]
    age_rows = []
    for model in summary["models"]:
        breakdown = model["results"][main]["breakdowns"]["age_group"]
        age_rows.append(
            [
                model["name"],
                *(
                    f"{_pct(breakdown[g]['cer'], ci=False)} ({breakdown[g]['count']})" if g in breakdown else "-"
                    for g in groups
                ),
            ]
        )
    lines += markdown_table(["Model", *groups], age_rows)
    lines += _deployment_section(summary)
    lines += _calibration_section(summary)
    lines += ["## Charts", "", f"![Metrics per model]({METRICS_CHART})", "", f"![CER by age group]({AGE_CHART})", ""]
    if any(m["results"][main].get("confidence") for m in summary["models"]):
        lines += [f"![Confidence calibration]({CALIBRATION_CHART})", ""]
    if summary.get("assessments"):
        lines += _assessment_section(summary)
    return "\n".join(lines)


def _size(n_bytes: int | None) -> str:
    return f"{n_bytes / 2**20:.1f} MiB" if n_bytes else "-"


def _deployment_section(summary: dict[str, Any]) -> list[str]:
    """Size on disk, accuracy and speed of the exports, relative to the first PyTorch merged one."""
    main = summary["main_test_set"]
    shipped = [m for m in summary["models"] if m["kind"] in DEPLOYMENT_KINDS]
    reference = next((m for m in shipped if m["kind"] == "merged"), None)
    if reference is None or len(shipped) < 2:
        return []
    ref_size = reference.get("size_bytes")
    ref_speed = reference["results"][main]["speed"]
    rows = []
    for model in shipped:
        result = model["results"][main]
        size, speed = model.get("size_bytes"), model["relative_speed"]
        rows.append(
            [
                model["name"],
                model["kind"],
                _size(size),
                f"{100 * size / ref_size:.0f}%" if size and ref_size else "-",
                _pct(result["metrics"]["cer"]),
                _pct(result["metrics"]["per"]),
                f"{speed / reference['relative_speed']:.2f}x" if speed else "-",
                result["speed"]["device"],
            ]
        )
    return [
        "## Deployment formats",
        "",
        f"Exports against the PyTorch merged model `{reference['name']}` ({ref_speed['device']}): size of the "
        "weights on disk, error rates, throughput timed alternately on the same utterances (ONNX runs with onnxruntime on the CPU; "
        "speeds compare only between equal devices).",
        "",
        *markdown_table(["Model", "Format", "Size", "Size vs merged", "CER", "PER", "Speed vs merged", "Device"], rows),
    ]


def _calibration_section(summary: dict[str, Any]) -> list[str]:
    main = summary["main_test_set"]
    rows = []
    for model in summary["models"]:
        cal = model["results"][main].get("confidence")
        if not cal or not cal["words"]:
            continue
        rows.append(
            [
                model["name"],
                str(cal["words"]),
                _share(cal["accuracy"]),
                _share(cal["mean_confidence_correct"]),
                _share(cal["mean_confidence_wrong"]),
                _share(cal["ece"]),
            ]
        )
    if not rows:
        return []
    return [
        "## Word confidence",
        "",
        "Word confidence: the lowest CTC posterior of the word's units; a word is correct when the alignment "
        "with the reference matches it to an equal word. ECE: expected calibration error over 10 bins "
        f"(0 = confidence equals accuracy). Chart: `{CALIBRATION_CHART}`.",
        "",
        *markdown_table(["Model", "Words", "Correct", "Mean conf. (correct)", "Mean conf. (wrong)", "ECE"], rows),
    ]


def _share(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def _assessment_section(summary: dict[str, Any]) -> list[str]:
    """Pronunciation assessment of the phone-unit models (`compare --assess`), with its scores
    against the injected errors where the test set has them."""
    lines = [
        f"## Pronunciation assessment (`{summary['main_test_set']}`)",
        "",
        "Syllables of each prompt judged by the phone model (a syllable is mispronounced when the prompt "
        "is not `threshold` more likely than its most likely single-phone edit, GOP weighed in; rule calibrated "
        "on a labelled set with --assess-calibration to flag a fixed share of its correctly said syllables); "
        "precision/recall/F1: syllables flagged vs mispronounced on purpose (synthetic ground truth), and F1 of "
        "flagging what free recognition got wrong; held-out recall: "
        "the mean over processes of the share of one process's errors flagged by a rule calibrated without them "
        "(leave-process-out); GOP ROC AUC: correct vs mispronounced phones. "
        f"Details per model in `{ASSESSMENT_DIR}/<model>/{ASSESSMENT_REPORT_FILE}`.",
        "",
    ]
    rows = []
    for name, a in summary["assessments"].items():
        flagged = a["syllables"] - a["verdicts"].get("correct", 0)
        truth = a.get("ground_truth")
        scores = ["-"] * 6
        if truth:
            d = truth["detection"]
            auc = "-" if truth["gop_auc"] is None else f"{truth['gop_auc']:.3f}"
            recognition = f"{truth['recognition_detection']['f1']:.3f}"
            held_out = (truth.get("held_out") or {}).get("mean_recall")
            held = "-" if held_out is None else f"{held_out:.3f}"
            scores = [f"{d['precision']:.3f}", f"{d['recall']:.3f}", f"{d['f1']:.3f}", held, recognition, auc]
        rows.append(
            [
                f"[{name}]({ASSESSMENT_DIR}/{name}/{ASSESSMENT_REPORT_FILE})",
                str(a["utterances"]),
                f"{flagged} of {a['syllables']}",
                f"{a['threshold']['value']:.2f}",
                *scores,
            ]
        )
    return lines + markdown_table(
        [
            "Model",
            "Utterances",
            "Syllables flagged",
            "Threshold",
            "Precision",
            "Recall",
            "F1",
            "Held-out recall",
            "Recognition F1",
            "GOP AUC",
        ],
        rows,
    )


def write_charts(summary: dict[str, Any], folder: Path) -> list[Path]:
    """Grouped bar charts with 95% CI whiskers: metrics per model; CER per age group per model."""
    main = summary["main_test_set"]
    models = summary["models"]
    names = [m["name"] for m in models]

    def stats(model: dict[str, Any], metric: str, group: str | None = None) -> dict[str, float] | None:
        result = model["results"][main]
        if group is None:
            return result["metrics"][metric]
        return result["breakdowns"]["age_group"].get(group, {}).get(metric)

    metrics_chart = _bar_chart(
        categories=names,
        series={METRIC_LABELS[m]: [stats(model, m) for model in models] for m in CHART_METRICS},
        title=f"Error rates on `{main}` (95% CI)",
        path=folder / METRICS_CHART,
    )
    groups = age_groups(summary)
    age_chart = _bar_chart(
        categories=groups,
        series={model["name"]: [stats(model, "cer", g) for g in groups] for model in models},
        title=f"CER by age group on `{main}` (95% CI)",
        path=folder / AGE_CHART,
    )
    charts = [metrics_chart, age_chart]
    # Models with no scored words (every hypothesis empty) have no calibration to draw, as in the table.
    calibrated = {m["name"]: cal for m in models if (cal := m["results"][main].get("confidence")) and cal["words"]}
    if calibrated:
        charts.append(_calibration_chart(calibrated, folder / CALIBRATION_CHART))
    return charts


def _calibration_chart(calibrations: dict[str, dict[str, Any]], path: Path) -> Path:
    """Reliability diagram: accuracy of the words in each confidence bin against their mean confidence."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 5.0), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    for name, cal in calibrations.items():
        points = [(b["mean_confidence"], b["accuracy"]) for b in cal["bins"] if b["words"]]
        ax.plot(*zip(*points), marker="o", label=f"{name} (ECE {cal['ece']:.2f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("word confidence (bin mean)")
    ax.set_ylabel("share of words correct")
    ax.set_title("Confidence calibration")
    ax.legend()
    ax.grid(alpha=0.3)
    with atomic_write(path, binary=True) as handle:
        fig.savefig(handle, format="png", dpi=120)
    return path


def _bar_chart(categories: list[str], series: dict[str, list[dict | None]], title: str, path: Path) -> Path:
    import numpy as np
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    fig = Figure(figsize=(max(6.0, 1.2 * len(categories) * max(1, len(series)) / 2), 4.5), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(series))
    x = np.arange(len(categories))
    for k, (label, values) in enumerate(series.items()):
        value = np.array([100 * v["value"] if v else np.nan for v in values])
        low = np.array([100 * (v["value"] - v["ci_low"]) if v else 0 for v in values])
        high = np.array([100 * (v["ci_high"] - v["value"]) if v else 0 for v in values])
        ax.bar(x + (k - (len(series) - 1) / 2) * width, value, width, yerr=[low, high], capsize=3, label=label)
    ax.set_xticks(x, categories)
    ax.set_ylabel("error rate (%)")
    ax.set_title(title)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    with atomic_write(path, binary=True) as handle:
        fig.savefig(handle, format="png", dpi=120)
    return path
