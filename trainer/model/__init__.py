"""Wav2Vec2 CTC models: tiny configs, LoRA building/loading, loading any checkpoint for inference,
and what apps import to transcribe (`transcriber.CtcTranscriber`, `onnx_runtime.onnx_transcriber`).
The conv front end's geometry is `frontend`'s. Below training, evaluation and the pipeline
(tests/test_layers.py)."""

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
