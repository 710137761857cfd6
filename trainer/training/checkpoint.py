"""Checkpoint layout, progress record, RNG capture, listing and pruning.

    <output>/checkpoint-<step>/     resumable: weights as trained, EMA, optimizer, scheduler, RNG
        adapter_config.json, adapter_model.safetensors   (LoRA; lm_head included)  or
        config.json, model.safetensors                    (full training)
        preprocessor_config.json, tokenizer files, vocab.json, text_units.json
        trainer_state.json      Progress (step, epoch, data position, best metric, history)
        ema_state.safetensors   EMA of the trainable weights (+ update count)
        optimizer.pt, scheduler.pt, rng_state.pth (one entry per DDP rank), scaler.pt (fp16)
        COMPLETE                written last (see trainer.storage)
    <output>/checkpoint-best/       EMA weights at the best validation score, + metrics.json
    <output>/metrics.json, <output>/tensorboard/
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch

from trainer.storage import LocalStore, S3Store

STATE_FILE = "trainer_state.json"
EMA_FILE = "ema_state.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
RNG_FILE = "rng_state.pth"
SCALER_FILE = "scaler.pt"  # fp16 only
METRICS_FILE = "metrics.json"
BEST = "checkpoint-best"
_STEP_DIR = re.compile(r"checkpoint-(\d+)")


@dataclass
class Progress:
    """Where a run stands; saved as trainer_state.json under these exact keys."""

    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # this rank's batches consumed in `epoch`
    audio_seconds: float = 0.0  # training audio seen, all ranks
    best_metric: Optional[float] = None
    best_step: int = 0
    evals_since_best: int = 0
    skipped_audio: int = 0
    skipped_examples: list[dict[str, str]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per evaluation
    finished: bool = False
    stop_reason: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Progress":
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def step_dir(step: int) -> str:
    return f"checkpoint-{step}"


def complete_steps(store: LocalStore | S3Store) -> list[int]:
    """Steps of the checkpoints that carry a completion marker, oldest first."""
    steps = [int(m.group(1)) for name in store.list_dirs() if (m := _STEP_DIR.fullmatch(name))]
    return sorted(s for s in steps if store.complete(step_dir(s)))


def prune(store: LocalStore | S3Store, keep_last: int) -> None:
    """Delete all but the newest `keep_last` complete step checkpoints."""
    for step in complete_steps(store)[:-keep_last] if keep_last > 0 else []:
        store.remove(step_dir(step))


def capture_rng() -> dict[str, Any]:
    """This process's random states (python, numpy - SpecAugment draws from it -, torch), as
    plain picklable values so they can be gathered from every DDP rank."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, keys.tobytes(), pos, has_gauss, cached),
        "torch": torch.get_rng_state().numpy().tobytes(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state().numpy().tobytes()
    return state


def _byte_tensor(data: bytes) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(data, dtype=np.uint8).copy())


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.frombuffer(keys, dtype=np.uint32).copy(), pos, has_gauss, cached))
    torch.set_rng_state(_byte_tensor(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(_byte_tensor(state["cuda"]))
