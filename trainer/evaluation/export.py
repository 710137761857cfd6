"""`python -m trainer export`: fold a LoRA adapter into its base for deployment.

`merge_and_unload` adds the low-rank updates into the base weights and puts the trained CTC head
in place, leaving a plain `Wav2Vec2ForCTC`: no peft at inference time and no adapter overhead
(the seed measured unmerged adapters at 96-98% of the base's speed). The folder is a standard
transformers model + processor, so

    transformers.pipeline("automatic-speech-recognition", model=DIR)

loads and runs it. Models trained on jamo or phone units (`export_info.json` "unit") emit jamo
from the pipeline as from any CTC decoder; `trainer.data.text.from_units(text, unit)` composes them
into syllables (phones: as pronounced). `export_info.json` also records the source adapter and its rank for reports.
"""

from __future__ import annotations

import json
import logging
import shutil

from trainer import storage
from trainer.exit_codes import ConfigError

_log = logging.getLogger(__name__)


def export_merged(adapter_uri: str, output: str) -> str:
    """Merge the adapter checkpoint at `adapter_uri` into its base and save it at `output`
    (local, PVC or s3://; published atomically with a completion marker)."""
    from trainer.data.text import load_unit
    from trainer.evaluation.evaluate import split_parent
    from trainer.model.inference import EXPORT_INFO
    from trainer.model import load_for_inference
    from trainer.model.processor import UNITS_FILE

    model, processor, kind = load_for_inference(adapter_uri)
    if kind != "adapter":
        raise ConfigError(f"adapter: {adapter_uri} is a {kind} model, not a LoRA adapter checkpoint")
    source = storage.materialize(adapter_uri)
    lora = model.peft_config["default"]
    adapter_params = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n or ".modules_to_save." in n)
    merged = model.merge_and_unload()

    parent, name = split_parent(output)
    store = storage.open_store(parent)
    staged = store.staging_dir(name)
    merged.save_pretrained(str(staged))
    processor.save_pretrained(str(staged))
    shutil.copyfile(source / UNITS_FILE, staged / UNITS_FILE)
    info = {
        "source_adapter": adapter_uri,
        "base_model": lora.base_model_name_or_path,
        "r": lora.r,
        "lora_alpha": lora.lora_alpha,
        "target_modules": lora.target_modules if isinstance(lora.target_modules, str) else sorted(lora.target_modules),
        "adapter_params": adapter_params,
        "unit": load_unit(source),
    }
    (staged / EXPORT_INFO).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    store.publish(staged, name)
    _log.info("merged %s (r=%d) into %s -> %s", adapter_uri, lora.r, lora.base_model_name_or_path, output)
    return output

