"""Model building: LoRA placement, CTC head reuse, SpecAugment on short clips, fp32 CTC under
bf16 autocast, strict adapter loading, EMA swapping."""

from __future__ import annotations

import functools
import json
import shutil

import numpy as np
import pytest
import torch
from peft.tuners.lora.layer import Conv1d as PeftLoraConv1d
from safetensors.torch import load_file, save_file
from transformers import Wav2Vec2ForCTC

from trainer.config import TrainConfig
from trainer.exit_codes import ConfigError
from trainer.model.conv_lora import WeightSpaceLoraConv1d
from trainer.model.frontend import min_samples_for_frames
from trainer.model.lora import build_lora_model, load_adapter_checkpoint, load_adapter_weights, save_adapter
from trainer.training.dataset import CTCCollator
from trainer.training.ema import EMA


def lora_cfg(smoke_data, **kw) -> TrainConfig:
    settings = {"model": str(smoke_data / "base"), "vocab": str(smoke_data / "prepared"), "rank": 4, "frozen_layers": 1}
    return TrainConfig(**{**settings, **kw})


def test_adapters_only_above_the_frozen_layers_and_head_trained(smoke_data):
    model, _ = build_lora_model(lora_cfg(smoke_data), smoke_data / "prepared")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(".layers.1.attention.q_proj.lora_A" in n for n in trainable)
    assert not any(".layers.0." in n for n in trainable)
    assert any("lm_head.modules_to_save" in n for n in trainable)
    assert not any("feature_extractor" in n for n in trainable)


def test_frozen_layers_must_leave_a_layer_to_adapt(smoke_data):
    with pytest.raises(ConfigError, match="frozen_layers"):
        build_lora_model(lora_cfg(smoke_data, frozen_layers=2), smoke_data / "prepared")


def test_base_head_kept_for_same_vocab_and_replaced_for_another(smoke_data, tmp_path):
    base = Wav2Vec2ForCTC.from_pretrained(smoke_data / "base")
    model, _ = build_lora_model(lora_cfg(smoke_data), smoke_data / "prepared")
    head = model.base_model.model.lm_head.original_module
    assert torch.equal(head.weight, base.lm_head.weight)

    other = tmp_path / "vocab"
    shutil.copytree(smoke_data / "prepared", other, ignore=shutil.ignore_patterns("*.jsonl", "curriculum"))
    vocab = json.loads((other / "vocab.json").read_text())
    vocab["X"] = len(vocab)
    (other / "vocab.json").write_text(json.dumps(vocab))
    model, processor = build_lora_model(lora_cfg(smoke_data, vocab=str(other)), other)
    assert model.base_model.model.lm_head.original_module.out_features == len(vocab) == len(processor.tokenizer)


def test_spec_augment_on_clips_shorter_than_a_mask(smoke_data):
    model, processor = build_lora_model(lora_cfg(smoke_data, mask_time_prob=0.9), smoke_data / "prepared")
    model.train()
    clips = [
        {
            "utt_id": str(i),
            "audio": np.random.default_rng(i).normal(0, 0.1, 1600).astype(np.float32),
            "labels": [5, 6],
            "text": "가",
        }
        for i in range(2)
    ]  # 0.1 s: 4 frames < mask length 10
    with pytest.raises(ValueError):  # what transformers does without the collator's padding
        model(
            **{
                k: v
                for k, v in CTCCollator(processor.feature_extractor)(clips).items()
                if k in ("input_values", "attention_mask", "labels")
            }
        )
    collator = CTCCollator(
        processor.feature_extractor, min_samples_for_frames(model.config, model.config.mask_time_length + 1)
    )
    batch = collator(clips)
    loss = model(
        input_values=batch["input_values"], attention_mask=batch["attention_mask"], labels=batch["labels"]
    ).loss
    assert torch.isfinite(loss)


