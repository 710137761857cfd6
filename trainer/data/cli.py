"""`python -m trainer data synth|import|split|curriculum|vocab|prepare`: thin wrappers.

    python -m trainer data synth --out corpus --child-speakers 40 --adult-speakers 20 \\
        --utterances-per-speaker 30 --seed 0 --workers 2
    python -m trainer data import --format aihub --root corpus --out prepared/all.jsonl
    python -m trainer data split --manifest prepared/all.jsonl --out prepared \\
        --val-fraction 0.05 --test-fraction 0.05 --seed 42 [--keep-source-test]
    python -m trainer data curriculum --manifest prepared/train.jsonl --hours 30 90 148 \\
        --out prepared/curriculum            (or --fractions 0.2 0.6 1.0)
    python -m trainer data vocab --manifest prepared/train.jsonl --unit jamo --out prepared
    python -m trainer data prepare --format aihub --root corpus --out prepared [--fractions ...]
    python -m trainer data prepare --format hf --dataset PATH_OR_HUB_ID [--split train ...] \
        [--config NAME] --out prepared         (a Hugging Face dataset; trainer/data/hf_source.py)

All logic lives in the modules next to this one; bad input raises ConfigError (exit 78) naming
the file, line and field.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from trainer import lease
from trainer.data.text import UNITS


def _add_audio_flags(parser: argparse.ArgumentParser) -> None:
    from trainer.data.importers import AihubFields

    group = parser.add_argument_group("import rules")
    group.add_argument("--min-seconds", type=float, default=0.5, help="skip shorter audio (default 0.5)")
    group.add_argument("--max-seconds", type=float, default=30.0, help="skip longer audio (default 30; 0: no limit)")
    group.add_argument(
        "--dual", choices=["spoken", "orthographic"], default="spoken", help="side of (철자)/(발음) kept"
    )
    group.add_argument(
        "--estimate-snr", action="store_true", help="decode audio to estimate SNR where labels have none"
    )
    group.add_argument("--workers", type=int, default=1, help="parallel processes")
    fields = parser.add_argument_group("AI Hub label fields (dotted paths into the label JSON)")
    for f in dataclasses.fields(AihubFields):
        flag = "--filename-pattern" if f.name == "filename_pattern" else "--field-" + f.name.replace("_", "-")
        fields.add_argument(flag, dest=f"field_{f.name}", default=f.default, help=f"default: {f.default}")


# What the data commands that read and write local files only say to a URI.
LOCAL_ONLY = "`data prepare` and `data synth` read and write s3:// themselves"


def _add_source_flags(parser: argparse.ArgumentParser, remote: bool) -> None:
    """--format/--root/--manifest and a Hugging Face dataset's flags; `remote`: the command also
    reads --root/--manifest from S3."""
    from trainer.storage import local_arg

    parser.add_argument("--format", choices=["aihub", "jsonl", "csv", "hf"], default="aihub")
    parser.add_argument("--root", type=_path_type("--root", remote), help="AI Hub-style corpus folder (--format aihub)")
    parser.add_argument(
        "--manifest",
        dest="source_manifest",
        type=_path_type("--manifest", remote),
        help="JSONL/CSV utterance list (--format jsonl|csv)",
    )
    hf = parser.add_argument_group("Hugging Face dataset (--format hf; columns map through the --field-* flags)")
    not_s3 = "copy the dataset to a local folder, or name a Hub id"
    hf.add_argument(
        "--dataset",
        type=lambda text: str(local_arg("--dataset", not_s3)(text)),
        help="save_to_disk folder, Parquet/Arrow file or folder, audiofolder, or Hub id",
    )
    hf.add_argument(
        "--split", dest="hf_splits", action="append", default=[], help="a split to import (repeat; default: all)"
    )
    hf.add_argument("--config", dest="hf_config", help="the dataset's configuration (subset) name")
    hf.add_argument(
        "--hf-cache",
        type=_path_type("--hf-cache", False),
        help="where a Hub dataset is downloaded (default: the huggingface_hub cache)",
    )


def _add_local_io(parser: argparse.ArgumentParser, out_help: str, manifest_help: str | None = None) -> None:
    """--manifest and --out of a command that reads and writes local files only."""
    parser.add_argument("--manifest", required=True, type=_path_type("--manifest", False), help=manifest_help)
    parser.add_argument("--out", required=True, type=_path_type("--out", False), help=out_help)


def _path_type(flag: str, remote: bool):
    """argparse type of a path flag: a local path or s3:// URI (`remote`), else a local path only."""
    from trainer.storage import local_arg, location_arg

    return location_arg(flag) if remote else lambda text: str(local_arg(flag, LOCAL_ONLY)(text))


