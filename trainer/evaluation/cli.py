"""`evaluate`, `compare` and `export` subcommands (heavy imports happen inside the handlers)."""

from __future__ import annotations

import argparse
import dataclasses

from trainer import lease
from trainer.config import FOLDER_NAME, MAX_FOLDER_NAME, MAX_PATH, PATH_TEXT, add_dataclass_flags, build, check_text
from trainer.evaluation.config import EvalConfig
from trainer.exit_codes import ConfigError
from trainer.model.onnx_runtime import EXPORT_FORMATS
from trainer.storage import check_location, location_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="WER/sWER/CER/JER/PER of one model on a test manifest")
    p.add_argument(
        "--model",
        required=True,
        type=location_arg("--model"),
        help="base model folder, adapter checkpoint or merged export (local or s3://)",
    )
    p.add_argument("--manifest", required=True, type=location_arg("--manifest"), help="test manifest (JSONL)")
    p.add_argument(
        "--output",
        required=True,
        type=location_arg("--output"),
        help="folder (local, PVC or s3://) for metrics.json + predictions.jsonl",
    )
    add_dataclass_flags(p, EvalConfig)
    p.set_defaults(func=_evaluate)

    p = subparsers.add_parser("compare", help="several models on the same test set(s): tables and charts")
    p.add_argument("--model", action="append", required=True, metavar="NAME=URI", help="a model to compare (repeat)")
    p.add_argument(
        "--manifest", required=True, type=location_arg("--manifest"), help="main test manifest (reported as 'test')"
    )
    p.add_argument(
        "--manifest-extra",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another test set, e.g. adult=test_adult.jsonl",
    )
    p.add_argument("--output", required=True, type=location_arg("--output"), help="report folder (local, PVC or s3://)")
    p.add_argument("--baseline", help="model the inference speed is relative to (default: the first base model)")
    p.add_argument(
        "--assess",
        action="store_true",
        help="also assess pronunciation with every phone-unit model on the main test set (`trainer assess`)",
    )
    p.add_argument(
        "--assess-calibration",
        metavar="MANIFEST",
        type=location_arg("--assess-calibration"),
        help="with --assess: calibrate each model's decision threshold on this labelled manifest first "
        "(`trainer assess --calibrate`; default threshold without it)",
    )
    p.add_argument(
        "--assess-speed",
        type=float,
        default=1.0,
        metavar="S",
        help="with --assess: each recording played S times faster before the phone models (`trainer assess "
        "--speed`; the calibration too)",
    )
    add_dataclass_flags(p, EvalConfig)
    p.set_defaults(func=_compare)

    p = subparsers.add_parser(
        "export", help="merge a LoRA adapter into its base: PyTorch and/or ONNX, with a model card"
    )
    p.add_argument("--adapter", required=True, help="adapter checkpoint (local or s3://)")
    p.add_argument("--output", required=True, help="folder for the merged model + processor (local, PVC or s3://)")
    p.add_argument(
        "--format",
        nargs="+",
        default=["hf"],
        choices=EXPORT_FORMATS,
        dest="formats",
        help="hf: model.safetensors; onnx: onnx/model.onnx; onnx-int8: onnx/model_quantized.onnx (several at once)",
    )
    p.add_argument("--test-report", help="an `evaluate` output folder of this model: its metrics go into README.md")
    p.add_argument("--license", default="other", help="licence id for the model card's metadata (default: other)")
    p.add_argument(
        "--calibration-manifest",
        help="onnx-int8: recordings (JSONL manifest, e.g. the validation set) whose first utterances calibrate the "
        "int8 convolutions' activation ranges (default: synthetic voices)",
    )
    p.set_defaults(func=_export)


def eval_config(args: argparse.Namespace) -> EvalConfig:
    names = {f.name for f in dataclasses.fields(EvalConfig)}
    return build(EvalConfig, {k: v for k, v in vars(args).items() if k in names}, source="flags")


def named_values(pairs: list[str], flag: str) -> dict[str, str]:
    """["a=x", "b=y"] -> {"a": "x", "b": "y"}, rejecting malformed or repeated names."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            raise ConfigError(f"{flag}: expected NAME=VALUE, got {pair!r}")
        if name in out:
            raise ConfigError(f"{flag}: name {name!r} given twice")
        check_text(name, f"{flag} {pair}: the name (it names a folder)", FOLDER_NAME, MAX_FOLDER_NAME)
        out[name] = check_location(check_text(value, f"{flag} {name}", PATH_TEXT, MAX_PATH), f"{flag} {name}")
    return out


def _writable(output: str) -> str:
    """`output`, once it is known to be writable: a read-only disk, a missing bucket or rejected
    credentials fail at start-up (exit 78), not after the inference."""
    from trainer.storage import open_store

    open_store(output).check_writable("--output")
    return output


def _evaluate(args: argparse.Namespace) -> int:
    from trainer.evaluation.evaluate import evaluate

    with lease.hold(_writable(args.output), "--output"):
        evaluate(args.model, args.manifest, args.output, eval_config(args))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from trainer.compare import MAIN_TEST_SET, compare

    test_sets = {MAIN_TEST_SET: args.manifest, **named_values(args.manifest_extra, "--manifest-extra")}
    if len(test_sets) != 1 + len(args.manifest_extra):
        raise ConfigError(f"--manifest-extra: the name {MAIN_TEST_SET!r} is taken by --manifest")
    with lease.hold(_writable(args.output), "--output"):
        compare(
            named_values(args.model, "--model"),
            test_sets,
            args.output,
            eval_config(args),
            args.baseline,
            assess_phones=args.assess,
            assess_calibration=args.assess_calibration,
            assess_speed=args.assess_speed,
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    from trainer.evaluation.export import export_merged

    with lease.hold(args.output, "--output"):
        export_merged(
            args.adapter, args.output, args.formats, args.test_report, args.license, args.calibration_manifest
        )
    return 0
