"""Curriculum: nested phases, each within 1 % of its hours, strata kept, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.data.curriculum import nested_subsets
from trainer.data.strata import DIMENSIONS, shares, strata_codes
from trainer.exit_codes import ConfigError


def _hours(rows: list[dict]) -> float:
    return sum(r["duration"] for r in rows) / 3600


def test_nested_and_on_target_hours(realistic_rows):
    pool_hours = _hours(realistic_rows)
    targets = [round(pool_hours * f, 2) for f in (0.1, 0.3, 0.5)]
    phases, report = nested_subsets(realistic_rows, hours=targets, seed=3)
    ids = [{r["utt_id"] for r in phase} for phase in phases]
    assert ids[0] < ids[1] < ids[2]
    for phase, target in zip(phases, targets):
        assert _hours(phase) == pytest.approx(target, rel=0.01)
        assert len({r["utt_id"] for r in phase}) == len(phase)
    assert report["nested"] and [p["rows"] for p in report["phases"]] == [len(p) for p in phases]
    # Each phase keeps the pool's age, SNR and duration mix.
    whole = strata_codes(realistic_rows)
    for phase in phases:
        part = strata_codes(phase)
        for dim, labels in DIMENSIONS.items():
            assert np.abs(shares(part[dim], labels) - shares(whole[dim], labels)).max() * 100 < 2.0


def test_fractions_and_determinism(row_factory):
    rows = row_factory(60, 30, seed=9)
    phases, report = nested_subsets(rows, fractions=[0.2, 0.6, 1.0], seed=1)
    assert len(phases[2]) == len(rows)
    assert _hours(phases[0]) == pytest.approx(0.2 * _hours(rows), rel=0.01)
    again, _ = nested_subsets(rows, fractions=[0.2, 0.6, 1.0], seed=1)
    assert [r["utt_id"] for r in again[1]] == [r["utt_id"] for r in phases[1]]
    other, _ = nested_subsets(rows, fractions=[0.2, 0.6, 1.0], seed=2)
    assert {r["utt_id"] for r in other[0]} != {r["utt_id"] for r in phases[0]}


def test_small_targets_are_met_by_moving_a_fitting_utterance_up(row_factory):
    rows = row_factory(10, 10, seed=4)
    for target in (0.004, 0.0061, 0.009):
        (phase,), _ = nested_subsets(rows, hours=[target], seed=0)
        assert _hours(phase) == pytest.approx(target, rel=0.01)


def test_more_hours_than_exist_names_the_numbers(row_factory):
    rows = row_factory(5, 5, seed=0)
    available = _hours(rows)
    with pytest.raises(ConfigError, match=rf"asked for 148 h but the manifest holds only {available:.3f} h"):
        nested_subsets(rows, hours=[30, 90, 148])


@pytest.mark.parametrize(
    ("hours", "fractions", "match"),
    [
        ([0.1, 0.05], None, "strictly increasing"),
        (None, [0.5, 1.5], "<= 1"),
        ([0.1], [0.5], "exactly one"),
        (None, None, "exactly one"),
    ],
)
def test_bad_targets(row_factory, hours, fractions, match):
    with pytest.raises(ConfigError, match=match):
        nested_subsets(row_factory(5, 5, seed=0), hours=hours, fractions=fractions)
