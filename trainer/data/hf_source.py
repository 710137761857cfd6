"""Hugging Face datasets as a corpus source: `data prepare --format hf --dataset PATH_OR_ID`.

What `--dataset` may name (`open_splits`):

    a save_to_disk folder        (dataset_dict.json or state.json inside) datasets.load_from_disk
    a .parquet or .arrow file    one split, `train`
    a folder of Parquet/Arrow    datasets.load_dataset(folder, streaming=True): datasets infers the
      shards, or an audiofolder  builder and the split names (train-*.parquet, test/..., metadata.csv)
    a Hub dataset id             huggingface_hub.snapshot_download into the cache (`--hf-cache`, on the
                                 run's storage; an interrupted download resumes), then as a folder

`--config` picks a named configuration (subset) of a folder or Hub dataset; `--split` (repeatable)
limits the import to some splits (default: all). Each split's name becomes the rows' `source_split`,
so `--keep-source-test` keeps a `test` split as the test set.

Rows are read as Arrow record batches (`with_format("arrow")`, `BATCH_ROWS` at a time): an `Audio`
column then holds its storage, `{bytes, path}`, which is what `Audio(decode=False)` gives, so
neither torchcodec nor FFmpeg is needed. A plain binary column is taken as the file's bytes and a
string column as a path (relative paths: below a local dataset's folder).

Columns (`resolve_columns`): each role takes the column its `--field-*` flag names (dotted paths
reach into struct columns), or when the flag keeps its AI Hub default, the first present of
DEFAULT_COLUMNS; the import report's `columns` records the choice per split. Audio, text and
speaker are required (a missing one is an error naming its flag); the rest may be absent.

Audio is decoded by the project's reader (trainer.data.audio.decode_audio: soundfile, mixed to
mono, resampled to 16 kHz with soxr) and written once as 16-bit FLAC to `audio/` next to the
manifest, named by a digest of the source bytes: a rerun finds the files an interrupted run wrote
and decodes only the rest, and changed audio never reuses a stale file.

Memory holds what Arrow reads at once (one Parquet row group: datasets writes them up to 100 MB)
and one batch of rows (with `--workers N`, at most 2N chunks of rows in flight), not the corpus
(tools/bench/bench_hf_import.py). The rows then go through the importer shared with the other
formats (trainer.data.importers: screening, skip-and-count, reports); rows skipped here
(missing_transcript, missing_speaker, missing_audio, unreadable_audio, too_short, ...) are counted
in the same report.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from tqdm import tqdm

from trainer.data.audio import SAMPLE_RATE, AudioError, decode_audio
from trainer.data.audio import _os_error as audio_os_error
from trainer.data.importers import (
    _CONTEXT,
    AihubFields,
    ImportOptions,
    ImportReport,
    _generic_candidate,
    _lookup,
    _run,
    _Skip,
)
from trainer.data.screening import audio_skip_reason
from trainer.exit_codes import ConfigError

AUDIO_DIR = "audio"
BATCH_ROWS = 256
# Rows handed to a worker at once; with the in-flight limit this bounds the bytes held in memory.
_CHUNK_ROWS = 32
# Role -> the columns tried when its flag keeps the AI Hub default, first present wins.
DEFAULT_COLUMNS = {
    "audio": ("audio", "audio_filepath", "file", "wav", "path"),
    "text": ("sentence", "text", "transcription", "transcript", "normalized_text"),
    "speaker_id": ("speaker_id", "client_id", "speaker", "spk_id"),
    "utt_id": ("utt_id", "id", "utterance_id", "segment_id"),
    "age": ("age",),
    "gender": ("gender", "sex"),
    "duration": ("duration",),
    "snr_db": ("snr_db",),
}
# Role -> the AihubFields field (its `--field-*` flag) that names its column.
_FLAG_FIELDS = {
    "audio": "audio_file",
    "text": "text",
    "speaker_id": "speaker_id",
    "age": "age",
    "gender": "gender",
    "duration": "duration",
    "snr_db": "snr_db",
}
_REQUIRED = ("audio", "text", "speaker_id")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
# A content digest's version: bump when the FLAC written for the same bytes would differ.
_DECODE_VERSION = f"{SAMPLE_RATE}Hz/mono/PCM_16/1"


def _flag(role: str) -> str:
    return "--field-" + _FLAG_FIELDS[role].replace("_", "-")


def local_source(dataset: str, cache: str | None = None) -> Path:
    """The dataset on this machine: the path itself, or a Hub id's snapshot (downloaded into `cache`)."""
    path = Path(dataset)
    if path.exists():
        return path.resolve()
    if not _HUB_ID.fullmatch(dataset):
        raise ConfigError(f"--dataset: {dataset} is no file or folder, nor a Hub dataset id (owner/name)")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(dataset, repo_type="dataset", cache_dir=cache))
    except (OSError, ValueError) as exc:  # offline, unknown repository, no access: all OSErrors
        raise ConfigError(
            f"--dataset: {dataset} is no local path and the Hub did not give it ({type(exc).__name__}: {exc})"
        ) from None


