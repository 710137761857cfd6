"""A run's checkpoints in its output: saving them, resuming from the latest, warm-starting from
--init-from. The folder layout, progress record and file I/O are trainer.training.checkpoint's.

Rank 0 writes every checkpoint, staged and published atomically through the output store; all
ranks take part in gathering the RNG states a resumable checkpoint keeps. Resuming takes the
newest complete checkpoint that loads (damaged ones are set aside) and warns when the run's
settings differ from the checkpoint's; a changed vocabulary is a ConfigError. A warm start loads
weights only, from a checkpoint of the run's method whose vocabulary is the run's (or --new-head).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from transformers import Wav2Vec2Processor

from trainer.config import RUNTIME, TrainConfig, fields_with
from trainer.exit_codes import ConfigError
from trainer.layout import VOCAB_FILE
from trainer.model import artefact
from trainer.model.processor import save_processor
from trainer.storage import Store, join
from trainer.training import checkpoint as ckpt
from trainer.training.ema import EMA
from trainer.training.methods import Method

_log = logging.getLogger(__package__)  # the run's one logger, "trainer.training"


@dataclass
class Resumed:
    name: str  # the checkpoint folder
    progress: ckpt.Progress
    rng: Optional[dict[str, Any]]  # this rank's saved random states (None: a rank the run did not have)


class RunCheckpoints:
    """The checkpoints of one run (`store`: its output), written and read for `method`."""

    def __init__(
        self, cfg: TrainConfig, method: Method, store: Store, acc: Accelerator, processor: Wav2Vec2Processor
    ) -> None:
        self.cfg, self.method, self.store, self.acc, self.processor = cfg, method, store, acc, processor

    # ------------------------------------------------------------------------------ saving
    def save_step(
        self,
        model: torch.nn.Module,
        ema: Optional[EMA],
        progress: ckpt.Progress,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
    ) -> None:
        """checkpoint-<step>, resumable: weights as trained, EMA, optimizer, scheduler, every rank's RNG."""
        rng_states = gather_object([ckpt.capture_rng()])
        if not self.acc.is_main_process:
            return
        staged = self._stage(ckpt.step_dir(progress.step), model, ema, False, progress)
        ckpt.save_torch(optimizer.state_dict(), staged / ckpt.OPTIMIZER_FILE)
        ckpt.save_torch(scheduler.state_dict(), staged / ckpt.SCHEDULER_FILE)
        ckpt.save_torch(rng_states, staged / ckpt.RNG_FILE)
        if self.acc.scaler is not None:  # fp16 loss scale
            ckpt.save_torch(self.acc.scaler.state_dict(), staged / ckpt.SCALER_FILE)
        self.store.publish(staged, ckpt.step_dir(progress.step))
        ckpt.prune(self.store, self.cfg.keep_last)

    def save_best(
        self, model: torch.nn.Module, ema: Optional[EMA], progress: ckpt.Progress, metrics: dict[str, Any]
    ) -> None:
        """checkpoint-best: the EMA weights (what is exported) and the run's metrics.json so far.
        Rank 0 only (the other ranks have nothing to add)."""
        staged = self._stage(ckpt.BEST, model, ema, True, progress)
        (staged / ckpt.METRICS_FILE).write_text(json.dumps(metrics, indent=2, ensure_ascii=False))
        self.store.publish(staged, ckpt.BEST)

    def _stage(
        self, name: str, model: torch.nn.Module, ema: Optional[EMA], use_ema: bool, progress: ckpt.Progress
    ) -> Path:
        """A staging folder with what every checkpoint holds: weights, processor, progress, EMA."""
        staged = self.store.staging_dir(name)
        model = self.acc.unwrap_model(model)
        with ema.applied() if use_ema and ema is not None else contextlib.nullcontext():
            self.method.save(model, staged)
        save_processor(self.processor, self.cfg.vocab, staged)
        (staged / ckpt.STATE_FILE).write_text(progress.to_json(), encoding="utf-8")
        if ema is not None:
            ema.save(staged / ckpt.EMA_FILE)
        return staged

    # ------------------------------------------------------------------------------ loading
    def resume(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        ema: Optional[EMA],
        progress: ckpt.Progress,
    ) -> Optional[Resumed]:
        """Load the latest complete checkpoint of this output that loads into the run's state;
        None when there is none. `progress`: the fresh run's (its schedule and settings are kept)."""
        verified = ckpt.set_aside_damaged(self.store) if self.acc.is_main_process else None
        self.acc.wait_for_everyone()
        steps = ckpt.complete_steps(self.store)
        if not steps:
            return None
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
        self.method.load(model, folder)
        optimizer.load_state_dict(verified.read(ckpt.OPTIMIZER_FILE))
        scheduler.load_state_dict(verified.read(ckpt.SCHEDULER_FILE))
        if ema is not None:
            ema.load(folder / ckpt.EMA_FILE)
        if self.acc.scaler is not None and (folder / ckpt.SCALER_FILE).is_file():
            self.acc.scaler.load_state_dict(verified.read(ckpt.SCALER_FILE))
        saved = verified.read(ckpt.STATE_FILE)
        self._warn_config_drift(saved.config)
        saved.config, saved.total_steps = progress.config, progress.total_steps
        if saved.finished and saved.stop_reason != "early_stopping" and saved.step < saved.total_steps:
            saved.finished, saved.stop_reason = False, ""  # a longer schedule continues the run
        rng = verified.read(ckpt.RNG_FILE)
        index = self.acc.process_index
        self.store.release(folder)
        _log.info("resuming from %s/%s at step %d", self.store.uri, name, saved.step)
        return Resumed(name, saved, rng[index] if index < len(rng) else None)

    def warm_start(self, model: torch.nn.Module) -> None:
        """Load --init-from's weights (its head too unless --new-head)."""
        from trainer.storage import materialize

        folder = materialize(self.cfg.init_from)
        self._check_init_from(folder)
        self.method.load(model, folder, head=not self.cfg.new_head)

    def _check_init_from(self, folder: Path) -> None:
        """ConfigError unless `folder` is a checkpoint of this method whose files load and whose
        vocabulary is the run's (or --new-head replaces its head)."""
        kind = artefact.check_model(folder, "init_from", with_base=False)  # the run's --model is the base
        if kind != self.method.checkpoint_kind:
            named = {"adapter": "an adapter checkpoint", "full": "a full model"}
            raise ConfigError(
                f"init_from: {self.cfg.init_from} is {named[kind]}, not {named[self.method.checkpoint_kind]}"
                + self.method.init_from_hint
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
