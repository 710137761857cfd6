"""The leave-process-out bench (tools/bench/bench_assess_lopo.py): its interval (children resampled
once for all the sets, which share them) and its F1 ceiling (the best rule fitted on a set itself)."""

import numpy as np
import pytest

from tools.bench.bench_assess_lopo import best_f1_rule, best_f1_threshold, mean_f1_interval, seed_means
from trainer.assessment.assess import calibrated_rule, labelled_syllables
from trainer.assessment.detect import detection


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn)


def test_children_alike_give_no_spread_and_the_interval_holds_the_mean():
    alike = {"set": {"per_child": {f"c{i}": [2, 1, 1] for i in range(10)}}}
    assert mean_f1_interval(alike) == [pytest.approx(_f1(2, 1, 1))] * 2

    rng = np.random.default_rng(1)
    sets = {name: {"per_child": {f"c{i}": list(rng.integers(0, 4, 3)) for i in range(30)}} for name in "abc"}
    totals = [np.sum(list(s["per_child"].values()), axis=0) for s in sets.values()]
    mean = float(np.mean([_f1(*t) for t in totals]))
    low, high = mean_f1_interval(sets)
    assert low < mean < high


def test_a_set_whose_errors_one_child_made_is_left_out_of_the_draws_without_that_child():
    # Set "rare": only c0 made its error, and c0 also flags wrongly nowhere else; set "common" is
    # perfect. A draw without c0 has no "rare" error: its mean is "common" alone (1.0), never NaN.
    children = [f"c{i}" for i in range(20)]
    rare = {"per_child": {c: [1, 0, 0] if c == "c0" else [0, 1, 0] for c in children}}
    common = {"per_child": {c: [1, 0, 0] for c in children}}
    low, high = mean_f1_interval({"rare": rare, "common": common}, resamples=400)
    assert not np.isnan([low, high]).any() and high == 1.0 and low < 1.0


def _brute_force_best_f1(scores: np.ndarray, wrong: np.ndarray) -> float:
    """Every threshold between (and beyond) the distinct scores, scored by `detection`."""
    values = np.unique(scores)
    cuts = np.concatenate(([values[0] - 1.0], (values[:-1] + values[1:]) / 2, [values[-1] + 1.0]))
    return max(detection(scores < t, wrong)["f1"] for t in cuts)


@pytest.mark.parametrize("seed", range(5))
def test_the_sorted_search_finds_the_best_threshold_that_trying_every_one_finds(seed):
    rng = np.random.default_rng(seed)
    # Rounded scores: many ties, which no threshold can split.
    scores = np.round(rng.normal(size=300), 1)
    wrong = rng.random(300) < 0.1 + 0.3 * (scores < -1)
    f1, threshold = best_f1_threshold(scores, wrong)
    assert f1 == pytest.approx(_brute_force_best_f1(scores, wrong))
    assert detection(scores < threshold, wrong)["f1"] == pytest.approx(f1)


def _lines(rng, n: int, error_share: float) -> list[dict]:
    """Assessed lines of one syllable each: errors score lower on average, with overlap."""
    lines = []
    for i in range(n):
        wrong = bool(rng.random() < error_share)
        llr, gop = rng.normal(-4.0 if wrong else 2.0, 2.5), rng.normal(-2.0 if wrong else 0.0, 1.0)
        lines.append(
            {
                "speaker_id": f"c{i % 10}",
                "syllables": [{"index": 0, "llr": float(llr), "gop": float(gop)}],
                "mispronunciations": [{"syllable": 0, "pattern": "p"}] if wrong else [],
            }
        )
    return lines


def test_no_rule_calibrated_elsewhere_beats_a_sets_ceiling():
    rng = np.random.default_rng(7)
    calibration, test = _lines(rng, 400, 0.2), _lines(rng, 400, 0.03)
    ceiling, fitted = best_f1_rule(test)
    entries, truth = labelled_syllables(test)
    assert detection([fitted.flags(e["llr"], e["gop"]) for e in entries], truth)["f1"] == pytest.approx(ceiling)
    for rule in (best_f1_rule(calibration)[1], calibrated_rule(calibration, 0.005), calibrated_rule(calibration, 0.05)):
        assert detection([rule.flags(e["llr"], e["gop"]) for e in entries], truth)["f1"] <= ceiling + 1e-12
    # Calibrated where errors are common, the best-F1 rule flags too much for a set where they are rare.
    assert detection([best_f1_rule(calibration)[1].flags(e["llr"], e["gop"]) for e in entries], truth)["f1"] < ceiling


def _seed_summary(held_out: dict[str, float | None], in_distribution: dict[str, float]) -> dict:
    """A run_seed summary's means: per model one rule, with these F1s."""
    return {
        "means": {
            model: {
                "rule": {"held_out_mean": {"f1": held_out[model]}, "in_distribution": {"f1": in_distribution[model]}}
            }
            for model in held_out
        }
    }


def test_seed_means_keep_each_seed_in_order_and_average_the_held_out_f1_over_seeds_that_had_one():
    summaries = {
        300: _seed_summary({"model": 0.78, "baseline model": 0.66}, {"model": 0.90, "baseline model": 0.88}),
        100: _seed_summary({"model": 0.67, "baseline model": None}, {"model": 0.89, "baseline model": 0.85}),
        200: _seed_summary({"model": 0.69, "baseline model": 0.65}, {"model": 0.89, "baseline model": 0.86}),
    }
    result = seed_means(summaries)
    assert result["model"]["rule"]["held_out_f1"] == [0.78, 0.67, 0.69]
    assert result["model"]["rule"]["held_out_f1_mean"] == pytest.approx((0.78 + 0.67 + 0.69) / 3)
    assert result["model"]["rule"]["in_distribution_f1"] == [0.90, 0.89, 0.89]
    # A seed whose sets had no error has no held-out mean: left out, not counted as 0.
    assert result["baseline model"]["rule"]["held_out_f1"] == [0.66, None, 0.65]
    assert result["baseline model"]["rule"]["held_out_f1_mean"] == pytest.approx(0.655)
