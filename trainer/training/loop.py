"""The training run shared by `train` (LoRA) and `pretrain-base` (full training from scratch).

    setup:  seeds -> model (method.build) -> data (manifest rows checked against what this model
            can learn, trainer.data.screening; too many skipped is exit 78) -> optimizer and
            linear warmup/decay schedule -> resume from the latest complete checkpoint, or warm
            start from --init-from (weights only; validated at step 0 as the best so far)
            -> accelerate.prepare (device, DDP, autocast)
    train:  steps over duration-bucketed batches padded to a ladder of lengths (few distinct
            shapes); loss and grad norm stay on the device between log steps (no per-step host
            synchronisation); every `log_steps` a plain log line, every
            `eval_steps` a validation with the EMA weights (best -> checkpoint-best, early
            stopping), every `save_steps` a checkpoint; SIGTERM -> finish the step, save, exit 75
    finish: final validation, final checkpoint, metrics.json

Single process: `python -m trainer train ...`; several: `torchrun --nproc-per-node N -m trainer
train ...` (gloo on CPU, nccl on GPU). Rank 0 writes all files; every rank computes the same batch
plan and takes its share.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import signal
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator, Optional, Protocol

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, gather_object
from transformers import Wav2Vec2Processor, get_linear_schedule_with_warmup

from trainer import exit_codes, lease
from trainer.config import RUNTIME, TrainConfig, fields_with
from trainer.data.manifest import fetch_audio, read_manifest
from trainer.data.screening import SkipTally, join_shares, model_frames, screen_rows, share
from trainer.data.text import load_unit
from trainer.evaluation.breakdown import data_summary
from trainer.evaluation.metrics import char_edits, word_edits
from trainer.exit_codes import ConfigError
from trainer.layout import VOCAB_FILE
from trainer.model import artefact
from trainer.model.artefact import HEAD
from trainer.model.frontend import conv_frames, min_samples_for_frames
from trainer.model.processor import TextCodec, save_processor
from trainer.model.step_options import apply_step_options, base_of
from trainer.runtime_env import usable_cpus
from trainer.storage import join, local_file, open_store
from trainer.training import checkpoint as ckpt
from trainer.training.augment import Perturbation
from trainer.training.ctc import ctc_loss, label_id_problem, label_lengths
from trainer.training.dataset import CTCCollator, ItemKey, SpeechDataset
from trainer.training.ema import EMA
from trainer.training.sampler import DurationBucketSampler, LengthLadder, PlannedBatch, plan_eval_batches, plan_summary
from trainer.training.spec_augment import TimeMasks, apply_given_time_masks

_log = logging.getLogger("trainer.training")
TENSORBOARD_DIR = "tensorboard"
DECODED_EXAMPLES = 4  # validation utterances shown as text in TensorBoard
# Share of empty validation hypotheses after warmup that is reported as CTC's blank-only plateau.
BLANK_PLATEAU = 0.95


class Method(Protocol):
    """How the weights are trained: LoRA adapters on a base, or a full model from scratch."""

    name: str
    checkpoint_kind: str  # trainer.model.artefact.Kind of the checkpoints it writes and loads

    def build(self, cfg: TrainConfig) -> tuple[torch.nn.Module, Wav2Vec2Processor]: ...

    def load(self, model: torch.nn.Module, folder: Path, head: bool = True) -> None: ...

    def save(self, model: torch.nn.Module, folder: Path) -> None: ...


@dataclass
class StepStats:
    loss: torch.Tensor  # on the device, this rank's; read only when logged
    grad_norm: torch.Tensor
    seconds: float  # real audio, all ranks
    padded_seconds: float
    stop_requested: bool


# What the model is called with (the loss is computed outside it, trainer.training.ctc).
MODEL_INPUTS = ("input_values", "attention_mask", "mask_time_indices")


@dataclass
class Window:
    """Counters over the steps since the last log line (host floats: no device reads)."""

    started: float = dataclasses.field(default_factory=time.monotonic)
    steps: int = 0
    seconds: float = 0.0
    padded_seconds: float = 0.0
    loader_wait: float = 0.0

    def add(self, stats: StepStats) -> None:
        self.steps += 1
        self.seconds += stats.seconds
        self.padded_seconds += stats.padded_seconds


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


def read_rows(path: str, flag: str, stats: dict[str, int]) -> list[dict]:
    if not path:
        raise ConfigError(f"{flag}: required")
    if not local_file(path).is_file():
        raise ConfigError(f"{flag}: {path}: manifest not found")
    rows = list(read_manifest(path, skip_invalid=True, stats=stats))
    if not rows:
        list(read_manifest(path))  # raises the first bad row's ManifestError, naming file, line and field
        raise ConfigError(f"{flag}: {path}: no rows")
    fetch_audio(rows)
    return rows


def enable_gradient_checkpointing(model: torch.nn.Module) -> None:
    """Recompute transformer activations in backward. Non-reentrant checkpointing, because the
    frozen layers' inputs do not require grad and the reentrant variant would drop LoRA grads."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})


