"""Mispronunciation detection: each prompt syllable against the errors anticipated for it.

A syllable's score is a log-likelihood ratio under the phone model's CTC posteriors: the prompt
said as expected against the prompt with that one syllable said by its most likely anticipated
error (the patterns of Korean children's speech in trainer.data.synth.mispronounce: tense or
aspirated said plain, final dropped, ㄹ glided or stopped, diphthong said as a monophthong):

    llr = log P(expected phones | audio) - max over errors e of log P(phones with e | audio)

Each likelihood sums over all CTC alignments (torch's ctc_loss), so no frame boundary has to be
trusted and the model's own recognition errors elsewhere in the utterance cancel out of the
ratio: the extended-recognition-network approach of pronunciation training systems (decode
against the anticipated errors, not freely). A syllable is judged mispronounced when
`llr < threshold`; `calibrate_threshold` picks the threshold that maximises syllable F1 on a
labelled set (`trainer assess --calibrate`); uncalibrated, it is DEFAULT_THRESHOLD (0: the
error is more likely than the prompt). A syllable that no anticipated error applies to (e.g.
가: plain initial, plain vowel, no final) has no score and is judged correct.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from trainer.data.phones import Syllable
from trainer.data.synth.mispronounce import applicable, mispronounce

DEFAULT_THRESHOLD = 0.0


@dataclass(frozen=True)
class SyllableScore:
    """`llr` (None: no anticipated error applies) and the most likely error: its pattern and phones."""

    llr: Optional[float]
    pattern: Optional[str] = None
    said: Optional[str] = None


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
    )
    return -loss.double().numpy()


def syllable_scores(
    log_probs: np.ndarray,
    labels: Sequence[int],
    positions: Sequence[int],
    cut: Sequence[Syllable],
    encode: Callable[[str], Optional[list[int]]],
    blank: int,
) -> list[SyllableScore]:
    """The score of each syllable of `cut` (module docstring).

    labels: the prompt's label ids (word delimiters included); positions: where each phone of the
    space-free phone sequence sits in `labels`; encode: phones -> label ids, None when the model's
    vocabulary lacks one (that error cannot be scored and is left out)."""
    variants: list[tuple[int, str, str, list[int]]] = []  # syllable, pattern, phones, labels
    for k, syllable in enumerate(cut):
        first, last = positions[syllable.start], positions[syllable.start + len(syllable) - 1]
        for pattern in applicable(syllable):
            said = mispronounce(syllable, pattern).phones
            ids = encode(said)
            if ids is not None:
                variants.append((k, pattern, said, [*labels[:first], *ids, *labels[last + 1 :]]))
    if not variants:
        return [SyllableScore(None) for _ in cut]
    scores = sequence_log_likelihoods(log_probs, [list(labels)] + [v[3] for v in variants], blank)
    expected, alternatives = scores[0], scores[1:]
    best: dict[int, tuple[float, str, str]] = {}
    for (k, pattern, said, _), score in zip(variants, alternatives):
        if np.isfinite(score) and (k not in best or score > best[k][0]):
            best[k] = (float(score), pattern, said)
    return [
        SyllableScore(expected - best[k][0], best[k][1], best[k][2]) if k in best else SyllableScore(None)
        for k in range(len(cut))
    ]


def flagged(score: Optional[float], threshold: float) -> bool:
    """The decision rule: mispronounced when the expected form is not `threshold` more likely."""
    return score is not None and score < threshold


def detection(flags: Sequence[bool], truth: Sequence[bool]) -> dict[str, float | int]:
    """Precision, recall and F1 of `flags` against `truth` (0 where undefined), with the counts."""
    flag, true = np.asarray(flags, dtype=bool), np.asarray(truth, dtype=bool)
    tp, fp, fn = int((flag & true).sum()), int((flag & ~true).sum()), int((~flag & true).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def calibrate_threshold(scores: Sequence[Optional[float]], truth: Sequence[bool]) -> float:
    """The threshold with the best F1 of `flagged` on labelled syllables: a midpoint between two
    neighbouring scores (the lowest such threshold among equals, i.e. the fewest flags)."""
    finite = np.unique([s for s in scores if s is not None])
    if not any(truth) or not len(finite):
        return DEFAULT_THRESHOLD
    candidates = np.concatenate(([finite[0] - 1.0], (finite[:-1] + finite[1:]) / 2, [finite[-1] + 1.0]))
    f1 = [detection([flagged(s, float(t)) for s in scores], truth)["f1"] for t in candidates]
    return float(candidates[int(np.argmax(f1))])
