"""The two ways the training loop trains a model, and what the loop asks of each (`Method`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch
from transformers import Wav2Vec2Processor

from trainer.config import TrainConfig
from trainer.model.lora import build_lora_model, load_adapter_weights, save_adapter
from trainer.model.processor import build_processor
from trainer.model.scratch import build_scratch_model, load_full_weights


class Method(Protocol):
    """How the weights are trained: LoRA adapters on a base, or a full model from scratch."""

    name: str
    checkpoint_kind: str  # trainer.model.artefact.Kind of the checkpoints it writes and loads
    init_from_hint: str  # said when --init-from is a checkpoint of the other kind

    def starts_from(self, cfg: TrainConfig) -> str:
        """The model training starts from, as the log line names it."""
        ...

    def describe(self, cfg: TrainConfig) -> dict[str, Any]:
        """metrics.json's `method`, `model` and `rank`."""
        ...

    def build(self, cfg: TrainConfig) -> tuple[torch.nn.Module, Wav2Vec2Processor]: ...

    def load(self, model: torch.nn.Module, folder: Path, head: bool = True) -> None: ...

    def save(self, model: torch.nn.Module, folder: Path) -> None: ...


class LoraMethod:
    """LoRA adapters (+ CTC head) on a frozen base: `python -m trainer train`."""

    name = "lora"
    checkpoint_kind = "adapter"
    init_from_hint = " (a base model goes in --model)"

    def starts_from(self, cfg: TrainConfig) -> str:
        return cfg.model

    def describe(self, cfg: TrainConfig) -> dict[str, Any]:
        return {"method": self.name, "model": cfg.model, "rank": cfg.rank}

    def build(self, cfg: TrainConfig) -> tuple[torch.nn.Module, Wav2Vec2Processor]:
        return build_lora_model(cfg, cfg.vocab)

    def load(self, model: torch.nn.Module, folder: Path, head: bool = True) -> None:
        load_adapter_weights(model, folder, head)

    def save(self, model: torch.nn.Module, folder: Path) -> None:
        save_adapter(model, folder)


class ScratchMethod:
    """Every weight of a tiny randomly initialised model: `python -m trainer pretrain-base`."""

    name = "scratch"
    checkpoint_kind = "full"
    init_from_hint = ""

    def starts_from(self, cfg: TrainConfig) -> str:
        return "from scratch"

    def describe(self, cfg: TrainConfig) -> dict[str, Any]:
        return {"method": self.name, "model": "scratch", "rank": None}  # --model and --rank do not apply

    def build(self, cfg: TrainConfig) -> tuple[torch.nn.Module, Wav2Vec2Processor]:
        processor = build_processor(cfg.vocab)
        return build_scratch_model(cfg, processor), processor

    def load(self, model: torch.nn.Module, folder: Path, head: bool = True) -> None:
        load_full_weights(model, folder, head)

    def save(self, model: torch.nn.Module, folder: Path) -> None:
        model.save_pretrained(str(folder))