def _own_process_group(worker_id: int) -> None:
    """Loader workers leave a signal sent to the trainer's process group to the trainer.

    torchrun passes SIGTERM on to its workers' whole process groups; a loader worker that died of
    it would make the training process raise before it could finish the step and save. Signals sent
    to the worker itself (the loader's shutdown, multiprocessing's exit) still reach it, and it
    exits on its own when the trainer dies (the loader's parent watchdog).
    """
    os.setpgid(0, 0)


def loader_workers(requested: int) -> int:
    """`requested`, or for -1 the CPUs this process may use (shared with the other processes of
    its node) less one for the process itself."""
    if requested >= 0:
        return requested
    return max(1, usable_cpus() // int(os.environ.get("LOCAL_WORLD_SIZE", "1")) - 1)


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
        if not self.main:  # one copy of each log line is enough (rank 0 speaks for all)
            _log.setLevel(logging.WARNING)
        seed_everything(cfg.seed)
        self._setup_model()
        self._setup_data()
        self._setup_optimizer()
        self.resumed_from = self._resume_or_warm_start()
        self.model, self.optimizer = self.acc.prepare(self.model, self.optimizer)
        self.stop_requested = False
        self._val_loader: Optional[torch.utils.data.DataLoader] = None

    # ------------------------------------------------------------------------------ setup
    def _setup_data(self) -> None:
        cfg = self.cfg
        self.codec = TextCodec(self.processor, load_unit(cfg.vocab))
        train_invalid: dict[str, int] = {}
        val_invalid: dict[str, int] = {}
        train_rows = read_rows(cfg.train_manifest, "train_manifest", train_invalid)
        val_rows = read_rows(cfg.val_manifest, "val_manifest", val_invalid)
        if 0 < cfg.max_eval_utterances < len(val_rows):
            # Evenly spaced rows, not the first ones: manifests run speaker by speaker, and the
            # subset should hear every validation speaker.
            picks = np.linspace(0, len(val_rows) - 1, cfg.max_eval_utterances).round().astype(int)
            val_rows = [val_rows[i] for i in picks]
        self.invalid_rows = {k: train_invalid.get(k, 0) + val_invalid.get(k, 0) for k in {*train_invalid, *val_invalid}}
        self.train_rows, self.train_skips = self._screen(
            train_rows, "train_manifest", train_invalid, max(cfg.speed_perturb, default=1.0)
        )
        self.val_rows, self.val_skips = self._screen(val_rows, "val_manifest", val_invalid, 1.0)
        self.train_summary = data_summary(self.train_rows)  # metrics.json, for an export's model card
        self.train_skips.check_share(cfg.max_skipped_train_share, "max_skipped_train_share")
        self.val_skips.check_share(cfg.max_skipped_val_share, "max_skipped_val_share")
        self.sampler = DurationBucketSampler(
            [r["duration"] for r in self.train_rows],
            cfg.max_batch_seconds,
            self.ladder,
            cfg.seed,
            tuple(cfg.speed_perturb),
            self.acc.process_index,
            self.acc.num_processes,
        )
        self.train_set = SpeechDataset(self.train_rows, self.codec, cfg.seed, Perturbation(cfg.pitch_perturb_semitones))
        self.val_set = SpeechDataset(self.val_rows, self.codec, cfg.seed)
        self.num_workers = loader_workers(cfg.num_workers)

    def _screen(
        self, rows: list[dict], flag: str, invalid: dict[str, int], fastest_speed: float
    ) -> tuple[list[dict], SkipTally]:
        """The rows this model can learn from, with measured durations (trainer.data.screening).

        With several processes each reads the audio headers of its share of the rows, and all get
        the joined result: the same rows everywhere, so every rank plans the same batches."""
        tokenizer = self.processor.tokenizer
        config = self.model.config

        def encode_checked(row: dict) -> list[int]:
            """The row's label ids; ConfigError when the model cannot take them as CTC targets."""
            labels = self.codec.encode_row(row)
            problem = label_id_problem(labels, config.vocab_size, config.pad_token_id)
            if problem:
                raise ConfigError(f"{flag}: {row['utt_id']}: {problem}: vocab and model do not match")
            return labels

        world, rank = self.acc.num_processes, self.acc.process_index
        screened: tuple[list[dict], SkipTally] | ConfigError
        try:
            screened = screen_rows(
                share(rows, rank, world),
                flag,
                encode_checked,
                model_frames(self.model.config, fastest_speed),
                tokenizer.unk_token_id,
                tokenizer.word_delimiter_token_id,
                invalid if rank == 0 else None,  # counted once
                self.cfg.max_batch_seconds,
            )
        except ConfigError as exc:  # found in one share: every process stops with it, none waits
            screened = exc
        shares = gather_object([screened]) if world > 1 else [screened]
        for found in shares:
            if isinstance(found, ConfigError):
                raise found
        return join_shares(shares, flag)

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
            cfg.model if self.method.name == "lora" else "from scratch",
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
        per_epoch = [self.sampler.steps_in_epoch(e, cfg.grad_accum) for e in range(max(1, math.ceil(epochs)))]
        if cfg.max_steps:
            total = cfg.max_steps
        else:
            whole = int(epochs)
            total = sum(per_epoch[:whole]) + int((epochs - whole) * per_epoch[whole] if epochs > whole else 0)
        if total <= 0 or per_epoch[0] == 0:
            raise ConfigError(
                f"train_manifest: {len(self.train_rows)} utterances give no optimizer step "
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
        """Resume the latest complete checkpoint of this output that loads; else warm-start from --init-from."""
        verified = ckpt.set_aside_damaged(self.store) if self.main else None
        self.acc.wait_for_everyone()
        steps = ckpt.complete_steps(self.store)
        if steps:
            name = ckpt.step_dir(steps[-1])
            # The main process verified it (read it; on S3, downloaded it): nothing is read twice.
            if verified is None or verified.name != name:
                verified = ckpt.Verified(name, self.store.fetch(name))
            folder = verified.folder
            changed = artefact.vocabulary_change(folder, self.cfg.vocab)
            if changed:
                raise ConfigError(
                    f"{self.store.uri}/{name}/{VOCAB_FILE}: this run was trained with another vocabulary than "
                    f"{join(self.cfg.vocab, VOCAB_FILE)} ({changed}); restore the run's vocabulary, or start a new "
                    "--output with --init-from this checkpoint and --new-head"
                )
            self.method.load(self.model, folder)
            self.optimizer.load_state_dict(verified.read(ckpt.OPTIMIZER_FILE))
            self.scheduler.load_state_dict(verified.read(ckpt.SCHEDULER_FILE))
            if self.ema is not None:
                self.ema.load(folder / ckpt.EMA_FILE)
            if self.acc.scaler is not None and (folder / ckpt.SCALER_FILE).is_file():
                self.acc.scaler.load_state_dict(verified.read(ckpt.SCALER_FILE))
            saved = verified.read(ckpt.STATE_FILE)
            self._warn_config_drift(saved.config)
            saved.config, saved.total_steps = self.progress.config, self.progress.total_steps
            if saved.finished and saved.stop_reason != "early_stopping" and saved.step < saved.total_steps:
                saved.finished, saved.stop_reason = False, ""  # a longer schedule continues the run
            self.progress = saved
            rng = verified.read(ckpt.RNG_FILE)
            self._resume_rng = rng[self.acc.process_index] if self.acc.process_index < len(rng) else None
            self.store.release(folder)
            _log.info("resuming from %s/%s at step %d", self.store.uri, name, saved.step)
            return name
        self._resume_rng = None
        if self.cfg.init_from:
            from trainer.storage import materialize

            folder = materialize(self.cfg.init_from)
            self._check_init_from(folder)
            self.method.load(self.model, folder, head=not self.cfg.new_head)
            if self.ema is not None:
                self.ema = EMA(self.model, self.cfg.ema_decay)
            _log.info(
                "warm start from %s (weights only%s; fresh optimizer and schedule)",
                self.cfg.init_from,
                ", new CTC head" if self.cfg.new_head else "",
            )
        return None

    def _check_init_from(self, folder: Path) -> None:
        """ConfigError unless `folder` is a checkpoint of this method whose files load and whose
        vocabulary is the run's (or --new-head replaces its head)."""
        kind = artefact.check_model(folder, "init_from", with_base=False)  # the run's --model is the base
        if kind != self.method.checkpoint_kind:
            named = {"adapter": "an adapter checkpoint", "full": "a full model"}
            raise ConfigError(
                f"init_from: {self.cfg.init_from} is {named[kind]}, not {named[self.method.checkpoint_kind]}"
                + (" (a base model goes in --model)" if self.method.checkpoint_kind == "adapter" else "")
            )
        changed = artefact.vocabulary_change(folder, self.cfg.vocab)
        if changed and not self.cfg.new_head:
            raise ConfigError(
                f"init_from: {join(self.cfg.init_from, VOCAB_FILE)} is not the run's vocabulary "
                f"{join(self.cfg.vocab, VOCAB_FILE)} ({changed}); its CTC head would emit other units: "
                "use the checkpoint's vocabulary, or --new-head to keep its adapters and train a new head"
            )

    def _warn_config_drift(self, saved: dict[str, Any]) -> None:
        ignore = fields_with(TrainConfig, RUNTIME)
        changed = {
            k: (saved.get(k), v)
            for k, v in dataclasses.asdict(self.cfg).items()
            if k not in ignore and saved.get(k) != v
        }
        if changed:
            _log.warning("resuming with a config that differs from the checkpoint's: %s", changed)

    # ------------------------------------------------------------------------------ loaders
    def _loader(
        self, dataset: SpeechDataset, keyed_batches: list[list[ItemKey]], collate: CTCCollator, persistent: bool = False
    ) -> torch.utils.data.DataLoader:
        """A loader over `keyed_batches`; `persistent` keeps its workers between passes (the
        validation loader, read at every evaluation, would otherwise start them each time)."""
        return torch.utils.data.DataLoader(
            dataset,
            batch_sampler=keyed_batches,
            collate_fn=collate,
            num_workers=self.num_workers,
            persistent_workers=persistent and self.num_workers > 0,
            # A private generator keeps loader start-up from drawing on the global RNG, which
            # would make a resumed run's random stream differ from an uninterrupted one.
            generator=torch.Generator().manual_seed(self.cfg.seed),
            pin_memory=self.acc.device.type == "cuda",
            worker_init_fn=_own_process_group,
        )

    def _eval_batches(self) -> list[list[ItemKey]]:
        plan = plan_eval_batches([r["duration"] for r in self.val_rows], self.cfg.max_batch_seconds, self.ladder)
        mine = plan[self.acc.process_index :: self.acc.num_processes]
        return [[ItemKey(0, i, 1.0, batch.samples) for i in batch.indices] for batch in mine]

    def _epoch_keys(self, epoch: int, plan: list[PlannedBatch], start: int, stop: int) -> list[list[ItemKey]]:
        """Loader keys of `plan[start:stop]`: each utterance with its speed factor and padded length."""
        speeds = self.sampler.speed_factors(epoch)
        return [
            [ItemKey(epoch, i, float(speeds[i]), batch.samples) for i in batch.indices] for batch in plan[start:stop]
        ]

    # ------------------------------------------------------------------------------ steps
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
        out = self.model(**self._on_device(inputs, MODEL_INPUTS))
        loss = self._ctc_loss(out.logits, inputs)
        return loss * 0.0 if empty else loss

    def _on_device(self, batch: dict[str, Any], keys: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """`batch`'s tensors under `keys` (those it has) on the device. Pinned (on CUDA) host
        batches: the copies overlap the running step instead of waiting for it."""
        return {key: batch[key].to(self.acc.device, non_blocking=True) for key in keys if key in batch}

    def _ctc_loss(self, logits: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """The model's CTC loss for a collated (host) batch, lengths counted on the host."""
        labels = batch["labels"]
        frames = self.base._get_feat_extract_output_lengths(batch["attention_mask"].sum(-1))
        device_labels = labels.to(self.acc.device, non_blocking=True)
        return ctc_loss(logits, device_labels, frames, label_lengths(labels), self.base.config)

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
    @torch.inference_mode()
    def evaluate(self) -> dict[str, Any]:
        """CER/WER (trainer.evaluation.metrics definitions) of the EMA weights on the val set."""
        model = self.acc.unwrap_model(self.model)
        model.eval()
        if self._val_loader is None:  # one loader (and its workers) for every evaluation of the run
            self._val_loader = self._loader(self.val_set, self._eval_batches(), self.eval_collator, persistent=True)
        # char errors, chars, word errors, words, loss, utts, empty hyps, unreadable audio
        totals = torch.zeros(8, dtype=torch.float64)
        examples: list[tuple[str, str]] = []
        first_unreadable = ""
        with self.ema.applied() if self.ema is not None else contextlib.nullcontext():
            for batch in self._val_loader:
                totals[7] += len(batch["skipped"])
                for item in batch["skipped"]:
                    first_unreadable = first_unreadable or f"{item.utt_id}: {item.reason}: {item.path}"
                    _log.warning(
                        "validation: skipped unreadable audio %s (%s): %s", item.utt_id, item.reason, item.path
                    )
                if batch["input_values"] is None:
                    continue
                with self.acc.autocast():
                    logits = model(**self._on_device(batch, MODEL_INPUTS)).logits
                loss = self._ctc_loss(logits, batch)
                lengths = self.base._get_feat_extract_output_lengths(batch["attention_mask"].sum(-1)).tolist()
                hyps = self.codec.decode_logits(logits.float().cpu().numpy(), lengths)
                refs = [self.codec.reference(t, p) for t, p in zip(batch["texts"], batch["pronounced"])]
                for ref, hyp in zip(refs, hyps):
                    c, w = char_edits(ref, hyp), word_edits(ref, hyp)
                    totals[:4] += torch.tensor([c.errors, c.ref_len, w.errors, w.ref_len], dtype=torch.float64)
                totals[4] += float(loss) * len(refs)
                totals[5] += len(refs)
                totals[6] += sum(not h.strip() for h in hyps)
                examples += list(zip(refs, hyps))[: DECODED_EXAMPLES - len(examples)]
        model.train()
        if self.acc.num_processes > 1:
            totals = self.acc.reduce(totals.to(self.acc.device), "sum").cpu()
        char_err, chars, word_err, words, loss, utts, empty, unreadable = totals.tolist()
        skipped = self.val_skips.skipped + int(unreadable)
        if utts == 0 or skipped > self.cfg.max_skipped_val_share * self.val_skips.total:
            raise ConfigError(
                f"val_manifest: evaluation at step {self.progress.step} scored {int(utts)} of {self.val_skips.total} "
                f"rows ({self.val_skips.skipped} skipped before training, {int(unreadable)} unreadable now; "
                f"max_skipped_val_share={self.cfg.max_skipped_val_share:g})"
                + (f"; first unreadable: {first_unreadable}" if first_unreadable else "")
            )
        return {
            "step": self.progress.step,
            "cer": char_err / max(chars, 1.0),
            "wer": word_err / max(words, 1.0),
            "loss": loss / max(utts, 1.0),
            "utterances": int(utts),
            "empty_fraction": empty / max(utts, 1.0),
            "examples": [{"ref": r, "hyp": h} for r, h in examples],
        }

    def _record_eval(self, result: dict[str, Any]) -> bool:
        """Log an evaluation, keep the best; True when early stopping says stop."""
        p, cfg = self.progress, self.cfg
        if p.step and p.audio_seconds <= 0:  # every batch so far was unreadable audio: nothing to keep as "best"
            raise ConfigError(
                f"train_manifest: no audio was trained on in {p.step} steps "
                f"({p.skipped_audio} unreadable; {self.train_skips.summary()})"
            )
        p.history.append({k: v for k, v in result.items() if k != "examples"})
        value = result[cfg.metric]
        _log.info(
            "eval step %d | cer %.4f | wer %.4f | loss %.4f | %d utterances, %.0f%% empty hypotheses",
            p.step,
            result["cer"],
            result["wer"],
            result["loss"],
            result["utterances"],
            100 * result["empty_fraction"],
        )
        if result["empty_fraction"] >= BLANK_PLATEAU and p.step > self.warmup_steps:
            _log.warning(
                "blank-only output: %.0f%% of validation hypotheses are empty at step %d, after warmup. CTC "
                "heads start there; a new head for a %d-unit vocabulary leaves it sooner with a higher "
                "--head-learning-rate (3-10x --learning-rate) or a jamo vocabulary (data prepare --unit jamo).",
                100 * result["empty_fraction"],
                p.step,
                len(self.codec.processor.tokenizer),
            )
        if self.main:
            for key in ("cer", "wer", "loss", "empty_fraction"):
                self.writer.add_scalar(f"eval/{key}", result[key], p.step)
            table = "\n".join(f"| {e['ref']} | {e['hyp']} |" for e in result["examples"])
            self.writer.add_text("eval/decoded", "| reference | hypothesis |\n|---|---|\n" + table, p.step)
        if p.best_metric is None or value < p.best_metric:
            p.best_metric, p.best_step, p.evals_since_best = value, p.step, 0
            self._save(ckpt.BEST, use_ema=True, resumable=False)
            return False
        p.evals_since_best += 1
        return bool(cfg.patience) and p.evals_since_best >= cfg.patience

    # ------------------------------------------------------------------------------ saving
    def _save(self, name: str, use_ema: bool, resumable: bool) -> None:
        """Write one checkpoint folder (rank 0), atomically through the output store."""
        rng_states = gather_object([ckpt.capture_rng()]) if resumable else []
        if not self.main:
            return
        staged = self.store.staging_dir(name)
        model = self.acc.unwrap_model(self.model)
        with self.ema.applied() if use_ema and self.ema is not None else contextlib.nullcontext():
            self.method.save(model, staged)
        save_processor(self.processor, self.cfg.vocab, staged)
        (staged / ckpt.STATE_FILE).write_text(self.progress.to_json(), encoding="utf-8")
        if self.ema is not None:
            self.ema.save(staged / ckpt.EMA_FILE)
        if resumable:
            ckpt.save_torch(self.optimizer.state_dict(), staged / ckpt.OPTIMIZER_FILE)
            ckpt.save_torch(self.scheduler.state_dict(), staged / ckpt.SCHEDULER_FILE)
            ckpt.save_torch(rng_states, staged / ckpt.RNG_FILE)
            if self.acc.scaler is not None:  # fp16 loss scale
                ckpt.save_torch(self.acc.scaler.state_dict(), staged / ckpt.SCALER_FILE)
        else:
            (staged / ckpt.METRICS_FILE).write_text(json.dumps(self.metrics(), indent=2, ensure_ascii=False))
        self.store.publish(staged, name)
        if resumable:
            ckpt.prune(self.store, self.cfg.keep_last)
        self.writer.flush()
        self.store.sync_log_dir(TENSORBOARD_DIR)

    def metrics(self) -> dict[str, Any]:
        """metrics.json: best and final validation results and whether the phase target was met."""
        p, cfg = self.progress, self.cfg
        best = next((h for h in p.history if h["step"] == p.best_step), None)
        plan = self.sampler.epoch_batches(p.epoch)
        target = cfg.wer_target or None
        return {
            "phase": cfg.phase,
            "method": self.method.name,
            "model": cfg.model if self.method.name == "lora" else "scratch",
            "rank": cfg.rank if self.method.name == "lora" else None,
            "init_from": cfg.init_from or None,
            "metric": cfg.metric,
            "wer_target": target,
            "target_met": None if target is None or best is None else best["wer"] <= target,
            "best": best,
            "final": p.history[-1] if p.history else None,
            "finished": p.finished,
            "stop_reason": p.stop_reason,
            "steps": p.step,
            "total_steps": p.total_steps,
            "epochs": p.epoch + p.batch_in_epoch / max(1, len(plan)),
            "train_audio_hours": p.audio_seconds / 3600.0,
            "train_padding_fraction": 1.0 - p.audio_seconds / p.padded_audio_seconds if p.padded_audio_seconds else 0.0,
            "epoch_plan": plan_summary(plan, self.sampler.epoch_durations(p.epoch)),  # batches, shapes, padding
            "skipped_audio": {"count": p.skipped_audio, "examples": p.skipped_examples},
            "invalid_manifest_rows": self.invalid_rows,
            "skipped_rows": {"train": self.train_skips.to_dict(), "val": self.val_skips.to_dict()},
            "train_utterances": len(self.train_rows),
            "val_utterances": len(self.val_rows),
            "train_data": self.train_summary,
        }

    # ------------------------------------------------------------------------------ main loop
    def _on_sigterm(self, signum: int, frame: Any) -> None:
        _log.warning("SIGTERM: finishing the current step, then saving a checkpoint")
        self.stop_requested = True

    def _log_line(self, stats: StepStats) -> None:
        """The log step's loss (mean over ranks) and grad norm, read from the device only here;
        throughput, padding and loader waiting over the steps since the last line."""
        p, w = self.progress, self.window
        loss = stats.loss
        if self.acc.num_processes > 1:
            loss = self.acc.reduce(loss, "sum") / self.acc.num_processes
        loss_value, grad_norm = float(loss), float(stats.grad_norm)
        elapsed = time.monotonic() - w.started
        rate = w.seconds / max(elapsed, 1e-9)
        padding = 1 - w.seconds / max(w.padded_seconds, 1e-9)
        waiting = w.loader_wait / max(elapsed, 1e-9)
        eta = timedelta(seconds=int(elapsed / max(w.steps, 1) * (p.total_steps - p.step)))
        epoch = p.epoch + p.batch_in_epoch / max(1, self._epoch_batches)
        lr = self.scheduler.get_last_lr()[0]
        _log.info(
            "step %d/%d | epoch %.2f | loss %.4f | lr %.2e | grad_norm %.3f | %.1f audio-s/s | padding %.1f%% | "
            "%d shapes | loader wait %.0f%% | eta %s",
            p.step,
            p.total_steps,
            epoch,
            loss_value,
            lr,
            grad_norm,
            rate,
            100 * padding,
            len(self.shapes_seen),
            100 * waiting,
            eta,
        )
        if self.main:
            for key, value in (
                ("loss", loss_value),
                ("lr", lr),
                ("grad_norm", grad_norm),
                ("audio_seconds_per_second", rate),
                ("padding_fraction", padding),
                ("loader_wait_fraction", waiting),
                ("batch_shapes", len(self.shapes_seen)),
            ):
                self.writer.add_scalar(f"train/{key}", value, p.step)

    def train(self) -> int:
        p = self.progress
        if self.main:
            from torch.utils.tensorboard import SummaryWriter

            self.store.cleanup_stale()
            # purge_step drops events logged after the checkpoint by the run that was interrupted.
            self.writer = SummaryWriter(str(self.store.log_dir(TENSORBOARD_DIR)), purge_step=p.step or None)
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
            if self.main:
                self.writer.close()

    def _train_loop(self) -> int:
        p, cfg = self.progress, self.cfg
        _log.info(
            "training %d steps (%d utterances, %.2f h; %d processes; max %.0f audio-s per batch)",
            p.total_steps,
            len(self.train_rows),
            sum(r["duration"] for r in self.train_rows) / 3600,
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
            plan = self.sampler.epoch_batches(p.epoch)
            usable = len(plan) // cfg.grad_accum * cfg.grad_accum
            self._epoch_batches = usable
            summary = plan_summary(plan[:usable], self.sampler.epoch_durations(p.epoch))
            _log.info(
                "epoch %d: %d batches, %d distinct shapes, %.1f%% padding; %d loader workers",
                p.epoch,
                usable,
                summary["shapes"],
                100 * summary["padding"],
                self.num_workers,
            )
            keys = self._epoch_keys(p.epoch, plan, p.batch_in_epoch, usable)
            batches = iter(self._loader(self.train_set, keys, self.collator))
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
                    self._save(ckpt.step_dir(p.step), use_ema=False, resumable=True)
                    _log.warning("preempted: saved step %d; re-run the same command to resume", p.step)
                    return exit_codes.PREEMPTED
                if stop_reason:
                    if not evaluated:
                        self._record_eval(self.evaluate())
                    return self._finish(stop_reason)
                if p.step % cfg.save_steps == 0:
                    self._save(ckpt.step_dir(p.step), use_ema=False, resumable=True)
            del batches
            p.epoch += 1
            p.batch_in_epoch = 0

    def _finish(self, reason: str) -> int:
        p = self.progress
        p.finished, p.stop_reason = True, reason
        self._save(ckpt.step_dir(p.step), use_ema=False, resumable=True)
        self._write_metrics()
        _log.info(
            "skipped rows: %s; %s; unreadable while training: %d",
            self.train_skips.summary(),
            self.val_skips.summary(),
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

    def _write_metrics(self) -> None:
        if not self.main:
            return
        text = json.dumps(self.metrics(), indent=2, ensure_ascii=False)
        self.store.write_text(ckpt.METRICS_FILE, text)
        if self.store.complete(ckpt.BEST):
            self.store.write_text(f"{ckpt.BEST}/{ckpt.METRICS_FILE}", text)
        self.store.sync_log_dir(TENSORBOARD_DIR)


def run_training(cfg: TrainConfig, method: Method) -> int:
    if not cfg.output:
        raise ConfigError("output: required (local path, PVC path or s3://bucket/prefix)")
    open_store(cfg.output).check_writable()
    with lease.hold(cfg.output):
        return TrainingRun(cfg, method).train()
