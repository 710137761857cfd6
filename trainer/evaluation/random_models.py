"""Random-weight models in the layouts evaluation reads, for tests and benchmarks (no pretrained
weights can be downloaded here): a base Wav2Vec2ForCTC folder and a LoRA adapter checkpoint on it,
written exactly as `pretrain-base` and `train` write theirs (processor + text units alongside)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import torch


def write_random_models(
    root: Path,
    texts: Iterable[str],
    rank: int,
    frozen_layers: int,
    lora_std: float,
    unit: str = "syllable",
    **config: Any,
) -> dict[str, str]:
    """Write root/base and root/adapter; returns their paths as {"base": ..., "adapter": ...}.

    `config` goes to `tiny_wav2vec2_config` (hidden_size, num_layers, ...). LoRA B matrices start
    at zero (a no-op adapter), so they are drawn from N(0, lora_std) to make the adapter matter.
    """
    from transformers import Wav2Vec2ForCTC

    from trainer.config import TrainConfig
    from trainer.data.text import build_vocab, save_vocab
    from trainer.model.factory import tiny_wav2vec2_config
    from trainer.model.lora import build_lora_model, save_adapter
    from trainer.model.processor import build_processor, save_processor
    from trainer.storage import open_store

    vocab_dir = root / "vocab"
    save_vocab(build_vocab(texts, unit), vocab_dir, unit)
    processor = build_processor(vocab_dir)
    torch.manual_seed(0)
    Wav2Vec2ForCTC(tiny_wav2vec2_config(vocab_size=len(processor.tokenizer), **config)).save_pretrained(root / "base")
    save_processor(processor, vocab_dir, root / "base")

    cfg = TrainConfig(model=str(root / "base"), rank=rank, frozen_layers=frozen_layers)
    model, processor = build_lora_model(cfg, vocab_dir)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, lora_std)
    store = open_store(root)
    staged = store.staging_dir("adapter")
    save_adapter(model, staged)
    save_processor(processor, vocab_dir, staged)
    store.publish(staged, "adapter")
    return {"base": str(root / "base"), "adapter": str(root / "adapter")}
