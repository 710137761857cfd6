"""Duration-bucketed batching: budget, coverage, padding, determinism, DDP shares."""

import numpy as np

from trainer.training.sampler import DurationBucketSampler, padding_fraction, plan_batches, plan_eval_batches


def durations(n: int = 3000, seed: int = 0) -> list[float]:
    # Log-normal like read speech: median ~3 s, a tail of long utterances, none under 0.5 s.
    return list(np.clip(np.random.default_rng(seed).lognormal(1.1, 0.5, n), 0.5, 30.0))


def test_every_utterance_once_per_epoch_within_the_budget():
    lengths = durations()
    batches = plan_batches(lengths, max_seconds=60.0, seed=1, epoch=0)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(len(b) * max(lengths[i] for i in b) <= 60.0 for b in batches)


def test_padding_is_a_few_percent():
    lengths = durations()
    assert padding_fraction(plan_batches(lengths, 60.0, seed=1, epoch=0), lengths) < 0.05


def test_plan_is_a_function_of_seed_and_epoch():
    lengths = durations(500)
    assert plan_batches(lengths, 40.0, 7, 3) == plan_batches(lengths, 40.0, 7, 3)
    assert plan_batches(lengths, 40.0, 7, 3) != plan_batches(lengths, 40.0, 7, 4)


def test_ddp_ranks_get_disjoint_equal_shares():
    lengths = durations(1001)
    shares = [DurationBucketSampler(lengths, 40.0, 5, rank, 2).epoch_batches(0) for rank in (0, 1)]
    assert len(shares[0]) == len(shares[1]) > 0
    seen = [i for share in shares for b in share for i in b]
    assert len(seen) == len(set(seen))


def test_an_utterance_longer_than_the_budget_gets_its_own_batch():
    batches = plan_eval_batches([1.0, 1.0, 50.0], max_seconds=10.0)
    assert [2] in batches and sorted(i for b in batches for i in b) == [0, 1, 2]
