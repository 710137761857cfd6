"""Error rates per speaker/recording group (age, gender, SNR, duration) with bootstrap 95% CIs.

Every utterance falls in exactly one group of each dimension ("unknown" when the manifest lacks the
field), so the group counts of a dimension add up to the number of scored utterances. Confidence
intervals come from the percentile bootstrap over utterances: resample the group's utterances
with replacement, recompute the corpus-level rate (sum of edits / sum of reference lengths), take
the 2.5th and 97.5th percentiles. Resampling utterances (not tokens) keeps the within-utterance
correlation of errors, so the intervals are honest for small groups.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

UNKNOWN = "unknown"

# (upper bound exclusive, label); the last bin has no upper bound.
AGE_BINS = ((6, "3-5"), (8, "6-7"), (11, "8-10"), (20, "11-19"), (math.inf, "20+"))
SNR_BINS = ((10, "<10 dB"), (20, "10-20 dB"), (30, "20-30 dB"), (math.inf, ">=30 dB"))
DURATION_BINS = ((2, "<2 s"), (5, "2-5 s"), (10, "5-10 s"), (math.inf, ">=10 s"))

BOOTSTRAP_RESAMPLES = 1000
CI_LEVEL = 0.95
_MAX_RESAMPLE_CELLS = 4_000_000  # resample indices held at once (int64: 32 MB)


def _binned(bins: Sequence[tuple[float, str]], field: str) -> Callable[[Mapping[str, Any]], str]:
    def label(row: Mapping[str, Any]) -> str:
        value = row.get(field)
        try:
            number = float(value)
        except (TypeError, ValueError):
            return UNKNOWN
        if math.isnan(number):
            return UNKNOWN
        return next(name for upper, name in bins if number < upper)

    return label


def _gender(row: Mapping[str, Any]) -> str:
    value = str(row.get("gender") or "").strip().lower()
    return {"m": "male", "f": "female"}.get(value, value) or UNKNOWN


DIMENSIONS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "age_group": _binned(AGE_BINS, "age"),
    "gender": _gender,
    "snr_bin": _binned(SNR_BINS, "snr_db"),
    "duration_bin": _binned(DURATION_BINS, "duration"),
}


def bootstrap_ci(
    errors: np.ndarray, ref_lens: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap CI of sum(errors)/sum(ref_lens), resampling utterances."""
    n = len(errors)
    rng = np.random.default_rng(seed)
    rates = np.empty(resamples)
    per_chunk = max(1, _MAX_RESAMPLE_CELLS // max(n, 1))
    for start in range(0, resamples, per_chunk):
        stop = min(resamples, start + per_chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        # A resample of only empty references has no rate; count it as no errors.
        rates[start:stop] = errors[idx].sum(axis=1) / np.maximum(ref_lens[idx].sum(axis=1), 1)
    alpha = (1.0 - CI_LEVEL) / 2
    low, high = np.quantile(rates, [alpha, 1.0 - alpha])
    return float(low), float(high)


def summarise(
    edits: Mapping[str, tuple[np.ndarray, np.ndarray]], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> dict[str, dict[str, float]]:
    """{metric: {value, ci_low, ci_high}} for one set of utterances.

    `edits` maps a metric name to (errors, ref_lens), one entry per utterance.
    """
    out: dict[str, dict[str, float]] = {}
    for metric, (errors, ref_lens) in edits.items():
        low, high = bootstrap_ci(errors, ref_lens, resamples, seed)
        out[metric] = {"value": float(errors.sum() / max(ref_lens.sum(), 1)), "ci_low": low, "ci_high": high}
    return out


def breakdowns(
    rows: Sequence[Mapping[str, Any]],
    edits: Mapping[str, tuple[np.ndarray, np.ndarray]],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, Any]]]:
    """{dimension: {group: {"count": n, metric: {value, ci_low, ci_high}}}} over `rows`.

    `rows` are the scored utterances' manifest rows, aligned with the arrays in `edits`.
    """
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for dimension, label_of in DIMENSIONS.items():
        labels = np.array([label_of(row) for row in rows], dtype=object)
        groups: dict[str, dict[str, Any]] = {}
        for group in _ordered_groups(dimension, set(labels)):
            mask = labels == group
            subset = {m: (e[mask], r[mask]) for m, (e, r) in edits.items()}
            groups[group] = {"count": int(mask.sum()), **summarise(subset, resamples, seed)}
        result[dimension] = groups
    return result


def data_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Hours, utterances and speakers of manifest rows, and utterances per age group and gender
    (groups as in `breakdowns`): what a model card says about its training data."""
    counts = {}
    for dimension in ("age_group", "gender"):
        labels = [DIMENSIONS[dimension](row) for row in rows]
        counts[dimension] = {g: labels.count(g) for g in _ordered_groups(dimension, set(labels))}
    return {
        "hours": sum(float(row["duration"]) for row in rows) / 3600,
        "utterances": len(rows),
        "speakers": len({row["speaker_id"] for row in rows}),
        "utterances_by_age_group": counts["age_group"],
        "utterances_by_gender": counts["gender"],
    }


def _ordered_groups(dimension: str, present: set[str]) -> list[str]:
    bins = {"age_group": AGE_BINS, "snr_bin": SNR_BINS, "duration_bin": DURATION_BINS}.get(dimension, ())
    order = [name for _, name in bins]
    known = [g for g in order if g in present]
    rest = sorted(g for g in present if g not in order and g != UNKNOWN)
    return known + rest + ([UNKNOWN] if UNKNOWN in present else [])
