"""Training throughput of the real trainer against an HF-style baseline, in one run.

    python tools/bench/bench_train.py                      # CPU, tiny wav2vec2 (4 layers, width 128)
    python tools/bench/bench_train.py --device cuda        # GPU, xls-r-300m-shaped random model, bf16
    python tools/bench/bench_train.py --device cuda --option bf16_frozen_weights --option compile_encoder
    python tools/bench/bench_train.py --model xlsr --precision bf16 --steps 2 --utterances 60 \
        --max-batch-seconds 32                              # the GPU configuration, tried on a CPU

Setup: a corpus of --files distinct synthetic FLAC clips (tones + noise; log-normal durations,
median ~3 s, 0.8-16 s, as read children's speech; content does not change the cost) cycled
through a manifest of --utterances rows, its syllable vocabulary, and a randomly initialised base
(tiny or xls-r-300m shape) saved like a pretrained one. Then each contender in a fresh process:

- baseline: what `run_speech_recognition_ctc.py` does with `group_by_length`: a fixed batch size
  sized for the longest clip in the same memory as our budget (max_batch_seconds // longest),
  indices shuffled into mega-batches of 50 batches, each sorted by length
  (`transformers.trainer_pt_utils.get_length_grouped_indices`), a plain AdamW step; the same LoRA
  model. Its batches are decoded and padded before its clock starts (model steps only, no loader),
  and it runs in the default process environment, as `python run_speech_recognition_ctc.py` gets it.
- ours: the trainer itself (`trainer.training.loop.TrainingRun` of `python -m trainer train`):
  its loader (workers, speed perturbation, ladder padding), its step (clipping, AdamW, EMA, device
  counters), its log lines; in the environment this project's launchers set (trainer/runtime_env.py).
- ours +OPTION: the same with a step option of trainer/model/step_options.py turned on (--option).

The clock runs from the end of --warmup steps to the end of the last step (CUDA synchronised at
both ends only). Printed: audio-hours per device-hour (= audio-s/s), the ratio to the baseline,
MFU (FLOPs counted by torch.utils.flop_counter on one step after timing, over the GPU's dense bf16
peak), device-busy share (GPU: CUDA events around each step's device work after its batch arrived;
CPU: the share of wall time not spent waiting on the loader), distinct batch shapes, padding, and
loader capacity (one worker's audio-s/s for decode + perturbation + normalisation + collate, times
the workers) against what the step consumes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

SAMPLE_RATE = 16000
SYLLABLES = "가나다라마바사아자차카타파하거너더러머버서어저처고노도로모보소오조초구누두루무부수우주추"
# Dense bf16 peak FLOP/s by GPU name fragment (vendor datasheets, no sparsity).
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12, "L4": 121e12}
STEP_OPTIONS = ("bf16_frozen_weights", "frontend_in_compute_dtype", "compile_encoder", "eager_attention")


@dataclass
class Result:
    name: str
    steps: int
    audio_s: float
    padded_s: float
    wall_s: float
    flops: float
    busy: float  # device-busy share of the wall time
    shapes: int  # distinct batch shapes among the timed steps
    params: int
    loader_per_worker: float = 0.0  # audio-s/s one loader worker delivers (ours only)
    workers: int = 0

    @property
    def throughput(self) -> float:
        return self.audio_s / self.wall_s

    @property
    def padding(self) -> float:
        return 1.0 - self.audio_s / self.padded_s


# ----------------------------------------------------------------------------- setup (parent)


def durations(n: int, seed: int) -> np.ndarray:
    return np.clip(np.random.default_rng(seed).lognormal(np.log(3.0), 0.55, n), 0.8, 16.0)


def make_corpus(folder: Path, args) -> None:
    """FLAC clips, train/val manifests, vocabulary and a random base model in `folder`."""
    import soundfile as sf

    from trainer.data.manifest import write_manifest
    from trainer.data.text import build_vocab, save_vocab

    rng = np.random.default_rng(0)
    clips = []
    for i, seconds in enumerate(durations(args.files, seed=0)):
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        audio = 0.3 * np.sin(2 * np.pi * rng.uniform(120, 300) * t) + 0.05 * rng.standard_normal(t.size)
        path = folder / "audio" / f"{i:05d}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), audio.astype(np.float32), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        words = [
            "".join(rng.choice(list(SYLLABLES), rng.integers(1, 4))) for _ in range(max(1, int(seconds * 4 / 2.5)))
        ]
        clips.append((str(path), len(t) / SAMPLE_RATE, " ".join(words)))

    def rows(n: int, prefix: str):
        for i in range(n):
            path, seconds, text = clips[i % len(clips)]
            yield {
                "utt_id": f"{prefix}{i}",
                "audio_filepath": path,
                "duration": seconds,
                "text": text,
                "speaker_id": f"s{i % 50}",
                "age": 7,
                "gender": "F",
                "snr_db": 20.0,
            }

    write_manifest(rows(args.utterances, "u"), folder / "train.jsonl")
    write_manifest(rows(8, "v"), folder / "val.jsonl")
    save_vocab(build_vocab((c[2] for c in clips), "syllable"), folder, "syllable")
    make_base(folder, args.model)


def make_base(folder: Path, kind: str) -> None:
    from transformers import Wav2Vec2ForCTC

    from trainer.model.factory import tiny_wav2vec2_config, xlsr_300m_config
    from trainer.model.processor import build_processor, save_processor

    processor = build_processor(folder)
    size, pad = len(processor.tokenizer), processor.tokenizer.pad_token_id
    torch.manual_seed(0)
    config = xlsr_300m_config(size, pad) if kind == "xlsr" else tiny_wav2vec2_config(size, pad_token_id=pad)
    Wav2Vec2ForCTC(config).save_pretrained(str(folder / "base"))
    save_processor(processor, folder, folder / "base")


def train_config(args, output: Path, **changes: Any):
    from trainer.config import TrainConfig

    data = Path(args.data)
    return TrainConfig(
        output=str(output),
        model=str(data / "base"),
        vocab=str(data),
        train_manifest=str(data / "train.jsonl"),
        val_manifest=str(data / "val.jsonl"),
        rank=16,
        frozen_layers=8 if args.model == "xlsr" else 1,
        max_batch_seconds=args.max_batch_seconds,
        max_steps=args.warmup + args.steps,
        eval_steps=10**6,
        save_steps=10**6,
        log_steps=10,
        num_workers=args.workers,
        device=args.device,
        precision="bf16" if args.precision == "bf16" else "fp32",
        **changes,
    )


# ----------------------------------------------------------------------------- contenders (children)


class StepClock:
    """Times the timed steps of a run: wall clock between CUDA syncs at both ends, device work per
    step (CUDA events from the arrival of the batch to the end of the step), loader waits, shapes."""

    def __init__(self, warmup: int, device: str) -> None:
        self.warmup, self.cuda = warmup, device == "cuda"
        self.step = 0
        self.started = self.wall = self.busy = 0.0
        self.audio = self.padded = self.waiting = 0.0
        self.events: list[tuple[Any, Any]] = []
        self.shapes: set[tuple[int, ...]] = set()
        self._begin: Any = None

    def timed(self) -> bool:
        return self.step >= self.warmup

    def batch_arrived(self, batch: dict, waited: float) -> None:
        if not self.timed():
            return
        self.waiting += waited
        if batch["input_values"] is not None:
            self.shapes.add(tuple(batch["input_values"].shape))
        if self.cuda:
            self._begin = torch.cuda.Event(enable_timing=True)
            self._begin.record()

    def step_started(self) -> None:
        if self.step == self.warmup:
            self._sync()
            self.started = time.perf_counter()

    def step_done(self, stats: Any) -> None:
        if self.timed():
            self.audio += stats.seconds
            self.padded += stats.padded_seconds
            if self.cuda:
                end = torch.cuda.Event(enable_timing=True)
                end.record()
                self.events.append((self._begin, end))
        self.step += 1

    def finish(self) -> None:
        """Stop the clock: wall seconds of the timed steps and the device-busy share."""
        self._sync()
        self.wall = time.perf_counter() - self.started
        busy = sum(a.elapsed_time(b) for a, b in self.events) / 1000.0 if self.cuda else self.wall - self.waiting
        self.busy = min(1.0, busy / self.wall)

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()


def run_ours(args, option: str) -> Result:
    """The trainer's own TrainingRun, instrumented from outside (its methods wrapped, not copied)."""
    from trainer.training.loop import TrainingRun
    from trainer.training.methods import LoraMethod

    changes = {"attention": "eager"} if option == "eager_attention" else ({option: True} if option else {})
    cfg = train_config(args, Path(tempfile.mkdtemp(prefix="run-", dir=args.data)), **changes)
    run = TrainingRun(cfg, LoraMethod())
    clock = StepClock(args.warmup, args.device)
    next_batch, train_step = run._next_batch, run._train_step

    def next_batch_timed(batches):
        started = time.perf_counter()
        batch = next_batch(batches)
        clock.batch_arrived(batch, time.perf_counter() - started)
        return batch

    def train_step_timed(batches):
        clock.step_started()
        stats = train_step(batches)
        clock.step_done(stats)
        if clock.step == args.warmup + args.steps:
            clock.finish()
        return stats

    run._next_batch, run._train_step = next_batch_timed, train_step_timed
    if run.train() != 0:
        raise SystemExit("the trainer did not finish")
    return Result(
        f"ours{' +' + option if option else ''} (trainer)",
        clock.step - args.warmup,
        clock.audio,
        clock.padded,
        clock.wall,
        count_flops(run) * clock.padded,
        clock.busy,
        len(clock.shapes),
        sum(p.numel() for p in run.model.parameters()),
        loader_rate(run, args.loader_batches),
        run.data.num_workers,
    )


