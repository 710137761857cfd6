"""The training run shared by `train` (LoRA) and `pretrain-base` (full training from scratch).

    setup:  config (TrainConfig) -> seeds -> model (method.build) -> data (run_data: manifest rows
            checked against what this model can learn; too many skipped is exit 78) -> optimizer
            and linear warmup/decay schedule -> resume from the latest complete checkpoint, or
            warm start from --init-from (run_checkpoints; weights only; validated at step 0 as
            the best so far) -> accelerate.prepare (device, DDP, autocast)
    train:  steps over duration-bucketed batches padded to a ladder of lengths (few distinct
            shapes); loss and grad norm stay on the device between log steps (no per-step host
            synchronisation); every `log_steps` a plain log line, every
            `eval_steps` a validation with the EMA weights (best -> checkpoint-best, early
            stopping), every `save_steps` a checkpoint; SIGTERM -> finish the step, save, exit 75
    finish: final validation, final checkpoint, metrics.json

Its parts live beside it in trainer.training: run_data (what the run reads), validation (scored as
`evaluate` scores), run_checkpoints (save, resume, warm start), run_log (log lines, TensorBoard,
metrics.json); this module is the setup and the loop between them.

Single process: `python -m trainer train ...`; several: `torchrun --nproc-per-node N -m trainer
train ...` (gloo on CPU, nccl on GPU). Rank 0 writes all files; every rank computes the same batch
plan and takes its share.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import random
import signal
import time
from typing import Any, Iterator, Optional

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs
from transformers import get_linear_schedule_with_warmup

from trainer import exit_codes, lease
from trainer.config import TrainConfig
from trainer.data.text import load_unit
from trainer.exit_codes import ConfigError
from trainer.model.artefact import HEAD
from trainer.model.frontend import conv_frames, min_samples_for_frames
from trainer.model.processor import TextCodec
from trainer.model.step_options import apply_step_options, base_of
from trainer.storage import open_store
from trainer.training import checkpoint as ckpt
from trainer.training.ctc import batch_ctc_loss
from trainer.training.dataset import CTCCollator, ItemKey, model_inputs
from trainer.training.ema import EMA
from trainer.training.methods import Method
from trainer.training.run_checkpoints import RunCheckpoints
from trainer.training.run_data import load_data
from trainer.training.run_log import RunLog, StepStats, Window, run_metrics
from trainer.training.sampler import LengthLadder, PlannedBatch, plan_summary
from trainer.training.spec_augment import TimeMasks, apply_given_time_masks
from trainer.training.validation import Validation

_log = logging.getLogger(__package__)  # the run's one logger, "trainer.training"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_precision(cfg: TrainConfig) -> str:
    cuda = cfg.device != "cpu" and torch.cuda.is_available()
    if cfg.device == "cuda" and not cuda:
        raise ConfigError("device: cuda requested but no GPU is visible")
    if cfg.precision == "auto":
        if not cuda:
            return "no"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[cfg.precision]


def enable_gradient_checkpointing(model: torch.nn.Module) -> None:
    """Recompute transformer activations in backward. Non-reentrant checkpointing, because the
    frozen layers' inputs do not require grad and the reentrant variant would drop LoRA grads."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


