"""The assessment report: a child whose errors no process names does not look clean."""

from __future__ import annotations

from trainer.assessment.report import TOP_PATTERNS, render_markdown
from trainer.data.processes import OTHER, PROCESSES


def summary(patterns: dict[str, dict[str, int]]) -> dict:
    return {
        "model": {"uri": "m"},
        "manifest": "x.jsonl",
        "utterances": 3,
        "syllables": 30,
        "prompt_from_text": 0,
        "skipped": {"count": 0, "by_reason": {}, "utt_ids": []},
        "verdicts": {"correct": 25, "substituted": 5},
        "insertions_heard": 0,
        "threshold": {"value": -2.0, "gop_weight": 1.0, "source": "default"},
        "patterns_per_age_group": patterns,
        "syllables_per_age_group": {group: 10 for group in patterns},
        "confusions": [],
    }


def age_rows(report: str) -> dict[str, list[str]]:
    section = report.split("## Errors per age group")[1].split("## Phone confusions")[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| age")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows}


def test_errors_of_no_named_process_show_in_the_age_table():
    # Many named processes are more frequent than `other`: it still gets its column, and the
    # child group with only unnamed errors shows them in all.
    named = {p.name: 5 for p in PROCESSES[: TOP_PATTERNS + 2]}
    report = render_markdown(summary({"age 3-4": named, "age 9-10": {OTHER: 1}}))
    header = next(line for line in report.splitlines() if line.startswith("| Age group"))
    assert header.rstrip(" |").endswith(OTHER) and "| All |" in header
    rows = age_rows(report)
    assert rows["age 9-10"][0] == "1 (10.0)" and rows["age 9-10"][-1] == "1 (10.0)"
    assert rows["age 3-4"][0] == f"{5 * (TOP_PATTERNS + 2)} (500.0)"