def count_flops(run) -> float:
    """FLOPs per padded audio second of one forward + backward (after timing: counting slows the
    steps that follow it)."""
    from torch.utils.flop_counter import FlopCounterMode

    keys = run._epoch_keys(0, run.data.sampler.epoch_batches(0), 0, 1)[0]
    batch = run.collator([run.data.train_set[k] for k in keys])
    counter = FlopCounterMode(display=False)
    with counter:
        run.acc.backward(run._forward_loss(batch))
    run.optimizer.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch["padded_seconds"]


def loader_rate(run, n_batches: int) -> float:
    """Audio-s/s one loader worker delivers: the trainer's dataset (decode, speed perturbation)
    and collator (normalisation, padding) in this process, on the trainer's epoch-0 batches."""
    keyed = run._epoch_keys(0, run.data.sampler.epoch_batches(0), 0, n_batches)
    started = time.perf_counter()
    audio = sum(run.collator([run.data.train_set[k] for k in keys])["seconds"] for keys in keyed)
    return audio / (time.perf_counter() - started)


def run_baseline(args, steps: int) -> Result:
    from torch.utils.flop_counter import FlopCounterMode
    from transformers.trainer_pt_utils import get_length_grouped_indices

    from trainer.data.audio import load_audio
    from trainer.data.manifest import read_manifest
    from trainer.training.loop import resolve_precision
    from trainer.training.methods import LoraMethod

    cfg = train_config(args, Path(tempfile.mkdtemp(prefix="baseline-", dir=args.data)))
    model, processor = LoraMethod().build(cfg)
    model = model.to(args.device)
    rows = list(read_manifest(cfg.train_manifest))
    lengths = [r["duration"] for r in rows]
    size = max(1, int(args.max_batch_seconds // max(lengths)))
    order = get_length_grouped_indices(lengths, size, generator=torch.Generator().manual_seed(0))
    batches = [order[i : i + size] for i in range(0, len(order), size)][: args.warmup + steps]

    def collate(indices: list[int]) -> dict:
        audio = [load_audio(rows[i]["audio_filepath"]) for i in indices]
        inputs = processor.feature_extractor(
            audio, sampling_rate=SAMPLE_RATE, padding=True, return_attention_mask=True, return_tensors="pt"
        )
        labels = processor.tokenizer([rows[i]["text"] for i in indices], padding=True, return_tensors="pt")
        ids = labels["input_ids"].masked_fill(labels["attention_mask"] == 0, -100)
        return {
            "input_values": inputs["input_values"],
            "attention_mask": inputs["attention_mask"],
            "labels": ids,
            "seconds": sum(len(a) for a in audio) / SAMPLE_RATE,
            "padded_seconds": inputs["input_values"].numel() / SAMPLE_RATE,
        }

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    autocast = torch.autocast(args.device, dtype=torch.bfloat16, enabled=resolve_precision(cfg) == "bf16")

    def step(batch: dict) -> None:
        with autocast:
            loss = model(
                **{k: batch[k].to(args.device, non_blocking=True) for k in ("input_values", "attention_mask", "labels")}
            ).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    collated = [collate(b) for b in batches]
    model.train()
    clock = StepClock(args.warmup, args.device)
    for batch in collated:
        clock.step_started()
        clock.batch_arrived(batch, 0.0)
        step(batch)
        clock.step_done(argparse.Namespace(seconds=batch["seconds"], padded_seconds=batch["padded_seconds"]))
    clock.finish()
    counter = FlopCounterMode(display=False)
    with counter:
        step(collated[-1])
    flops = counter.get_total_flops() / collated[-1]["padded_seconds"] * clock.padded
    return Result(
        "baseline (HF group_by_length, fixed batch)",
        clock.step - args.warmup,
        clock.audio,
        clock.padded,
        clock.wall,
        flops,
        clock.busy,
        len(clock.shapes),
        sum(p.numel() for p in model.parameters()),
    )


# ----------------------------------------------------------------------------- parent


@dataclass
class Plans:
    ours: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    baseline_steps: int = 0
    baseline_batch: int = 0


def plans(args) -> Plans:
    """Shapes and padding of one epoch for both batchings, and the baseline's steps for the same
    audio as ours."""
    from transformers.trainer_pt_utils import get_length_grouped_indices

    from trainer.data.manifest import read_manifest
    from trainer.training.sampler import DurationBucketSampler, LengthLadder, PlannedBatch, plan_summary

    cfg = train_config(args, Path("unused"))
    lengths = np.array([r["duration"] for r in read_manifest(cfg.train_manifest)])
    sampler = DurationBucketSampler(
        lengths, cfg.max_batch_seconds, LengthLadder(cfg.pad_ladder_step), cfg.seed, tuple(cfg.speed_perturb)
    )
    ours = sampler.epoch_batches(0)
    seen = sampler.epoch_durations(0)
    size = max(1, int(args.max_batch_seconds // lengths.max()))
    order = get_length_grouped_indices(lengths.tolist(), size, generator=torch.Generator().manual_seed(0))
    fixed = [order[i : i + size] for i in range(0, len(order), size)]
    fixed_plan = [PlannedBatch(b, int(np.ceil(lengths[b].max() * SAMPLE_RATE))) for b in fixed]
    per_step = np.mean([seen[b.indices].sum() for b in ours]) / np.mean([lengths[b].sum() for b in fixed])
    return Plans(plan_summary(ours, seen), plan_summary(fixed_plan, lengths), int(np.ceil(args.steps * per_step)), size)


def launch(args, contender: str, extra: list[str]) -> Result:
    from trainer.runtime_env import CPU_ENV, with_cpu_env

    default_env = {k: v for k, v in os.environ.items() if k not in CPU_ENV}
    env = default_env if contender == "baseline" else with_cpu_env(default_env)
    cmd = [
        sys.executable,
        __file__,
        "--contender",
        contender,
        "--data",
        args.data,
        "--device",
        args.device,
        "--model",
        args.model,
        "--precision",
        args.precision,
        "--max-batch-seconds",
        str(args.max_batch_seconds),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--workers",
        str(args.workers),
        "--loader-batches",
        str(args.loader_batches),
        *extra,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{contender} failed:\n{proc.stderr[-3000:]}")
    return Result(**json.loads(proc.stdout.strip().splitlines()[-1]))


def report(args, plan: Plans, results: list[Result], gpu: bool) -> None:
    from trainer.runtime_env import usable_cpus

    baseline, ours = results[0], results[1]
    peak = args.peak_tflops * 1e12 or (
        gpu and next((v for k, v in PEAK_BF16.items() if k in torch.cuda.get_device_name()), 0.0)
    )
    unit = "GPU" if gpu else "machine"
    cpus = 1 if gpu else usable_cpus()
    print(f"model: {ours.params:,} parameters")
    for r in results:
        line = (
            f"{r.name:44s} {r.steps:3d} steps {r.audio_s:8.1f} audio-s in {r.wall_s:6.1f} s: {r.throughput:7.1f} "
            f"audio-hours per {unit}-hour, {r.throughput / baseline.throughput:5.2f}x baseline | padding {r.padding:5.1%}"
            f" | {r.shapes} shapes | {'GPU' if gpu else 'step (not loader)'} busy {r.busy:4.0%} | {r.flops / r.wall_s / 1e12:.3f} TFLOP/s"
        )
        line += f", MFU {r.flops / r.wall_s / peak:.1%}" if peak else " (MFU: pass --peak-tflops)"
        if not gpu:
            line += f" | {r.throughput / cpus:.1f} audio-hours per CPU-hour ({cpus} CPUs)"
        print(line)
    capacity = ours.loader_per_worker * max(1, ours.workers)
    print(
        f"loader: one worker delivers {ours.loader_per_worker:.0f} audio-s/s (decode + speed perturbation + normalise + "
        f"collate); {ours.workers} workers -> {capacity:.0f} audio-s/s capacity = {capacity / ours.throughput:.1f}x "
        f"what the step consumed ({ours.throughput:.0f}; goal >= 1.5x)"
    )
    print(
        f"speed-up ours/baseline: {ours.throughput / baseline.throughput:.2f}x; epoch plan: ours {plan.ours['shapes']} "
        f"shapes, {plan.ours['padding']:.1%} padding; baseline {plan.baseline['shapes']} shapes, {plan.baseline['padding']:.1%} padding"
    )
    for r in results[2:]:
        print(f"option {r.name}: {r.throughput / ours.throughput:.2f}x ours")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--model", default="auto", choices=["auto", "tiny", "xlsr"], help="auto: xlsr on cuda, else tiny"
    )
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"], help="auto: bf16 on cuda")
    parser.add_argument("--utterances", type=int, default=0, help="manifest rows (0: 900 on CPU, 20000 on GPU)")
    parser.add_argument("--files", type=int, default=200, help="distinct audio files the rows cycle through")
    parser.add_argument("--max-batch-seconds", type=float, default=0.0, help="0: 48 on CPU, 400 on GPU")
    parser.add_argument("--steps", type=int, default=0, help="timed steps of ours (0: 20 on CPU, 100 on GPU)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--workers", type=int, default=-1, help="loader workers of ours (-1: the trainer's default)")
    parser.add_argument("--loader-batches", type=int, default=4, help="batches decoded to measure one loader worker")
    parser.add_argument(
        "--option", action="append", default=[], choices=STEP_OPTIONS, help="also run ours with this step option"
    )
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=0.0,
        help="device peak TFLOP/s in the precision used, for the MFU (0: from the GPU name)",
    )
    parser.add_argument("--data", default="", help=argparse.SUPPRESS)  # internal: the corpus folder
    parser.add_argument("--contender", default="", help=argparse.SUPPRESS)  # internal: one child run
    args = parser.parse_args()
    gpu = args.device == "cuda"
    args.model = args.model if args.model != "auto" else ("xlsr" if gpu else "tiny")
    args.precision = args.precision if args.precision != "auto" else ("bf16" if gpu else "fp32")
    args.max_batch_seconds = args.max_batch_seconds or (400.0 if gpu else 48.0)
    args.steps = args.steps or (100 if gpu else 20)
    args.utterances = args.utterances or (20000 if gpu else 900)
    if args.contender == "baseline":
        return print(json.dumps(asdict(run_baseline(args, args.steps))))
    if args.contender:
        return print(json.dumps(asdict(run_ours(args, args.contender.removeprefix("ours").lstrip("+")))))

    with tempfile.TemporaryDirectory(prefix="bench-train-") as folder:
        args.data = folder
        make_corpus(Path(folder), args)
        plan = plans(args)
        print(
            f"device {args.device}: {torch.cuda.get_device_name() if gpu else f'{os.cpu_count()} CPUs'} | model {args.model}, "
            f"{args.precision} | {args.utterances} utterances over {args.files} FLAC files, 0.8-16 s"
        )
        print(
            f"budget {args.max_batch_seconds:.0f} padded audio-s per batch; baseline batch size {plan.baseline_batch} "
            f"(= budget // longest clip), {plan.baseline_steps} steps for the audio of our {args.steps}"
        )
        baseline = launch(args, "baseline", ["--steps", str(plan.baseline_steps)])
        results = [baseline, launch(args, "ours", [])] + [launch(args, f"ours+{o}", []) for o in args.option]
        report(args, plan, results, gpu)


if __name__ == "__main__":
    main()
