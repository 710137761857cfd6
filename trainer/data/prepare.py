"""`python -m trainer data prepare`: corpus on disk -> everything training and evaluation read.

One step a cluster user (or the local demo) runs once per corpus:

    import (aihub | jsonl | csv | hf; with phone units, pronounce) -> split by speaker -> child/adult views -> curriculum
    -> vocabulary

With `--unit phone` every row gets its pronounced form (`pronounced`: g2pK's Hangul, see
trainer.data.phones) as it is imported, once rather than at every training step; the targets
are its phones.

Outputs in OUT (names are the constants below):

    all.jsonl, import_report.json, import_skipped.jsonl      every usable utterance (+ `pronounced`
                                                              with --unit phone); what was skipped
    train.jsonl val.jsonl test.jsonl, split_report.json       speaker-disjoint, stratified
    split_dropped.jsonl                                       rows the split left out, with reasons
    {train,val,test}_{child,adult}.jsonl                      child = age < 18 or unknown (the
                                                              product's corpora are child corpora);
                                                              a file is written only if non-empty
    curriculum/phase1.jsonl .. phaseN.jsonl                   nested, from train_child (or all of
    curriculum/curriculum_report.json                         train with --curriculum-source all)
    vocab.json, text_units.json                               from train.jsonl: all training speakers,
                                                              adult and child, so the base model and
                                                              the adapters share one vocabulary
    prepare_report.json                                       options, inputs hash, outputs, figures

Idempotent: the inputs hash covers the options and the source (every file's path, size and
modification time; for a JSONL/CSV list also those of every audio file it names, so restored or
replaced audio is imported again); when prepare_report.json already records the same hash and every output it
lists exists, nothing is redone.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Literal

from trainer.config import PHASES
from trainer.data.curriculum import nested_subsets
from trainer.data.importers import (
    REPORT_FILE,
    SKIPPED_FILE,
    AihubFields,
    ImportOptions,
    generic_audio_files,
    import_aihub,
    import_generic,
)
from trainer.data.manifest import load_manifest, write_json, write_manifest
from trainer.data.phones import g2pk_name
from trainer.data.split import SPLITS, split_by_speaker
from trainer.data.text import UNITS_FILE, VOCAB_FILE, Unit, build_vocab, save_vocab
from trainer.exit_codes import ConfigError
from trainer.layout import CURRICULUM_DIR, PREPARE_REPORT_FILE, group_file, phase_file

ALL_FILE = "all.jsonl"
SPLIT_REPORT_FILE = "split_report.json"
SPLIT_DROPPED_FILE = "split_dropped.jsonl"
CURRICULUM_REPORT_FILE = "curriculum_report.json"
GROUPS = ("child", "adult")
ADULT_AGE = 18
# Bump when prepare's outputs change meaning, so old outputs are not taken as up to date.
# 2: rows checked by trainer.data.screening. 3: format characters removed from transcripts, phone
# rows checked against the phone inventory.
PREPARE_VERSION = 3


def split_file(split: str) -> str:
    return f"{split}.jsonl"


def age_group(row: dict) -> str:
    """ "child" (age < 18 or unknown) or "adult"."""
    return "adult" if row["age"] is not None and row["age"] >= ADULT_AGE else "child"


@dataclass(frozen=True)
class PrepareOptions:
    source: str  # --root DIR for aihub, --manifest FILE for jsonl/csv, --dataset PATH_OR_ID for hf
    out: str
    format: Literal["aihub", "jsonl", "csv", "hf"] = "aihub"
    val_fraction: float = 0.05
    test_fraction: float = 0.05
    seed: int = 42
    keep_source_test: bool = False
    hours: tuple[float, ...] | None = None  # default: the PHASES hours when no fractions are given
    fractions: tuple[float, ...] | None = None
    curriculum_source: Literal["child", "all"] = "child"
    unit: Unit = "syllable"
    min_seconds: float = 0.5
    max_seconds: float | None = 30.0
    dual: Literal["spoken", "orthographic"] = "spoken"
    estimate_snr: bool = False
    workers: int = 1
    fields: AihubFields = field(default_factory=AihubFields)
    # --format hf (trainer.data.hf_source): splits to import (all when empty), configuration, Hub cache.
    hf_splits: tuple[str, ...] = ()
    hf_config: str | None = None
    hf_cache: str | None = None

    def import_options(self) -> ImportOptions:
        """The import rules among these options."""
        return ImportOptions(**{f.name: getattr(self, f.name) for f in dataclass_fields(ImportOptions)})

    def curriculum_targets(self) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
        if self.hours is None and self.fractions is None:
            return tuple(spec.hours for spec in PHASES.values()), None
        return self.hours, self.fractions


def _source_listing(source: Path, fmt: str) -> list[tuple[str, int, int]]:
    """(path, size, mtime_ns) of every file of the source, for a list (JSONL/CSV) the audio files
    it names too (-1, -1: missing): the cheap change detector. A Parquet/Arrow file holds its audio."""
    if source.is_file():
        stat = source.stat()
        listing = [(source.name, stat.st_size, stat.st_mtime_ns)]
        named = generic_audio_files(source, fmt) if fmt in ("jsonl", "csv") else ()  # hf: audio inside
        for audio in named:
            try:
                audio_stat = audio.stat()
                listing.append((str(audio), audio_stat.st_size, audio_stat.st_mtime_ns))
            except OSError:  # missing or unreadable: import skips the row; restoring it must count
                listing.append((str(audio), -1, -1))
        return listing
    listing = []
    for folder, dirs, files in os.walk(source):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            try:
                stat = os.stat(path)
            except OSError:  # a dangling link or unreadable entry: import counts it; here its link is the state
                stat = os.lstat(path)
            listing.append((os.path.relpath(path, source), stat.st_size, stat.st_mtime_ns))
    return listing


def inputs_hash(options: PrepareOptions) -> str:
    """SHA-256 of the options that shape the outputs and of the source listing."""
    if options.format == "hf":  # a Hub id is listed as its downloaded snapshot
        from trainer.data.hf_source import local_source

        source = local_source(options.source, options.hf_cache)
    else:
        source = Path(options.source)
    if not source.exists():
        raise ConfigError(f"{'--root' if options.format == 'aihub' else '--manifest'}: {source} does not exist")
    shaping = {k: v for k, v in asdict(options).items() if k not in ("out", "workers", "source", "hf_cache")}
    if options.unit == "phone":  # the targets are the G2P's: corrected rules make other targets
        shaping["g2p"] = g2pk_name()
    digest = hashlib.sha256(json.dumps([PREPARE_VERSION, shaping], sort_keys=True, ensure_ascii=False).encode())
    for entry in _source_listing(source, options.format):
        digest.update(json.dumps(entry, ensure_ascii=False).encode())
    return digest.hexdigest()


def _up_to_date(out: Path, digest: str) -> dict | None:
    report_path = out / PREPARE_REPORT_FILE
    if not report_path.exists():
        return None
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    if report.get("inputs_hash") != digest:
        return None
    if not all((out / name).exists() for name in report.get("outputs", {})):
        return None
    return report


def _clear_views(out: Path) -> None:
    """Remove group views and phases of an earlier run, so none of them outlives its inputs."""
    for split in SPLITS:
        for group in GROUPS:
            (out / group_file(split, group)).unlink(missing_ok=True)
    for old in (out / CURRICULUM_DIR).glob("phase*.jsonl"):
        old.unlink()


def _summary(rows: list[dict]) -> dict:
    return {
        "rows": len(rows),
        "hours": round(sum(r["duration"] for r in rows) / 3600, 4),
        "speakers": len({r["speaker_id"] for r in rows}),
    }


def prepare(options: PrepareOptions, force: bool = False) -> dict:
    """Run every step into options.out (see module docstring); returns prepare_report.json's dict."""
    out = Path(options.out)
    digest = inputs_hash(options)
    if not force and (done := _up_to_date(out, digest)) is not None:
        print(f"prepare: {out} is up to date (inputs hash {digest[:12]}); nothing to do")
        return done
    started = time.monotonic()
    timings: dict[str, float] = {}
    out.mkdir(parents=True, exist_ok=True)
    _clear_views(out)
    outputs: dict[str, dict] = {}

    tic = time.monotonic()
    rules = options.import_options()
    if options.format == "aihub":
        imported = import_aihub(options.source, out / ALL_FILE, fields=options.fields, options=rules)
    elif options.format == "hf":
        from trainer.data.hf_source import import_hf

        imported = import_hf(
            options.source,
            out / ALL_FILE,
            options.hf_splits,
            options.hf_config,
            options.hf_cache,
            fields=options.fields,
            options=rules,
        )
    else:
        imported = import_generic(
            options.source,
            options.format,
            out / ALL_FILE,
            filename_pattern=options.fields.filename_pattern,
            options=rules,
        )
    timings["import_s"] = time.monotonic() - tic
    tic = time.monotonic()
    rows = load_manifest(out / ALL_FILE)  # with `pronounced` for phone units (import_s includes g2pK)
    outputs[ALL_FILE] = _summary(rows)
    result = split_by_speaker(rows, options.val_fraction, options.test_fraction, options.seed, options.keep_source_test)
    for split, part in result.parts().items():
        write_manifest(part, out / split_file(split))
        outputs[split_file(split)] = _summary(part)
        for group in GROUPS:
            view = [r for r in part if age_group(r) == group]
            if view:
                write_manifest(view, out / group_file(split, group))
                outputs[group_file(split, group)] = _summary(view)
    write_manifest(result.dropped, out / SPLIT_DROPPED_FILE)
    write_json(result.report, out / SPLIT_REPORT_FILE)
    timings["split_s"] = time.monotonic() - tic

    tic = time.monotonic()
    pool = result.train if options.curriculum_source == "all" else [r for r in result.train if age_group(r) == "child"]
    if not pool:
        raise ConfigError(f"prepare: --curriculum-source {options.curriculum_source}: no training rows in that group")
    hours, fractions = options.curriculum_targets()
    phases, curriculum_report = nested_subsets(pool, hours=hours, fractions=fractions, seed=options.seed)
    curriculum_report["source"] = options.curriculum_source
    for number, phase in enumerate(phases, start=1):
        name = f"{CURRICULUM_DIR}/{phase_file(number)}"
        write_manifest(phase, out / name)
        outputs[name] = _summary(phase)
    write_json(curriculum_report, out / CURRICULUM_DIR / CURRICULUM_REPORT_FILE)
    timings["curriculum_s"] = time.monotonic() - tic

    pronounced = {r["text"]: r["pronounced"] for r in result.train if "pronounced" in r}
    vocab = build_vocab((r["text"] for r in result.train), options.unit, pronounced)
    save_vocab(vocab, out, options.unit)

    report = {
        "inputs_hash": digest,
        "options": asdict(options),
        "outputs": {
            **outputs,
            REPORT_FILE: {},
            SKIPPED_FILE: {},
            SPLIT_REPORT_FILE: {},
            SPLIT_DROPPED_FILE: {},
            f"{CURRICULUM_DIR}/{CURRICULUM_REPORT_FILE}": {},
            VOCAB_FILE: {"size": len(vocab)},
            UNITS_FILE: {},
        },
        "import": {"kept": imported.kept, "skipped": dict(imported.skipped)},
        "split": {
            "max_deviation_pp": result.report["max_deviation_pp"],
            "shared_speakers": result.report["leakage"]["shared_speakers"],
            "identical_audio_across_splits": result.report["leakage"]["identical_audio_across_splits"],
            "dropped_by_reason": result.report["dropped_by_reason"],
        },
        "curriculum": [
            {k: p[k] for k in ("phase", "target_hours", "hours", "rows", "speakers")}
            for p in curriculum_report["phases"]
        ],
        "timings_s": {k: round(v, 2) for k, v in {**timings, "total_s": time.monotonic() - started}.items()},
    }
    write_json(report, out / PREPARE_REPORT_FILE)
    return report
