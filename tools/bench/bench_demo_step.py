"""What one training step of the demo costs on this CPU, before and after this round's step changes,
measured in one run. It reads the data and base of a finished local demo run.

    make demo    # or at least its base: tools/submit.py --phase all --rank 32 --local
    .venv/bin/python -m tools.bench.bench_demo_step [--storage runs] [--steps 60] [--rounds 3]

(`-m` from the repository root: it finds the demo's data through tools/submit.py's plan.)

The step is the trainer's own (`TrainingRun._train_step`: loader, SpecAugment, CTC, clipping,
AdamW, EMA), with the demo preset's settings. Phase steps use phase 3's data and LoRA targets
(the conv front end included); base steps are `pretrain-base`'s full training. The contenders:

- PASSIVE: OMP_WAIT_POLICY=PASSIVE, which this project's launchers set until this change;
- default wait: OpenMP's own policy (threads spin briefly between parallel regions, then sleep;
  spinning is cut short when there are more threads than CPUs), what the launchers give now;
- peft conv LoRA: peft's Conv1d LoRA (two extra convolutions over the activations);
- weight-space conv LoRA: trainer/model/conv_lora.py (one convolution with W + BA), what the
  trainer uses now.

Each contender runs in a fresh process (OpenMP reads its policy at start-up): --warmup steps, then
--steps timed ones. The contenders take turns round by round and each keeps its best round, so
a slower stretch of a shared machine hits all of them alike. Printed: audio seconds per second and
each one's ratio to the "before" contender of its kind (PASSIVE + peft's conv LoRA for the phases).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.bench.demo_run import locate
from trainer import layout as L
from trainer.config import PHASES
from trainer.pipeline import plan as P
from trainer.runtime_env import with_cpu_env

REPO = Path(__file__).resolve().parents[2]
# name -> (kind, OMP_WAIT_POLICY or None for OpenMP's default, weight-space conv LoRA)
CONTENDERS = {
    "base, PASSIVE (before)": ("base", "PASSIVE", True),
    "base, default wait (now)": ("base", None, True),
    "phase 3, PASSIVE + peft conv LoRA (before)": ("lora", "PASSIVE", False),
    "phase 3, default wait + peft conv LoRA": ("lora", None, False),
    "phase 3, default wait + weight-space conv LoRA (now)": ("lora", None, True),
}


def child(args) -> dict[str, float]:
    """Time `args.steps` demo steps of one contender in this process."""
    import trainer.model.lora as lora
    from trainer.training.configure import resolve
    from trainer.training.loop import TrainingRun
    from trainer.training.methods import LoraMethod, ScratchMethod
    from trainer.training.run_log import Window

    kind, _, weight_space = CONTENDERS[args.contender]
    if not weight_space:
        lora.CUSTOM_LORA_LAYERS = {}  # peft's own Conv1d LoRA layer
    data, output = args.data, tempfile.mkdtemp(prefix="bench-demo-step-")
    common = {"vocab": data, "output": output, "max_steps": args.warmup + args.steps, "eval_steps": 10**6}
    if kind == "base":
        flags = {
            "train_manifest": P.slash_join(data, "train_adult.jsonl"),
            "val_manifest": P.slash_join(data, P.VAL_MANIFEST),
        }
        cfg, method = resolve("pretrain-base", args.preset, None, {**flags, **common}), ScratchMethod()
    else:
        flags = {
            "phase": max(PHASES),
            "rank": args.rank,
            "model": args.base,
            "train_manifest": P.slash_join(data, L.CURRICULUM_DIR, L.phase_file(max(PHASES))),
            "val_manifest": P.slash_join(data, P.VAL_MANIFEST),
        }
        cfg, method = resolve("train", args.preset, None, {**flags, **common}), LoraMethod()
    run = TrainingRun(cfg, method)
    run.window, run.shapes_seen = Window(), set()
    plan = run.data.sampler.epoch_batches(0)
    if len(plan) < args.warmup + args.steps:
        raise SystemExit(f"an epoch has {len(plan)} batches: ask for fewer than {args.warmup} + {args.steps} steps")
    batches = iter(
        run.data.loader(run.data.train_set, run._epoch_keys(0, plan, 0, args.warmup + args.steps), run.collator)
    )
    for _ in range(args.warmup):
        run._train_step(batches)
    started, audio = time.perf_counter(), 0.0
    for _ in range(args.steps):
        audio += run._train_step(batches).seconds
    return {"audio_s": audio, "wall_s": time.perf_counter() - started}


def launch(args, name: str) -> dict[str, float]:
    _, policy, _ = CONTENDERS[name]
    env = with_cpu_env({k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"})
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    cmd = [sys.executable, "-m", "tools.bench.bench_demo_step", "--contender", name, "--data", args.data]
    cmd += ["--base", args.base, "--preset", args.preset, "--rank", str(args.rank)]
    cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="demo", help="the demo's preset (default: demo)")
    parser.add_argument("--rank", type=int, default=32, help="the LoRA rank of the demo run (default: 32)")
    parser.add_argument("--storage", default="runs", help="the demo's --storage folder (default: runs)")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per contender and round")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--contender", choices=sorted(CONTENDERS), help=argparse.SUPPRESS)  # internal: one child
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:
        print(json.dumps(child(args)))
        return 0

    demo = locate(args.preset, args.rank, args.storage, need_phases=False)
    args.data, args.base = demo.data, demo.base
    print(f"demo data {demo.data}, base {demo.base}; {args.steps} steps x {args.rounds} rounds per contender")
    best: dict[str, float] = {}
    for round_ in range(args.rounds):
        for name in CONTENDERS:
            result = launch(args, name)
            rate = result["audio_s"] / result["wall_s"]
            best[name] = max(best.get(name, 0.0), rate)
            print(f"round {round_ + 1}: {name:55s} {rate:6.1f} audio-s/s", flush=True)
    print("best round of each:")
    for name, rate in best.items():
        kind = CONTENDERS[name][0]
        before = next(best[n] for n in CONTENDERS if CONTENDERS[n][0] == kind)
        print(f"  {name:55s} {rate:6.1f} audio-s/s  {rate / before:4.2f}x before")
    return 0


if __name__ == "__main__":
    sys.exit(main())
