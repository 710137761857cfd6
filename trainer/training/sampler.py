"""Duration-bucketed batches on a ladder of padded lengths: few distinct shapes, a padded budget.

Every batch's time axis is padded up to a rung of a geometric ladder of lengths (`LengthLadder`:
each rung `step` longer than the one below, whole wav2vec2 frames), and a batch on a rung holds
budget // rung utterances. So a batch's shape (utterances, samples) is a function of its rung, an
epoch has about as many distinct shapes as the ladder has rungs over the data's durations, and the
budget counts padded audio: a GPU pays once per new shape (kernel selection, allocator, graphs),
not on every step as with float lengths.

Each epoch the utterances are shuffled (seeded by `seed` and the epoch) and grouped by the rung of
their length; each rung is cut into full batches and its remainder moves up to the next rung
(padded to that rung), so only the epoch's last batch can be partial. Then the batches are shuffled.
Lengths are those the model sees: speed perturbation's factor for (seed, epoch, utterance) is drawn
here (`speed_factors`) and the loader applies that same factor.

The plan is a pure function of (durations, budget, ladder, speeds, seed, epoch), so a run resumes
exactly from (epoch, batches consumed) and every DDP rank computes the same plan and takes its share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import numpy as np

from trainer.data.audio import SAMPLE_RATE
from trainer.model.frontend import FRAME_SAMPLES  # a rung is a whole number of XLS-R output frames


@dataclass(frozen=True)
class LengthLadder:
    """Padded lengths a batch may have: ceil(1 s x (1 + step)^k) in whole frames, k integer."""

    step: float

    def padded_samples(self, samples: np.ndarray | int) -> np.ndarray:
        """The shortest rung holding `samples` (element-wise)."""
        wanted = np.maximum(np.asarray(samples, dtype=np.float64), 1.0)
        k = np.ceil(np.log(wanted / SAMPLE_RATE) / np.log1p(self.step))
        # Rounding up to whole frames (and float rounding) can make the rung below hold it too,
        # then that rung is `wanted` in whole frames; float rounding can also land one rung low.
        k = np.where(self._rung(k - 1) >= wanted, k - 1, k)
        k = np.where(self._rung(k) < wanted, k + 1, k)
        return self._rung(k).astype(np.int64)

    def padded_for_seconds(self, seconds: Sequence[float] | np.ndarray) -> np.ndarray:
        return self.padded_samples(np.ceil(np.asarray(seconds, dtype=np.float64) * SAMPLE_RATE))

    def _rung(self, k: np.ndarray) -> np.ndarray:
        return np.ceil(SAMPLE_RATE * (1.0 + self.step) ** k / FRAME_SAMPLES) * FRAME_SAMPLES


def speed_factors(n: int, speeds: Sequence[float], seed: int, epoch: int) -> np.ndarray:
    """Speed perturbation factor of each utterance in an epoch (1.0 everywhere when `speeds` is empty)."""
    if not speeds:
        return np.ones(n)
    return np.random.default_rng([seed, epoch, 1]).choice(np.asarray(speeds, dtype=np.float64), size=n)


class PlannedBatch(NamedTuple):
    indices: list[int]
    samples: int  # the rung every utterance of the batch is padded to

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.indices), self.samples


def plan_batches(
    durations: Sequence[float], max_seconds: float, ladder: LengthLadder, seed: int, epoch: int
) -> list[PlannedBatch]:
    """All batches of one epoch (indices into `durations`, lengths as the model sees them), in order."""
    padded = ladder.padded_for_seconds(durations)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(padded))
    batches = _cut_by_rung(order[np.argsort(padded[order], kind="stable")], padded, max_seconds)
    return [batches[i] for i in rng.permutation(len(batches))]


def plan_eval_batches(durations: Sequence[float], max_seconds: float, ladder: LengthLadder) -> list[PlannedBatch]:
    """Validation batches: every utterance once, sorted by duration (no randomness)."""
    padded = ladder.padded_for_seconds(durations)
    order = np.argsort(np.asarray(durations, dtype=np.float64), kind="stable")
    return _cut_by_rung(order[np.argsort(padded[order], kind="stable")], padded, max_seconds)


def _cut_by_rung(indices: np.ndarray, padded: np.ndarray, max_seconds: float) -> list[PlannedBatch]:
    """Cut `indices` (sorted by rung) into full batches of budget // rung; a rung's remainder joins
    the next rung up, the last remainder is the only partial batch."""
    batches: list[PlannedBatch] = []
    carry = np.empty(0, dtype=np.int64)
    samples = 0
    for group in np.split(indices, np.flatnonzero(np.diff(padded[indices])) + 1):
        if not len(group):
            continue
        members, samples = np.concatenate([carry, group]), int(padded[group[0]])
        size = max(1, int(max_seconds * SAMPLE_RATE // samples))
        full = len(members) // size * size
        batches += [PlannedBatch(b.tolist(), samples) for b in np.split(members[:full], full // size)] if full else []
        carry = members[full:]
    if len(carry):
        batches.append(PlannedBatch(carry.tolist(), samples))
    return batches


def plan_summary(batches: Sequence[PlannedBatch], durations: Sequence[float]) -> dict[str, float]:
    """Batches, distinct (utterances, samples) shapes and padding share (0 = none) of a plan."""
    lengths = np.asarray(durations, dtype=np.float64)
    padded = sum(len(b.indices) * b.samples for b in batches) / SAMPLE_RATE
    real = float(sum(lengths[b.indices].sum() for b in batches))
    return {
        "batches": len(batches),
        "shapes": len({b.shape for b in batches}),
        "padding": 1.0 - real / padded if padded else 0.0,
    }


@dataclass
class DurationBucketSampler:
    """One DDP rank's share of the ladder-bucketed plan, resumable at any batch.

    Every rank gets the same number of batches per epoch (the plan is trimmed to a multiple of
    the world size) so that all ranks take the same number of optimizer steps.
    """

    durations: Sequence[float]
    max_seconds: float
    ladder: LengthLadder
    seed: int
    speeds: Sequence[float] = field(default_factory=tuple)
    rank: int = 0
    world_size: int = 1
    # The last epoch planned: (epoch, speed factors, durations, this rank's batches). Training asks
    # for the current epoch's plan several times (keys, log line, metrics); only one is kept, as a
    # plan of a large corpus is big.
    _latest: tuple = field(default=(), init=False, repr=False, compare=False)

    def _plan(self, epoch: int) -> tuple:
        if not self._latest or self._latest[0] != epoch:
            speeds = speed_factors(len(self.durations), self.speeds, self.seed, epoch)
            durations = np.asarray(self.durations, dtype=np.float64) / speeds
            batches = plan_batches(durations, self.max_seconds, self.ladder, self.seed, epoch)
            usable = len(batches) - len(batches) % self.world_size
            self._latest = (epoch, speeds, durations, batches[self.rank : usable : self.world_size])
        return self._latest

    def speed_factors(self, epoch: int) -> np.ndarray:
        return self._plan(epoch)[1]

    def epoch_durations(self, epoch: int) -> np.ndarray:
        """Lengths after this epoch's speed perturbation (what the model sees)."""
        return self._plan(epoch)[2]

    def epoch_batches(self, epoch: int) -> list[PlannedBatch]:
        return self._plan(epoch)[3]

    def steps_in_epoch(self, epoch: int, grad_accum: int) -> int:
        return len(self.epoch_batches(epoch)) // grad_accum
