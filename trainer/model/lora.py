"""Wav2Vec2ForCTC + LoRA (peft): build for training, attach saved adapters, load them strictly.

The base's convolutional feature encoder is frozen *before* `get_peft_model` (peft freezes the
rest; LoRA steps are ~2x faster when the encoder is out of autograd). The lower
`frozen_layers` transformer layers get no adapters (peft `layers_to_transform`). The CTC head
(`lm_head`) and the config's `modules_to_save` are trained in full and saved with the adapter
(peft `modules_to_save`), so an adapter checkpoint holds everything that differs from the base.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file
from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor

from trainer.config import TrainConfig
from trainer.exit_codes import ConfigError
from trainer.model.artefact import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    HEAD,
    check_adapter,
    check_full_model,
    read_json_object,
)
from trainer.model.conv_lora import CUSTOM_LORA_LAYERS
from trainer.model.processor import build_processor, read_vocab
from trainer.storage import existing_local_dir, materialize, stored_folder

_log = logging.getLogger(__name__)


def training_overrides(cfg: TrainConfig) -> dict[str, Any]:
    """Config values the trainer owns, whatever the base model's config says."""
    return {
        "mask_time_prob": cfg.mask_time_prob,
        "mask_feature_prob": cfg.mask_feature_prob,
        # Two forced masks of 10 frames would hide most of a 0.5 s clip.
        "mask_time_min_masks": 0,
        "mask_feature_min_masks": 0,
        "ctc_loss_reduction": "mean",
        "ctc_zero_infinity": True,  # a label longer than its audio gives inf loss, not NaN weights
        "layerdrop": 0.0,  # skipped layers would leave DDP waiting for their gradients
    }


def _model_path(uri: str) -> str:
    """Local folder for local and s3:// models; hub ids pass through unchanged."""
    return str(stored_folder(uri) or uri)


def load_base_model(model_uri: str, processor: Wav2Vec2Processor, overrides: dict[str, Any]) -> Wav2Vec2ForCTC:
    """The base model with a CTC head for `processor`'s vocabulary.

    The base's own head is kept only when the base was saved with the very same vocabulary (a
    base trained by `pretrain-base`); otherwise a fresh head sized to the vocabulary replaces it.
    """
    path = _model_path(model_uri)
    if Path(path).is_dir():
        check_full_model(Path(path))
    try:
        model = Wav2Vec2ForCTC.from_pretrained(path, **overrides)
    except OSError as exc:
        raise ConfigError(f"model: cannot load '{model_uri}': {exc}") from None
    vocab = processor.tokenizer.get_vocab()
    if Path(path).is_dir() and read_vocab(path) == vocab and model.config.vocab_size == len(vocab):
        return model
    _log.info("new CTC head for a %d-unit vocabulary (base had %d outputs)", len(vocab), model.config.vocab_size)
    head = torch.nn.Linear(model.lm_head.in_features, len(vocab))
    model._init_weights(head)
    model.lm_head = head
    model.config.vocab_size = len(vocab)
    model.config.pad_token_id = processor.tokenizer.pad_token_id
    return model


def lora_config(cfg: TrainConfig, num_layers: int) -> LoraConfig:
    if not 0 <= cfg.frozen_layers < num_layers:
        raise ConfigError(
            f"frozen_layers: {cfg.frozen_layers} leaves no adapted layer in a {num_layers}-layer model "
            f"(use 0..{num_layers - 1})"
        )
    adapted = list(range(cfg.frozen_layers, num_layers))
    config = LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.target_modules),
        layers_to_transform=adapted if cfg.frozen_layers else None,
        layers_pattern="layers" if cfg.frozen_layers else None,
        modules_to_save=[HEAD, *cfg.modules_to_save],
        bias="none",
    )
    config._register_custom_module(CUSTOM_LORA_LAYERS)  # conv LoRA in weight space (conv_lora.py)
    return config


def _absolute(uri: str) -> str:
    folder = existing_local_dir(uri)
    return uri if folder is None else str(folder.resolve())


