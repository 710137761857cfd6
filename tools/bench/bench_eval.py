"""Evaluation speed: batched length-sorted inference vs one utterance at a time, and a merged
export vs the unmerged LoRA adapter vs the base model. Same model, same data, one run.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/bench/bench_eval.py [--utterances 32] [--device cpu|cuda] [--batch-seconds S]

The model is a random wav2vec2 of 8 layers x 384 wide with a 256-channel conv front end (~15M
parameters; big enough that compute, not Python overhead, dominates on a CPU), LoRA r16 on q/k/v
of the upper 6 layers. The audio is espeak-ng Korean speech of 1-13 s, loaded once. Goals (issue 4):
batched >= 3x one-at-a-time; merged >= 0.98x base. Only the model (forward + CTC decoding) is
timed, as `evaluate` times it; every batch is run by each contender in turn, several times, and
the best time per batch kept, so load from other processes on a shared machine evens out.
The one-at-a-time line also prints the FLOP/s it reaches (torch.utils.flop_counter) against large
dense matmuls on the same device: their ratio bounds what any batching can gain there.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch

from trainer.data.audio import load_audio
from trainer.data.manifest import write_manifest
from trainer.evaluation.evaluate import load_model
from trainer.evaluation.export import export_merged
from trainer.evaluation.inference import default_batch_seconds, length_sorted_batches
from trainer.evaluation.random_models import write_random_models
from trainer.model.transcriber import CtcTranscriber

SENTENCES = [
    "나는 학교에 간다",
    "오늘은 날씨가 맑아서 친구들과 함께 공원에 놀러 갔어요",
    "강아지가 뛰어요",
    "엄마가 만들어 주신 김치찌개가 정말 맛있었어요",
    "우리 반 선생님은 그림을 아주 잘 그리세요",
    "사과",
]
REPEATS = 3


def make_data(root: Path, count: int) -> list[dict]:
    rows = []
    (root / "audio").mkdir()
    for i in range(count):
        # 1 to 3 sentences at varied speaking rates: durations of about 1 to 12 s.
        text = " ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(1 + i % 3))
        wav = root / "audio" / f"u{i:03d}.wav"
        subprocess.run(["espeak-ng", "-v", "ko+f2", "-s", str(110 + 7 * (i % 10)), "-w", str(wav), text], check=True)
        rows.append(
            {
                "utt_id": f"u{i:03d}",
                "audio_filepath": str(wav),
                "duration": sf.info(str(wav)).duration,
                "text": text,
                "speaker_id": "s0",
                "age": 7,
                "gender": "F",
                "snr_db": None,
            }
        )
    write_manifest(rows, root / "test.jsonl")
    return rows


def make_models(root: Path) -> dict[str, str]:
    uris = write_random_models(
        root,
        SENTENCES,
        rank=16,
        frozen_layers=2,
        lora_std=0.02,
        hidden_size=384,
        num_layers=8,
        num_heads=6,
        conv_channels=256,
    )
    export_merged(uris["adapter"], str(root / "merged"))
    return {**uris, "merged": str(root / "merged")}


def best_times(calls: dict[str, callable], batches: list[list], repeats: int) -> dict[str, float]:
    """Sum over batches of each call's best time on that batch; calls interleaved batch by batch
    (in rotating order) so that all of them see the same load from other processes."""
    best = {name: [float("inf")] * len(batches) for name in calls}
    for r in range(repeats):
        for b, audios in enumerate(batches):
            names = list(calls)
            for name in names[r % len(names) :] + names[: r % len(names)]:
                start = time.perf_counter()
                calls[name](audios)
                best[name][b] = min(best[name][b], time.perf_counter() - start)
    return {name: sum(times) for name, times in best.items()}


def dense_matmul_flops(device: str) -> float:
    """FLOP/s of large square matmuls in the model's dtype: what no batching can beat."""
    a, b = torch.randn(2048, 2048, device=device), torch.randn(2048, 2048, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(3):
        a @ b
    sync()
    start, repeats = time.perf_counter(), 20
    for _ in range(repeats):
        a @ b
    sync()
    return 2 * 2048**3 * repeats / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-seconds", type=float, default=0.0, help="0: the evaluate default for the device")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    batch_seconds = args.batch_seconds or default_batch_seconds(args.device)

    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        root = Path(tmp)
        rows = make_data(root, args.utterances)
        uris = make_models(root)
        audio_s = sum(r["duration"] for r in rows)
        models = {name: load_model(uri) for name, uri in uris.items()}
        run = {name: CtcTranscriber(m.model, m.codec, args.device) for name, m in models.items()}
        for transcriber in run.values():
            transcriber.warm_up()
        info = models["adapter"].info
        print(
            f"device {args.device}, {torch.get_num_threads()} threads; {len(rows)} utterances, {audio_s:.0f} s of audio "
            f"({min(r['duration'] for r in rows):.1f}-{max(r['duration'] for r in rows):.1f} s); model "
            f"{info['total_params'] / 1e6:.1f}M params, LoRA r16 +{info['adapter_params'] / 1e6:.2f}M; "
            f"batches of <= {batch_seconds:g} s padded audio, length-sorted; best of {args.repeats}"
        )
        batches = [
            [load_audio(rows[i]["audio_filepath"]) for i in batch]
            for batch in length_sorted_batches([r["duration"] for r in rows], batch_seconds)
        ]

        # 1. Batched, length-sorted vs one utterance at a time (same adapter model, same audio).
        adapter = run["adapter"]
        t = best_times(
            {"one": lambda audios: [adapter([a]) for a in audios], "batched": adapter}, batches, args.repeats
        )
        same = [h for b in batches for h in adapter(b)] == [adapter([a])[0] for b in batches for a in b]

        # 2. Base vs unmerged adapter vs merged export, same batches.
        t_models = best_times(run, batches, args.repeats)

        # How close one-at-a-time already runs to the hardware: FLOPs of the whole set over its time
        # (counted after all timing: counting slows the calls that follow it).
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            for audio in (a for b in batches for a in b):
                adapter([audio])
        achieved, ceiling = counter.get_total_flops() / t["one"], dense_matmul_flops(args.device)
        print(
            f"\none utterance at a time   {audio_s / t['one']:8.1f} audio-s/s  1.00x (baseline: {achieved / 1e9:.0f} GFLOP/s, "
            f"dense matmuls here reach {ceiling / 1e9:.0f}: batching can gain at most {ceiling / achieved:.1f}x)"
        )
        print(
            f"batched, length-sorted   {audio_s / t['batched']:8.1f} audio-s/s  {t['one'] / t['batched']:.2f}x"
            f"  (goal >= 3x; identical transcripts: {same})"
        )

        print()
        for name in ("base", "adapter", "merged"):
            goal = "  (goal >= 0.98x)" if name == "merged" else ""
            print(
                f"{name:8s} {audio_s / t_models[name]:8.1f} audio-s/s  {t_models['base'] / t_models[name]:.3f}x base{goal}"
            )
        print(
            json.dumps(
                {
                    "batched_vs_one_at_a_time": round(t["one"] / t["batched"], 3),
                    "adapter_vs_base": round(t_models["base"] / t_models["adapter"], 3),
                    "merged_vs_base": round(t_models["base"] / t_models["merged"], 3),
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
