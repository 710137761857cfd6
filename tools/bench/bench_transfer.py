"""Is the transfer real? LoRA on the adult-voice base vs the same architecture trained from scratch on
the children's data, with the same training budget. Reads a finished local demo run.

    make demo    # or: python tools/submit.py --phase all --rank 32 --local
    .venv/bin/python -m tools.bench.bench_transfer [--preset demo] [--rank 32] [--storage runs]

(`-m` from the repository root: it reads the demo's plan through tools/submit.py.)

The budget is what the three LoRA phases used: the sum of their optimizer steps (metrics.json) at
the preset's `max_batch_seconds`, i.e. the same steps x padded audio seconds per step, with the
phases' speed perturbation. The
contender is `pretrain-base` (the base's architecture and from-scratch recipe) on phase 3's
training manifest (all the child data the last phase saw), its best checkpoint picked on the same
child validation set. Both are scored by `trainer compare` on the held-out child test set; the
script prints the table and the ratio, and exits 1 when LoRA on the base does not win. A LoRA step
costs less compute than a full one (frozen base), so the budget, if anything, favours the contender.
The contender's model is cached under <run>/bench-transfer/ and reused while its inputs are unchanged.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

from tools.bench.demo_run import locate
from trainer import exit_codes
from trainer import layout as L
from trainer.config import PHASES
from trainer.exit_codes import ConfigError
from trainer.pipeline import plan as P
from trainer.runtime_env import with_cpu_env
from trainer.training.configure import resolve

REPO = Path(__file__).resolve().parents[2]


def trainer(*args: str) -> None:
    """Run `python -m trainer ARGS`, its output shown; stop on failure."""
    done = subprocess.run([sys.executable, "-m", "trainer", *args], cwd=REPO, env=with_cpu_env(os.environ))
    if done.returncode != 0:
        raise SystemExit(f"python -m trainer {args[0]} failed (exit code {done.returncode})")


def cer(summary: dict, name: str) -> float:
    entry = next(m for m in summary["models"] if m["name"] == name)
    return entry["results"][summary["main_test_set"]]["metrics"]["cer"]["value"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="demo", help="the demo's preset (default: demo)")
    parser.add_argument("--rank", type=int, default=32, help="the LoRA rank of the demo run (default: 32)")
    parser.add_argument("--storage", default="runs", help="the demo's --storage folder (default: runs)")
    args = parser.parse_args()

    demo = locate(args.preset, args.rank, args.storage)
    run_dir, data, phases = demo.run_dir, demo.data, demo.phases
    steps = sum(json.loads(Path(p, L.METRICS_FILE).read_text(encoding="utf-8"))["steps"] for p in phases)
    lora_cfg = resolve("train", args.preset, None, {"phase": max(PHASES), "max_steps": 1})
    batch_seconds = lora_cfg.max_batch_seconds
    print(f"budget: {steps} steps x {batch_seconds:g} s of padded audio (the LoRA phases 1-3 of {run_dir})", flush=True)

    out = P.slash_join(run_dir, "bench-transfer")
    scratch = P.slash_join(out, "scratch-child")
    trainer(
        "pretrain-base",
        "--preset",
        args.preset,
        "--train-manifest",
        P.slash_join(data, L.CURRICULUM_DIR, L.phase_file(max(PHASES))),
        "--val-manifest",
        P.slash_join(data, P.VAL_MANIFEST),
        "--vocab",
        data,
        "--output",
        scratch,
        "--max-steps",
        str(steps),
        "--max-batch-seconds",
        P.flag_value(float(batch_seconds)),
        # The phases' augmentation, not the base's: the contender hears the same perturbed audio.
        "--speed-perturb",
        *(P.flag_value(float(f)) for f in lora_cfg.speed_perturb),
    )
    report = P.slash_join(out, "report")
    lora = P.slash_join(phases[-1], L.CHECKPOINT_BEST)
    trainer(
        "compare",
        "--model",
        f"lora-on-base={lora}",
        "--model",
        f"scratch={scratch}",
        "--manifest",
        P.slash_join(data, P.TEST_MANIFEST),
        "--output",
        report,
    )
    summary = json.loads(Path(report, "summary.json").read_text(encoding="utf-8"))
    lines = Path(report, L.COMPARISON_FILE).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    print("\n".join(itertools.takewhile(lambda line: line.startswith("|"), lines[start:])))  # the headline table
    ours, theirs = cer(summary, "lora-on-base"), cer(summary, "scratch")
    won = ours < theirs
    print(
        f"held-out child CER: LoRA on the base {100 * ours:.1f}% vs from scratch {100 * theirs:.1f}% "
        f"({theirs / ours:.2f}x) -> {'LoRA on the base wins' if won else 'LoRA on the base does NOT win'}"
    )
    return exit_codes.OK if won else exit_codes.FAILED


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exit_codes.CONFIG_ERROR)
