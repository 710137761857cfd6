"""Speaker-disjoint train/val/test split, stratified so every split looks like the whole corpus.

Algorithm (`split_by_speaker`, a pure function of the rows and the seed):

1. Drop rows that would leak or double-count, each with its reason: a repeated `utt_id`
   (`duplicate_utt_id`), audio already seen in an earlier row - same `audio_fingerprint` when the
   importer recorded one, else the same path (`duplicate_audio`); with `keep_source_test`, the
   non-test rows of speakers who also appear in the corpus's own test folder
   (`speaker_in_source_test`).
2. Profile each speaker: how many of its rows fall in each age group, SNR bin and duration bin,
   and its total (a speaker is stratified by all its rows, not only its dominant stratum).
3. Visit the speakers in a seeded random order (sorted by id first, so row order does not
   matter) and give each, whole, to the split that keeps the splits closest to their targets:
   the one minimising, over splits and bins, (rows in split - target share x rows so far)^2 /
   target share. The total-rows column keeps the split sizes on target, the bin columns keep
   every split's age-group, SNR-bin and duration-bin shares on the corpus's - the quantities the
   report checks - and even a corpus of a few dozen speakers gets validation and test speakers.
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

from trainer.data.manifest import speaker_identity
from trainer.data.strata import DIMENSIONS, share_report, strata_codes
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
        test_speakers = {
            speaker_identity(r["speaker_id"]) for r in rows if _TEST_FOLDER.search(r.get("source_split") or "")
        }
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
        elif speaker_identity(row["speaker_id"]) in test_speakers and not _TEST_FOLDER.search(
            row.get("source_split") or ""
        ):
            reason = "speaker_in_source_test"
        if reason:
            dropped.append({**row, "drop_reason": reason})
            continue
        seen_ids.add(row["utt_id"])
        seen_audio.add(audio)
        kept.append(i)
    return kept, dropped


def _speaker_profiles(speaker_of_row: np.ndarray, codes: dict[str, np.ndarray], n_speakers: int) -> np.ndarray:
    """Per speaker: its rows in each age group, SNR bin and duration bin, then its total rows."""
    columns = []
    for dim, labels in DIMENSIONS.items():
        width = len(labels)
        counts = np.bincount(speaker_of_row * width + codes[dim], minlength=n_speakers * width)
        columns.append(counts.reshape(n_speakers, width))
    columns.append(np.bincount(speaker_of_row, minlength=n_speakers)[:, None])
    return np.hstack(columns).astype(np.float64)


def _assign(profiles: np.ndarray, order: np.ndarray, targets: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Split index per speaker (step 3); `fixed[s] >= 0` pins speaker s and keeps it out of the balance.

    error[j] = rows of split j per bin - target_j * rows per bin so far. Adding profile v to split
    j changes sum_j' |error[j']|^2 / target_j' by (2 error'[j].v + |v|^2) / target_j, with
    error' = error - target (x) v; the cheapest j wins. Dividing by the target weighs a row
    missing from the 5 % validation split like 18 rows missing from the 90 % training split,
    which is what equal deviations in percentage points mean.
    """
    split_of = fixed.copy()
    allowed = np.flatnonzero(targets > 0)
    error = np.zeros((len(targets), profiles.shape[1]))
    for s in order.tolist():
        if fixed[s] >= 0:
            continue
        v = profiles[s]
        error -= np.outer(targets, v)
        cost = (2 * error[allowed] @ v + v @ v) / targets[allowed]
        choice = int(allowed[np.argmin(cost)])
        error[choice] += v
        split_of[s] = choice
    return split_of


def _audit(parts: dict[str, list[dict]]) -> dict:
    """Leakage recomputed from the outputs alone (sets of the smaller splits' keys, probed by train),
    speakers told apart as the split told them apart (`speaker_identity`)."""
    speakers = {name: {speaker_identity(r["speaker_id"]) for r in rows} for name, rows in parts.items()}
    shared = (
        (speakers["train"] & speakers["val"])
        | (speakers["train"] & speakers["test"])
        | (speakers["val"] & speakers["test"])
    )
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
    speaker_index: dict[str, int] = {}
    speaker_of_row = np.fromiter(
        (speaker_index.setdefault(speaker_identity(r["speaker_id"]), len(speaker_index)) for r in kept),
        dtype=np.int64,
        count=len(kept),
    )
    names = list(speaker_index)
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
    # Speakers sorted by id, then shuffled: the result depends on the seed, not on row order.
    by_id = np.argsort(np.array(names, dtype=object), kind="stable")
    order = by_id[np.random.default_rng(seed).permutation(len(names))]
    split_of_speaker = _assign(_speaker_profiles(speaker_of_row, codes, len(names)), order, targets, fixed)
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
