"""Load any model this project produces for inference, from a local folder, PVC or s3:// URI.

Kinds:
- "adapter": a LoRA checkpoint folder (adapter_config.json); its base is found through
  adapter_config's base_model_name_or_path (local folder, s3:// URI or hub id);
- "merged":  a plain Wav2Vec2ForCTC folder written by `python -m trainer export` (export_info.json);
- "base":    any other plain Wav2Vec2ForCTC folder (e.g. from `pretrain-base`) or hub id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor

from trainer.exit_codes import ConfigError
from trainer.model.artefact import EXPORT_INFO, check_model
from trainer.model.lora import load_adapter_checkpoint
from trainer.model.processor import VOCAB_FILE, build_processor
from trainer.storage import stored_folder

ModelKind = Literal["base", "adapter", "merged"]


def load_for_inference(uri: str | Path) -> tuple[Wav2Vec2ForCTC, Wav2Vec2Processor, ModelKind]:
    """The model at `uri`, its files checked first (trainer.model.artefact: one `error:` line
    naming a damaged or missing file instead of a loader's traceback)."""
    uri = str(uri)
    local = stored_folder(uri)
    if local is not None and check_model(local) == "adapter":
        model, processor = load_adapter_checkpoint(local)
        return model, processor, "adapter"
    source = str(local) if local is not None else uri
    try:
        model = Wav2Vec2ForCTC.from_pretrained(source)
    except OSError as exc:
        raise ConfigError(f"model: cannot load '{uri}': {exc}") from None
    if local is not None and (local / VOCAB_FILE).is_file():
        processor = build_processor(local)
    else:
        processor = Wav2Vec2Processor.from_pretrained(source)
    model.eval()
    kind: ModelKind = "merged" if local is not None and (local / EXPORT_INFO).is_file() else "base"
    return model, processor, kind
