"""Wav2Vec2 CTC models: tiny configs, LoRA building/loading, loading any checkpoint for inference."""

from trainer.model.factory import tiny_wav2vec2_config, xlsr_300m_config
from trainer.model.inference import load_for_inference
from trainer.model.lora import build_lora_model, load_adapter_checkpoint

__all__ = [
    "build_lora_model",
    "load_adapter_checkpoint",
    "load_for_inference",
    "tiny_wav2vec2_config",
    "xlsr_300m_config",
]
