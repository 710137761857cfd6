"""Mispronunciation detection that anticipates no error: each prompt syllable against every
single-phone edit of it.

A syllable's score is a log-likelihood ratio under the phone model's CTC posteriors: the prompt
said as expected against the prompt with that syllable said by its most likely edit,

    llr = log P(expected phones | audio) - max over edits e of log P(phones with e | audio)

where the edits are every substitution of one of its phones by another phone of the model's
inventory in the same place (onset by onset, vowel by vowel, final by final), every deletion of
one phone, and every insertion of an onset or a final where the syllable has none
(trainer.data.phones.single_edits); the best edit
is then edited once more (a second phone: e.g. 라 said 야 is ㄹ deleted and ㅏ glided), and the
best of all of them is what was most likely heard. No list of expected errors enters the score:
a syllable is flagged for whatever was said instead, and the verdict names the phones heard (a
process table only names them afterwards: trainer.data.processes.classify).

Each likelihood sums over all CTC alignments (torch's ctc_loss) within a window of frames: the
syllable with its neighbouring syllables, cut at the frames that the forced alignment of the
prompt gives them (trainer.assessment.align), so an edit is scored where it was said and the
model's recognition errors elsewhere in the utterance cannot enter the ratio.

The decision: mispronounced when `llr + gop_weight * gop < threshold`, gop being the syllable's
worst phone GOP (posterior ratio on the phone's own frames, <= 0), which adds how far the model's
frame-level guess is from the expected phone. `calibrate` sets them on a labelled set (`trainer
assess --calibrate`): the threshold flags a fixed share of the correctly said syllables
(FALSE_ALARM_RATE, a budget of false alarms), and the weight is the one that flags the most
mispronounced ones within it. Uncalibrated they are DEFAULT_RULE (weight 0, threshold 0: the best
edit is more likely than the prompt).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from trainer.assessment.align import Span
from trainer.data.phones import Syllable, single_edits


@dataclass(frozen=True)
class Rule:
    """Flag a syllable when llr + gop_weight * gop < threshold."""

    threshold: float
    gop_weight: float = 0.0

    def score(self, llr: float, gop: float) -> float:
        return llr + self.gop_weight * gop

    def flags(self, llr: float, gop: float) -> bool:
        return self.score(llr, gop) < self.threshold


DEFAULT_RULE = Rule(0.0, 0.0)
# The share of correctly said syllables a calibrated rule flags: about one false flag per 28 prompts
# of seven syllables. A budget of false alarms, unlike the best F1 on the calibration set, does not
# depend on how many errors the calibration children made: the threshold with the best F1 where 12%
# of syllables were wrong flags too many for a child who makes few. 0.5% against 0.2%, 1% and 2% on
# one leave-process-out bench, then measured on another (BENCHMARKS.md, pronunciation assessment).
FALSE_ALARM_RATE = 0.005
# Weights of GOP tried by `calibrate` (llr and GOP are both natural-log ratios).
GOP_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class SyllableScore:
    """`llr` (module docstring) and `said`: the phones of the most likely edit ("" none left)."""

    llr: float
    said: str


def sequence_log_likelihoods(log_probs: np.ndarray, sequences: Sequence[Sequence[int]], blank: int) -> np.ndarray:
    """log P(sequence | audio) of each label sequence under CTC log posteriors [frames, classes]
    (-inf where the frames cannot hold it)."""
    import torch

    frames = log_probs.shape[0]
    batch = torch.from_numpy(np.ascontiguousarray(log_probs, dtype=np.float32)).unsqueeze(1)
    loss = torch.nn.functional.ctc_loss(
        batch.expand(frames, len(sequences), log_probs.shape[1]),
        torch.tensor([label for seq in sequences for label in seq], dtype=torch.long),
        torch.full((len(sequences),), frames, dtype=torch.long),
        torch.tensor([len(seq) for seq in sequences], dtype=torch.long),
        blank=blank,
        reduction="none",
        zero_infinity=False,
    )
    return -loss.double().numpy()


def syllable_scores(
    log_probs: np.ndarray,
    labels: Sequence[int],
    positions: Sequence[int],
    spans: Sequence[Span],
    cut: Sequence[Syllable],
    inventory: Mapping[str, int],
    blank: int,
) -> list[SyllableScore]:
    """The score of each syllable of `cut` (module docstring).

    labels: the prompt's label ids (word delimiters included); positions: where each phone of the
    space-free phone sequence sits in `labels`; spans: the forced alignment's frames of each label;
    inventory: phone -> label id, the phones an edit may use."""
    import torch

    # Each window is a small batch (~50 sequences of ~10 labels over ~40 frames): one thread does
    # it 6x faster than two on a loaded 2-core machine (thread hand-offs cost more than the work).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _scores(log_probs, labels, positions, spans, cut, inventory, blank)
    finally:
        torch.set_num_threads(threads)


def _scores(log_probs, labels, positions, spans, cut, inventory, blank) -> list[SyllableScore]:
    phones = list(inventory)
    frames = log_probs.shape[0]
    result = []
    for k, syllable in enumerate(cut):
        first, last = positions[syllable.start], positions[syllable.start + len(syllable) - 1]
        low = positions[cut[k - 1].start] if k > 0 else 0
        high = positions[cut[k + 1].start + len(cut[k + 1]) - 1] if k + 1 < len(cut) else len(labels) - 1
        window = _Window(
            log_probs[(spans[low].start if low > 0 else 0) : (spans[high].end if high < len(labels) - 1 else frames)],
            list(labels[low:first]),
            list(labels[last + 1 : high + 1]),
            inventory,
            blank,
        )
        edits = single_edits(syllable.phones, phones)
        expected, *scores = window.likelihoods([syllable.phones, *edits])
        best = int(np.argmax(scores))
        said, score = edits[best], float(scores[best])
        second = [e for e in single_edits(said, phones) if e != syllable.phones]
        if second:
            again = window.likelihoods(second)
            if float(again.max()) > score:
                said, score = second[int(np.argmax(again))], float(again.max())
        result.append(SyllableScore(float(expected) - score, said))
    return result


@dataclass(frozen=True)
class _Window:
    """The frames around one syllable and the labels of its neighbours there."""

    log_probs: np.ndarray
    before: list[int]
    after: list[int]
    inventory: Mapping[str, int]
    blank: int

    def likelihoods(self, candidates: list[str]) -> np.ndarray:
        """log P of the window's labels with each candidate's phones in the syllable's place."""
        sequences = [[*self.before, *(self.inventory[p] for p in c), *self.after] for c in candidates]
        return sequence_log_likelihoods(self.log_probs, sequences, self.blank)


