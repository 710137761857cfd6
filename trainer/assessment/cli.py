"""`assess` subcommand (heavy imports happen inside the handler)."""

from __future__ import annotations

import argparse

from trainer.config import add_dataclass_flags
from trainer.evaluation.config import EvalConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "assess", help="pronunciation of prompted utterances with a phone model: GOP and per-syllable verdicts"
    )
    p.add_argument("--model", required=True, help="phone-unit model: base folder, adapter checkpoint or merged export")
    p.add_argument("--manifest", required=True, help="manifest (JSONL) whose rows carry `prompt`, the text to read")
    p.add_argument(
        "--output", required=True, help="folder (local, PVC or s3://) for assessment.jsonl/.json/.md + charts"
    )
    calibration = p.add_mutually_exclusive_group()
    calibration.add_argument(
        "--calibrate",
        action="store_true",
        help="choose the decision rule (threshold and GOP weight) on this manifest's ground truth (rows' "
        "`mispronunciations`): it flags --false-alarm-rate of the correctly said syllables, weighing GOP in as "
        "finds the most errors; writes calibration.json into --output",
    )
    calibration.add_argument(
        "--calibration",
        metavar="DIR",
        help="use the rule of an earlier `assess --calibrate` (its --output; default: threshold 0, no GOP)",
    )
    p.add_argument(
        "--false-alarm-rate",
        type=float,
        metavar="R",
        help="with --calibrate: the share of correctly said syllables the rule flags (default: FALSE_ALARM_RATE "
        "in trainer/assessment/detect.py)",
    )
    p.add_argument(
        "--speed",
        type=float,
        metavar="S",
        help="play each recording S times faster before the phone model (resampling: pitch and formants scale "
        "too; 0.9 moves a child's voice 10%% toward older ones). A calibration records its speed and holds only "
        "for it: with --calibration the default is the calibration's, else 1",
    )
    add_dataclass_flags(p, EvalConfig)
    p.set_defaults(func=_assess)


def _assess(args: argparse.Namespace) -> int:
    from trainer import lease
    from trainer.assessment.assess import assess
    from trainer.evaluation.cli import eval_config

    with lease.hold(args.output, "--output"):
        assess(
            args.model,
            args.manifest,
            args.output,
            eval_config(args),
            calibration=args.calibration,
            calibrate=args.calibrate,
            **({} if args.false_alarm_rate is None else {"false_alarm_rate": args.false_alarm_rate}),
            speed=args.speed,
        )
    return 0
