"""Run an ONNX export of a model (`python -m trainer export --format onnx|onnx-int8`) with
onnxruntime: the graph needs no PyTorch model and no peft.

An export folder follows the Hugging Face / Optimum layout: config.json, the processor files
(vocab.json, ...), text_units.json and README.md at the top, and

    onnx/model.onnx             fp32 graph                  (--format onnx)
    onnx/model_quantized.onnx   int8                        (--format onnx-int8)

Each graph takes `input_values` (float32, batch x samples, normalised by the feature extractor)
and `attention_mask` (int64, batch x samples) and returns `logits` (batch x frames x vocabulary)
and `logit_lengths` (int64, valid frames per utterance): both axes of every tensor are dynamic.

    from trainer.model.onnx_runtime import onnx_transcriber
    asr = onnx_transcriber("export/onnx/model_quantized.onnx")
    result = asr.decode([samples_16khz_float32])[0]   # .text, .confidence, .words[i].confidence

Greedy CTC decoding, confidences and long-audio chunking are `CtcTranscriber`'s
(trainer.model.transcriber), shared with the PyTorch path, so both give the same text for the same logits.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from trainer import storage
from trainer.exit_codes import ConfigError
from trainer.model.chunking import CHUNK_SECONDS, STRIDE_SECONDS
from trainer.model.processor import TextCodec
from trainer.model.transcriber import CtcTranscriber

ONNX_DIR = "onnx"
# File name per export format, as Optimum and transformers.js name them.
ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model_quantized.onnx"}
EXPORT_FORMATS = ("hf", *ONNX_FILES)  # `trainer export --format`; hf: model.safetensors
INPUT_NAMES = ("input_values", "attention_mask")
OUTPUT_NAMES = ("logits", "logit_lengths")


def is_onnx(uri: str | Path) -> bool:
    return str(uri).endswith(".onnx")


def onnx_format(uri: str | Path) -> str:
    """The export format ("onnx" or "onnx-int8") of an ONNX file URI."""
    name = str(uri).rstrip("/").rpartition("/")[2]
    for fmt, file_name in ONNX_FILES.items():
        if name == file_name:
            return fmt
    raise ConfigError(f"model: {uri}: not an export's ONNX file ({' or '.join(ONNX_FILES.values())})")


def materialize_onnx(uri: str | Path) -> tuple[Path, Path]:
    """(local ONNX file, local export folder) for `EXPORT/onnx/<file>.onnx`, local or s3:// (the
    export is published and downloaded as a whole)."""
    uri = str(uri)
    parent, _, name = uri.rstrip("/").rpartition("/")
    root, _, onnx_dir = parent.rpartition("/")
    if onnx_dir != ONNX_DIR:
        raise ConfigError(f"model: {uri}: an export's ONNX file sits in its {ONNX_DIR}/ folder")
    from trainer.model.artefact import check_onnx_export

    folder = storage.materialize(root)
    path = folder / ONNX_DIR / name
    if not path.is_file():
        raise ConfigError(f"model: {uri} not found")
    check_onnx_export(folder)
    return path, folder


class OnnxCtcModel:
    """An onnxruntime session over an exported graph, a `CtcModel` as `TorchCtcModel` is; `config` is
    the export's Wav2Vec2Config (config.json beside the onnx/ folder), as on a PyTorch model."""

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        import onnxruntime
        from transformers import Wav2Vec2Config

        self.config = Wav2Vec2Config.from_pretrained(str(Path(path).parent.parent))

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default (one per core)
        # One waiting policy for both runtimes: onnxruntime's workers spin between ops unless told
        # not to, as OpenMP's (PyTorch's) do unless OMP_WAIT_POLICY=PASSIVE, which a user may set
        # for a busy machine; PyTorch passive and onnxruntime spinning measured a third slower.
        if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE":
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ConfigError(f"model: cannot load {path}: {exc}") from None
        self.path = Path(path)

    def __call__(self, input_values: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inputs = dict(zip(INPUT_NAMES, (input_values.astype(np.float32), attention_mask.astype(np.int64))))
        logits, lengths = self.session.run(list(OUTPUT_NAMES), inputs)
        return logits, lengths


def onnx_transcriber(
    uri: str | Path, chunk_seconds: float = CHUNK_SECONDS, stride_seconds: float = STRIDE_SECONDS, threads: int = 0
) -> CtcTranscriber:
    """A transcriber for the ONNX export file at `uri` (local or s3://), with its processor."""
    path, folder = materialize_onnx(uri)
    return CtcTranscriber(
        OnnxCtcModel(path, threads),
        TextCodec.from_dir(folder),
        chunk_seconds=chunk_seconds,
        stride_seconds=stride_seconds,
    )
