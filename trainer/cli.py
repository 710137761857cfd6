"""`python -m trainer ...`: parses arguments and hands off to the command's module.

Each command group lives in its own package and exposes `register(subparsers)`; those modules
import torch and friends lazily inside the handlers so that `--help` and data commands stay fast.
"""

from __future__ import annotations

import argparse
import logging
import sys

from trainer import exit_codes

COMMAND_MODULES = (
    "trainer.data.cli",  # data synth|import|split|curriculum|vocab|prepare
    "trainer.training.cli",  # train, pretrain-base, smoke-data
    "trainer.evaluation.cli",  # evaluate, compare, export
    "trainer.assessment.cli",  # assess
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = exit_codes.ArgumentParser(
        prog="python -m trainer",
        description="Korean children's ASR: prepare data, fine-tune wav2vec2 with LoRA, evaluate and export. "
        f"Exit codes: 0 done, {exit_codes.PREEMPTED} interrupted: preempted or storage unreachable (rerun to resume), "
        f"{exit_codes.CONFIG_ERROR} bad configuration or input, {exit_codes.FAILED} a bug (the only traceback).",
    )
    parser.add_argument(
        "--debug", action="store_true", help=f"tracebacks for anticipated errors too (or {exit_codes.DEBUG_ENV}=1)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    # Parsed inside run_main: a path flag's type refuses a URI it cannot take with a ConfigError.
    return exit_codes.run_main(lambda: _run(build_parser().parse_args(argv)), debug=debug)


def _run(args: argparse.Namespace) -> int:
    return args.func(args)
