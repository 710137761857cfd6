"""The leave-process-out bench's interval (tools/bench/bench_assess_lopo.py): children resampled
once for all the sets, which share them."""

import numpy as np
import pytest

from tools.bench.bench_assess_lopo import mean_f1_interval


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
