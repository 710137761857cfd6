"""`python -m trainer export`: fold a LoRA adapter into its base for deployment, as PyTorch and/or
ONNX, with a model card.

`merge_and_unload` adds the low-rank updates into the base weights and puts the trained CTC head
in place, leaving a plain `Wav2Vec2ForCTC`: no peft at inference time and no adapter overhead.
The output folder follows the Hugging Face / Optimum layout, one folder for every format asked
for (`--format`):

    config.json, processor files, text_units.json, export_info.json, README.md   always
    model.safetensors             hf:        transformers.pipeline("automatic-speech-recognition", model=DIR)
    onnx/model.onnx               onnx:      fp32 graph (trainer.model.onnx_runtime runs it)
    onnx/model_quantized.onnx     onnx-int8: int8 (static convolutions, dynamic MatMuls)

The ONNX graphs come from the TorchScript exporter (`dynamo=False`): it traces wav2vec2 with
dynamic batch and sample axes and an attention mask in one pass, with eager attention (SDPA's
traced form masks twice in every layer). Weight norm of the positional convolution is folded
into a plain weight first, so the graph holds a constant the quantiser can see. int8
(trainer.evaluation.quantize): convolutions after the waveform one static (QLinearConv, uint8
activations calibrated on synthetic speech), MatMuls dynamic, int8 weights per output channel:
with MatMuls alone quantised the convolutions dominated the int8 graph's time; dynamic
convolutions (ConvInteger), static MatMuls and the QDQ format each ran slower, and quantising the
waveform convolution as well cost accuracy. The speed-up rests on int8 dot products (e.g.
AVX512-VNNI). onnxruntime's worker threads spin between ops unless OMP_WAIT_POLICY=PASSIVE, as
PyTorch's do. Sizes, speeds, CERs and profiles (tools/bench/bench_export.py): BENCHMARKS.md.

Models trained on jamo or phone units (`export_info.json` "unit") emit jamo from the pipeline as
from any CTC decoder; `trainer.data.text.from_units(text, unit)` composes them into syllables
(phones: as pronounced).
`export_info.json` records the source adapter, its rank and parameter counts for reports.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from trainer import storage
from trainer.exit_codes import ConfigError
from trainer.model.onnx_runtime import EXPORT_FORMATS, INPUT_NAMES, ONNX_DIR, ONNX_FILES, OUTPUT_NAMES

ONNX_OPSET = 17
_log = logging.getLogger(__name__)


def export_merged(
    adapter_uri: str,
    output: str,
    formats: Sequence[str] = ("hf",),
    test_report: Optional[str] = None,
    license: str = "other",
    calibration_manifest: Optional[str] = None,
) -> str:
    """Merge the adapter checkpoint at `adapter_uri` into its base and save it at `output` in
        `formats` (local, PVC or s3://; published atomically with a completion marker). `test_report`:
        an `evaluate` output folder whose metrics go into the model card. `calibration_manifest`: the
    recordings whose activation ranges calibrate onnx-int8's convolutions (trainer.evaluation.quantize)."""
    from trainer.data.text import load_unit
    from trainer.evaluation.evaluate import read_report
    from trainer.evaluation.model_card import CARD_FILE, render_model_card
    from trainer.evaluation.quantize import calibration_audio
    from trainer.layout import METRICS_FILE
    from trainer.model import load_for_inference
    from trainer.model.inference import EXPORT_INFO
    from trainer.model.processor import UNITS_FILE

    unknown = sorted(set(formats) - set(EXPORT_FORMATS))
    if unknown or not formats:
        raise ConfigError(
            f"format: expected one or more of {', '.join(EXPORT_FORMATS)}, got {', '.join(unknown) or 'none'}"
        )
    # Before the merge: a missing espeak-ng or an unreadable manifest stops the export at once.
    calibration = calibration_audio(calibration_manifest) if "onnx-int8" in formats else []
    test = read_report(test_report) if test_report else None
    if test_report and test is None:
        raise ConfigError(f"test_report: {test_report} holds no finished evaluation (metrics.json)")
    model, processor, kind = load_for_inference(adapter_uri)
    if kind != "adapter":
        raise ConfigError(f"adapter: {adapter_uri} is a {kind} model, not a LoRA adapter checkpoint")
    source = storage.materialize(adapter_uri)
    lora = model.peft_config["default"]
    adapter_params = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n or ".modules_to_save." in n)
    merged = model.merge_and_unload().eval()

    parent, name = storage.split_uri(output)
    store = storage.open_store(parent)
    staged = store.staging_dir(name)
    if "hf" in formats:
        merged.save_pretrained(str(staged))
    else:
        merged.config.save_pretrained(str(staged))
    processor.save_pretrained(str(staged))
    shutil.copyfile(source / UNITS_FILE, staged / UNITS_FILE)
    if "onnx" in formats or "onnx-int8" in formats:
        export_onnx(merged, staged, calibration, keep_fp32="onnx" in formats, processor=processor)
    info = {
        "source_adapter": adapter_uri,
        "base_model": lora.base_model_name_or_path,
        "r": lora.r,
        "lora_alpha": lora.lora_alpha,
        "target_modules": lora.target_modules if isinstance(lora.target_modules, str) else sorted(lora.target_modules),
        "adapter_params": adapter_params,
        "total_params": sum(p.numel() for p in merged.parameters()),
        "unit": load_unit(source),
        "formats": [f for f in EXPORT_FORMATS if f in formats],
        "int8_calibration": (calibration_manifest or "synthetic voices") if calibration else None,
        "name": name,
    }
    (staged / EXPORT_INFO).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    training_file = source / METRICS_FILE
    training = json.loads(training_file.read_text(encoding="utf-8")) if training_file.is_file() else None
    (staged / CARD_FILE).write_text(render_model_card(info, training, test, license), encoding="utf-8")
    store.publish(staged, name)
    _log.info(
        "merged %s (r=%d) into %s -> %s (%s)",
        adapter_uri,
        lora.r,
        lora.base_model_name_or_path,
        output,
        ", ".join(info["formats"]),
    )
    return output