def open_splits(source: Path, config: str | None, splits: Iterable[str] = ()) -> dict[str, Any]:
    """Split name -> Dataset or IterableDataset for a local source (module docstring)."""
    import datasets

    try:
        if source.is_dir() and any((source / name).is_file() for name in ("dataset_dict.json", "state.json")):
            if config:
                raise ConfigError(f"--config: {source} is a save_to_disk folder, which has no configurations")
            loaded = datasets.load_from_disk(str(source))
        elif source.is_file():
            builder = {".parquet": "parquet", ".arrow": "arrow"}.get(source.suffix.lower())
            if builder is None:
                raise ConfigError(f"--dataset: {source}: a file must be .parquet or .arrow (or name its folder)")
            loaded = datasets.load_dataset(builder, data_files={"train": str(source)}, streaming=True)
        else:
            loaded = datasets.load_dataset(str(source), name=config, streaming=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--dataset: {source}: not readable as a dataset ({type(exc).__name__}: {exc})") from None
    if not isinstance(loaded, dict):  # one Dataset saved on its own
        loaded = {str(loaded.split or "train"): loaded}
    wanted = list(splits) or list(loaded)
    unknown = [name for name in wanted if name not in loaded]
    if unknown:
        raise ConfigError(f"--split: {', '.join(unknown)} not in {source} (its splits: {', '.join(loaded)})")
    return {name: loaded[name] for name in wanted}


def resolve_columns(columns: list[str], features: Any, fields: AihubFields, where: str) -> dict[str, str | None]:
    """Role -> column (a dotted path for struct members) or None; ConfigError for a required role
    without one, or a flag that names a column the split lacks."""
    defaults = AihubFields()
    chosen: dict[str, str | None] = {}
    for role, candidates in DEFAULT_COLUMNS.items():
        field_name = _FLAG_FIELDS.get(role)
        given = getattr(fields, field_name) if field_name else None
        if given is not None and given != getattr(defaults, field_name):
            if given.split(".")[0] not in columns:
                raise ConfigError(f"{_flag(role)}: no column {given!r} in {where} (columns: {', '.join(columns)})")
            chosen[role] = given
            continue
        chosen[role] = next((name for name in candidates if name in columns), None)
    if chosen["audio"] is None:  # any column typed Audio, whatever its name
        chosen["audio"] = next((name for name, f in (features or {}).items() if type(f).__name__ == "Audio"), None)
    for role in _REQUIRED:
        if chosen[role] is None:
            tried = "/".join(DEFAULT_COLUMNS[role])
            raise ConfigError(
                f"{_flag(role)}: {where} has no {role} column ({tried}; columns: {', '.join(columns)}); name it with the flag"
            )
    return chosen


def _audio_source(value: Any, base: Path | None) -> tuple[bytes | None, str | None]:
    """(bytes, path) of an audio cell: an Audio struct, raw bytes or a path string."""
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
    elif isinstance(value, (bytes, bytearray)):
        data, path = value, None
    else:
        data, path = None, value if isinstance(value, str) else None
    if path and not data and base is not None and not os.path.isabs(path):
        path = str(base / path)
    return (bytes(data) if data else None), path or None


def _read_audio_bytes(data: bytes | None, path: str | None) -> bytes:
    """The encoded audio of a row; _Skip when there is none to read."""
    if data:
        return data
    if not path:
        raise _Skip("missing_audio", "the audio cell has neither bytes nor a path")
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:  # counted as the other formats count a file they cannot read
        error = audio_os_error(exc, path)
        raise _Skip(audio_skip_reason(error), f"{path}: {error.detail}" if error.detail else path) from None


def flac_path(audio_dir: Path, data: bytes) -> Path:
    """Where the FLAC decoded from `data` lives: named by a digest of the bytes and the decoding."""
    digest = hashlib.blake2b(data, digest_size=16, person=_DECODE_VERSION.encode()[:16]).hexdigest()
    return audio_dir / digest[:2] / f"{digest}.flac"


def _write_flac(task: tuple[str, str, bytes, Path]) -> tuple[str, tuple[str, str] | None]:
    """Decode one row's bytes and write its FLAC: (where, None) or (where, (skip reason, detail))."""
    where, name, data, dest = task
    options: ImportOptions = _CONTEXT["options"]
    try:
        samples = decode_audio(data, name, min_seconds=options.min_seconds, max_seconds=options.max_seconds)
    except AudioError as exc:
        return where, (audio_skip_reason(exc), exc.detail)
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.stem}.{os.getpid()}.part")  # whole files only, also between workers
    sf.write(partial, pcm, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    os.replace(partial, dest)
    return where, None


def _write_chunk(tasks: list[tuple[str, str, bytes, Path]]) -> list[tuple[str, tuple[str, str] | None]]:
    return [_write_flac(task) for task in tasks]


def _written(
    tasks: Iterator[tuple[str, str, bytes, Path]], workers: int
) -> Iterator[tuple[str, tuple[str, str] | None]]:
    """_write_flac over `tasks`, in order; in a worker pool a bounded number of chunks at a time."""
    if workers <= 1:
        yield from map(_write_flac, tasks)
        return
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pending: deque = deque()
        while chunk := list(islice(tasks, _CHUNK_ROWS)):
            pending.append(pool.apply_async(_write_chunk, (chunk,)))
            if len(pending) >= 2 * workers:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()


def _split_rows(
    name: str, split: Any, columns: dict[str, str | None], base: Path | None
) -> Iterator[tuple[str, dict, bytes | None, str | None]]:
    """(where, generic record, audio bytes, audio path) per row of one split, one batch in memory."""
    top = sorted({column.split(".")[0] for column in columns.values() if column})
    total = getattr(split, "num_rows", None) or _declared_rows(split)
    index = 0
    with tqdm(total=total, desc=f"decode {name}", unit="row", mininterval=2.0) as progress:
        for table in split.with_format("arrow").iter(batch_size=BATCH_ROWS):
            for row in table.select(top).to_pylist():
                data, path = _audio_source(_lookup(row, columns["audio"]), base)
                record = {role: _lookup(row, column) for role, column in columns.items() if column and role != "audio"}
                if record.get("utt_id") in (None, ""):
                    record["utt_id"] = Path(path).stem if path else f"{name}-{index:08d}"
                record["source_split"] = name
                yield f"{name}[{index}]", record, data, path
                index += 1
            progress.update(table.num_rows)


def _declared_rows(split: Any) -> int | None:
    info = getattr(split, "info", None)
    splits = getattr(info, "splits", None) or {}
    declared = splits.get(str(getattr(split, "split", "")))
    return getattr(declared, "num_examples", None)


def import_hf(
    dataset: str,
    out: str | Path,
    splits: Iterable[str] = (),
    config: str | None = None,
    cache: str | None = None,
    fields: AihubFields | None = None,
    options: ImportOptions | None = None,
) -> ImportReport:
    """Import a Hugging Face dataset into the manifest `out`, its audio into `audio/` beside it."""
    out, fields, options = Path(out), fields or AihubFields(), options or ImportOptions()
    source = local_source(dataset, cache)
    if source.is_dir() and (out.parent.resolve() == source or source in out.parent.resolve().parents):
        raise ConfigError(f"--out: {out} lies inside --dataset {source}; its audio would be read as the dataset's")
    opened = open_splits(source, config, splits)
    _CONTEXT.update(options=options)
    report = ImportReport(
        dataset, str(out), "hf", {**asdict(options), "fields": asdict(fields), "config": config, "splits": list(opened)}
    )
    base = source if source.is_dir() else source.parent
    audio_dir = out.parent / AUDIO_DIR
    candidates: dict[str, dict] = {}

    def flac_tasks() -> Iterator[tuple[str, str, bytes, Path]]:
        for name, split in opened.items():
            features = getattr(split, "features", None)
            names = list(features or split.column_names or ())
            columns = resolve_columns(names, features, fields, f"{dataset} [{name}]")
            report.columns[name] = columns
            for where, record, data, path in _split_rows(name, split, columns, base):
                try:
                    encoded = _read_audio_bytes(data, path)
                    dest = flac_path(audio_dir, encoded)
                    record["audio_filepath"] = str(dest)
                    candidates[where] = _generic_candidate(where, record, base, "")
                except _Skip as exc:
                    report.skip(exc.reason, where, exc.detail)
                    continue
                if not dest.is_file():  # else written by an earlier, interrupted run
                    yield where, path or where, encoded, dest

    for where, skip in _written(flac_tasks(), options.workers):
        if skip is not None:
            report.skip(skip[0], where, skip[1])
            del candidates[where]
    report.candidates += len(report.records)  # rows that never became tasks
    return _run([("generic", candidate) for candidate in candidates.values()], report, out, options)
