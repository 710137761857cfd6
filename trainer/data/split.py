"""Speaker-disjoint train/val/test split, stratified so every split looks like the whole corpus.

Algorithm (`split_by_speaker`, a pure function of the rows and the seed):

1. Drop rows that would leak or double-count, each with its reason: a repeated `utt_id`
   (`duplicate_utt_id`), audio already seen in an earlier row - same `audio_fingerprint` when the
   importer recorded one, else the same path (`duplicate_audio`); with `keep_source_test`, the
   non-test rows of speakers who also appear in the corpus's own test folder
   (`speaker_in_source_test`).
2. Give each speaker its dominant stratum: the most frequent (age group, SNR bin) among its rows.
3. Order the speakers so that strata interleave in proportion (seeded; speakers sorted by id
   first, so row order does not matter; see trainer.data.strata.interleaved_order) and give each
   speaker, whole, to the split furthest below its target share of the utterances seen so far.
   Each split thus takes speakers evenly spread over that order - a systematic stratified sample -
   so its age groups and SNR bins follow the corpus's, and even a corpus of a few dozen speakers
   gets validation and test speakers; duration bins follow because no split is chosen by length.
4. Report: rows, speakers and hours per split; per split the share of each age group, SNR bin and
   duration bin against the corpus and the largest deviation in percentage points; a leakage audit
   recomputed from the outputs (speakers and identical audio shared between splits); and the
   dropped rows by reason.

Fractions are shares of the utterances kept after step 1. With `keep_source_test`, the test split
is exactly the rows whose `source_split` names a test folder (e.g. `3.Test`), `test_fraction` is
not used, and validation speakers are drawn from the remaining rows only.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from trainer.data.strata import combined_code, interleaved_order, share_report, strata_codes
from trainer.exit_codes import ConfigError

SPLITS = ("train", "val", "test")
_TEST_FOLDER = re.compile(r"test", re.IGNORECASE)
_EXAMPLES = 10


@dataclass
class SplitResult:
    train: list[dict]
    val: list[dict]
    test: list[dict]
    # Each dropped row is a copy with a `drop_reason` field.
    dropped: list[dict] = field(default_factory=list)
    report: dict = field(default_factory=dict)

    def parts(self) -> dict[str, list[dict]]:
        return {"train": self.train, "val": self.val, "test": self.test}


def _audio_key(row: dict) -> str:
    return row.get("audio_fingerprint") or row["audio_filepath"]


def _drop_leaks(rows: list[dict], keep_source_test: bool) -> tuple[list[int], list[dict]]:
    """Indices of rows to split, and the dropped rows with their reasons (step 1)."""
    dropped: list[dict] = []
    test_speakers: set[str] = set()
    if keep_source_test:
        test_speakers = {r["speaker_id"] for r in rows if _TEST_FOLDER.search(r.get("source_split") or "")}
    seen_ids: set[str] = set()
    seen_audio: set[str] = set()
    kept: list[int] = []
    for i, row in enumerate(rows):
        reason = None
        audio = _audio_key(row)
        if row["utt_id"] in seen_ids:
            reason = "duplicate_utt_id"
        elif audio in seen_audio:
            reason = "duplicate_audio"
        elif row["speaker_id"] in test_speakers and not _TEST_FOLDER.search(row.get("source_split") or ""):
            reason = "speaker_in_source_test"
        if reason:
            dropped.append({**row, "drop_reason": reason})
            continue
        seen_ids.add(row["utt_id"])
        seen_audio.add(audio)
        kept.append(i)
    return kept, dropped


def _assign(
    speaker_of_row: np.ndarray, stratum_of_row: np.ndarray, speaker_rank: np.ndarray,
    targets: np.ndarray, rng: np.random.Generator, fixed: np.ndarray,
) -> np.ndarray:
    """Split index per speaker (steps 2-3). `fixed[s] >= 0` pins speaker s to that split."""
    n_speakers = len(speaker_rank)
    n_strata = int(stratum_of_row.max()) + 1
    pair_counts = np.bincount(speaker_of_row * n_strata + stratum_of_row, minlength=n_speakers * n_strata)
    pair_counts = pair_counts.reshape(n_speakers, n_strata)
    dominant = pair_counts.argmax(axis=1)
    weight = pair_counts.sum(axis=1)
    split_of = fixed.copy()
    free = np.flatnonzero(fixed < 0)
    free = free[np.argsort(speaker_rank[free])]
    assigned = np.zeros(len(targets))
    for s in free[interleaved_order(dominant[free], rng)].tolist():
        choice = int(np.argmax(targets * (assigned.sum() + weight[s]) - assigned))
        split_of[s] = choice
        assigned[choice] += weight[s]
    return split_of


def _audit(parts: dict[str, list[dict]]) -> dict:
    """Leakage recomputed from the outputs alone (sets of the smaller splits' keys, probed by train)."""
    speakers = {name: {r["speaker_id"] for r in rows} for name, rows in parts.items()}
    shared = (speakers["train"] & speakers["val"]) | (speakers["train"] & speakers["test"]) | (speakers["val"] & speakers["test"])
    identical: set[str] = set()
    for key in (_audio_key, lambda row: row["audio_filepath"]):
        val_keys = {key(r) for r in parts["val"]}
        test_keys = {key(r) for r in parts["test"]}
        identical |= val_keys & test_keys
        identical.update(k for k in map(key, parts["train"]) if k in val_keys or k in test_keys)
    return {
        "shared_speakers": len(shared),
        "shared_speaker_examples": sorted(shared)[:_EXAMPLES],
        "identical_audio_across_splits": len(identical),
        "identical_audio_examples": sorted(identical)[:_EXAMPLES],
        "audio_compared_by": "audio_fingerprint (when recorded) and audio_filepath",
    }


def split_by_speaker(
    rows: list[dict], val_fraction: float, test_fraction: float, seed: int, keep_source_test: bool = False
) -> SplitResult:
    """Speaker-disjoint, stratified split (algorithm in the module docstring)."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"val_fraction/test_fraction: each must be in [0, 1) and their sum < 1, got {val_fraction} and {test_fraction}"
        )
    if not rows:
        raise ConfigError("split: the manifest has no rows")
    kept_idx, dropped = _drop_leaks(rows, keep_source_test)
    kept = [rows[i] for i in kept_idx]
    codes = strata_codes(kept)
    stratum = combined_code(codes, ("age_group", "snr_bin"))

    speaker_index: dict[str, int] = {}
    speaker_of_row = np.fromiter(
        (speaker_index.setdefault(r["speaker_id"], len(speaker_index)) for r in kept), dtype=np.int64, count=len(kept)
    )
    names = list(speaker_index)
    speaker_rank = np.empty(len(names), dtype=np.int64)
    speaker_rank[np.argsort(np.array(names, dtype=object), kind="stable")] = np.arange(len(names))
    fixed = np.full(len(names), -1, dtype=np.int64)
    if keep_source_test:
        in_test = np.fromiter((bool(_TEST_FOLDER.search(r.get("source_split") or "")) for r in kept), bool, len(kept))
        fixed[np.unique(speaker_of_row[in_test])] = SPLITS.index("test")
        pool_share = 1.0 - in_test.mean()
        if pool_share == 0:
            raise ConfigError("split: --keep-source-test but every row comes from a test folder")
        val_share = min(val_fraction / pool_share, 1.0)
        targets = np.array([1.0 - val_share, val_share, 0.0])
    else:
        targets = np.array([1.0 - val_fraction - test_fraction, val_fraction, test_fraction])
    rng = np.random.default_rng(seed)
    split_of_speaker = _assign(speaker_of_row, stratum, speaker_rank, targets, rng, fixed)
    split_of_row = split_of_speaker[speaker_of_row]

    parts = {name: [kept[i] for i in np.flatnonzero(split_of_row == k).tolist()] for k, name in enumerate(SPLITS)}
    durations = np.fromiter((r["duration"] for r in kept), dtype=np.float64, count=len(kept))
    report = {
        "seed": seed,
        "val_fraction": val_fraction,
        "test_fraction": None if keep_source_test else test_fraction,
        "keep_source_test": keep_source_test,
        "input_rows": len(rows),
        "kept_rows": len(kept),
        "dropped_rows": len(dropped),
        "dropped_by_reason": dict(sorted(Counter(d["drop_reason"] for d in dropped).items())),
        "dropped_examples": [f"{d['utt_id']}: {d['drop_reason']}" for d in dropped[:_EXAMPLES]],
        "corpus": {"rows": len(kept), "speakers": len(names), "hours": round(float(durations.sum()) / 3600, 4)},
        "splits": {},
    }
    for k, name in enumerate(SPLITS):
        mask = split_of_row == k
        report["splits"][name] = {
            "rows": int(mask.sum()),
            "speakers": int((split_of_speaker == k).sum()),
            "hours": round(float(durations[mask].sum()) / 3600, 4),
            "row_share": round(float(mask.mean()), 5),
            "strata": share_report(codes, mask),
        }
    report["max_deviation_pp"] = max(s["strata"]["max_deviation_pp"] for s in report["splits"].values() if s["rows"])
    report["leakage"] = _audit(parts)
    return SplitResult(parts["train"], parts["val"], parts["test"], dropped, report)
