"""Check a model artefact's files before any library reads them: each problem is a ConfigError
(exit 78) naming the file, instead of a SafetensorError, JSONDecodeError or size-mismatch traceback
from deep inside transformers or peft, or worse a silent load.

What a folder is (`check_model`):
- adapter checkpoint: adapter_config.json + adapter_model.safetensors (LoRA and the CTC head), its
  base named by base_model_name_or_path (a local folder, s3:// URI or hub id);
- full model: config.json + model.safetensors (a base from `pretrain-base`, a merged export, a
  full-training checkpoint);
- an ONNX export (`check_onnx_export`): EXPORT/onnx/*.onnx below config.json and export_info.json;
- a run folder (checkpoint-*/ inside) or anything else is not a model: the error says what to name.

Each check parses what the loaders will read (JSON files; safetensors headers, which is how a
truncated weights file shows without reading the weights) and that the parts fit: the CTC head has
one row per unit of the folder's vocab.json and takes the base's hidden size. `vocabulary_change`
compares a checkpoint's vocab.json (every checkpoint carries its own) with a run's: the same units
with other ids train a head for another mapping without any error, so ids and size are compared.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal, Optional

from trainer.exit_codes import ConfigError
from trainer.layout import VOCAB_FILE
from trainer.storage import existing_local_dir

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
MODEL_CONFIG = "config.json"
MODEL_WEIGHTS = "model.safetensors"
EXPORT_INFO = "export_info.json"  # written next to a merged model by `trainer export`
HEAD = "lm_head"  # Wav2Vec2ForCTC's CTC head: trained in full and saved with the adapter

Kind = Literal["adapter", "full"]


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in `path`; ConfigError naming the file when it is missing, empty or not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not readable ({exc})") from None
    if not text.strip():
        raise ConfigError(f"{path}: empty")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def tensor_shapes(path: Path) -> dict[str, list[int]]:
    """Tensor name -> shape from a safetensors header; ConfigError naming the file when it is
    missing, truncated or not safetensors (the header must cover the whole file)."""
    from safetensors import safe_open

    if not path.is_file():
        raise ConfigError(f"{path}: missing")
    try:
        with safe_open(str(path), "pt") as handle:
            return {name: list(handle.get_slice(name).get_shape()) for name in handle.keys()}
    except Exception as exc:  # noqa: BLE001 - SafetensorError and OSError: the file is damaged either way
        raise ConfigError(f"{path}: not a complete safetensors file ({' '.join(str(exc).split())})") from None


def read_vocab(folder: Path) -> dict[str, int]:
    """The folder's vocab.json, checked (trainer.model.processor.check_vocab)."""
    from trainer.model.processor import check_vocab

    path = folder / VOCAB_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: missing (every checkpoint and export carries its vocabulary)")
    check_vocab(path)
    return json.loads(path.read_text(encoding="utf-8"))


def _head_shape(shapes: dict[str, list[int]]) -> Optional[list[int]]:
    """The CTC head's weight shape (outputs x hidden size), if the file holds the head."""
    for name, shape in shapes.items():
        parts = name.split(".")
        if HEAD in parts and parts[-1] == "weight":
            return shape
    return None


def _check_head_rows(weights: Path, head: Optional[list[int]], vocab: dict[str, int]) -> None:
    if head is not None and head[0] != len(vocab):
        raise ConfigError(
            f"{weights}: the CTC head has {head[0]} outputs but {weights.parent / VOCAB_FILE} has "
            f"{len(vocab)} units; the checkpoint's files do not belong together"
        )


def check_full_model(folder: Path) -> None:
    """config.json, the weights' headers and (when present) vocab.json parse and fit."""
    config = read_json_object(folder / MODEL_CONFIG)
    shards = sorted(folder.glob("*.safetensors"))
    if not shards and not (folder / "pytorch_model.bin").is_file():
        raise ConfigError(f"{folder / MODEL_WEIGHTS}: missing (a model folder holds its weights)")
    head = None
    for shard in shards:
        head = _head_shape(tensor_shapes(shard)) or head
    if head is not None and config.get("vocab_size") not in (None, head[0]):
        raise ConfigError(
            f"{folder / MODEL_CONFIG}: vocab_size {config['vocab_size']} but the weights' CTC head has {head[0]} outputs"
        )
    if (folder / VOCAB_FILE).is_file():
        _check_head_rows(shards[0] if shards else folder / MODEL_WEIGHTS, head, read_vocab(folder))


