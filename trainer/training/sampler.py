"""Duration-bucketed batches: a budget of padded audio seconds per batch, not a fixed count.

Each epoch the utterances are shuffled (seeded by `seed` and the epoch), cut into pools of
`pool_size`, each pool sorted by duration and cut greedily into batches whose padded size
(utterances x longest) stays within `max_seconds`; then the batches are shuffled. Neighbours in
a sorted pool have nearly the same length, so padding stays at a few percent, and the GPU sees
about the same amount of audio every step whether clips are short or long.

The plan is a pure function of (durations, budget, seed, epoch), so a run resumes exactly from
(epoch, batches consumed) and every DDP rank computes the same plan and takes its own share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


def plan_batches(
    durations: Sequence[float], max_seconds: float, seed: int, epoch: int, pool_size: int = 4096
) -> list[list[int]]:
    """All batches of one epoch (indices into `durations`), in training order."""
    lengths = np.asarray(durations, dtype=np.float64)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    batches: list[list[int]] = []
    for start in range(0, len(order), pool_size):
        pool = order[start : start + pool_size]
        batches += _cut_sorted(pool[np.argsort(lengths[pool], kind="stable")], lengths, max_seconds)
    return [batches[i] for i in rng.permutation(len(batches))]


def plan_eval_batches(durations: Sequence[float], max_seconds: float) -> list[list[int]]:
    """Validation batches: every utterance once, sorted by duration (no randomness)."""
    lengths = np.asarray(durations, dtype=np.float64)
    return _cut_sorted(np.argsort(lengths, kind="stable"), lengths, max_seconds)


def _cut_sorted(indices: np.ndarray, lengths: np.ndarray, max_seconds: float) -> list[list[int]]:
    batches: list[list[int]] = []
    batch: list[int] = []
    for i in indices:
        # Sorted ascending, so the newcomer is the longest: padded size = count x its length.
        if batch and (len(batch) + 1) * lengths[i] > max_seconds:
            batches.append(batch)
            batch = []
        batch.append(int(i))
    if batch:
        batches.append(batch)
    return batches


def padding_fraction(batches: Sequence[Sequence[int]], durations: Sequence[float]) -> float:
    """Share of padded audio that is padding (0 = none)."""
    lengths = np.asarray(durations, dtype=np.float64)
    real = sum(lengths[b].sum() for b in batches)
    padded = sum(len(b) * lengths[b].max() for b in batches)
    return float(1.0 - real / padded) if padded else 0.0


@dataclass
class DurationBucketSampler:
    """One DDP rank's share of the duration-bucketed plan, resumable at any batch.

    Every rank gets the same number of batches per epoch (the plan is trimmed to a multiple of
    the world size) so that all ranks take the same number of optimizer steps.
    """

    durations: Sequence[float]
    max_seconds: float
    seed: int
    rank: int = 0
    world_size: int = 1
    pool_size: int = 4096

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        batches = plan_batches(self.durations, self.max_seconds, self.seed, epoch, self.pool_size)
        usable = len(batches) - len(batches) % self.world_size
        return batches[self.rank : usable : self.world_size]

    def steps_in_epoch(self, epoch: int, grad_accum: int) -> int:
        return len(self.epoch_batches(epoch)) // grad_accum
