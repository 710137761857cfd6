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
<output>/checkpoint-<step>.corrupt/   a complete checkpoint that did not load when resuming
                                (set_aside_damaged), kept for a person to inspect
<output>/metrics.json, <output>/tensorboard/
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from trainer import layout
from trainer.storage import MARKER, Store

STATE_FILE = "trainer_state.json"
EMA_FILE = "ema_state.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
RNG_FILE = "rng_state.pth"
SCALER_FILE = "scaler.pt"  # fp16 only
METRICS_FILE = layout.METRICS_FILE
BEST = layout.CHECKPOINT_BEST
_STEP_DIR = re.compile(r"checkpoint-(\d+)")
DAMAGED_SUFFIX = "corrupt"  # checkpoint-N -> checkpoint-N.corrupt when it does not load
_log = logging.getLogger(__name__)


@dataclass
class Progress:
    """Where a run stands; saved as trainer_state.json under these exact keys."""

    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # this rank's batches consumed in `epoch`
    audio_seconds: float = 0.0  # training audio seen, all ranks
    padded_audio_seconds: float = 0.0  # the same with the batches' padding
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


def complete_steps(store: Store) -> list[int]:
    """Steps of the checkpoints that carry a completion marker, oldest first."""
    steps = [int(m.group(1)) for name in store.list_dirs() if (m := _STEP_DIR.fullmatch(name))]
    return sorted(s for s in steps if store.complete(step_dir(s)))


class DamagedCheckpoint(Exception):
    """A complete (marked) checkpoint folder whose files do not load."""


def _parse(path: Path) -> Any:
    """Read a checkpoint file the way resuming will; raises whatever its reader raises. Returns
    the progress record and the torch files' contents (weights: None, their loaders read them)."""
    if path.name == STATE_FILE:
        return Progress.from_json(path.read_text(encoding="utf-8"))
    if path.suffix == ".json":
        json.loads(path.read_text(encoding="utf-8"))
    elif path.suffix == ".safetensors":
        from safetensors.torch import load_file

        load_file(str(path))
    elif path.suffix in (".pt", ".pth"):
        # On the CPU: load_state_dict moves each state to its parameter's device (a DDP process on
        # CPU has device "cpu:0", which torch.load cannot map to). Our own files (numpy RNG state).
        return torch.load(path, map_location="cpu", weights_only=False)
    return None


@dataclass
class Verified:
    """A checkpoint to resume from: its name, local folder, and what verifying it read (file ->
    contents), so resuming reads no file twice."""

    name: str
    folder: Path
    parsed: dict[str, Any] = field(default_factory=dict)

    def read(self, rel: str) -> Any:
        """The progress record or a torch file's contents; read now if verification did not (DDP
        processes other than the main one). Handed over once: memory is freed as loading goes."""
        return self.parsed.pop(rel) if rel in self.parsed else _parse(self.folder / rel)


def verify(folder: Path) -> dict[str, Any]:
    """DamagedCheckpoint naming the first file that is missing, differs in size from what the
    completion marker recorded, or does not parse; else what was read (see `_parse`), by file."""
    try:
        files = json.loads((folder / MARKER).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DamagedCheckpoint(f"{MARKER}: {exc}") from None
    parsed = {}
    for rel, size in files.items():
        path = folder / rel
        if not path.is_file():
            raise DamagedCheckpoint(f"{rel}: missing")
        if path.stat().st_size != size:
            raise DamagedCheckpoint(f"{rel}: {path.stat().st_size} bytes, {size} when saved")
        try:
            contents = _parse(path)
        except Exception as exc:  # noqa: BLE001 - any reader failure means the file is damaged
            raise DamagedCheckpoint(f"{rel}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None
        if contents is not None:
            parsed[rel] = contents
    return parsed


def set_aside_damaged(store: Store) -> Optional[Verified]:
    """Move complete checkpoints that do not load out of the way (renamed, never deleted), newest
    first, until the newest one that loads; resuming then takes that one. Returns it as verified
    (on S3 its folder is a download the caller loads from, then releases), or None when no
    complete checkpoint is left."""
    for step in reversed(complete_steps(store)):
        name = step_dir(step)
        folder = store.fetch(name)
        try:
            return Verified(name, folder, verify(folder))
        except DamagedCheckpoint as exc:
            store.release(folder)
            aside = store.set_aside(name, DAMAGED_SUFFIX)
            _log.error(
                "%s/%s does not load (%s); moved to %s, trying the next older checkpoint", store.uri, name, exc, aside
            )
    return None


def prune(store: Store, keep_last: int) -> None:
    """Delete all but the newest `keep_last` complete step checkpoints."""
    for step in complete_steps(store)[:-keep_last] if keep_last > 0 else []:
        store.remove(step_dir(step))


def save_torch(obj: Any, path: Path) -> None:
    """torch.save through a Python file: a full disk then raises OSError(ENOSPC), which the CLI
    reports as such, instead of torch's opaque RuntimeError from its own writer."""
    try:
        with open(path, "wb") as handle:
            torch.save(obj, handle)
    except RuntimeError as exc:  # raised by torch's writer while the OSError propagated
        if isinstance(exc.__context__, OSError) and not exc.__context__.filename:
            exc.__context__.filename = str(path)
        raise


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