class _LogitsAndLengths(torch.nn.Module):
    """The graph's outputs: logits and the number of valid frames per utterance, so an app needs
    no knowledge of the convolutional front end."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(input_values=input_values, attention_mask=attention_mask).logits
        return logits, self.model._get_feat_extract_output_lengths(attention_mask.sum(-1))


def export_onnx(
    model: torch.nn.Module, folder: Path, calibration: list[np.ndarray], keep_fp32: bool, processor
) -> None:
    """Write folder/onnx/model.onnx (when `keep_fp32`) and model_quantized.onnx (when given
    `calibration` audio, normalised by `processor`'s feature extractor)."""
    from torch.nn.utils import parametrize

    from trainer.evaluation.quantize import quantize_int8

    for module in model.modules():
        if parametrize.is_parametrized(module):
            for tensor_name in list(module.parametrizations):
                parametrize.remove_parametrizations(module, tensor_name, leave_parametrized=True)
    # Eager attention traces to one additive mask for all layers; SDPA's traced form selects with
    # the boolean mask twice in every layer (Where: 9-18% of the int8 graph's time in onnxruntime's profile).
    model.set_attn_implementation("eager")
    (folder / ONNX_DIR).mkdir(exist_ok=True)
    fp32 = folder / ONNX_DIR / ONNX_FILES["onnx"]
    with warnings.catch_warnings():
        # Tracing notes Python branches on shapes (all independent of the input here) and warns
        # that negative indices would break advanced indexing (the graph uses none); the tests
        # check batches of other sizes and lengths against PyTorch.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")
        _trace(model, fp32)
    if calibration:
        quantize_int8(fp32, folder / ONNX_DIR / ONNX_FILES["onnx-int8"], processor.feature_extractor, calibration)
    if not keep_fp32:
        fp32.unlink()


def _trace(model: torch.nn.Module, path: Path) -> None:
    """The TorchScript exporter: one trace, batch and time axes dynamic, opset 17."""
    example = (torch.zeros(2, 16000), torch.ones(2, 16000, dtype=torch.long))
    torch.onnx.export(
        _LogitsAndLengths(model),
        example,
        str(path),
        input_names=list(INPUT_NAMES),
        output_names=list(OUTPUT_NAMES),
        dynamic_axes={
            "input_values": {0: "batch", 1: "samples"},
            "attention_mask": {0: "batch", 1: "samples"},
            "logits": {0: "batch", 1: "frames"},
            "logit_lengths": {0: "batch"},
        },
        opset_version=ONNX_OPSET,
        dynamo=False,
    )
