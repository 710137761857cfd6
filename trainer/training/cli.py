"""`python -m trainer train`, `pretrain-base` (see trainer.training.loop) and `smoke-data`.

    python -m trainer smoke-data --out D     (the smoke preset's synthetic data and random base)
    python -m trainer train --preset smoke --train-manifest D/prepared/train.jsonl \\
        --val-manifest D/prepared/val.jsonl --vocab D/prepared --model D/base --output /tmp/smoke
    python -m trainer train --phase 1 --curriculum-dir D/curriculum --val-manifest D/val.jsonl \\
        --vocab D --model BASE --rank 16 --output s3://bucket/runs/r16/phase1
    python -m trainer.torchrun --nproc-per-node 2 -m trainer train ...   (DDP; torchrun keeping these exit codes)
    python -m trainer pretrain-base --train-manifest A --val-manifest B --vocab D --output BASE

Exit codes: 0 done, 75 preempted (re-run the same command to resume), 78 bad configuration.
"""

from __future__ import annotations

import argparse
import dataclasses

from trainer import exit_codes
from trainer.config import TrainConfig, add_dataclass_flags
from trainer.storage import local_arg
from trainer.training.configure import DEFAULT_PRESET, preset_names, resolve


def _add_parser(sub: argparse._SubParsersAction, command: str, help: str, description: str) -> None:
    parser = sub.add_parser(
        command, help=help, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--preset", choices=preset_names(), help=f"named defaults (default: {DEFAULT_PRESET})")
    parser.add_argument("--config", help="YAML file of TrainConfig fields (flags override it)")
    add_dataclass_flags(parser, TrainConfig)
    parser.set_defaults(func=_handlers[command], command_name=command)


def _config(args: argparse.Namespace) -> TrainConfig:
    import transformers

    transformers.utils.logging.disable_progress_bar()  # kubectl logs want plain lines
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    return resolve(args.command_name, args.preset, args.config, flags)


def _train(args: argparse.Namespace) -> int:
    cfg = _config(args)  # before the heavy imports: a bad flag is reported in a second or two
    from trainer.training.loop import run_training
    from trainer.training.methods import LoraMethod

    return run_training(cfg, LoraMethod())


def _pretrain_base(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from trainer.training.pretrain import pretrain_base

    return pretrain_base(cfg)


def _smoke_data(args: argparse.Namespace) -> int:
    from trainer.training.smoke import smoke_data

    smoke_data(args.out, args.seed)
    return exit_codes.OK


_handlers = {"train": _train, "pretrain-base": _pretrain_base}


def register(sub: argparse._SubParsersAction) -> None:
    _add_parser(
        sub,
        "train",
        help="LoRA fine-tuning of a wav2vec2 CTC model (one curriculum phase)",
        description=__doc__,
    )
    _add_parser(
        sub,
        "pretrain-base",
        help="train a tiny wav2vec2 CTC base model from scratch (stand-in for XLS-R)",
        description=__doc__,
    )
    parser = sub.add_parser(
        "smoke-data",
        help="the smoke preset's tiny synthetic corpus and random base model, for `train --preset smoke`",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out", required=True, type=local_arg("--out", "build it locally"), help="folder to build it in"
    )
    parser.add_argument("--seed", type=int, default=TrainConfig.seed, help="random seed of corpus and model")
    parser.set_defaults(func=_smoke_data)