def _source(args: argparse.Namespace) -> str:
    from trainer.exit_codes import ConfigError

    if args.format != "hf" and (args.hf_splits or args.hf_config or args.hf_cache):
        raise ConfigError(f"--split/--config/--hf-cache: only with --format hf, not {args.format}")
    if args.format == "aihub":
        if not args.root or args.source_manifest or args.dataset:
            raise ConfigError("--format aihub needs --root DIR (and no --manifest or --dataset)")
        return args.root
    if args.format == "hf":
        if not args.dataset or args.root or args.source_manifest:
            raise ConfigError("--format hf needs --dataset PATH_OR_ID (and no --root or --manifest)")
        return args.dataset
    if not args.source_manifest or args.root or args.dataset:
        raise ConfigError(f"--format {args.format} needs --manifest FILE (and no --root)")
    return args.source_manifest


def _import_kwargs(args: argparse.Namespace) -> dict:
    """The import rules' flags (ImportOptions fields; PrepareOptions has them too)."""
    return dict(
        min_seconds=args.min_seconds,
        max_seconds=args.max_seconds or None,
        workers=args.workers,
        dual=args.dual,
        estimate_snr=args.estimate_snr,
    )


def _fields(args: argparse.Namespace):
    from trainer.data.importers import AihubFields

    return AihubFields(**{f.name: getattr(args, f"field_{f.name}") for f in dataclasses.fields(AihubFields)})


def _load(path: str, skip_invalid: bool) -> list[dict]:
    from trainer.data.manifest import load_manifest

    stats: dict[str, int] = {}
    rows = load_manifest(path, skip_invalid=skip_invalid, stats=stats)
    if stats:
        print(f"{path}: skipped invalid rows: {json.dumps(stats)}")
    return rows


def _add_curriculum_targets(parser: argparse.ArgumentParser, required: bool) -> None:
    targets = parser.add_mutually_exclusive_group(required=required)
    targets.add_argument("--hours", type=float, nargs="+", help="hours per phase, increasing (e.g. 30 90 148)")
    targets.add_argument("--fractions", type=float, nargs="+", help="fractions of the pool's hours (e.g. 0.2 0.6 1.0)")


def _add_split_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--val-fraction", type=float, default=0.05, help="share of utterances for validation")
    parser.add_argument("--test-fraction", type=float, default=None, help="share for test (default 0.05)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep-source-test", action="store_true", help="test = the corpus's own 3.Test folder")


def _test_fraction(args: argparse.Namespace) -> float:
    from trainer.exit_codes import ConfigError

    if args.keep_source_test and args.test_fraction is not None:
        raise ConfigError("--test-fraction: not used with --keep-source-test (the test split is the source's)")
    return 0.05 if args.test_fraction is None else args.test_fraction


# ----------------------------------------------------------------------------- handlers


def _synth(args: argparse.Namespace) -> int:
    from trainer.data.synth import synthesize_corpus
    from trainer.layout import SYNTH_SUMMARY_FILE
    from trainer.storage import output_folder

    with output_folder(args.out, last=SYNTH_SUMMARY_FILE) as out:
        summary = synthesize_corpus(
            out,
            args.child_speakers,
            args.adult_speakers,
            args.utterances_per_speaker,
            args.seed,
            args.workers,
            args.mispronounce_rate,
            tuple(args.processes) if args.processes else None,
        )
    errors = (
        f", {summary['mispronounced_syllables']} mispronounced syllables" if args.mispronounce_rate is not None else ""
    )
    print(
        f"synth: {summary['utterances']} utterances, {summary['hours']:.3f} h{errors} in {args.out} "
        f"(audio sha256 {summary['audio_sha256'][:12]})"
    )
    return 0


