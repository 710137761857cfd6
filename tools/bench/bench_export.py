"""Deployment formats: size on disk, CPU speed and CER of the merged PyTorch model (hf) against
its ONNX export (onnx) and the int8 quantised one (onnx-int8). Same model, same audio, one run.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/bench/bench_export.py [--utterances 24] [--model bench|xlsr] [--threads N]
    ... bench_export.py --adapter RUN/r32/phase3/checkpoint-best --manifest DATA/test_child.jsonl

The model is bench_eval's random wav2vec2 (8 layers x 384, 256-channel front end, 10.8M
parameters) or, with `--model xlsr`, one of XLS-R 300M's size (24 x 1024, 512 channels, a
128-wide positional convolution, 308M parameters), merged from a LoRA r16 adapter by `trainer
export --format hf onnx onnx-int8`; the audio is espeak-ng Korean speech of 1-13 s. Random
weights read no Korean, so CER against the references is ~100% for every format and the CER of
each format's transcripts against hf's ("CER vs hf") is what is left to compare. With
`--adapter` and `--manifest`, a trained adapter (e.g. the demo's) is exported and run on the
manifest's first `--utterances` rows, where CER against the references is the goal's measure.
Goals (issue 15): int8 within 1 CER point of hf, >= 2x faster on CPU, <= 30% of the size. Every
batch is run by each format in turn, several times, and the best time per batch kept
(bench_eval.best_times); all formats use the same number of threads.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_eval import SENTENCES, best_times, make_data  # noqa: E402

from trainer.data.audio import load_audio  # noqa: E402
from trainer.data.manifest import load_manifest  # noqa: E402
from trainer.evaluation.evaluate import load_model  # noqa: E402
from trainer.evaluation.export import export_merged  # noqa: E402
from trainer.evaluation.inference import default_batch_seconds, length_sorted_batches  # noqa: E402
from trainer.evaluation.metrics import cer  # noqa: E402
from trainer.evaluation.random_models import write_random_models  # noqa: E402
from trainer.model.onnx_runtime import ONNX_DIR, ONNX_FILES, OnnxCtcModel  # noqa: E402
from trainer.model.transcriber import CtcTranscriber  # noqa: E402

MODELS = {
    "bench": dict(hidden_size=384, num_layers=8, num_heads=6, conv_channels=256),
    "xlsr": dict(
        hidden_size=1024,
        num_layers=24,
        num_heads=16,
        conv_channels=512,
        intermediate_size=4096,
        num_conv_pos_embeddings=128,
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=24)
    parser.add_argument("--model", choices=MODELS, default="bench")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--adapter", help="a trained LoRA adapter checkpoint instead of a random model")
    parser.add_argument("--manifest", help="its test manifest (with --adapter)")
    args = parser.parse_args()
    if bool(args.adapter) != bool(args.manifest):
        parser.error("--adapter and --manifest go together")
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    batch_seconds = default_batch_seconds("cpu")

    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        root = Path(tmp)
        if args.adapter:
            rows, adapter = load_manifest(args.manifest)[: args.utterances], args.adapter
        else:
            rows = make_data(root, args.utterances)
            models = write_random_models(root, SENTENCES, rank=16, frozen_layers=2, lora_std=0.02, **MODELS[args.model])
            adapter = models["adapter"]
        export_merged(adapter, str(root / "export"), ["hf", "onnx", "onnx-int8"])
        files = {
            "hf": root / "export" / "model.safetensors",
            **{fmt: root / "export" / ONNX_DIR / name for fmt, name in ONNX_FILES.items()},
        }
        merged = load_model(str(root / "export"))
        run = {
            "hf": CtcTranscriber(merged.model, merged.codec),
            **{fmt: CtcTranscriber(OnnxCtcModel(files[fmt], args.threads), merged.codec) for fmt in ONNX_FILES},
        }
        for transcriber in run.values():
            transcriber.warm_up()
        batches = [
            [load_audio(rows[i]["audio_filepath"]) for i in batch]
            for batch in length_sorted_batches([r["duration"] for r in rows], batch_seconds)
        ]
        audio_s = sum(len(a) for b in batches for a in b) / 16000
        refs = [
            rows[i]["text"]
            for batch in length_sorted_batches([r["duration"] for r in rows], batch_seconds)
            for i in batch
        ]
        texts = {name: [t for b in batches for t in transcriber(b)] for name, transcriber in run.items()}
        times = best_times(run, batches, args.repeats)

        print(
            f"{args.adapter or args.model + ' model'}, {merged.info['total_params'] / 1e6:.1f}M params; {len(rows)} utterances, {audio_s:.0f} s "
            f"of audio; CPU, {args.threads} threads; batches of <= {batch_seconds:g} s; best of {args.repeats}\n"
        )
        print(
            f"{'format':10s} {'size':>10s} {'vs hf':>7s} {'audio-s/s':>10s} {'speed vs hf':>12s} {'CER vs hf':>10s} {'CER vs refs':>12s}"
        )
        result = {}
        for name in run:
            size = files[name].stat().st_size
            result[name] = {
                "size_mib": round(size / 2**20, 2),
                "size_vs_hf": round(size / files["hf"].stat().st_size, 3),
                "speed_vs_hf": round(times["hf"] / times[name], 3),
                "cer_vs_hf": round(cer(texts["hf"], texts[name]), 4) if any(texts["hf"]) else None,
                "cer_vs_refs": round(cer(refs, texts[name]), 4),
            }
            r = result[name]
            print(
                f"{name:10s} {r['size_mib']:8.1f}Mi {100 * r['size_vs_hf']:6.0f}% {audio_s / times[name]:10.1f} "
                f"{r['speed_vs_hf']:11.2f}x {100 * (r['cer_vs_hf'] or 0):9.2f}% {100 * r['cer_vs_refs']:11.1f}%"
            )
        print("\ngoals for onnx-int8: CER vs hf <= 1 point, speed >= 2x, size <= 30%")
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
