"""int8 quantisation of an exported fp32 graph (`trainer export --format onnx-int8`).

The transformer's MatMuls are quantised dynamically (int8 weights per output channel,
activations quantised per batch), which ran faster than static ones (QLinearMatMul) on the bench
shape. The convolutions are then quantised statically: int8 weights per output channel, uint8
activations whose ranges come from running the graph on a few utterances normalised by the
export's feature extractor: the first `--calibration-utterances` readable rows of
`--calibration-manifest` (recordings like the ones the app will hear: the validation manifest), or
without one, a few synthetic voices (trainer.data.synth, children and adults). onnxruntime runs them
as QLinearConv, which also took most of the feature encoder's transposes out of the profile. The
waveform convolution stays fp32: quantising its input cost 2.2 CER points on the demo model.

The graph goes through onnxruntime's quant_pre_process first (constant folding: fewer nodes), and
the result is compacted: short tensor names and no stored shape annotations (onnxruntime infers
them at load); on the 0.6M-parameter demo model those were a quarter of the file. Figures:
trainer/evaluation/export.py.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from trainer.data.audio import SAMPLE_RATE, AudioError, load_audio
from trainer.data.manifest import read_manifest
from trainer.exit_codes import ConfigError

CALIBRATION_SPEAKERS = (4, 2)  # child, adult voices: one utterance each
CALIBRATION_SEED = 0
CALIBRATION_UTTERANCES = 16
_log = logging.getLogger(__name__)


def calibration_audio(manifest: str | None = None, count: int = CALIBRATION_UTTERANCES) -> list[np.ndarray]:
    """The first `count` readable utterances of `manifest`; without one, synthetic voices."""
    if manifest is not None:
        return manifest_audio(manifest, count)
    return synthetic_audio()


def manifest_audio(manifest: str, count: int) -> list[np.ndarray]:
    """The first `count` rows of `manifest` whose audio reads; unreadable ones are counted and logged."""
    audios: list[np.ndarray] = []
    unreadable = 0
    for row in read_manifest(manifest):
        if len(audios) == count:
            break
        try:
            audios.append(load_audio(row["audio_filepath"]))
        except AudioError as exc:
            unreadable += 1
            _log.warning("calibration: skipped %s (%s)", row["utt_id"], exc)
    if not audios:
        raise ConfigError(f"calibration_manifest: {manifest}: no readable audio ({unreadable} rows unreadable)")
    if unreadable:
        _log.warning("calibration: %d of %d rows read were unreadable", unreadable, unreadable + len(audios))
    return audios


def synthetic_audio() -> list[np.ndarray]:
    """A few synthetic utterances (trainer.data.synth voices, children and adults)."""
    from trainer.data.synth.espeak import ESPEAK
    from trainer.data.synth.lexicon import make_sentence
    from trainer.data.synth.render import render
    from trainer.data.synth.speakers import make_speakers

    if shutil.which(ESPEAK) is None:
        raise ConfigError(
            f"format onnx-int8: calibration speaks with {ESPEAK}, not found on PATH (apt-get install {ESPEAK})"
        )
    rng = np.random.default_rng(CALIBRATION_SEED)
    return [
        render(speaker, make_sentence(rng), rng).samples
        for speaker in make_speakers(*CALIBRATION_SPEAKERS, seed=CALIBRATION_SEED)
    ]


def quantize_int8(fp32: Path, output: Path, feature_extractor, audios: list[np.ndarray]) -> None:
    """Write the int8 graph of `fp32` to `output`; `audios` (16 kHz) calibrate the convolutions'
    activation ranges through `feature_extractor` (the export's normalisation)."""
    with tempfile.TemporaryDirectory(prefix="quantize-", dir=output.parent) as tmp:
        folded, matmuls = Path(tmp) / "folded.onnx", Path(tmp) / "matmuls.onnx"
        quant_pre_process(fp32, folded, skip_symbolic_shape=True)
        waveform_conv = next(n.name for n in onnx.load(str(folded)).graph.node if n.op_type == "Conv")
        # MatMuls first: quantize_dynamic takes a graph that holds QuantizeLinear nodes for a
        # quantisation-aware trained one and warns.
        quantize_dynamic(
            folded, matmuls, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"], per_channel=True
        )
        quantize_static(
            matmuls,
            output,
            _Calibration(feature_extractor, audios),
            quant_format=QuantFormat.QOperator,
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=[waveform_conv],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    _compact(output)


class _Calibration(CalibrationDataReader):
    """One normalised utterance per call."""

    def __init__(self, feature_extractor, audios: list[np.ndarray]) -> None:
        self.inputs: Iterator[dict] = (
            {
                "input_values": features["input_values"].astype(np.float32),
                "attention_mask": features["attention_mask"].astype(np.int64),
            }
            for features in (
                feature_extractor([audio], sampling_rate=SAMPLE_RATE, return_attention_mask=True, return_tensors="np")
                for audio in audios
            )
        )

    def get_next(self) -> dict | None:
        return next(self.inputs, None)


def _compact(path: Path) -> None:
    """Rename the graph's tensors and nodes t0, t1, ... (inputs and outputs keep theirs) and drop
    its value_info (shape annotations)."""
    model = onnx.load(str(path))
    graph = model.graph
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in graph.node for a in n.attribute):
        raise ValueError(f"{path}: subgraphs are not compacted")  # the traced wav2vec2 has none
    keep = {v.name for v in (*graph.input, *graph.output)}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        return name if not name or name in keep else names.setdefault(name, f"t{len(names):x}")

    for tensor in graph.initializer:
        tensor.name = short(tensor.name)
    for i, node in enumerate(graph.node):
        node.name = f"n{i:x}"
        node.input[:] = [short(name) for name in node.input]
        node.output[:] = [short(name) for name in node.output]
    del graph.value_info[:]
    onnx.save(model, str(path))