def detection(flags: Sequence[bool], truth: Sequence[bool]) -> dict[str, float | int]:
    """Precision, recall and F1 of `flags` against `truth` (0 where undefined), with the counts."""
    flag, true = np.asarray(flags, dtype=bool), np.asarray(truth, dtype=bool)
    tp, fp, fn = int((flag & true).sum()), int((flag & ~true).sum()), int((~flag & true).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def false_alarm_threshold(correct_scores: Sequence[float], rate: float) -> float:
    """The threshold under which `score < threshold` flags at most `rate` of `correct_scores` (the
    scores of correctly said syllables): midway between the last one it may flag and the next."""
    values = np.sort(np.asarray(correct_scores, dtype=float))
    allowed = int(np.floor(rate * len(values)))
    if allowed == 0:
        return float(values[0])
    if allowed >= len(values):
        return float(values[-1]) + 1.0
    return float((values[allowed - 1] + values[allowed]) / 2)


def calibrate(
    llrs: Sequence[float], gops: Sequence[float], truth: Sequence[bool], false_alarm_rate: float = FALSE_ALARM_RATE
) -> Rule:
    """The rule that flags `false_alarm_rate` of the correctly said syllables of a labelled set (its
    threshold: that quantile of their scores), with the GOP weight of GOP_WEIGHTS under which it
    flags the most mispronounced ones (the smallest among equals; without any, weight 0: the budget
    needs only the correct syllables). ValueError when none was said correctly."""
    llr, gop, wrong = np.asarray(llrs, dtype=float), np.asarray(gops, dtype=float), np.asarray(truth, dtype=bool)
    if wrong.all():
        raise ValueError(f"no correctly said syllable among {len(wrong)} to set a false-alarm budget on")
    best: tuple[int, Rule] | None = None
    for weight in GOP_WEIGHTS:
        scores = llr + weight * gop
        threshold = false_alarm_threshold(scores[~wrong], false_alarm_rate)
        found = int((scores[wrong] < threshold).sum())
        if best is None or found > best[0]:
            best = (found, Rule(threshold, weight))
    return best[1]