def build_lora_model(cfg: TrainConfig, vocab_dir: str | Path) -> tuple[PeftModel, Wav2Vec2Processor]:
    """The trainable model for `cfg`: base + fresh head if needed + LoRA adapters."""
    processor = build_processor(vocab_dir)
    model = add_lora(load_base_model(cfg.model, processor, training_overrides(cfg)), cfg)
    # Where the adapter's base lives, as the user named it (s3:// and hub ids stay resolvable).
    model.peft_config["default"].base_model_name_or_path = _absolute(cfg.model)
    return model, processor


def add_lora(base: Wav2Vec2ForCTC, cfg: TrainConfig) -> PeftModel:
    """Freeze the conv feature encoder, then wrap `base` with LoRA adapters as `cfg` says."""
    base.freeze_feature_encoder()  # before get_peft_model: keeps the encoder out of autograd
    config = lora_config(cfg, base.config.num_hidden_layers)
    try:
        return get_peft_model(base, config)
    except ValueError as exc:
        raise ConfigError(f"target_modules: {exc}") from None


def check_compatible(saved: dict[str, Any], current: LoraConfig, source: str) -> None:
    """Refuse adapters whose shape differs from the model's (a silent partial load is worse)."""
    for key in ("r", "target_modules", "layers_to_transform", "modules_to_save"):
        mine = getattr(current, key)
        theirs = saved.get(key)
        if isinstance(mine, (set, list)) or isinstance(theirs, (set, list)):
            mine, theirs = sorted(mine or []), sorted(theirs or [])
        if mine != theirs:
            raise ConfigError(f"{source}: adapter {key}={theirs} does not match this run's {key}={mine}")


# The CTC head travels as a modules_to_save copy. peft's default ("auto") would also look for resized
# embeddings whenever the vocabulary differs from the base's (always so with a new head) and call
# Wav2Vec2's get_input_embeddings, which raises NotImplementedError.
NO_EMBEDDINGS = {"save_embedding_layers": False}


def save_adapter(model: PeftModel, folder: str | Path) -> None:
    """adapter_config.json + adapter_model.safetensors (LoRA weights and the CTC head)."""
    model.save_pretrained(str(folder), **NO_EMBEDDINGS)


def load_adapter_weights(model: PeftModel, folder: str | Path, head: bool = True) -> None:
    """Load adapter + head weights from a checkpoint folder, verifying every tensor arrived;
    `head=False` leaves the model's own (new) CTC head as it is and loads the adapters only.

    Guards against the silent LoRA-resume failures seen with HF Trainer (transformers #24252,
    #35850): the load must set exactly the model's adapter tensors to exactly the saved values.
    """
    folder = Path(folder)
    saved_cfg = read_json_object(folder / ADAPTER_CONFIG)
    check_compatible(saved_cfg, model.peft_config["default"], str(folder))
    weights = load_file(str(folder / ADAPTER_WEIGHTS))
    if not head:  # the model's new head stands in for the saved one (peft loads a head either way)
        own = get_peft_model_state_dict(model, **NO_EMBEDDINGS)
        weights = {k: own[k].detach().clone() if HEAD in k.split(".") and k in own else v for k, v in weights.items()}
    result = set_peft_model_state_dict(model, weights)
    if result.unexpected_keys:
        raise ConfigError(f"{folder}: adapter tensors not in the model: {result.unexpected_keys[:5]}")
    loaded = get_peft_model_state_dict(model, **NO_EMBEDDINGS)
    if set(loaded) != set(weights):
        raise ConfigError(
            f"{folder}: adapter tensors differ from the model's: {sorted(set(loaded) ^ set(weights))[:5]}"
        )
    for name, tensor in weights.items():
        if not torch.equal(loaded[name].cpu(), tensor):
            raise RuntimeError(f"{folder}: adapter tensor {name} did not load")


def load_adapter_checkpoint(uri_or_dir: str | Path) -> tuple[PeftModel, Wav2Vec2Processor]:
    """An adapter checkpoint (local or s3://) on top of its base model, ready for inference."""
    folder = materialize(uri_or_dir)
    check_adapter(folder)
    saved = LoraConfig.from_pretrained(str(folder))
    processor = build_processor(folder)
    base = load_base_model(saved.base_model_name_or_path, processor, {})
    model = get_peft_model(base, saved)
    load_adapter_weights(model, folder)
    model.eval()
    return model, processor
