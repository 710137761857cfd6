"""Per-group breakdowns: every utterance in exactly one group, bootstrap CIs around the value."""

import numpy as np
import pytest

from trainer.evaluation.breakdown import DIMENSIONS, bootstrap_ci, breakdowns, summarise


def _rows(n: int) -> list[dict]:
    rng = np.random.default_rng(1)
    return [
        {
            "age": [4, 7, 9, 15, 35, None][i % 6],
            "gender": ["M", "F", None][i % 3],
            "snr_db": [None, 3.0, 12.5, 25.0, 40.0][i % 5],
            "duration": float(rng.uniform(0.5, 14.0)),
        }
        for i in range(n)
    ]


def _edits(n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    ref_lens = rng.integers(3, 20, n)
    return {
        "cer": (rng.binomial(ref_lens, 0.2), ref_lens),
        "wer": (rng.binomial(ref_lens, 0.4), ref_lens),
    }


def test_group_counts_add_up_to_the_test_set():
    rows, edits = _rows(97), _edits(97)
    result = breakdowns(rows, edits, resamples=200)
    assert set(result) == set(DIMENSIONS)
    for dimension, groups in result.items():
        assert sum(g["count"] for g in groups.values()) == 97, dimension
    assert set(result["age_group"]) == {"3-5", "6-7", "8-10", "11-19", "20+", "unknown"}
    assert list(result["snr_bin"]) == ["<10 dB", "10-20 dB", "20-30 dB", ">=30 dB", "unknown"]
    assert set(result["gender"]) == {"male", "female", "unknown"}
    assert result["age_group"]["3-5"]["count"] == 17  # i % 6 == 0 for i < 97


def test_group_value_is_its_corpus_rate_inside_its_ci():
    rows, edits = _rows(60), _edits(60)
    groups = breakdowns(rows, edits, resamples=500)["gender"]
    errors, ref_lens = edits["cer"]
    female = np.array([r["gender"] == "F" for r in rows])
    stat = groups["female"]["cer"]
    assert stat["value"] == pytest.approx(errors[female].sum() / ref_lens[female].sum())
    assert stat["ci_low"] <= stat["value"] <= stat["ci_high"]
    assert stat["ci_low"] < stat["ci_high"]


def test_bootstrap_ci_is_degenerate_for_constant_rates_and_narrows_with_more_data():
    ref_lens = np.full(50, 10)
    assert bootstrap_ci(np.full(50, 3), ref_lens) == pytest.approx((0.3, 0.3))
    small = _edits(30, seed=3)["cer"]
    large = _edits(3000, seed=3)["cer"]
    width = lambda e: np.subtract(*bootstrap_ci(*e)[::-1])  # noqa: E731
    assert width(large) < width(small) / 3


def test_summarise_is_deterministic_for_a_seed():
    edits = _edits(40)
    assert summarise(edits, seed=7) == summarise(edits, seed=7)
    assert summarise(edits, seed=7)["wer"]["ci_low"] != summarise(edits, seed=8)["wer"]["ci_low"]
