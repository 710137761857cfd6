"""Speaker-disjoint split: disjointness, completeness, stratification at realistic speaker counts,
determinism, leakage drops, the keep-source-test mode."""

from __future__ import annotations

import random

import numpy as np
import pytest

from trainer.data.split import split_by_speaker
from trainer.data.strata import DIMENSIONS, shares, strata_codes
from trainer.exit_codes import ConfigError


def _ids(rows: list[dict]) -> list[str]:
    return [r["utt_id"] for r in rows]


def test_disjoint_complete_and_stratified(realistic_rows):
    result = split_by_speaker(realistic_rows, 0.05, 0.05, seed=42)
    parts = result.parts()
    speakers = {name: {r["speaker_id"] for r in rows} for name, rows in parts.items()}
    assert not speakers["train"] & speakers["val"] and not speakers["train"] & speakers["test"]
    assert not speakers["val"] & speakers["test"]
    every = sorted(_ids(result.train) + _ids(result.val) + _ids(result.test))
    assert every == sorted(_ids(realistic_rows)) and result.dropped == []

    total = len(realistic_rows)
    assert len(result.val) / total == pytest.approx(0.05, abs=0.005)
    assert len(result.test) / total == pytest.approx(0.05, abs=0.005)
    # Recompute the shares here rather than trusting the report: each split within 5 pp of the corpus.
    whole = strata_codes(realistic_rows)
    for name, rows in parts.items():
        part = strata_codes(rows)
        for dim, labels in DIMENSIONS.items():
            gap = np.abs(shares(part[dim], labels) - shares(whole[dim], labels)).max() * 100
            assert gap <= 5.0, (name, dim, gap)
    report = result.report
    assert report["leakage"]["shared_speakers"] == 0
    assert report["leakage"]["identical_audio_across_splits"] == 0
    assert report["max_deviation_pp"] <= 5.0
    assert sum(s["rows"] for s in report["splits"].values()) == report["input_rows"] == total


def test_deterministic_for_a_seed_whatever_the_row_order(row_factory):
    rows = row_factory(300, 20, seed=1)
    first = split_by_speaker(rows, 0.1, 0.1, seed=7)
    shuffled = rows[:]
    random.Random(0).shuffle(shuffled)
    again = split_by_speaker(shuffled, 0.1, 0.1, seed=7)
    for a, b in zip(first.parts().values(), again.parts().values()):
        assert {r["speaker_id"] for r in a} == {r["speaker_id"] for r in b}
    assert _ids(split_by_speaker(rows, 0.1, 0.1, seed=7).val) == _ids(first.val)
    assert {r["speaker_id"] for r in split_by_speaker(rows, 0.1, 0.1, seed=8).val} != {
        r["speaker_id"] for r in first.val
    }


def test_small_corpus_still_gets_val_and_test_speakers(row_factory):
    rows = row_factory(12, 20, seed=2)
    result = split_by_speaker(rows, 0.1, 0.1, seed=0)
    assert result.val and result.test


def test_leaking_rows_are_dropped_with_reasons(row_factory):
    rows = row_factory(40, 10, seed=3)
    copy_of_audio = dict(rows[5], utt_id="copy-under-another-speaker", speaker_id="someone-else")
    same_id = dict(rows[7], audio_fingerprint="other", audio_filepath="/other.wav")
    result = split_by_speaker(rows + [copy_of_audio, same_id], 0.1, 0.1, seed=0)
    assert sorted(d["drop_reason"] for d in result.dropped) == ["duplicate_audio", "duplicate_utt_id"]
    assert result.report["dropped_by_reason"] == {"duplicate_audio": 1, "duplicate_utt_id": 1}
    kept = len(result.train) + len(result.val) + len(result.test)
    assert kept + len(result.dropped) == len(rows) + 2


def test_keep_source_test(row_factory):
    rows = row_factory(200, 15, seed=4)
    # One test speaker also has a row in training: that row must go, not leak.
    test_speaker = next(r["speaker_id"] for r in rows if r["source_split"] == "3.Test")
    stray = dict(
        next(r for r in rows if r["speaker_id"] == test_speaker),
        utt_id="stray",
        source_split="1.Training",
        audio_fingerprint="stray",
        audio_filepath="/stray.wav",
    )
    result = split_by_speaker(rows + [stray], 0.05, 0.5, seed=0, keep_source_test=True)
    assert _ids(result.test) == [r["utt_id"] for r in rows if r["source_split"] == "3.Test"]
    assert [d["utt_id"] for d in result.dropped] == ["stray"]
    assert result.dropped[0]["drop_reason"] == "speaker_in_source_test"
    assert not {r["speaker_id"] for r in result.val} & {r["speaker_id"] for r in result.train}
    assert len(result.val) / len(rows) == pytest.approx(0.05, abs=0.02)
    assert result.report["test_fraction"] is None


@pytest.mark.parametrize(("val", "test"), [(-0.1, 0.1), (0.6, 0.4), (1.0, 0.0)])
def test_bad_fractions(row_factory, val, test):
    with pytest.raises(ConfigError, match="val_fraction/test_fraction"):
        split_by_speaker(row_factory(5, 3, seed=0), val, test, seed=0)