class TrainingRun:
    def __init__(self, cfg: TrainConfig, method: Method) -> None:
        self.cfg = cfg
        self.method = method
        self.store = open_store(cfg.output)
        self.acc = Accelerator(
            mixed_precision=resolve_precision(cfg),
            cpu=cfg.device == "cpu" or not torch.cuda.is_available(),
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)],
        )
        self.main = self.acc.is_main_process
        # Host numbers the ranks agree on every step (audio counted, a stop requested) travel through
        # a CPU (gloo) group: reading an NCCL result back would make the host wait for the device.
        self.host_group = torch.distributed.new_group(backend="gloo") if self.acc.num_processes > 1 else None
        self.log = RunLog(self.store, self.main)
        seed_everything(cfg.seed)
        self._setup_model()
        self.codec = TextCodec(self.processor, load_unit(cfg.vocab))
        self.data = load_data(cfg, self.model, self.codec, self.ladder, self.acc)
        self.validation = Validation(cfg, self.acc, self.data, self.codec, self.base, self.eval_collator, self.ladder)
        self._setup_optimizer()
        self.checkpoints = RunCheckpoints(cfg, method, self.store, self.acc, self.processor)
        self.resumed_from = self._resume_or_warm_start()
        self.model, self.optimizer = self.acc.prepare(self.model, self.optimizer)
        self.stop_requested = False

    # ------------------------------------------------------------------------------ setup
    def _setup_model(self) -> None:
        cfg = self.cfg
        if not cfg.vocab:
            raise ConfigError("vocab: required (a folder with vocab.json and text_units.json)")
        model, self.processor = self.method.build(cfg)
        if cfg.gradient_checkpointing:
            enable_gradient_checkpointing(model)
        self.model = model.to(self.acc.device)
        for option in apply_step_options(model, cfg, bf16=self.acc.mixed_precision == "bf16"):
            _log.info("step option: %s", option)
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        total, trainable = count_parameters(model)
        _log.info(
            "model %s (%s): %s parameters, %s trainable (%.2f%%)",
            self.method.starts_from(cfg),
            self.method.name,
            f"{total:,}",
            f"{trainable:,}",
            100.0 * trainable / total,
        )
        self.ladder = LengthLadder(cfg.pad_ladder_step)
        self.base = base_of(model)
        apply_given_time_masks(model)
        self.eval_collator = CTCCollator(
            self.processor.feature_extractor,
            min_samples_for_frames(model.config, model.config.mask_time_length + 1),
            self.ladder,
            conv_kernel=tuple(model.config.conv_kernel),
            conv_stride=tuple(model.config.conv_stride),
        )
        self.collator = dataclasses.replace(self.eval_collator, time_masks=TimeMasks.for_model(model.config))
        self.ema = EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None

    def _setup_optimizer(self) -> None:
        cfg = self.cfg
        epochs = cfg.epochs
        per_epoch = [self.data.sampler.steps_in_epoch(e, cfg.grad_accum) for e in range(max(1, math.ceil(epochs)))]
        if cfg.max_steps:
            total = cfg.max_steps
        else:
            whole = int(epochs)
            total = sum(per_epoch[:whole]) + int((epochs - whole) * per_epoch[whole] if epochs > whole else 0)
        if total <= 0 or per_epoch[0] == 0:
            raise ConfigError(
                f"train_manifest: {len(self.data.train_rows)} utterances give no optimizer step "
                f"(max_batch_seconds={cfg.max_batch_seconds}, grad_accum={cfg.grad_accum}, "
                f"processes={self.acc.num_processes}, epochs={epochs})"
            )
        self.total_steps = total
        # One fused kernel for all parameters instead of a loop of small ones (CUDA and CPU have it).
        fused = self.acc.device.type in ("cuda", "cpu")
        self.optimizer = torch.optim.AdamW(
            self._param_groups(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=fused
        )
        self.warmup_steps = math.ceil(cfg.warmup_ratio * total)
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, self.warmup_steps, total)
        self.progress = ckpt.Progress(total_steps=total, config=dataclasses.asdict(cfg))

    def _param_groups(self) -> list[dict[str, Any]]:
        """The CTC head at --head-learning-rate (when set), everything else at --learning-rate."""
        if not self.cfg.head_learning_rate:
            return [{"params": self.trainable}]
        head: list[torch.nn.Parameter] = []
        rest: list[torch.nn.Parameter] = []
        for name, param in self.model.named_parameters():
            if param.requires_grad:
                (head if HEAD in name.split(".") else rest).append(param)
        return [{"params": rest}, {"params": head, "lr": self.cfg.head_learning_rate}] if head else [{"params": rest}]

    def _resume_or_warm_start(self) -> Optional[str]:
        """Resume the latest complete checkpoint of this output that loads; else warm-start from
        --init-from. The name of the checkpoint resumed from, or None."""
        resumed = self.checkpoints.resume(self.model, self.optimizer, self.scheduler, self.ema, self.progress)
        self._resume_rng = resumed.rng if resumed else None
        if resumed:
            self.progress = resumed.progress
            return resumed.name
        if self.cfg.init_from:
            self.checkpoints.warm_start(self.model)
            if self.ema is not None:
                self.ema = EMA(self.model, self.cfg.ema_decay)
            _log.info(
                "warm start from %s (weights only%s; fresh optimizer and schedule)",
                self.cfg.init_from,
                ", new CTC head" if self.cfg.new_head else "",
            )
        return None

    # ------------------------------------------------------------------------------ steps
    def _epoch_keys(self, epoch: int, plan: list[PlannedBatch], start: int, stop: int) -> list[list[ItemKey]]:
        """Loader keys of `plan[start:stop]`: each utterance with its speed factor and padded length."""
        speeds = self.data.sampler.speed_factors(epoch)
        return [
            [ItemKey(epoch, i, float(speeds[i]), batch.samples) for i in batch.indices] for batch in plan[start:stop]
        ]

    def _dummy_batch(self) -> dict[str, torch.Tensor]:
        """A silent clip with an empty label, for a rank whose batch was all unreadable audio:
        it still joins DDP's gradient all-reduce (its loss is multiplied by 0). An empty time mask
        keeps transformers from drawing one on the host."""
        n = self.collator.min_samples
        frames = conv_frames(self.collator.conv_kernel, self.collator.conv_stride, n)
        return {
            "input_values": torch.zeros(1, n),
            "attention_mask": torch.ones(1, n, dtype=torch.long),
            "labels": torch.full((1, 1), -100, dtype=torch.long),
            "mask_time_indices": torch.zeros(1, frames, dtype=torch.bool),
        }

    def _forward_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        empty = batch["input_values"] is None
        inputs = self._dummy_batch() if empty else batch
        out = self.model(**model_inputs(inputs, self.acc.device))
        loss = batch_ctc_loss(out.logits, inputs, self.base, self.acc.device)
        return loss * 0.0 if empty else loss

    def _next_batch(self, batches: Iterator[dict[str, Any]]) -> dict[str, Any]:
        """The loader's next batch; time spent waiting for it and its shape are recorded."""
        started = time.perf_counter()
        batch = next(batches)
        self.window.loader_wait += time.perf_counter() - started
        if batch["input_values"] is not None:
            self.shapes_seen.add(tuple(batch["input_values"].shape))
        return batch

    def _train_step(self, batches: Iterator[dict[str, Any]]) -> StepStats:
        """One optimizer step. Nothing here waits for the device: the loss and the gradient norm
        stay device tensors (float64 sum, as Python floats added them), audio seconds are counted
        on the host from the batches, and clipping, AdamW and EMA run as device kernels."""
        cfg = self.cfg
        self.model.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.acc.device)
        seconds = padded = 0.0
        for micro in range(cfg.grad_accum):
            batch = self._next_batch(batches)
            self._count_skipped(batch["skipped"])
            sync = micro == cfg.grad_accum - 1
            with contextlib.nullcontext() if sync else self.acc.no_sync(self.model):
                loss = self._forward_loss(batch) / cfg.grad_accum
                self.acc.backward(loss)
            loss_sum += loss.detach()
            seconds += batch["seconds"]
            padded += batch["padded_seconds"]
        grad_norm = self.acc.clip_grad_norm_(self.trainable, cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update()
        stop = self.stop_requested
        if self.host_group is not None:  # all ranks must agree on stopping at this step
            shared = torch.tensor([seconds, padded, float(stop)], dtype=torch.float64)
            torch.distributed.all_reduce(shared, group=self.host_group)
            seconds, padded, stop_votes = shared.tolist()
            stop = stop_votes > 0
        return StepStats(loss_sum, grad_norm, seconds, padded, stop)

    def _count_skipped(self, skipped: list) -> None:
        for item in skipped:
            self.progress.skipped_audio += 1
            _log.warning("skipped unreadable audio %s (%s): %s", item.utt_id, item.reason, item.path)
            if len(self.progress.skipped_examples) < 20:
                self.progress.skipped_examples.append(dataclasses.asdict(item))

    # ------------------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, Any]:
        """Validation of the current (EMA) weights at the current step."""
        return self.validation.run(self.model, self.ema, self.progress.step)

    def _record_eval(self, result: dict[str, Any]) -> bool:
        """Log an evaluation, keep the best; True when early stopping says stop."""
        p, cfg = self.progress, self.cfg
        if p.step and p.audio_seconds <= 0:  # every batch so far was unreadable audio: nothing to keep as "best"
            raise ConfigError(
                f"train_manifest: no audio was trained on in {p.step} steps "
                f"({p.skipped_audio} unreadable; {self.data.train_skips.summary()})"
            )
        p.history.append({k: v for k, v in result.items() if k != "examples"})
        value = result[cfg.metric]
        self.log.evaluation(result, p.step, p.step > self.warmup_steps, len(self.codec.processor.tokenizer))
        if p.best_metric is None or value < p.best_metric:
            p.best_metric, p.best_step, p.evals_since_best = value, p.step, 0
            self._save_best()
            return False
        p.evals_since_best += 1
        return bool(cfg.patience) and p.evals_since_best >= cfg.patience

    # ------------------------------------------------------------------------------ saving
    def _save_step(self) -> None:
        self.checkpoints.save_step(self.model, self.ema, self.progress, self.optimizer, self.scheduler)
        if self.main:
            self.log.flush()

    def _save_best(self) -> None:
        if self.main:
            self.checkpoints.save_best(self.model, self.ema, self.progress, self.metrics())
            self.log.flush()

    def metrics(self) -> dict[str, Any]:
        return run_metrics(self.cfg, self.method, self.progress, self.data)

    def _write_metrics(self) -> None:
        if self.main:
            self.log.write_metrics(self.metrics())

    # ------------------------------------------------------------------------------ main loop
    def _on_sigterm(self, signum: int, frame: Any) -> None:
        _log.warning("SIGTERM: finishing the current step, then saving a checkpoint")
        self.stop_requested = True

    def _log_line(self, stats: StepStats) -> None:
        """The log step's loss (mean over ranks) and grad norm, read from the device only here."""
        loss = stats.loss
        if self.acc.num_processes > 1:
            loss = self.acc.reduce(loss, "sum") / self.acc.num_processes
        self.log.step(
            self.progress,
            self.window,
            float(loss),
            float(stats.grad_norm),
            self.scheduler.get_last_lr()[0],
            self._epoch_batches,
            len(self.shapes_seen),
        )

    def train(self) -> int:
        p = self.progress
        if self.main:
            self.store.cleanup_stale()
        self.log.open(p.step)
        if p.finished:
            _log.info("%s: already finished at step %d", self.store.uri, p.step)
            self._write_metrics()
            return exit_codes.OK
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        if self._resume_rng is not None:
            ckpt.restore_rng(self._resume_rng)
        try:
            return self._train_loop()
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.log.close()

    def _train_loop(self) -> int:
        p, cfg = self.progress, self.cfg
        _log.info(
            "training %d steps (%d utterances, %.2f h; %d processes; max %.0f audio-s per batch)",
            p.total_steps,
            len(self.data.train_rows),
            sum(r["duration"] for r in self.data.train_rows) / 3600,
            self.acc.num_processes,
            cfg.max_batch_seconds,
        )
        if self.cfg.init_from and p.step == 0 and not p.history:
            # A later curriculum phase starts as the previous phase's best: scored first, it is
            # the best to beat, so a phase's checkpoint-best is never worse than where it began.
            self._record_eval(self.evaluate())
        self.window = Window()
        self.shapes_seen: set[tuple[int, ...]] = set()
        while True:
            if p.step >= p.total_steps:  # resumed a run whose schedule is already done
                self._record_eval(self.evaluate())
                return self._finish("max_steps" if cfg.max_steps else "epochs")
            plan = self.data.sampler.epoch_batches(p.epoch)
            usable = len(plan) // cfg.grad_accum * cfg.grad_accum
            self._epoch_batches = usable
            summary = plan_summary(plan[:usable], self.data.sampler.epoch_durations(p.epoch))
            _log.info(
                "epoch %d: %d batches, %d distinct shapes, %.1f%% padding; %d loader workers",
                p.epoch,
                usable,
                summary["shapes"],
                100 * summary["padding"],
                self.data.num_workers,
            )
            keys = self._epoch_keys(p.epoch, plan, p.batch_in_epoch, usable)
            batches = iter(self.data.loader(self.data.train_set, keys, self.collator))
            stop_reason = ""
            while p.batch_in_epoch < usable and p.step < p.total_steps:
                stats = self._train_step(batches)
                p.step += 1
                p.batch_in_epoch += cfg.grad_accum
                p.audio_seconds += stats.seconds
                p.padded_audio_seconds += stats.padded_seconds
                self.window.add(stats)
                if p.step % cfg.log_steps == 0 or p.step == p.total_steps:
                    self._log_line(stats)
                    self.window = Window()
                evaluated = False
                if p.step % cfg.eval_steps == 0 or p.step == p.total_steps:
                    evaluated = True
                    if self._record_eval(self.evaluate()):
                        stop_reason = "early_stopping"
                if p.step == p.total_steps:
                    stop_reason = stop_reason or ("max_steps" if cfg.max_steps else "epochs")
                if stats.stop_requested and not stop_reason:
                    self._save_step()
                    _log.warning("preempted: saved step %d; re-run the same command to resume", p.step)
                    return exit_codes.PREEMPTED
                if stop_reason:
                    if not evaluated:
                        self._record_eval(self.evaluate())
                    return self._finish(stop_reason)
                if p.step % cfg.save_steps == 0:
                    self._save_step()
            del batches
            p.epoch += 1
            p.batch_in_epoch = 0

    def _finish(self, reason: str) -> int:
        p = self.progress
        p.finished, p.stop_reason = True, reason
        self._save_step()
        self._write_metrics()
        _log.info(
            "skipped rows: %s; %s; unreadable while training: %d",
            self.data.train_skips.summary(),
            self.data.val_skips.summary(),
            p.skipped_audio,
        )
        _log.info(
            "finished (%s) at step %d; best %s %.4f at step %d",
            reason,
            p.step,
            self.cfg.metric,
            p.best_metric,
            p.best_step,
        )
        return exit_codes.OK


def run_training(cfg: TrainConfig, method: Method) -> int:
    if not cfg.output:
        raise ConfigError("output: required (local path, PVC path or s3://bucket/prefix)")
    open_store(cfg.output).check_writable()
    with lease.hold(cfg.output):
        return TrainingRun(cfg, method).train()
