"""The two ways the training loop trains a model (see loop.Method)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import Wav2Vec2Processor

from trainer.config import TrainConfig
from trainer.model.lora import build_lora_model, load_adapter_weights, save_adapter
from trainer.model.processor import build_processor
from trainer.model.scratch import build_scratch_model, load_full_weights


class LoraMethod:
    """LoRA adapters (+ CTC head) on a frozen base: `python -m trainer train`."""

    name = "lora"
    checkpoint_kind = "adapter"  # what its checkpoints are (trainer.model.artefact)

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

    def build(self, cfg: TrainConfig) -> tuple[torch.nn.Module, Wav2Vec2Processor]:
        processor = build_processor(cfg.vocab)
        return build_scratch_model(cfg, processor), processor

    def load(self, model: torch.nn.Module, folder: Path, head: bool = True) -> None:
        load_full_weights(model, folder, head)

    def save(self, model: torch.nn.Module, folder: Path) -> None:
        model.save_pretrained(str(folder))
