"""CTC forced alignment and goodness of pronunciation (GOP) from a model's frame posteriors.

Forced alignment is the Viterbi path through the CTC trellis of the expected label sequence:
states are the labels with a blank before, between and after them (2L + 1); from one frame to
the next a path stays, moves to the next state, or skips a blank between two different labels.
The best path gives every expected label its own frames (at least one), so even a phone the
speaker never said gets a place, where the model's posteriors show what was said instead.

GOP of a label is the mean over its frames of log P(label | frame) - max_q log P(q | frame): 0
when the model's best guess on those frames is the expected phone, very negative when another
phone (or silence: the blank) wins there, i.e. when it was mispronounced or left out. This is
the posterior-ratio GOP of Witt & Young (2000) on CTC posteriors, with the alignment restricted
to the label's own frames because CTC posteriors are peaky (blank between spikes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from trainer.data.screening import ctc_frames_needed
from trainer.exit_codes import ConfigError


class AlignmentError(ConfigError):
    """The audio has fewer frames than the expected labels need."""


@dataclass(frozen=True)
class Span:
    """Frames [start, end) that the best path gives one expected label."""

    start: int
    end: int


def forced_align(log_probs: np.ndarray, targets: Sequence[int], blank: int = 0) -> list[Span]:
    """The frames of each target label on the best CTC path (log_probs: [frames, classes])."""
    frames = log_probs.shape[0]
    if not targets:
        return []
    if frames < ctc_frames_needed(targets):
        raise AlignmentError(f"alignment: {frames} frames cannot hold {len(targets)} labels")
    states = np.full(2 * len(targets) + 1, blank, dtype=np.int64)
    states[1::2] = targets
    # A skip from s-2 to s is allowed into a label different from the label two states back.
    can_skip = np.zeros(len(states), dtype=bool)
    can_skip[3::2] = states[3::2] != states[1:-2:2]
    score = np.full(len(states), -np.inf)
    score[:2] = log_probs[0, states[:2]]
    back = np.zeros((frames, len(states)), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    for t in range(1, frames):
        from_prev = np.concatenate(([-np.inf], score[:-1]))
        from_skip = np.where(can_skip, np.concatenate(([-np.inf, -np.inf], score[:-2])), -np.inf)
        candidates = np.stack([score, from_prev, from_skip])
        back[t] = candidates.argmax(0)
        score = candidates.max(0) + log_probs[t, states]
    state = len(states) - 1 if score[-1] >= score[-2] else len(states) - 2
    path = np.empty(frames, dtype=np.int64)
    for t in range(frames - 1, -1, -1):
        path[t] = state
        state -= back[t, state]
    spans = []
    for label in range(len(targets)):
        where = np.flatnonzero(path == 2 * label + 1)
        spans.append(Span(int(where[0]), int(where[-1]) + 1))
    return spans


def gop(log_probs: np.ndarray, targets: Sequence[int], spans: Sequence[Span]) -> list[float]:
    """Posterior-ratio GOP of each target label over its aligned frames (<= 0; module docstring)."""
    best = log_probs.max(axis=1)
    return [
        float(np.mean(log_probs[s.start : s.end, label] - best[s.start : s.end])) for label, s in zip(targets, spans)
    ]
