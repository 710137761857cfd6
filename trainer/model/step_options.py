"""Optional ways to make the training step cheaper, each behind a TrainConfig flag (off by default
until measured on the GPU: tools/bench/bench_train.py --option NAME measures one against the default).

- attention: transformers' attention implementation (sdpa: PyTorch's fused kernels; eager: matmuls).
  sdpa runs as SDPA_WITH_MASK: transformers' sdpa with the padding mask always built, because
  deciding whether a batch needs one reads the mask back from the device (`padding_mask.all()`,
  a host wait in every forward); with the length ladder nearly every batch has padding anyway.
- bf16_frozen_weights: the frozen base weights stored in bf16 (autocast otherwise casts them from
  fp32 on every forward); adapters, the CTC head and the optimizer state stay fp32.
- frontend_in_compute_dtype: the frozen convolutional feature encoder runs in the compute dtype
  outside autocast, so its LayerNorms do not round-trip 512-channel activations through fp32.
- compile_encoder: `torch.compile` of the transformer encoder, one graph per shape of the length
  ladder (so the recompile limit is raised to the ladder's shapes).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

# Distinct batch shapes an epoch may have (a pad_ladder_step of 0.05 gives ~60 over 0.8-16 s).
MAX_COMPILED_SHAPES = 128
SDPA_WITH_MASK = "sdpa_with_mask"  # registered with transformers below; not saved in model configs


def sdpa_mask_always_built(*args: Any, **kwargs: Any) -> Any:
    return sdpa_mask(*args, **{**kwargs, "allow_is_bidirectional_skip": False})


AttentionInterface.register(SDPA_WITH_MASK, sdpa_attention_forward)
AttentionMaskInterface.register(SDPA_WITH_MASK, sdpa_mask_always_built)


def base_of(model: torch.nn.Module) -> Any:
    """The Wav2Vec2ForCTC inside a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def apply_step_options(model: torch.nn.Module, cfg: Any, bf16: bool) -> list[str]:
    """Apply the options `cfg` turns on to `model` (in place; the dtype ones only when the step
    computes in bf16, and only to frozen weights); a description of each applied."""
    base = base_of(model)
    applied = []
    implementation = SDPA_WITH_MASK if cfg.attention == "sdpa" else cfg.attention
    if base.config._attn_implementation != implementation:
        base.set_attn_implementation(implementation)
        applied.append(f"{cfg.attention} attention")
    if cfg.bf16_frozen_weights and bf16:
        for param in model.parameters():
            if not param.requires_grad and param.is_floating_point():
                param.data = param.data.to(torch.bfloat16)
        applied.append("frozen weights in bf16")
    frontend = base.wav2vec2.feature_extractor
    if cfg.frontend_in_compute_dtype and bf16 and not any(p.requires_grad for p in frontend.parameters()):
        run_in_dtype(frontend, torch.bfloat16)
        applied.append("feature encoder in bf16")
    if cfg.compile_encoder:
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, MAX_COMPILED_SHAPES)
        base.wav2vec2.encoder.compile(dynamic=False)  # in place: parameter names stay as they are
        applied.append("compiled encoder")
    return applied


def run_in_dtype(module: torch.nn.Module, dtype: torch.dtype) -> None:
    """Run a frozen module with its weights and inputs in `dtype` and autocast off."""
    module.to(dtype)
    forward = module.forward

    def forward_in_dtype(inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), torch.autocast(inputs.device.type, enabled=False):
            return forward(inputs.to(dtype))

    module.forward = forward_in_dtype
