"""Training throughput of the trainer's duration-bucketed batches vs HF-CTC-example batching.

    python tools/bench/bench_train.py                      # CPU, tiny wav2vec2 (4 layers, width 128)
    python tools/bench/bench_train.py --device cuda        # GPU, xls-r-300m-shaped random model, bf16
    python tools/bench/bench_train.py --model xlsr --precision bf16 --steps 2 --rounds 1 \
        --utterances 60 --max-batch-seconds 32                # the GPU configuration, tried on a CPU

The contenders train the same LoRA model (this trainer's `add_lora`, rank 16, q/k/v, same seed) on
the same utterances in the same run, one after the other, each in a fresh process of its own,
launched the way it would be in use:

- baseline: what `run_speech_recognition_ctc.py` does with `group_by_length`: a fixed batch size,
  indices shuffled into mega-batches of 50 batches, each sorted by length
  (`transformers.trainer_pt_utils.get_length_grouped_indices`). The batch size must fit the
  worst case, the longest utterances, in the same memory as our budget:
  batch_size = max_batch_seconds // longest utterance. Run in the default process environment,
  as `python run_speech_recognition_ctc.py` gets it.
- ours: `trainer.training.sampler.plan_batches` with `max_batch_seconds` of padded audio a batch,
  the trainer's EMA update after each step, run in the environment this project's launchers set
  (trainer/runtime_env.py: glibc keeps freed memory instead of unmapping it after every step).
- ours, default env: the same, in the baseline's environment: shows how much of the gain comes
  from the batches and how much from the process environment.

Utterance durations follow read children's speech (log-normal, median ~3 s, 0.8-16 s); the
audio is synthetic (tones + noise, content does not change the cost), labels ~12 units a second.
Printed: audio seconds trained per wall second (= audio-hours per GPU-hour on a GPU; the median of
--rounds runs of each contender, run in turn), padding fraction, the speed-up ratios, and on GPU the
model FLOP utilisation (FLOPs counted by torch.utils.flop_counter on one step, over the GPU's dense
bf16 peak).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SAMPLE_RATE = 16000
VOCAB = 60
# Dense bf16 peak FLOP/s by GPU name fragment (vendor datasheets, no sparsity).
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12, "L4": 121e12}


@dataclass
class Result:
    name: str
    steps: int
    audio_s: float
    padded_s: float
    wall_s: float
    flops: float
    params: int

    @property
    def throughput(self) -> float:
        return self.audio_s / self.wall_s

    @property
    def padding(self) -> float:
        return 1.0 - self.audio_s / self.padded_s


def durations(n: int, seed: int) -> np.ndarray:
    return np.clip(np.random.default_rng(seed).lognormal(np.log(3.0), 0.55, n), 0.8, 16.0)


def make_utterance(i: int, seconds: float) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(i)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    audio = 0.3 * np.sin(2 * np.pi * rng.uniform(120, 300) * t) + 0.05 * rng.standard_normal(t.size)
    labels = rng.integers(3, VOCAB, max(1, int(seconds * 12))).tolist()
    return audio.astype(np.float32), labels


def build_model(kind: str, device: str) -> torch.nn.Module:
    from transformers import Wav2Vec2ForCTC

    from trainer.config import TrainConfig
    from trainer.model.factory import tiny_wav2vec2_config, xlsr_300m_config
    from trainer.model.lora import add_lora, training_overrides

    torch.manual_seed(0)
    xlsr = kind == "xlsr"
    cfg = TrainConfig(rank=16, frozen_layers=8 if xlsr else 1, mask_time_prob=0.05)
    config = xlsr_300m_config(VOCAB) if xlsr else tiny_wav2vec2_config(VOCAB)
    for key, value in training_overrides(cfg).items():
        setattr(config, key, value)
    return add_lora(Wav2Vec2ForCTC(config), cfg).to(device)


def baseline_batches(lengths: np.ndarray, batch_size: int, seed: int) -> list[list[int]]:
    from transformers.trainer_pt_utils import get_length_grouped_indices

    order = get_length_grouped_indices(lengths.tolist(), batch_size, generator=torch.Generator().manual_seed(seed))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def train(batches: list[list[int]], lengths: np.ndarray, with_ema: bool, args) -> Result:
    from transformers import Wav2Vec2FeatureExtractor

    from trainer.model.factory import min_samples_for_frames
    from trainer.training.dataset import CTCCollator
    from trainer.training.ema import EMA

    model = build_model(args.model, args.device)
    collator = CTCCollator(
        Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True),
        min_samples_for_frames(model.config, model.config.mask_time_length + 1),
    )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ema = EMA(model, 0.999) if with_ema else None
    autocast = torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.precision == "bf16")

    def collate(batch_indices: list[int]) -> dict:
        items = []
        for i in batch_indices:
            audio, labels = make_utterance(i, lengths[i])
            items.append({"utt_id": str(i), "text": "", "audio": audio, "labels": labels})
        return collator(items)

    def step(batch: dict) -> None:
        with autocast:
            loss = model(
                input_values=batch["input_values"].to(args.device, non_blocking=True),
                attention_mask=batch["attention_mask"].to(args.device, non_blocking=True),
                labels=batch["labels"].to(args.device, non_blocking=True),
            ).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update()

    # Audio is decoded and padded before the clock starts: in training, loader workers do that
    # in parallel with the model, so the model's step is what bounds throughput.
    warmup = [collate(b) for b in batches[: args.warmup]]
    measured = [collate(b) for b in batches[args.warmup : args.warmup + args.steps]]
    model.train()
    for batch in warmup:
        step(batch)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    sync()
    started = time.perf_counter()
    for batch in measured:
        step(batch)
    sync()
    wall = time.perf_counter() - started
    # FLOPs counted after the clock stops: counting slows the steps that follow it (by ~1.4x here).
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step(warmup[-1])
    flops_per_padded_s = counter.get_total_flops() / warmup[-1]["padded_seconds"]
    audio = sum(b["seconds"] for b in measured)
    padded = sum(b["padded_seconds"] for b in measured)
    params = sum(p.numel() for p in model.parameters())
    return Result(args.contender, len(measured), audio, padded, wall, flops_per_padded_s * padded, params)


# name -> (batching, the trainer's EMA update, launched with this project's CPU_ENV)
CONTENDERS = {
    "baseline (group_by_length, fixed batch)": ("fixed", False, False),
    "ours, default env (duration-bucketed)": ("bucketed", True, False),
    "ours (duration-bucketed, launcher env)": ("bucketed", True, True),
}


def plans(args) -> tuple[np.ndarray, int, dict[str, list[list[int]]]]:
    from trainer.training.sampler import plan_batches

    lengths = durations(args.utterances, seed=0)
    fixed = max(1, int(args.max_batch_seconds // lengths.max()))
    return lengths, fixed, {
        "bucketed": plan_batches(lengths, args.max_batch_seconds, seed=0, epoch=0),
        "fixed": baseline_batches(lengths, fixed, seed=0),
    }


def run_contender(args) -> None:
    """Child process: train one contender, print its Result as JSON."""
    lengths, _, by_batching = plans(args)
    batching, with_ema, _ = CONTENDERS[args.contender]
    batches = by_batching[batching]
    if batching == "fixed":  # equal audio for both: the baseline needs more (smaller) steps for it
        bucketed = by_batching["bucketed"]
        per_step = np.mean([lengths[b].sum() for b in bucketed]) / np.mean([lengths[b].sum() for b in batches])
        args.steps = int(np.ceil(args.steps * per_step))
    print(json.dumps(asdict(train(batches, lengths, with_ema, args))))


def launch(args, name: str) -> Result:
    from trainer.runtime_env import CPU_ENV, with_cpu_env

    default_env = {k: v for k, v in os.environ.items() if k not in CPU_ENV or k == "OMP_WAIT_POLICY"}
    env = with_cpu_env(default_env) if CONTENDERS[name][2] else default_env
    cmd = [sys.executable, __file__, "--contender", name, "--device", args.device, "--model", args.model,
           "--precision", args.precision, "--utterances", str(args.utterances),
           "--max-batch-seconds", str(args.max_batch_seconds), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return Result(**json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--model", default="auto", choices=["auto", "tiny", "xlsr"], help="auto: xlsr on cuda, else tiny")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"], help="auto: bf16 on cuda")
    parser.add_argument("--utterances", type=int, default=0, help="0: 900 on CPU, 8000 on GPU")
    parser.add_argument("--max-batch-seconds", type=float, default=0.0, help="0: 48 on CPU, 400 on GPU")
    parser.add_argument("--steps", type=int, default=0, help="timed steps per contender (0: 40)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="contenders run in turn this many times; the median counts")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="device peak TFLOP/s in the precision used, for the MFU (0: from the GPU name)")
    parser.add_argument("--contender", choices=list(CONTENDERS), help=argparse.SUPPRESS)  # internal: one child run
    args = parser.parse_args()
    gpu = args.device == "cuda"
    args.model = args.model if args.model != "auto" else ("xlsr" if gpu else "tiny")
    args.precision = args.precision if args.precision != "auto" else ("bf16" if gpu else "fp32")
    args.max_batch_seconds = args.max_batch_seconds or (400.0 if gpu else 48.0)
    args.steps = args.steps or 40
    args.utterances = args.utterances or (8000 if gpu else 900)  # enough audio for every timed step
    if args.contender:
        return run_contender(args)

    from trainer.training.sampler import padding_fraction

    lengths, fixed, by_batching = plans(args)
    print(f"device {args.device}: {torch.cuda.get_device_name() if gpu else f'{os.cpu_count()} CPUs'} | model {args.model}, "
          f"{args.precision} | {args.utterances} utterances {lengths.sum() / 3600:.2f} h, {lengths.min():.1f}-{lengths.max():.1f} s")
    print(f"budget {args.max_batch_seconds:.0f} padded audio-s per batch; baseline batch size {fixed} (= budget // longest {lengths.max():.1f} s)")
    print(f"plan padding over one epoch: baseline {padding_fraction(by_batching['fixed'], lengths):.1%}, "
          f"ours {padding_fraction(by_batching['bucketed'], lengths):.1%}")

    # In turn, several rounds, median per contender: load from other processes hits all alike.
    rounds = [[launch(args, name) for name in CONTENDERS] for _ in range(args.rounds)]
    results = [sorted(runs, key=lambda r: r.throughput)[len(runs) // 2] for runs in zip(*rounds)]
    print(f"{args.rounds} rounds; audio-s/s per round: "
          + "; ".join(f"{r[0].name.split(' (')[0]}: {', '.join(f'{x.throughput:.0f}' for x in r)}" for r in zip(*rounds)))
    baseline, ours = results[0], results[-1]
    print(f"model: {baseline.params:,} parameters")
    peak = args.peak_tflops * 1e12 or (gpu and next((v for k, v in PEAK_BF16.items() if k in torch.cuda.get_device_name()), 0.0))
    if ours.steps < args.steps:
        print(f"note: only {ours.steps} batches in the data; pass more --utterances for a longer measurement")
    for r in results:
        line = (f"{r.name:40s} {r.steps:4d} steps {r.audio_s:8.1f} audio-s in {r.wall_s:6.1f} s: {r.throughput:7.1f} audio-s/s"
                f" {r.throughput / baseline.throughput:5.2f}x, padding {r.padding:5.1%}")
        line += f" = {r.throughput:.0f} audio-hours per {'GPU' if gpu else 'machine'}-hour; {r.flops / r.wall_s / 1e12:.3f} TFLOP/s"
        line += f", MFU {r.flops / r.wall_s / peak:.1%}" if peak else " (MFU: pass --peak-tflops)"
        print(line)
    print(f"speed-up ours/baseline: {ours.throughput / baseline.throughput:.2f}x (goal >= 1.5x); "
          f"from the batches alone {results[1].throughput / baseline.throughput:.2f}x; our padding {ours.padding:.1%} (goal <= 5%)")


if __name__ == "__main__":
    main()
