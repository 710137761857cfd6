"""Duration-bucketed batching on a ladder of lengths: budget, coverage, shapes, padding,
determinism, DDP shares."""

import numpy as np
import pytest

from trainer.data.audio import SAMPLE_RATE
from trainer.model.frontend import FRAME_SAMPLES
from trainer.training.sampler import (
    DurationBucketSampler,
    LengthLadder,
    plan_batches,
    plan_eval_batches,
    plan_summary,
    speed_factors,
)

LADDER = LengthLadder(0.06)


def durations(n: int = 3000, seed: int = 0) -> list[float]:
    # Log-normal like read speech: median ~3 s, a tail of long utterances, none under 0.5 s.
    return list(np.clip(np.random.default_rng(seed).lognormal(1.1, 0.5, n), 0.5, 30.0))


def corpus_durations(n: int, seed: int = 0) -> np.ndarray:
    """A children's corpus as tools/bench/bench_split.py synthesises one (speakers with their own
    pace, ~7 s), within the 0.8-16 s the trainer sees."""
    rng = np.random.default_rng(seed)
    pace = rng.normal(np.log(6.5), 0.25, 3000)
    return np.clip(np.exp(pace[rng.integers(0, 3000, n)] + rng.normal(0, 0.45, n)), 0.8, 16.0)


def test_rungs_hold_their_clips_in_whole_frames():
    samples = np.random.default_rng(0).integers(1, 20 * SAMPLE_RATE, 10000)
    padded = LADDER.padded_samples(samples)
    assert (padded >= samples).all() and (padded % FRAME_SAMPLES == 0).all()
    # at most one step (and a frame's rounding) above the clip
    assert (padded < samples * 1.06 + FRAME_SAMPLES).all()
    assert np.array_equal(LADDER.padded_samples(padded), padded)  # a rung is its own rung
    tiny = np.arange(1, 2000)
    assert (LADDER.padded_samples(tiny) >= tiny).all()


def test_every_utterance_once_per_epoch_within_the_padded_budget():
    lengths = durations()
    batches = plan_batches(lengths, max_seconds=60.0, ladder=LADDER, seed=1, epoch=0)
    flat = [i for b in batches for i in b.indices]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(len(b.indices) * b.samples <= 60.0 * SAMPLE_RATE for b in batches)
    assert all(max(lengths[i] for i in b.indices) * SAMPLE_RATE <= b.samples for b in batches)


def test_batch_size_is_a_function_of_the_rung():
    batches = plan_batches(durations(), 60.0, LADDER, seed=1, epoch=0)
    sizes: dict[int, set[int]] = {}
    for b in batches:
        sizes.setdefault(b.samples, set()).add(len(b.indices))
    partial = [rung for rung, seen in sizes.items() if len(seen) > 1]
    assert len(partial) <= 1  # only the epoch's last remainder is short


@pytest.mark.parametrize("budget", [48.0, 200.0])
def test_a_corpus_of_1_77m_rows_has_few_shapes_and_little_padding(budget):
    lengths = corpus_durations(1_770_000)
    summary = plan_summary(plan_batches(lengths, budget, LADDER, seed=3, epoch=0), lengths)
    assert summary["shapes"] <= 64
    assert summary["padding"] <= 0.06


def test_speed_perturbed_lengths_are_planned():
    lengths = durations(2000)
    sampler = DurationBucketSampler(lengths, 60.0, LADDER, seed=4, speeds=(0.9, 1.0, 1.1))
    factors = sampler.speed_factors(2)
    assert set(np.unique(factors)) == {0.9, 1.0, 1.1}
    assert np.array_equal(factors, speed_factors(2000, (0.9, 1.0, 1.1), 4, 2))
    seen = sampler.epoch_durations(2)
    for b in sampler.epoch_batches(2):
        assert max(seen[b.indices]) * SAMPLE_RATE <= b.samples


def test_plan_is_a_function_of_seed_and_epoch():
    lengths = durations(500)
    assert plan_batches(lengths, 40.0, LADDER, 7, 3) == plan_batches(lengths, 40.0, LADDER, 7, 3)
    assert plan_batches(lengths, 40.0, LADDER, 7, 3) != plan_batches(lengths, 40.0, LADDER, 7, 4)


def test_ddp_ranks_get_disjoint_equal_shares():
    lengths = durations(1001)
    shares = [
        DurationBucketSampler(lengths, 40.0, LADDER, 5, rank=rank, world_size=2).epoch_batches(0) for rank in (0, 1)
    ]
    assert len(shares[0]) == len(shares[1]) > 0
    seen = [i for share in shares for b in share for i in b.indices]
    assert len(seen) == len(set(seen))


def test_an_utterance_longer_than_the_budget_gets_its_own_batch():
    batches = plan_eval_batches([1.0, 1.0, 50.0], max_seconds=10.0, ladder=LADDER)
    assert [2] in [b.indices for b in batches] and sorted(i for b in batches for i in b.indices) == [0, 1, 2]


def test_eval_batches_have_few_shapes():
    lengths = corpus_durations(20000, seed=1)
    batches = plan_eval_batches(lengths, 200.0, LADDER)
    summary = plan_summary(batches, lengths)
    assert sorted(i for b in batches for i in b.indices) == list(range(len(lengths)))
    assert summary["shapes"] <= 64 and summary["padding"] <= 0.06


def test_an_epoch_is_planned_once_however_often_training_asks(monkeypatch):
    from trainer.training import sampler as sampler_module

    calls = []
    plan = sampler_module.plan_batches
    monkeypatch.setattr(sampler_module, "plan_batches", lambda *a: calls.append(a[-1]) or plan(*a))
    lengths = durations(300)
    sampler = DurationBucketSampler(lengths, 40.0, LADDER, seed=4, speeds=(0.9, 1.1))
    first = sampler.epoch_batches(1)
    assert sampler.epoch_batches(1) == first and np.array_equal(
        sampler.speed_factors(1), speed_factors(300, (0.9, 1.1), 4, 1)
    )
    sampler.epoch_durations(1)
    assert calls == [1]
    assert sampler.epoch_batches(2) != first and calls == [1, 2]
    assert first == plan(np.asarray(lengths) / speed_factors(300, (0.9, 1.1), 4, 1), 40.0, LADDER, 4, 1)
