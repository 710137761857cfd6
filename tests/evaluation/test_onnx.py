"""ONNX exports: fp32 and int8 graphs beside the merged PyTorch model, run by onnxruntime with the
same decoding; `evaluate`/`compare` take them like any model."""

import json
from pathlib import Path

import pytest

from trainer.cli import main
from trainer.compare import REPORT_FILE, compare
from trainer.evaluation.config import EvalConfig
from trainer.evaluation.evaluate import load_model
from trainer.evaluation.metrics import char_edits
from trainer.evaluation.report import CALIBRATION_CHART
from trainer.exit_codes import ConfigError
from trainer.model.onnx_runtime import ONNX_DIR, ONNX_FILES, onnx_transcriber
from trainer.model.transcriber import CtcTranscriber

CFG = EvalConfig(num_workers=0, batch_seconds=8.0, bootstrap=50)
# CER of int8 transcripts against PyTorch's. A random-weight model's posteriors are near uniform, so
# int8 rounding flips many near-tie frames: 16% measured with int8 convolutions (5% with int8
# MatMuls alone); a broken graph would give ~100%. Against references, the trained demo model's
# int8 export stayed within 1 CER point of PyTorch (export.py).
INT8_CER_TOLERANCE = 0.25


@pytest.fixture(scope="module")
def exported(eval_models, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "export"
    assert (
        main(
            ["export", "--adapter", eval_models["adapter"], "--output", str(out), "--format", "hf", "onnx", "onnx-int8"]
        )
        == 0
    )
    return out


def test_export_folder_layout(exported):
    assert (exported / "model.safetensors").is_file() and (exported / "vocab.json").is_file()
    for name in ONNX_FILES.values():
        assert (exported / ONNX_DIR / name).is_file()
    info = json.loads((exported / "export_info.json").read_text(encoding="utf-8"))
    assert info["formats"] == ["hf", "onnx", "onnx-int8"]
    assert 0 < info["adapter_params"] < info["total_params"]


def test_onnx_transcribes_like_pytorch_and_int8_within_tolerance(exported, audios):
    merged = load_model(str(exported))
    torch_out = CtcTranscriber(merged.model, merged.codec).decode(audios)
    fp32 = onnx_transcriber(exported / ONNX_DIR / ONNX_FILES["onnx"]).decode(audios)
    int8 = onnx_transcriber(exported / ONNX_DIR / ONNX_FILES["onnx-int8"]).decode(audios)
    assert all(d.text for d in torch_out)
    assert [d.text for d in fp32] == [d.text for d in torch_out]
    assert [d.confidence for d in fp32] == pytest.approx([d.confidence for d in torch_out], abs=1e-4)
    reference = " ".join(d.text for d in torch_out)
    edits = char_edits(reference, " ".join(d.text for d in int8))
    assert edits.errors / edits.ref_len <= INT8_CER_TOLERANCE
    # The loader's output carries confidences per word and utterance.
    assert all(0 < w.confidence <= 1 for d in int8 for w in d.words)


def test_int8_graph_keeps_the_waveform_conv_in_float(exported):
    """int8 convolutions from the second on (QLinearConv), int8 MatMuls; the waveform conv stays
    fp32 (quantising its input cost 2.2 CER points on the demo model); the graph is compacted."""
    import onnx

    graph = onnx.load(str(exported / ONNX_DIR / ONNX_FILES["onnx-int8"])).graph
    ops = [node.op_type for node in graph.node]
    convs = [op for op in ops if op in ("Conv", "QLinearConv", "ConvInteger")]
    assert convs[0] == "Conv" and len(convs) > 2 and set(convs[1:]) == {"QLinearConv"}
    assert "MatMulInteger" in ops
    assert not graph.value_info and max(len(node.name) for node in graph.node) < 8


def test_int8_calibration_needs_espeak(monkeypatch, tmp_path):
    from trainer.evaluation.quantize import calibration_audio

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="espeak-ng, not found on PATH"):
        calibration_audio()