def _import(args: argparse.Namespace) -> int:
    from trainer.data.importers import ImportOptions, import_aihub, import_generic

    rules = ImportOptions(**_import_kwargs(args))
    source = _source(args)
    if args.format == "hf":  # a local dataset or a Hub id, resolved by the importer
        return source
    if args.format == "aihub":
        report = import_aihub(source, args.out, fields=_fields(args), options=rules)
    elif args.format == "hf":
        from trainer.data.hf_source import import_hf

        report = import_hf(
            source,
            args.out,
            args.hf_splits,
            args.hf_config,
            args.hf_cache,
            fields=_fields(args),
            options=rules,
        )
    else:
        report = import_generic(
            source, args.format, args.out, filename_pattern=args.field_filename_pattern, options=rules
        )
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(report.skipped.items())) or "none"
    print(f"import: kept {report.kept} utterances ({report.hours_kept:.3f} h) -> {args.out}; skipped: {skipped}")
    return 0


def _split(args: argparse.Namespace) -> int:
    from trainer.data.manifest import write_json, write_manifest
    from trainer.data.prepare import SPLIT_DROPPED_FILE, SPLIT_REPORT_FILE, split_file
    from trainer.data.split import split_by_speaker

    rows = _load(args.manifest, args.skip_invalid)
    result = split_by_speaker(rows, args.val_fraction, _test_fraction(args), args.seed, args.keep_source_test)
    out = Path(args.out)
    for name, part in result.parts().items():
        write_manifest(part, out / split_file(name))
    write_manifest(result.dropped, out / SPLIT_DROPPED_FILE)
    write_json(result.report, out / SPLIT_REPORT_FILE)
    sizes = ", ".join(f"{k} {v['rows']} rows/{v['speakers']} speakers" for k, v in result.report["splits"].items())
    print(
        f"split: {sizes}; dropped {len(result.dropped)}; max strata deviation "
        f"{result.report['max_deviation_pp']:.2f} pp; shared speakers {result.report['leakage']['shared_speakers']}"
    )
    return 0


def _curriculum(args: argparse.Namespace) -> int:
    from trainer.data.curriculum import nested_subsets
    from trainer.data.manifest import write_json, write_manifest
    from trainer.data.prepare import CURRICULUM_REPORT_FILE, phase_file

    rows = _load(args.manifest, args.skip_invalid)
    phases, report = nested_subsets(rows, hours=args.hours, fractions=args.fractions, seed=args.seed)
    out = Path(args.out)
    for number, phase in enumerate(phases, start=1):
        write_manifest(phase, out / phase_file(number))
    write_json(report, out / CURRICULUM_REPORT_FILE)
    for phase in report["phases"]:
        print(
            f"curriculum: phase {phase['phase']}: {phase['hours']:.3f} h of {phase['target_hours']:.3f} h, {phase['rows']} rows"
        )
    return 0


def _vocab(args: argparse.Namespace) -> int:
    from trainer.data.text import build_vocab, save_vocab

    rows = _load(args.manifest, args.skip_invalid)
    vocab = build_vocab((r["text"] for r in rows), args.unit)
    path = save_vocab(vocab, args.out, args.unit)
    print(f"vocab: {len(vocab)} entries ({args.unit}) -> {path}")
    return 0


def _local_source(args: argparse.Namespace) -> str:
    """The source on this machine: an S3 corpus folder, or the folder holding an S3 manifest and
    the audio it names relative to itself, is fetched into the cache; a Hugging Face dataset is
    left to its importer (a Hub id is no path)."""
    from trainer import storage

    source = _source(args)
    if args.format == "hf":  # a local dataset or a Hub id, resolved by the importer
        return source
    if args.format == "aihub":
        return str(storage.materialize(source))
    folder, name = storage.split_uri(source)
    return str(storage.materialize(folder) / name)


def _prepare(args: argparse.Namespace) -> int:
    from trainer.data.prepare import PREPARE_REPORT_FILE
    from trainer.storage import join, output_folder

    with lease.hold(args.out, "--out"), output_folder(args.out, last=PREPARE_REPORT_FILE) as out:
        report = _prepare_into(args, str(out))
    phases = ", ".join(f"{p['hours']:.3f} h" for p in report["curriculum"])
    print(
        f"prepare: {report['outputs']['all.jsonl']['rows']} utterances; curriculum {phases}; "
        f"report {join(args.out, PREPARE_REPORT_FILE)}"
    )
    return 0


