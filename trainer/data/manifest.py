"""Utterance manifests: JSONL, one utterance a line, NeMo-style field names.

Every row has the fields in REQUIRED_FIELDS:

    utt_id          str         unique within a manifest
    audio_filepath  str         absolute, or relative to the manifest's own directory
    duration        float       seconds, > 0
    text            str         normalised transcript (see trainer.data.text), not empty
    speaker_id      str         ints are accepted and turned into strings; NFC, whitespace
                                collapsed (`speaker_identity`: one child, one id)
    age             int | null  years
    gender          "M" | "F" | null
    snr_db          float | null

Any other field (e.g. `source_split`, `raw_text`, `audio_fingerprint`) is kept as it is.

Relative `audio_filepath` values are resolved against the directory holding the manifest when it is
read, so a corpus folder can be moved together with its manifests; rows coming out of
`read_manifest` always carry absolute paths, and `write_manifest` writes what it is given.

A manifest, and the audio it names, may be in S3 (`s3://...`, see trainer.storage): the manifest
is fetched into the pod's cache to be read, a relative audio path in it names an object below the
manifest's own prefix, and `write_manifest` writes audio held in the cache as the URI of its
object, so manifests written from cached data work in every pod. Readers of audio fetch what they
need with `fetch_audio(rows)`.

Reading validates every row. A bad row raises ManifestError naming file, line and field; with
`skip_invalid=True` it is skipped instead and counted by reason in the caller's `stats` dict.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import math
import os
import sys
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from trainer import storage
from trainer.exit_codes import ConfigError

REQUIRED_FIELDS = ("utt_id", "audio_filepath", "duration", "text", "speaker_id", "age", "gender", "snr_db")
GENDERS = ("M", "F")


class ManifestError(ConfigError):
    """A manifest row that breaks the format; the message reads `FILE:LINE: field 'X': problem`."""

    def __init__(self, where: str, field: str, problem: str, reason: str = "invalid_field") -> None:
        super().__init__(f"{where}: field '{field}': {problem}")
        self.where = where
        self.field = field
        self.reason = reason


def speaker_identity(speaker: str) -> str:
    """The id that names one speaker wherever speakers are told apart (import, split, its leakage
    audit, the curriculum): NFC, whitespace trimmed and collapsed. The same child written as NFC,
    as NFD (macOS tools) or with a trailing space is one speaker, not three."""
    return " ".join(unicodedata.normalize("NFC", speaker).split())


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_row(row: dict, where: str) -> dict:
    """Check one row against the format and return it with canonical types.

    The returned dict is new: required fields first (their keys are the module's interned
    constants, which keeps 1.7M-row manifests small in memory), then the extra fields in order.
    """
    if not isinstance(row, dict):
        raise ManifestError(where, "*", f"expected a JSON object, got {type(row).__name__}", "not_an_object")
    for name in REQUIRED_FIELDS:
        if name not in row:
            raise ManifestError(where, name, "missing", "missing_field")
    utt_id, path, duration, text = row["utt_id"], row["audio_filepath"], row["duration"], row["text"]
    speaker, age, gender, snr = row["speaker_id"], row["age"], row["gender"], row["snr_db"]
    if not isinstance(utt_id, str) or not utt_id:
        raise ManifestError(where, "utt_id", f"must be a non-empty string, got {utt_id!r}")
    if not isinstance(path, str) or not path:
        raise ManifestError(where, "audio_filepath", f"must be a non-empty string, got {path!r}")
    if not _number(duration) or duration <= 0:
        raise ManifestError(where, "duration", f"must be a positive number of seconds, got {duration!r}")
    if not isinstance(text, str) or not text.strip():
        raise ManifestError(where, "text", f"must be a non-empty string, got {text!r}")
    if isinstance(speaker, int) and not isinstance(speaker, bool):
        speaker = str(speaker)
    if isinstance(speaker, str):
        speaker = speaker_identity(speaker)
    if not isinstance(speaker, str) or not speaker:
        raise ManifestError(where, "speaker_id", f"must be a non-empty string, got {speaker!r}")
    if age is not None and (isinstance(age, bool) or not isinstance(age, int) or not 0 <= age <= 130):
        raise ManifestError(where, "age", f"must be an integer number of years or null, got {age!r}")
    if gender is not None and gender not in GENDERS:
        raise ManifestError(where, "gender", f'must be "M", "F" or null, got {gender!r}')
    if snr is not None and not _number(snr):
        raise ManifestError(where, "snr_db", f"must be a number (dB) or null, got {snr!r}")
    out = {
        "utt_id": utt_id,
        "audio_filepath": path,
        "duration": float(duration),
        "text": text,
        "speaker_id": speaker,
        "age": age,
        "gender": gender,
        "snr_db": None if snr is None else float(snr),
    }
    for key, value in row.items():
        if key not in out:
            out[sys.intern(key)] = value
    return out


def read_manifest(path: str | Path, skip_invalid: bool = False, stats: dict | None = None) -> Iterator[dict]:
    """Stream validated rows from a JSONL manifest (see module docstring for the rules).

    With `skip_invalid`, bad rows are skipped and `stats[reason]` counts them (reasons:
    bad_json, not_an_object, missing_field, invalid_field, duplicate_utt_id); otherwise the first
    bad row raises ManifestError.
    """
    local = storage.local_file(path)
    base = storage.parent_uri(str(path))
    seen_ids: set[str] = set()
    # One string object per distinct speaker / source split instead of one per row.
    shared: dict[str, str] = {}
    try:
        handle = open(local, "rb")
    except FileNotFoundError:
        raise ConfigError(f"{path}: manifest not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: manifest not readable ({exc.strerror or exc})") from None
    with handle:
        for lineno, line in enumerate(handle, start=1):
            if lineno == 1 and line.startswith(codecs.BOM_UTF8):
                line = line[len(codecs.BOM_UTF8) :]
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                try:
                    raw = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ManifestError(where, "*", f"not valid JSON ({exc})", "bad_json") from None
                row = validate_row(raw, where)
                if row["utt_id"] in seen_ids:
                    raise ManifestError(where, "utt_id", f"duplicate {row['utt_id']!r}", "duplicate_utt_id")
            except ManifestError as exc:
                if not skip_invalid:
                    raise
                if stats is not None:
                    stats[exc.reason] = stats.get(exc.reason, 0) + 1
                continue
            seen_ids.add(row["utt_id"])
            audio = row["audio_filepath"]
            row["audio_filepath"] = storage.resolve_below(base, audio)
            row["speaker_id"] = shared.setdefault(row["speaker_id"], row["speaker_id"])
            split = row.get("source_split")
            if isinstance(split, str):
                row["source_split"] = shared.setdefault(split, split)
            yield row


def fetch_audio(rows: Iterable[dict]) -> None:
    """Fetch the audio of `rows` that is in S3 into the pod's cache, in parallel (only what is
    missing or changed); load_audio then reads the cached copies."""
    storage.prefetch(row["audio_filepath"] for row in rows)


def load_manifest(path: str | Path, **kw: Any) -> list[dict]:
    """All rows of a manifest as a list (keyword arguments as for read_manifest)."""
    return list(read_manifest(path, **kw))


@contextlib.contextmanager
def atomic_write(path: str | Path, binary: bool = False) -> Iterator[IO]:
    """Open a file for writing that appears at `path` only once complete.

    Writes go to a temp file in the same folder, moved into place with os.replace on success; a
    crash half-way leaves the previous file untouched, never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_manifest(rows: Iterable[dict], path: str | Path) -> int:
    """Write rows as JSONL atomically (see atomic_write); returns the number of rows."""
    count = 0
    with atomic_write(path, binary=True) as handle:
        for row in rows:
            audio = row.get("audio_filepath")  # a report's rows (skipped ones) may have none
            uri = storage.uri_of_cached(audio) if isinstance(audio, str) else None
            if uri:
                row = {**row, "audio_filepath": uri}
            handle.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
            count += 1
    return count


def write_json(obj: Any, path: str | Path) -> None:
    """Write a JSON report atomically (see atomic_write), indented for people to read."""
    with atomic_write(path) as handle:
        json.dump(obj, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