def _conv_scales(path: Path) -> dict:
    """The int8 convolutions' activation scales (what calibration sets), by QLinearConv node."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    return {n.name: float(values[n.input[1]]) for n in graph.node if n.op_type == "QLinearConv"}


def test_int8_calibrates_on_a_manifest_of_recordings(exported, eval_models, eval_corpus, tmp_path):
    from trainer.data.audio import load_audio
    from trainer.data.manifest import load_manifest
    from trainer.evaluation.quantize import calibration_audio

    rows = load_manifest(eval_corpus["test"])
    readable = [r for r in rows if r["utt_id"] != "broken"]
    assert len(readable) < len(rows)  # the unreadable row is skipped, not fatal
    audios = calibration_audio(eval_corpus["test"], count=len(readable))
    assert [a.tolist() for a in audios] == [load_audio(r["audio_filepath"]).tolist() for r in readable]

    out = tmp_path / "calibrated"
    flags = ["--format", "onnx-int8", "--calibration-manifest", str(eval_corpus["test"])]
    assert main(["export", "--adapter", eval_models["adapter"], "--output", str(out), *flags]) == 0
    info = json.loads((out / "export_info.json").read_text(encoding="utf-8"))
    assert info["int8_calibration"] == str(eval_corpus["test"])
    synthetic = _conv_scales(exported / ONNX_DIR / ONNX_FILES["onnx-int8"])
    assert _conv_scales(out / ONNX_DIR / ONNX_FILES["onnx-int8"]).keys() == synthetic.keys()
    assert _conv_scales(out / ONNX_DIR / ONNX_FILES["onnx-int8"]) != synthetic

    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(next(r for r in rows if r["utt_id"] == "broken")) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="calibration_manifest: .*no readable audio"):
        calibration_audio(str(broken))


def test_batches_of_different_lengths_run_through_one_graph(exported, audios):
    """Dynamic batch and time axes: a padded batch gives what each utterance gives alone."""
    asr = onnx_transcriber(exported / ONNX_DIR / ONNX_FILES["onnx"])
    assert len({len(a) for a in audios[:4]}) > 1
    assert asr(audios[:4]) == [asr([a])[0] for a in audios[:4]]


def test_onnx_only_export_and_bad_paths(eval_models, tmp_path):
    out = tmp_path / "int8only"
    assert main(["export", "--adapter", eval_models["adapter"], "--output", str(out), "--format", "onnx-int8"]) == 0
    assert (out / ONNX_DIR / ONNX_FILES["onnx-int8"]).is_file()
    assert not (out / ONNX_DIR / ONNX_FILES["onnx"]).exists() and not (out / "model.safetensors").exists()
    with pytest.raises(ConfigError, match="onnx/ folder"):
        load_model(str(tmp_path / "model.onnx"))
    with pytest.raises(ConfigError, match="not found"):
        load_model(str(out / ONNX_DIR / ONNX_FILES["onnx"]))


def test_compare_reports_onnx_rows(exported, eval_corpus, tmp_path):
    models = {
        "merged": str(exported),
        "onnx": str(exported / ONNX_DIR / ONNX_FILES["onnx"]),
        "onnx-int8": str(exported / ONNX_DIR / ONNX_FILES["onnx-int8"]),
    }
    summary = compare(models, {"test": str(eval_corpus["test"])}, str(tmp_path / "report"), CFG, progress=False)
    entries = {m["name"]: m for m in summary["models"]}
    assert [entries[n]["kind"] for n in models] == ["merged", "onnx", "onnx-int8"]
    # Sizes are the weights' files on disk (on a model this small, int8's scales and zero points
    # outweigh what it saves: tools/bench/bench_export.py measures real sizes).
    assert {n: entries[n]["size_bytes"] for n in models} == {
        "merged": (exported / "model.safetensors").stat().st_size,
        **{n: Path(models[n]).stat().st_size for n in ("onnx", "onnx-int8")},
    }
    assert (
        entries["onnx"]["results"]["test"]["metrics"]["cer"] == entries["merged"]["results"]["test"]["metrics"]["cer"]
    )
    assert entries["onnx"]["results"]["test"]["speed"]["device"] == "cpu"
    report = (tmp_path / "report" / REPORT_FILE).read_text(encoding="utf-8")
    assert "## Deployment formats" in report and "| onnx-int8 | onnx-int8 |" in report
    assert "## Word confidence" in report
    assert (tmp_path / "report" / CALIBRATION_CHART).read_bytes()[:4] == b"\x89PNG"