def _local_base(adapter_config: Path, base: Any) -> Optional[Path]:
    """The base model's local folder when the adapter names one (None: an s3:// URI or hub id);
    ConfigError when it names a local folder that is not there any more."""
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{adapter_config}: field 'base_model_name_or_path': missing")
    path = existing_local_dir(base)
    if path is not None:
        return path
    if os.path.isabs(base) or base.startswith("."):
        raise ConfigError(
            f"{adapter_config}: base model {base} not found (moved or deleted?); the adapter only works "
            "on the base it was trained on: put it back, or edit base_model_name_or_path"
        )
    return None  # an s3:// URI or a hub id


def check_adapter(folder: Path, with_base: bool = True) -> dict[str, Any]:
    """adapter_config.json, the adapter weights' header, vocab.json and (`with_base`: a warm start
    puts the adapters on the run's own --model instead) the base model parse and fit; returns the
    adapter config."""
    config_path = folder / ADAPTER_CONFIG
    config = read_json_object(config_path)
    weights = folder / ADAPTER_WEIGHTS
    head = _head_shape(tensor_shapes(weights))
    _check_head_rows(weights, head, read_vocab(folder))
    base = _local_base(config_path, config.get("base_model_name_or_path")) if with_base else None
    if base is not None:
        check_full_model(base)
        hidden = read_json_object(base / MODEL_CONFIG).get("hidden_size")
        if head is not None and hidden not in (None, head[1]):
            raise ConfigError(
                f"{weights}: the CTC head takes {head[1]} features but the base {base} has hidden_size {hidden}"
            )
    return config


def check_model(folder: Path, setting: str = "model", with_base: bool = True) -> Kind:
    """What kind of model `folder` holds, once its files are checked (see the module docstring)."""
    if (folder / ADAPTER_CONFIG).is_file():
        check_adapter(folder, with_base)
        return "adapter"
    if (folder / MODEL_CONFIG).is_file():
        check_full_model(folder)
        return "full"
    if not folder.is_dir():
        raise ConfigError(f"{setting}: {folder}: not found")
    checkpoints = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name.startswith("checkpoint-"))
    if checkpoints:
        best = "checkpoint-best" if "checkpoint-best" in checkpoints else checkpoints[-1]
        raise ConfigError(
            f"{setting}: {folder} is a training run's folder, not a model; name one of its checkpoints, e.g. {folder / best}"
        )
    raise ConfigError(f"{setting}: {folder}: not a model folder (no {ADAPTER_CONFIG} or {MODEL_CONFIG})")


def check_onnx_export(folder: Path) -> None:
    """The export folder around an ONNX graph: config.json, export_info.json and vocab.json parse."""
    read_json_object(folder / MODEL_CONFIG)
    read_json_object(folder / EXPORT_INFO)
    read_vocab(folder)


def vocabulary_change(checkpoint: Path, vocab_dir: str | Path) -> Optional[str]:
    """How the checkpoint's vocab.json differs from the run's (`vocab_dir`/vocab.json, a local
    folder or s3://): None when they map the same units to the same ids, else a short description
    for the error line."""
    from trainer.storage import local_folder

    theirs, mine = read_vocab(checkpoint), read_vocab(local_folder(vocab_dir, (VOCAB_FILE,)))
    if theirs == mine:
        return None
    if len(theirs) != len(mine):
        return f"{len(theirs)} units in the checkpoint, {len(mine)} in the run's"
    moved = sorted(unit for unit in mine if theirs.get(unit) != mine[unit])
    return f"same size, {len(moved)} unit(s) with other ids or missing, e.g. {', '.join(map(repr, moved[:3]))}"
