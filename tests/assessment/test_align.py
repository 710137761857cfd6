"""CTC forced alignment recovers known boundaries; GOP separates substituted and left-out phones
from correct ones; verdicts per syllable; ROC AUC."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.assessment.align import AlignmentError, forced_align, gop
from trainer.assessment.assess import roc_auc
from trainer.data.screening import ctc_frames_needed

BLANK, CLASSES = 0, 12


def synthetic_posteriors(
    spoken: list[int], rng: np.random.Generator, peak: float = 4.0, classes: int = CLASSES, blank: int = BLANK
):
    """Log posteriors of an utterance that says `spoken`: each label held 2-5 frames, 0-3 blank
    frames around (at least one between equal labels), the frame's true class `peak` above
    standard normal noise. Returns (log_probs, true spans [(start, end)])."""
    frames: list[int] = []
    spans = []
    for i, label in enumerate(spoken):
        gap = int(rng.integers(0, 4))
        if i and spoken[i - 1] == label:
            gap = max(gap, 1)
        frames += [blank] * gap
        start = len(frames)
        frames += [label] * int(rng.integers(2, 6))
        spans.append((start, len(frames)))
    frames += [blank] * int(rng.integers(0, 4))
    logits = rng.normal(0, 1, (len(frames), classes))
    logits[np.arange(len(frames)), frames] += peak
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return log_probs, spans


@pytest.mark.parametrize("seed", range(20))
def test_forced_alignment_recovers_known_boundaries(seed):
    rng = np.random.default_rng(seed)
    spoken = [int(x) for x in rng.integers(1, CLASSES, size=int(rng.integers(3, 12)))]
    log_probs, truth = synthetic_posteriors(spoken, rng)
    spans = forced_align(log_probs, spoken, blank=BLANK)
    assert len(spans) == len(spoken)
    for span, (start, end) in zip(spans, truth):
        # Within one frame at each edge (noise can flip an edge frame to blank).
        assert abs(span.start - start) <= 1 and abs(span.end - end) <= 1
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))


def test_repeated_labels_need_a_blank_between():
    assert ctc_frames_needed([1, 1, 2]) == 4
    log_probs = np.log(np.full((3, CLASSES), 1 / CLASSES))
    with pytest.raises(AlignmentError):
        forced_align(log_probs, [1, 1, 2])
    spans = forced_align(np.log(np.full((4, CLASSES), 1 / CLASSES)), [1, 1, 2])
    assert [s.end - s.start for s in spans] == [1, 1, 1]


@pytest.mark.parametrize("seed", range(10))
def test_gop_is_higher_for_correct_than_for_substituted_or_deleted_phones(seed):
    rng = np.random.default_rng(100 + seed)
    expected = [int(x) for x in rng.permutation(np.arange(1, CLASSES - 1))[:8]]  # distinct phones
    spoken = list(expected)
    spoken[2] = CLASSES - 1  # a phone never expected: a substitution
    del spoken[5]  # a phone left out
    log_probs, _ = synthetic_posteriors(spoken, rng, peak=6.0)  # trained CTC models are peaky
    scores = gop(log_probs, expected, forced_align(log_probs, expected, blank=BLANK))
    correct = [s for i, s in enumerate(scores) if i not in (2, 5)]
    assert max(scores[2], scores[5]) < min(correct)
    assert all(s <= 0 for s in scores)


def test_roc_auc():
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(0.75)
    assert roc_auc([1, 1, 1], [True, False, True]) == pytest.approx(0.5)
    assert roc_auc([1, 2], [True, True]) is None
