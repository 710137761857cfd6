"""How well word confidences predict correct words: the calibration table behind the report's
reliability chart, so an app can pick the confidence below which it asks a child to repeat.

Words are binned by confidence ([0, 0.1), ..., [0.9, 1.0]); per bin, the share of words that the
alignment with the reference found correct. A calibrated model's accuracy equals its confidence in
every bin; the expected calibration error (ECE) is the word-weighted mean gap.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

BINS = 10


def calibration(words: Iterable[Mapping[str, Any]], bins: int = BINS) -> dict[str, Any]:
    """Summary of (confidence, correct) pairs of decoded words (predictions.jsonl's `words`)."""
    pairs = [(w["confidence"], w["correct"]) for w in words]
    conf = np.array([c for c, _ in pairs], dtype=float)
    correct = np.array([ok for _, ok in pairs], dtype=bool)
    index = np.minimum((conf * bins).astype(int), bins - 1)
    table = []
    for b in range(bins):
        mask = index == b
        table.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "words": int(mask.sum()),
                "accuracy": float(correct[mask].mean()) if mask.any() else None,
                "mean_confidence": float(conf[mask].mean()) if mask.any() else None,
            }
        )
    ece = sum(row["words"] * abs(row["accuracy"] - row["mean_confidence"]) for row in table if row["words"])
    return {
        "words": len(pairs),
        "accuracy": float(correct.mean()) if pairs else None,
        "mean_confidence_correct": float(conf[correct].mean()) if correct.any() else None,
        "mean_confidence_wrong": float(conf[~correct].mean()) if (~correct).any() else None,
        "ece": ece / len(pairs) if pairs else None,
        "bins": table,
    }
