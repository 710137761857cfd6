"""The human side of an assessment: `assessment.md` and its charts, from assessment.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.assessment.verdicts import NOTHING
from trainer.data.manifest import atomic_write
from trainer.data.phones import from_phones
from trainer.data.processes import OTHER
from trainer.evaluation.report import markdown_table

PATTERNS_CHART = "error_patterns_by_age.png"
CONFUSION_CHART = "phone_confusions.png"
TOP_CONFUSIONS = 15
TOP_PATTERNS = 8


def render_markdown(summary: dict[str, Any]) -> str:
    verdicts = summary["verdicts"]
    lines = [
        "# Pronunciation assessment",
        "",
        f"Model `{summary['model']['uri']}` on `{summary['manifest']}`: {summary['utterances']} utterances, "
        f"{summary['syllables']} prompt syllables ({summary['prompt_from_text']} utterances without a prompt "
        f"were assessed against their transcript); {summary['skipped']['count']} skipped "
        f"({', '.join(f'{k} {v}' for k, v in summary['skipped']['by_reason'].items()) or 'none'}).",
        "",
        "Verdicts: "
        + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items()))
        + f"; free recognition also heard {summary['insertions_heard']} insertions between syllables.",
        "",
    ]
    threshold = summary["threshold"]
    lines += [
        "A syllable is mispronounced when its score (log-likelihood ratio of the prompt against the most "
        f"likely single-phone edit of that syllable, plus {threshold['gop_weight']:g} x its worst phone GOP) is "
        f"below {threshold['value']:.3f} ({threshold['source']}"
        + (
            f"; calibrated to flag {threshold['false_alarm_rate']:.1%} of the correctly said syllables there"
            if "false_alarm_rate" in threshold
            else ""
        )
        + ")."
        + (
            f" The recordings were played at speed {summary['speed']:g} before the model (`--speed`)."
            if summary.get("speed", 1.0) != 1.0
            else ""
        ),
        "",
    ]
    truth = summary.get("ground_truth")
    if truth:
        lines += [
            "## Against the known mispronunciations",
            "",
            f"{truth['utterances']} utterances with ground truth, {truth['injected_syllables']} mispronounced "
            f"syllables, {truth['mispronounced_phones']} of {truth['phones']} phones. ROC AUC of the syllable "
            f"score: {_figure(truth['score_auc'])} (its log-likelihood ratio alone: {_figure(truth['llr_auc'])}); of "
            f"phone GOP (correct vs mispronounced phones): {_figure(truth['gop_auc'])}.",
            "",
            *markdown_table(
                ["Syllables flagged by", "Precision", "Recall", "F1"],
                [
                    [name, *(f"{truth[key][m]:.3f}" for m in ("precision", "recall", "f1"))]
                    for name, key in (
                        ("verdicts (score < threshold)", "detection"),
                        ("free recognition alone", "recognition_detection"),
                    )
                ],
            ),
            "Recall per process of the known errors (other: a process the table does not name):",
            "",
            *markdown_table(
                ["Process", "Errors", "Flagged", "Recall"],
                [
                    [name, str(r["errors"]), str(r["flagged"]), f"{r['recall']:.3f}"]
                    for name, r in truth["recall_per_process"].items()
                ],
            ),
        ]
        held_out = truth.get("held_out")
        if held_out:
            lines += [
                "Leave-process-out: each process's errors (with every correct syllable) judged by a rule calibrated "
                f"on the calibration set without that process's errors (every flag on a correct syllable counts against each "
                f"process); mean recall {_figure(held_out['mean_recall'])}, mean F1 {_figure(held_out['mean_f1'])}:",
                "",
                *markdown_table(
                    ["Process", "Errors", "Threshold", "GOP weight", "Precision", "Recall", "F1"],
                    [
                        [
                            name,
                            str(r["errors"]),
                            f"{r['rule']['threshold']:.3f}",
                            f"{r['rule']['gop_weight']:g}",
                            *(f"{r[m]:.3f}" for m in ("precision", "recall", "f1")),
                        ]
                        for name, r in held_out["per_process"].items()
                    ],
                ),
            ]
    groups = summary["patterns_per_age_group"]
    names = _top_patterns(summary)
    lines += [
        "## Errors per age group",
        "",
        "Cells: errors flagged (per 100 prompt syllables), in all and by the process that names what was heard "
        f"({OTHER}: none does; the {TOP_PATTERNS} most frequent processes and {OTHER}).",
        "",
    ]
    rows = []
    for group, counts in groups.items():
        per = summary["syllables_per_age_group"].get(group) or 1
        total = sum(counts.values())
        rows.append(
            [
                group,
                f"{total} ({100 * total / per:.1f})",
                *(f"{counts.get(n, 0)} ({100 * counts.get(n, 0) / per:.1f})" for n in names),
            ]
        )
    lines += markdown_table(["Age group", "All", *names], rows) if rows else ["No errors found.", ""]
    confusions = summary["confusions"][:TOP_CONFUSIONS]
    lines += ["## Phone confusions", "", "Expected phone -> what free recognition heard (∅: nothing).", ""]
    lines += markdown_table(
        ["Expected", "Said", "Count"],
        [[_shown(c["expected"]), _shown(c["said"]), str(c["count"])] for c in confusions],
    )
    lines += [
        "## Charts",
        "",
        f"![Error patterns by age group]({PATTERNS_CHART})",
        "",
        f"![Phone confusions]({CONFUSION_CHART})",
        "",
    ]
    return "\n".join(lines)


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _top_patterns(summary: dict[str, Any]) -> list[str]:
    """The TOP_PATTERNS most frequent process names, and OTHER whenever it occurs: errors no process
    names must show."""
    totals: dict[str, int] = {}
    for counts in summary["patterns_per_age_group"].values():
        for name, n in counts.items():
            totals[name] = totals.get(name, 0) + n
    named = sorted((n for n in totals if n != OTHER), key=lambda n: -totals[n])[:TOP_PATTERNS]
    return named + ([OTHER] if OTHER in totals else [])


def write_charts(summary: dict[str, Any], folder: Path) -> list[Path]:
    """Error patterns per 100 syllables by age group; a heat map of the top phone confusions."""
    import numpy as np
    from matplotlib.figure import Figure

    names = _top_patterns(summary)
    groups = list(summary["patterns_per_age_group"])
    fig = Figure(figsize=(max(6.0, 1.5 * max(1, len(groups))), 4.5), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(names))
    for k, name in enumerate(names):
        values = [
            100 * summary["patterns_per_age_group"][g].get(name, 0) / (summary["syllables_per_age_group"].get(g) or 1)
            for g in groups
        ]
        ax.bar(np.arange(len(groups)) + (k - (len(names) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_ylabel("errors per 100 syllables")
    ax.set_title("Error patterns by age group")
    if names:
        ax.legend(fontsize=8)
    patterns_path = folder / PATTERNS_CHART
    with atomic_write(patterns_path, binary=True) as handle:
        fig.savefig(handle, format="png", dpi=120)

    confusions = summary["confusions"][:TOP_CONFUSIONS]
    expected = sorted({c["expected"] for c in confusions})
    said = sorted({c["said"] for c in confusions})
    grid = np.zeros((len(expected), len(said)))
    for c in confusions:
        grid[expected.index(c["expected"]), said.index(c["said"])] = c["count"]
    fig = Figure(figsize=(max(4.0, 0.5 * len(said) + 2), max(3.0, 0.4 * len(expected) + 1.5)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(grid, cmap="Reds")
    # Hangul jamo need a CJK font, which images built without one lack: label by Unicode name.
    ax.set_xticks(range(len(said)), [_label(s) for s in said], rotation=60, ha="right")
    ax.set_yticks(range(len(expected)), [_label(e) for e in expected])
    ax.set_xlabel("recognised")
    ax.set_ylabel("expected")
    ax.set_title("Most frequent phone confusions")
    fig.colorbar(image, ax=ax)
    confusion_path = folder / CONFUSION_CHART
    with atomic_write(confusion_path, binary=True) as handle:
        fig.savefig(handle, format="png", dpi=120)
    return [patterns_path, confusion_path]


def _shown(phone: str) -> str:
    """A phone as readable Hangul (a vowel with the silent ㅇ, e.g. 아)."""
    return phone if phone == NOTHING else from_phones(phone)


def _label(phone: str) -> str:
    """KIYEOK (initial ㄱ), A (vowel ㅏ), -NIEUN (final ㄴ); "none" for ∅."""
    import unicodedata

    if phone == NOTHING:
        return "none"
    name = unicodedata.name(phone[0], phone)
    for block, prefix in (("CHOSEONG ", ""), ("JUNGSEONG ", ""), ("JONGSEONG ", "-")):
        if block in name:
            return prefix + name.split(block)[1]
    return name