def _prepare_into(args: argparse.Namespace, out: str) -> dict:
    from trainer.data.prepare import PrepareOptions, prepare

    options = PrepareOptions(
        source=_local_source(args),
        out=out,
        format=args.format,
        val_fraction=args.val_fraction,
        test_fraction=_test_fraction(args),
        seed=args.seed,
        keep_source_test=args.keep_source_test,
        hours=tuple(args.hours) if args.hours else None,
        fractions=tuple(args.fractions) if args.fractions else None,
        curriculum_source=args.curriculum_source,
        unit=args.unit,
        fields=_fields(args),
        hf_splits=tuple(args.hf_splits),
        hf_config=args.hf_config,
        hf_cache=args.hf_cache,
        **_import_kwargs(args),
    )
    return prepare(options, force=args.force)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `data` and its subcommands to the top-level parser."""
    data = sub.add_parser("data", help="corpus preparation: synth, import, split, curriculum, vocab, prepare")
    commands = data.add_subparsers(dest="data_command", required=True)

    p = commands.add_parser("synth", help="synthesise Korean child/adult speech in the AI Hub layout")
    p.add_argument(
        "--out",
        required=True,
        type=_path_type("--out", True),
        help="corpus folder or s3:// prefix (new, or one made by synth)",
    )
    p.add_argument("--child-speakers", type=int, default=40)
    p.add_argument("--adult-speakers", type=int, default=20)
    p.add_argument("--utterances-per-speaker", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--mispronounce-rate",
        type=float,
        default=None,
        metavar="P",
        help="children say each syllable wrong with probability P (0-1), recorded in the labels as "
        "ground truth for `assess` (trainer/data/synth/mispronounce.py); default: no reading prompts",
    )
    p.add_argument(
        "--processes",
        nargs="+",
        metavar="NAME",
        help="with --mispronounce-rate: only these phonological processes (names in "
        "trainer/data/processes.py, 'other': an edit none of them makes); default: all of them",
    )
    p.set_defaults(func=_synth)

    p = commands.add_parser("import", help="corpus -> validated manifest + import_report.json")
    _add_source_flags(p, remote=False)
    p.add_argument(
        "--out", required=True, type=_path_type("--out", False), help="manifest to write (e.g. prepared/all.jsonl)"
    )
    _add_audio_flags(p)
    p.set_defaults(func=_import)

    p = commands.add_parser("split", help="speaker-disjoint stratified train/val/test")
    _add_local_io(p, "folder for train/val/test.jsonl and split_report.json")
    _add_split_flags(p)
    p.add_argument("--skip-invalid", action="store_true", help="skip and count bad manifest rows")
    p.set_defaults(func=_split)

    p = commands.add_parser("curriculum", help="nested phase subsets of a training manifest")
    _add_local_io(p, "folder for phase1..N.jsonl and curriculum_report.json")
    _add_curriculum_targets(p, required=True)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--skip-invalid", action="store_true", help="skip and count bad manifest rows")
    p.set_defaults(func=_curriculum)

    p = commands.add_parser("vocab", help="CTC vocabulary (vocab.json) from the training manifest")
    _add_local_io(p, "folder for vocab.json and text_units.json", "the TRAINING manifest (never val/test)")
    p.add_argument("--unit", choices=UNITS, default="syllable")
    p.add_argument("--skip-invalid", action="store_true", help="skip and count bad manifest rows")
    p.set_defaults(func=_vocab)

    p = commands.add_parser("prepare", help="import -> split -> child/adult views -> curriculum -> vocab")
    _add_source_flags(p, remote=True)
    p.add_argument(
        "--out",
        required=True,
        type=_path_type("--out", True),
        help="output folder or s3:// prefix (see trainer/data/prepare.py)",
    )
    _add_split_flags(p)
    _add_curriculum_targets(p, required=False)
    p.add_argument("--curriculum-source", choices=["child", "all"], default="child")
    p.add_argument("--unit", choices=UNITS, default="syllable")
    p.add_argument("--force", action="store_true", help="redo even if the outputs are up to date")
    _add_audio_flags(p)
    p.set_defaults(func=_prepare)
