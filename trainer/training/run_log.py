"""What a training run reports: log lines, TensorBoard scalars and text, and metrics.json.

Every `log_steps` a plain line (kubectl logs want plain lines): the step's loss and grad norm,
throughput, padding and loader waiting over the steps since the last line; every evaluation a
line, and a warning when CTC's blank-only plateau outlasts the warmup. Rank 0 speaks for all (the
other ranks log warnings only) and alone writes TensorBoard events under `<output>/tensorboard`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

from trainer.config import TrainConfig
from trainer.storage import Store
from trainer.training.checkpoint import BEST, METRICS_FILE, Progress
from trainer.training.methods import Method
from trainer.training.run_data import RunData
from trainer.training.sampler import plan_summary

_log = logging.getLogger(__package__)  # the run's one logger, "trainer.training"
TENSORBOARD_DIR = "tensorboard"
# Share of empty validation hypotheses after warmup that is reported as CTC's blank-only plateau.
BLANK_PLATEAU = 0.95


@dataclass
class StepStats:
    loss: torch.Tensor  # on the device, this rank's; read only when logged
    grad_norm: torch.Tensor
    seconds: float  # real audio, all ranks
    padded_seconds: float
    stop_requested: bool


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


class RunLog:
    """Log lines and, on rank 0 (`main`), TensorBoard events of one run."""

    def __init__(self, store: Store, main: bool) -> None:
        self.store, self.main = store, main
        if not main:  # one copy of each log line is enough (rank 0 speaks for all)
            _log.setLevel(logging.WARNING)

    def open(self, step: int) -> None:
        if self.main:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events logged after the checkpoint by the run that was interrupted.
            self.writer = SummaryWriter(str(self.store.log_dir(TENSORBOARD_DIR)), purge_step=step or None)

    def close(self) -> None:
        if self.main:
            self.writer.close()

    def flush(self) -> None:
        """Events so far written and, for a remote output, copied there (with each checkpoint)."""
        self.writer.flush()
        self.store.sync_log_dir(TENSORBOARD_DIR)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        """metrics.json in the output and, once there is one, in checkpoint-best (rank 0)."""
        text = json.dumps(metrics, indent=2, ensure_ascii=False)
        self.store.write_text(METRICS_FILE, text)
        if self.store.complete(BEST):
            self.store.write_text(f"{BEST}/{METRICS_FILE}", text)
        self.store.sync_log_dir(TENSORBOARD_DIR)

    def step(
        self,
        p: Progress,
        window: Window,
        loss: float,
        grad_norm: float,
        lr: float,
        epoch_batches: int,
        shapes: int,
    ) -> None:
        """The log line of step `p.step` (loss and grad norm its own; the rest over `window`)."""
        elapsed = time.monotonic() - window.started
        rate = window.seconds / max(elapsed, 1e-9)
        padding = 1 - window.seconds / max(window.padded_seconds, 1e-9)
        waiting = window.loader_wait / max(elapsed, 1e-9)
        eta = timedelta(seconds=int(elapsed / max(window.steps, 1) * (p.total_steps - p.step)))
        epoch = p.epoch + p.batch_in_epoch / max(1, epoch_batches)
        _log.info(
            "step %d/%d | epoch %.2f | loss %.4f | lr %.2e | grad_norm %.3f | %.1f audio-s/s | padding %.1f%% | "
            "%d shapes | loader wait %.0f%% | eta %s",
            p.step,
            p.total_steps,
            epoch,
            loss,
            lr,
            grad_norm,
            rate,
            100 * padding,
            shapes,
            100 * waiting,
            eta,
        )
        if self.main:
            for key, value in (
                ("loss", loss),
                ("lr", lr),
                ("grad_norm", grad_norm),
                ("audio_seconds_per_second", rate),
                ("padding_fraction", padding),
                ("loader_wait_fraction", waiting),
                ("batch_shapes", shapes),
            ):
                self.writer.add_scalar(f"train/{key}", value, p.step)

    def evaluation(self, result: dict[str, Any], step: int, after_warmup: bool, vocab_size: int) -> None:
        """The line, scalars and decoded examples of a validation (trainer.training.validation)."""
        _log.info(
            "eval step %d | cer %.4f | wer %.4f | loss %.4f | %d utterances, %.0f%% empty hypotheses",
            step,
            result["cer"],
            result["wer"],
            result["loss"],
            result["utterances"],
            100 * result["empty_fraction"],
        )
        if result["empty_fraction"] >= BLANK_PLATEAU and after_warmup:
            _log.warning(
                "blank-only output: %.0f%% of validation hypotheses are empty at step %d, after warmup. CTC "
                "heads start there; a new head for a %d-unit vocabulary leaves it sooner with a higher "
                "--head-learning-rate (3-10x --learning-rate) or a jamo vocabulary (data prepare --unit jamo).",
                100 * result["empty_fraction"],
                step,
                vocab_size,
            )
        if self.main:
            for key in ("cer", "wer", "loss", "empty_fraction"):
                self.writer.add_scalar(f"eval/{key}", result[key], step)
            table = "\n".join(f"| {e['ref']} | {e['hyp']} |" for e in result["examples"])
            self.writer.add_text("eval/decoded", "| reference | hypothesis |\n|---|---|\n" + table, step)


def run_metrics(cfg: TrainConfig, method: Method, p: Progress, data: RunData) -> dict[str, Any]:
    """metrics.json: best and final validation results and whether the phase target was met."""
    best = next((h for h in p.history if h["step"] == p.best_step), None)
    plan = data.sampler.epoch_batches(p.epoch)
    target = cfg.wer_target or None
    return {
        "phase": cfg.phase,
        **method.describe(cfg),  # method, model, rank
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
        "epoch_plan": plan_summary(plan, data.sampler.epoch_durations(p.epoch)),  # batches, shapes, padding
        "skipped_audio": {"count": p.skipped_audio, "examples": p.skipped_examples},
        "invalid_manifest_rows": data.invalid_rows,
        "skipped_rows": {"train": data.train_skips.to_dict(), "val": data.val_skips.to_dict()},
        "train_utterances": len(data.train_rows),
        "val_utterances": len(data.val_rows),
        "train_data": data.train_summary,
    }