def test_ctc_loss_is_fp32_under_bf16_autocast(smoke_data):
    model, processor = build_lora_model(lora_cfg(smoke_data), smoke_data / "prepared")
    audio = [np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)]
    inputs = processor.feature_extractor(audio, sampling_rate=16000, return_tensors="pt")
    labels = torch.tensor([[5, 6, 7, 2, 8]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(input_values=inputs.input_values, labels=labels)
    assert out.logits.dtype == torch.bfloat16 and out.loss.dtype == torch.float32 and torch.isfinite(out.loss)


def test_adapter_load_refuses_missing_tensors(smoke_data, tmp_path):
    model, _ = build_lora_model(lora_cfg(smoke_data), smoke_data / "prepared")
    model.save_pretrained(tmp_path)
    load_adapter_weights(model, tmp_path)  # the complete file loads
    weights = load_file(str(tmp_path / "adapter_model.safetensors"))
    weights.pop(next(k for k in weights if "lora_B" in k))
    save_file(weights, str(tmp_path / "adapter_model.safetensors"))
    with pytest.raises(ConfigError, match="differ"):
        load_adapter_weights(model, tmp_path)


def test_ema_tracks_and_swaps_weights(smoke_data, tmp_path):
    model, _ = build_lora_model(lora_cfg(smoke_data), smoke_data / "prepared")
    ema = EMA(model, decay=0.5)
    param = next(p for n, p in model.named_parameters() if "lora_B" in n)
    with torch.no_grad():
        param.fill_(1.0)
    ema.update()  # warm-up decay min(0.5, 2/11): shadow = 0 + (1 - 2/11) * 1
    with ema.applied():
        assert torch.allclose(param, torch.full_like(param, 9 / 11))
    assert torch.equal(param, torch.ones_like(param))
    ema.save(tmp_path / "ema.safetensors")
    restored = EMA(model, decay=0.5)
    restored.load(tmp_path / "ema.safetensors")
    assert restored.updates == 1 and all(torch.equal(restored.shadow[k], ema.shadow[k]) for k in ema.shadow)


def test_gradient_checkpointing_keeps_adapter_gradients(smoke_data):
    from trainer.training.loop import enable_gradient_checkpointing

    model, processor = build_lora_model(lora_cfg(smoke_data), smoke_data / "prepared")
    enable_gradient_checkpointing(model)
    model.train()
    inputs = processor.feature_extractor([np.zeros(16000, dtype=np.float32)], sampling_rate=16000, return_tensors="pt")
    model(input_values=inputs.input_values, labels=torch.tensor([[5, 6, 7]])).loss.backward()
    lora = [p for n, p in model.named_parameters() if "lora_B" in n]  # lora_A gets 0 while B is 0
    assert lora and all(p.grad is not None and p.grad.abs().sum() > 0 for p in lora)


def test_modules_to_save_train_in_full_round_trip_and_merge(smoke_data, tmp_path):
    conv = "conv_layers.0.conv"
    model, _ = build_lora_model(lora_cfg(smoke_data, modules_to_save=[conv]), smoke_data / "prepared")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(f"{conv}.modules_to_save" in n for n in trainable)
    copy = model.base_model.model.wav2vec2.feature_extractor.conv_layers[0].conv.modules_to_save["default"]
    with torch.no_grad():
        copy.weight.add_(0.5)  # stands in for training
    save_adapter(model, tmp_path)
    shutil.copy(smoke_data / "prepared" / "vocab.json", tmp_path)

    reloaded, _ = load_adapter_checkpoint(tmp_path)
    merged = reloaded.merge_and_unload()
    assert torch.equal(merged.wav2vec2.feature_extractor.conv_layers[0].conv.weight, copy.weight)

    other, _ = build_lora_model(lora_cfg(smoke_data), smoke_data / "prepared")
    with pytest.raises(ConfigError, match="modules_to_save"):
        load_adapter_weights(other, tmp_path)


def test_conv_lora_in_weight_space_matches_peft_and_reloads_as_plain_peft(smoke_data, tmp_path):
    convs = ["conv_layers.0.conv", "conv_layers.1.conv", "pos_conv_embed.conv"]
    model, _ = build_lora_model(
        lora_cfg(smoke_data, rank=16, frozen_layers=0, lora_dropout=0.0, target_modules=["q_proj", *convs]),
        smoke_data / "prepared",
    )
    layer = model.base_model.model.wav2vec2.feature_extractor.conv_layers[1].conv
    assert isinstance(layer, WeightSpaceLoraConv1d) and layer._weight_space_adapters() == ["default"]
    torch.manual_seed(0)
    with torch.no_grad():  # B starts at zero: give the adapters a delta to compute
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.1)
    audio = torch.randn(2, 4000)
    model.eval()  # no SpecAugment: both passes see the same input

    def logits_and_grads(module):
        module.zero_grad()
        out = module(input_values=audio).logits
        out.square().sum().backward()
        grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.requires_grad and "conv" in n}
        return out.detach(), grads

    weight_space, weight_space_grads = logits_and_grads(model)
    for module in model.modules():  # the same weights through peft's own activation-space forward
        if isinstance(module, WeightSpaceLoraConv1d):
            module.forward = functools.partial(PeftLoraConv1d.forward, module)
    plain, plain_grads = logits_and_grads(model)
    assert torch.allclose(weight_space, plain, atol=1e-5)
    assert weight_space_grads.keys() == plain_grads.keys() and len(plain_grads) == 6
    for name, grad in plain_grads.items():
        assert grad.abs().max() > 0 and torch.allclose(weight_space_grads[name], grad, atol=1e-4, rtol=1e-4), name

    save_adapter(model, tmp_path)
    shutil.copy(smoke_data / "prepared" / "vocab.json", tmp_path)
    reloaded, _ = load_adapter_checkpoint(tmp_path)
    reloaded.eval()
    assert torch.allclose(reloaded(input_values=audio).logits, plain, atol=1e-5)
