"""Wav2Vec2 configurations built in code: a tiny one for tests, demos and the from-scratch base
model, and the facebook/wav2vec2-xls-r-300m shape for benchmarks (no weights are downloaded)."""

from __future__ import annotations

from typing import Any

from transformers import Wav2Vec2Config

from trainer.model.frontend import CONV_KERNEL, CONV_STRIDE, SCRATCH_CONV_KERNEL, SCRATCH_CONV_STRIDE

# A base trained from scratch (no self-supervised pretraining) leaves CTC's blank-only plateau far
# sooner at 40 ms frames than at 20 ms. Group norm on the first conv layer only (wav2vec2-base
# style) instead of a layer norm after every conv layer, and 32 channels, make a step much cheaper
# on CPU. Five conv layers with larger strides instead of seven reach the same 640x for less CPU
# per step at the same validation CER (figures: BENCHMARKS.md, "The demo chain").
# Jamo labels come at ~0.2-0.6 per 40 ms frame, within what CTC can align.
SCRATCH_FRONT_END: dict[str, Any] = dict(
    conv_kernel=SCRATCH_CONV_KERNEL,
    conv_stride=SCRATCH_CONV_STRIDE,
    conv_channels=32,
    feat_extract_norm="group",
)


def tiny_wav2vec2_config(
    vocab_size: int,
    hidden_size: int = 128,
    num_layers: int = 4,
    num_heads: int = 4,
    intermediate_size: int = 0,
    conv_channels: int = 64,
    conv_kernel: tuple[int, ...] = CONV_KERNEL,
    conv_stride: tuple[int, ...] = CONV_STRIDE,
    feat_extract_norm: str = "layer",
    pad_token_id: int = 0,
    **overrides: Any,
) -> Wav2Vec2Config:
    """A small XLS-R-like (stable layer norm) Wav2Vec2ForCTC config.

    With the defaults (4 layers, width 128) the model has ~0.7M parameters: big enough to learn
    synthetic Korean speech on 2 CPU cores in minutes, small enough for tests.
    """
    settings: dict[str, Any] = dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size or 2 * hidden_size,
        conv_dim=(conv_channels,) * len(conv_kernel),
        conv_kernel=conv_kernel,
        conv_stride=conv_stride,
        conv_bias=True,
        feat_extract_norm=feat_extract_norm,
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=16,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        final_dropout=0.0,
        layerdrop=0.0,
        pad_token_id=pad_token_id,
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
    )
    return Wav2Vec2Config(**{**settings, **overrides})


def xlsr_300m_config(vocab_size: int, pad_token_id: int = 0) -> Wav2Vec2Config:
    """The architecture of facebook/wav2vec2-xls-r-300m (315M parameters) with a CTC head."""
    return Wav2Vec2Config(
        vocab_size=vocab_size,
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        conv_dim=(512,) * len(CONV_KERNEL),
        conv_kernel=CONV_KERNEL,
        conv_stride=CONV_STRIDE,
        conv_bias=True,
        feat_extract_norm="layer",
        feat_extract_activation="gelu",
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=128,
        num_conv_pos_embedding_groups=16,
        layerdrop=0.0,
        pad_token_id=pad_token_id,
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
    )
