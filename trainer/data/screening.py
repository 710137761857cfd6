"""Which utterances a CTC model can learn from: one set of rules for import, training and evaluation.

`row_problem` (pure) is the rule; `screen_rows` applies it to manifest rows after measuring each
file's duration from its header. A row that fails is skipped and counted by reason (SKIP_REASONS):

    missing_audio, not_a_file, permission_denied, io_error, empty_audio, unreadable_audio,
    too_short, too_long        the audio itself (trainer.data.audio's AudioError, renamed here)
    empty_transcript           no label left after normalisation
    invalid_phones             phone units: the text has no valid phone string (trainer.data.phones)
    all_unknown                every label is the vocabulary's unknown unit: nothing to learn
    labels_too_long            CTC needs a frame per label and a blank between repeated labels;
                               with fewer frames (at the model's frame rate, from its conv strides)
                               the loss is infinite and zeroed, so the row teaches nothing
    duration_mismatch          the manifest's (or label's) duration is off the audio's by more than
                               max(DURATION_TOLERANCE_S, DURATION_TOLERANCE_SHARE x measured): the
                               row describes some other file, or the wrong field

Kept rows carry the *measured* duration, so batches are budgeted on the audio, not on trust.

Evaluation (`screen_test_rows`) drops only the rows no model could be scored on: unusable audio,
an empty transcript, a duration mismatch, and where the scoring reads g2pK's phones of the
reference (phone-unit models, PER by g2pK) a text without valid phones. `all_unknown` and
`labels_too_long` depend on the model's vocabulary and frame rate: a test row that fails them is
the model's failure, scored as its errors (`model_limits` counts them), so every model is scored
on the same rows.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Optional, Sequence

from trainer.data.audio import MIN_SECONDS, SAMPLE_RATE, AudioError, check_duration, inspect_audio
from trainer.data.phones import INVALID_PHONES, PhoneError
from trainer.data.text import normalize_transcript, to_units
from trainer.exit_codes import ConfigError
from trainer.model.frontend import conv_frames

AUDIO_SKIP_REASONS = {
    "missing": "missing_audio",
    "not_a_file": "not_a_file",
    "denied": "permission_denied",
    "io_error": "io_error",
    "empty": "empty_audio",
    "unreadable": "unreadable_audio",
    "too_short": "too_short",
    "too_long": "too_long",
}
LABEL_SKIP_REASONS = ("empty_transcript", INVALID_PHONES, "all_unknown", "labels_too_long", "duration_mismatch")
# What keeps one model from writing a test row's reference in full (its units express none of it,
# its vocabulary lacks some or all of it, its frames are too few): scored as that model's errors,
# counted.
MODEL_LIMITS = ("empty_transcript", "all_unknown", "out_of_vocabulary", "labels_too_long")
SKIP_REASONS = (*AUDIO_SKIP_REASONS.values(), *LABEL_SKIP_REASONS)
DURATION_TOLERANCE_S = 0.5
DURATION_TOLERANCE_SHARE = 0.1
# Rows logged one by one per reason; the rest are counted (a broken corpus must not flood the log).
LOGGED_PER_REASON = 5
# Header reads are I/O-bound (network volumes): threads overlap their latency.
PROBE_THREADS = 16
_log = logging.getLogger(__name__)


def audio_skip_reason(exc: AudioError) -> str:
    """The counted skip reason for unusable audio."""
    return AUDIO_SKIP_REASONS[exc.reason]


def model_frames(config: Any, fastest_speed: float = 1.0) -> Callable[[float], int]:
    """Seconds of audio -> output frames of a wav2vec2 model (its config's conv front end), for the
    shortest version of a clip that speed perturbation up to `fastest_speed` can make."""
    kernels, strides = tuple(config.conv_kernel), tuple(config.conv_stride)
    shrink = max(1.0, fastest_speed)
    return lambda seconds: conv_frames(kernels, strides, int(seconds / shrink * SAMPLE_RATE))


def ctc_frames_needed(labels: Sequence[Hashable]) -> int:
    """Fewest frames CTC can align `labels` to: one per label, plus a blank between repeats."""
    return len(labels) + sum(a == b for a, b in zip(labels, labels[1:]))


def duration_disagrees(claimed: float, measured: float) -> bool:
    return abs(claimed - measured) > max(DURATION_TOLERANCE_S, DURATION_TOLERANCE_SHARE * measured)


def row_problem(
    labels: Sequence[Hashable],
    frames: int,
    claimed_seconds: Optional[float],
    measured_seconds: float,
    unknown: Optional[Hashable] = None,
    delimiter: Optional[Hashable] = None,
) -> Optional[str]:
    """Why a row cannot be learned from (a LABEL_SKIP_REASONS entry), or None when it can.

    `labels`: the row's CTC labels (ids, or units where no vocabulary exists yet); `frames`: the
    model's output frames for the clip; `unknown` / `delimiter`: the vocabulary's unknown unit and
    word delimiter (None: not checked).
    """
    if claimed_seconds is not None and duration_disagrees(claimed_seconds, measured_seconds):
        return "duration_mismatch"
    if not any(label != delimiter for label in labels):
        return "empty_transcript"
    if unknown is not None and all(label in (unknown, delimiter) for label in labels):
        return "all_unknown"
    if ctc_frames_needed(labels) > frames:
        return "labels_too_long"
    return None


@dataclass
class SkipTally:
    """Skipped rows of one source, counted by reason, with the first few named."""

    source: str
    total: int = 0
    counts: Counter = field(default_factory=Counter)
    examples: list[dict] = field(default_factory=list)
    utt_ids: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return sum(self.counts.values())

    def add(self, reason: str, utt_id: str, detail: str) -> None:
        self.counts[reason] += 1
        self.utt_ids.append(utt_id)
        if self.counts[reason] <= LOGGED_PER_REASON:
            _log.warning("%s: skipped %s (%s): %s", self.source, utt_id, reason, detail)
            if len(self.examples) < 4 * LOGGED_PER_REASON:
                self.examples.append({"utt_id": utt_id, "reason": reason, "detail": detail})

    def summary(self) -> str:
        counts = ", ".join(f"{reason} {n}" for reason, n in sorted(self.counts.items())) or "none"
        return f"{self.source}: skipped {self.skipped} of {self.total} rows ({counts})"

    def to_dict(self) -> dict:
        return {
            "total": self.total,
            "skipped": self.skipped,
            "by_reason": dict(sorted(self.counts.items())),
            "examples": self.examples,
        }

    def check_share(self, bound: float, setting: str) -> None:
        """ConfigError when more than `bound` of the rows were skipped, or all of them; the message
        names the setting and the first skipped row's reason."""
        if self.total and self.skipped <= bound * self.total and self.skipped < self.total:
            return
        raise ConfigError(f"{self.summary()}, more than {setting}={bound:g} allows{self.first()}")

    def first(self) -> str:
        """`; first: UTT: REASON: DETAIL` for the first skipped row ("" when none was named)."""
        if not self.examples:
            return ""
        first = self.examples[0]
        hint = (
            " (relative audio_filepath values are read from the manifest's own folder)"
            if first["reason"] == "missing_audio"
            else ""
        )
        return f"; first: {first['utt_id']}: {first['reason']}: {first['detail']}{hint}"


def screen_rows(
    rows: Sequence[dict],
    source: str,
    encode: Callable[[dict], Sequence[Hashable]],
    frames_for_seconds: Callable[[float], int],
    unknown: Optional[Hashable] = None,
    delimiter: Optional[Hashable] = None,
    invalid: Optional[dict[str, int]] = None,
    max_seconds: Optional[float] = None,
) -> tuple[list[dict], SkipTally]:
    """The learnable rows (copies, `duration` = measured from the audio header) and the tally.

    `encode`: a row's label ids (TextCodec.encode_row); a PhoneError it raises skips the row.

    `invalid`: rows the manifest reader already rejected, by reason (trainer.data.manifest);
    counted into the tally, so the share of skipped rows covers them too. `max_seconds`: longer
    clips are too_long (training: a clip longer than a whole batch's budget).
    """
    invalid = invalid or {}
    tally = SkipTally(source, total=len(rows) + sum(invalid.values()))
    tally.counts.update(invalid)

    def measure(row: dict) -> float | AudioError:
        try:
            seconds = inspect_audio(row["audio_filepath"]).duration
            return check_duration(seconds, row["audio_filepath"], MIN_SECONDS, max_seconds)
        except AudioError as exc:
            return exc

    with ThreadPoolExecutor(PROBE_THREADS) as pool:
        measured = list(pool.map(measure, rows))
    kept: list[dict] = []
    for row, seconds in zip(rows, measured):
        if isinstance(seconds, AudioError):
            tally.add(audio_skip_reason(seconds), row["utt_id"], str(seconds))
            continue
        try:
            labels = encode(row)
        except PhoneError as exc:
            tally.add(exc.reason, row["utt_id"], str(exc))
            continue
        reason = row_problem(labels, frames_for_seconds(seconds), row["duration"], seconds, unknown, delimiter)
        if reason is not None:
            detail = (
                f"{row['audio_filepath']}: manifest says {row['duration']:.2f} s, audio has {seconds:.2f} s"
                if reason == "duration_mismatch"
                else f"{len(labels)} labels for {seconds:.2f} s of audio ({frames_for_seconds(seconds)} frames): {row['text']!r}"
            )
            tally.add(reason, row["utt_id"], detail)
            continue
        kept.append({**row, "duration": seconds})
    if tally.skipped:
        _log.warning("%s", tally.summary())
    return kept, tally


def share(rows: Sequence[dict], rank: int, world: int) -> Sequence[dict]:
    """One process's contiguous share of `rows` (DDP: each rank screens its share only)."""
    size, extra = divmod(len(rows), world)
    start = rank * size + min(rank, extra)
    return rows[start : start + size + (rank < extra)]


def join_shares(shares: Sequence[tuple[list[dict], SkipTally]], source: str) -> tuple[list[dict], SkipTally]:
    """The screened shares of all processes (in rank order) as one screening of all rows."""
    tally = SkipTally(source)
    rows: list[dict] = []
    for kept, part in shares:
        rows += kept
        tally.total += part.total
        tally.counts.update(part.counts)
        tally.utt_ids += part.utt_ids
        tally.examples += part.examples[: 4 * LOGGED_PER_REASON - len(tally.examples)]
    return rows, tally


def screen_test_rows(rows: Sequence[dict], source: str, phones: bool = False) -> tuple[list[dict], SkipTally]:
    """`screen_rows` with only the rules that hold for every model (audio, empty transcript,
    duration mismatch; with `phones`, when the scoring reads g2pK's phones of the references, a text
    without valid phones): the rows any model is scored on, and the tally."""

    def labels(row: dict) -> str:
        text = normalize_transcript(row["text"])
        return to_units(text, "phone", row.get("pronounced")) if phones else text

    return screen_rows(rows, source, labels, lambda seconds: sys.maxsize)


def model_limit(labels: Sequence[Hashable], frames: int, unknown: Hashable, delimiter: Hashable) -> Optional[str]:
    """Why a model cannot write a test row's reference in full (a MODEL_LIMITS entry), or None."""
    reason = row_problem(labels, frames, None, 0.0, unknown, delimiter)
    if reason is None and unknown in labels:
        return "out_of_vocabulary"
    return reason
