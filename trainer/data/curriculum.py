"""Nested curriculum subsets: phase 1 within phase 2 within phase 3, each close to its hours.

`nested_subsets` (pure) orders the pool once and cuts it at each target: every phase is a prefix
of the same order, so phase k is a subset of phase k+1 by construction.

The order interleaves strata (age group x SNR bin x duration bin, see
trainer.data.strata.interleaved_order), so every prefix holds each stratum in proportion to the
pool: a 30 h phase looks like the 148 h one. A cut lands on the utterance closest to
the target; when that misses by more than 1 % (tiny targets with long utterances), the nearest
utterance further on whose length closes the gap is moved up to the cut, which keeps the nesting.

Targets are hours (`--hours 30 90 148`) or fractions of the pool's hours (`--fractions 0.2 0.6
1.0`, for small corpora), strictly increasing. More hours than the pool holds is a ConfigError
that names both numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trainer.data.manifest import speaker_identity
from trainer.data.strata import combined_code, interleaved_order, share_report, strata_codes
from trainer.exit_codes import ConfigError

TOLERANCE = 0.01
# How far past a cut to look for an utterance that brings the phase within tolerance, and how many
# of the phase's last rows may be swapped for one.
_SEARCH_WINDOW = 2000
_SWAP_DEPTH = 200


def _targets(total_seconds: float, hours: Sequence[float] | None, fractions: Sequence[float] | None) -> list[float]:
    if (hours is None) == (fractions is None):
        raise ConfigError("curriculum: give exactly one of --hours or --fractions")
    values = list(hours if hours is not None else fractions)
    name = "hours" if hours is not None else "fractions"
    if not values or any(v <= 0 for v in values) or any(b <= a for a, b in zip(values, values[1:])):
        raise ConfigError(f"curriculum: --{name} must be positive and strictly increasing, got {values}")
    if fractions is not None:
        if values[-1] > 1:
            raise ConfigError(f"curriculum: --fractions must be <= 1, got {values}")
        return [f * total_seconds for f in values]
    available = total_seconds / 3600
    if values[-1] * 3600 > total_seconds:
        raise ConfigError(
            f"curriculum: asked for {values[-1]:g} h but the manifest holds only {available:.3f} h "
            f"(targets {values}); use smaller --hours or --fractions"
        )
    return [h * 3600 for h in values]


def _cut(order: np.ndarray, durations: np.ndarray, start: int, target: float) -> int:
    """Number of leading rows of `order` summing to within TOLERANCE of target (may reorder).

    Only positions >= start (this phase's new rows) move, so earlier phases stay as they are.
    """
    cumulative = np.cumsum(durations[order])
    k = int(np.searchsorted(cumulative, target))
    if k >= len(order):
        return len(order)
    if k < start:
        raise ConfigError(
            f"curriculum: target {target / 3600:.4f} h is already covered by the previous phase; spread the targets"
        )
    below = cumulative[k - 1] if k > 0 else 0.0
    count = k + 1 if cumulative[k] - target <= target - below else k
    if count > start and abs((cumulative[count - 1] if count else 0.0) - target) <= TOLERANCE * target:
        return count
    # Fill the gap: add the best-fitting later utterance, or swap one of this phase's last rows
    # for a later one, whichever lands closer.
    window = np.arange(k, min(k + _SEARCH_WINDOW, len(order)))
    taken = np.arange(max(start, k - _SWAP_DEPTH), k)
    added = below + durations[order[window]]
    best_add = int(np.argmin(np.abs(added - target)))
    swapped = below + durations[order[window]][None, :] - durations[order[taken]][:, None]
    best_swap = np.unravel_index(np.argmin(np.abs(swapped - target)), swapped.shape) if len(taken) else None
    if best_swap is not None and abs(swapped[best_swap] - target) < abs(added[best_add] - target):
        i, j = taken[best_swap[0]], window[best_swap[1]]
        reached = swapped[best_swap]
    else:
        i, j = k, window[best_add]
        reached = added[best_add]
        k += 1
    if abs(reached - target) > TOLERANCE * target:
        raise ConfigError(
            f"curriculum: cannot get within {TOLERANCE:.0%} of {target / 3600:.4f} h with these utterances "
            f"(closest {reached / 3600:.4f} h); ask for more hours, or targets further apart"
        )
    order[i], order[j] = order[j], order[i]
    return k


def nested_subsets(
    rows: Sequence[dict], hours: Sequence[float] | None = None, fractions: Sequence[float] | None = None, seed: int = 0
) -> tuple[list[list[dict]], dict]:
    """Nested phases (list of row lists, smallest first) and a report (see module docstring)."""
    if not rows:
        raise ConfigError("curriculum: the manifest has no rows")
    durations = np.fromiter((r["duration"] for r in rows), dtype=np.float64, count=len(rows))
    total = float(durations.sum())
    targets = _targets(total, hours, fractions)
    codes = strata_codes(rows)
    rng = np.random.default_rng(seed)
    order = interleaved_order(combined_code(codes, ("age_group", "snr_bin", "duration_bin")), rng)
    counts: list[int] = []
    for target in targets:
        counts.append(_cut(order, durations, counts[-1] if counts else 0, target))
    phases = [[rows[i] for i in order[:count].tolist()] for count in counts]
    report = {
        "seed": seed,
        "requested": {
            "hours": list(hours) if hours is not None else None,
            "fractions": list(fractions) if fractions is not None else None,
        },
        "pool": {
            "rows": len(rows),
            "hours": round(total / 3600, 4),
            "speakers": len({speaker_identity(r["speaker_id"]) for r in rows}),
        },
        "tolerance_pct": TOLERANCE * 100,
        "nested": all(a <= b for a, b in zip(counts, counts[1:])),
        "phases": [],
    }
    for number, (target, count) in enumerate(zip(targets, counts), start=1):
        chosen = order[:count]
        seconds = float(durations[chosen].sum())
        report["phases"].append(
            {
                "phase": number,
                "target_hours": round(target / 3600, 4),
                "hours": round(seconds / 3600, 4),
                "deviation_pct": round(100 * (seconds - target) / target, 4),
                "rows": count,
                "speakers": len({speaker_identity(rows[i]["speaker_id"]) for i in chosen.tolist()}),
                "strata": share_report(codes, chosen),
            }
        )
    return phases, report
