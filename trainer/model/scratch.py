"""Full training of a tiny Wav2Vec2ForCTC from random weights: the stand-in for a pretrained
XLS-R where no weights can be downloaded (`python -m trainer pretrain-base`)."""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file
from transformers import Wav2Vec2Config, Wav2Vec2ForCTC, Wav2Vec2Processor

from trainer.config import TrainConfig
from trainer.exit_codes import ConfigError
from trainer.model.artefact import HEAD, MODEL_WEIGHTS
from trainer.model.factory import SCRATCH_FRONT_END, tiny_wav2vec2_config
from trainer.model.lora import training_overrides


def scratch_config(cfg: TrainConfig, processor: Wav2Vec2Processor) -> Wav2Vec2Config:
    """The architecture `pretrain-base` trains (also part of the base's cache key)."""
    return tiny_wav2vec2_config(
        vocab_size=len(processor.tokenizer),
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        num_heads=max(1, cfg.hidden_size // 32),
        pad_token_id=processor.tokenizer.pad_token_id,
        **SCRATCH_FRONT_END,
        **training_overrides(cfg),
    )


def build_scratch_model(cfg: TrainConfig, processor: Wav2Vec2Processor) -> Wav2Vec2ForCTC:
    return Wav2Vec2ForCTC(scratch_config(cfg, processor))


def load_full_weights(model: Wav2Vec2ForCTC, folder: str | Path, head: bool = True) -> None:
    """Load every weight saved by `save_pretrained` into `model`, refusing partial matches;
    `head=False` keeps the model's own (new) CTC head."""
    weights = {
        k: v for k, v in load_file(str(Path(folder) / MODEL_WEIGHTS)).items() if head or HEAD not in k.split(".")
    }
    result = model.load_state_dict(weights, strict=head)
    missing = [k for k in result.missing_keys if HEAD not in k.split(".")]
    if missing or result.unexpected_keys:
        raise ConfigError(f"{folder}: weights do not match the model: {(missing + result.unexpected_keys)[:5]}")
