"""Memory of the Hugging Face import: ~100k short rows with their audio inside Parquet shards.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/bench/bench_hf_import.py [--rows 100000] [--baseline-rows 10000]

Generates Parquet shards the way the Hub's Parquet conversion lays them out (`train-*.parquet`, an
`Audio` column holding each clip's WAV bytes): distinct 0.6 s, 16 kHz clips (a tone in noise),
short Korean texts, 500 speakers. Then, each in a fresh process so its peak RSS is its own, runs
`import_hf` (decode, FLAC, screening, manifest; one worker) on

- baseline: the first `--baseline-rows` rows (their shards alone);
- measured: all `--rows` rows.

If import held the corpus, peak RSS would grow with the audio (the shards' bytes, printed); held
to a few batches, it grows only by the manifest rows every importer keeps (~1 KB each). Prints
rows, audio bytes, wall time and peak RSS of both runs and their ratios. No thresholds: a figure
to read, not a test.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SECONDS = 0.6
RATE = 16000
SHARD_ROWS = 5000
SPEAKERS = 500
TEXTS = ("안녕", "사과", "하나 둘", "좋아요", "엄마", "고마워")


def _clip(rng: np.random.Generator) -> bytes:
    t = np.arange(int(SECONDS * RATE)) / RATE
    tone = 0.2 * np.sin(2 * np.pi * rng.uniform(150, 400) * t) + 0.01 * rng.standard_normal(t.size)
    buffer = io.BytesIO()
    sf.write(buffer, tone.astype(np.float32), RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def generate(folder: Path, rows: int, seed: int) -> int:
    """Write `rows` rows as train-NNNNN-of-NNNNN.parquet shards; returns the audio bytes written."""
    from datasets import Audio, Dataset

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    shards = -(-rows // SHARD_ROWS)
    total = 0
    for shard in range(shards):
        ids = range(shard * SHARD_ROWS, min(rows, (shard + 1) * SHARD_ROWS))
        clips = [_clip(rng) for _ in ids]
        total += sum(map(len, clips))
        columns = {
            "audio": [{"bytes": clip, "path": f"{i:07d}.wav"} for i, clip in zip(ids, clips)],
            "sentence": [TEXTS[i % len(TEXTS)] for i in ids],
            "client_id": [f"spk{int(s):04d}" for s in rng.integers(0, SPEAKERS, len(ids))],
            "age": [int(a) for a in rng.integers(4, 11, len(ids))],
        }
        table = Dataset.from_dict(columns).cast_column("audio", Audio())
        table.to_parquet(str(folder / f"train-{shard:05d}-of-{shards:05d}.parquet"))
    return total


def measure(dataset: str, out: str) -> None:
    """One import in this process; prints its figures as JSON."""
    from trainer.data.hf_source import import_hf

    started = time.monotonic()
    report = import_hf(dataset, Path(out) / "all.jsonl")
    print(
        json.dumps(
            {
                "kept": report.kept,
                "skipped": sum(report.skipped.values()),
                "wall_s": round(time.monotonic() - started, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


def _run(dataset: Path, out: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--measure", str(dataset), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"bench_hf_import: import failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline-rows", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.out)
        return
    if args.baseline_rows % SHARD_ROWS or args.baseline_rows >= args.rows:
        sys.exit(f"--baseline-rows: a multiple of {SHARD_ROWS} below --rows")
    with tempfile.TemporaryDirectory(prefix="bench_hf_import_") as tmp:
        root = Path(tmp)
        tic = time.monotonic()
        audio_bytes = generate(root / "full", args.rows, args.seed)
        print(
            f"generated {args.rows} rows, {audio_bytes / 2**20:.0f} MiB of WAV bytes in {time.monotonic() - tic:.0f} s"
        )
        (root / "baseline").mkdir()
        for shard in sorted((root / "full").glob("*.parquet"))[: args.baseline_rows // SHARD_ROWS]:
            (root / "baseline" / shard.name).symlink_to(shard)
        baseline = _run(root / "baseline", root / "out-baseline")
        measured = _run(root / "full", root / "out-full")
    for name, rows, figures in (("baseline", args.baseline_rows, baseline), ("measured", args.rows, measured)):
        print(f"{name}: {rows} rows -> {json.dumps(figures)}")
    print(
        f"rows x{args.rows / args.baseline_rows:.1f}, audio x{args.rows / args.baseline_rows:.1f} "
        f"({audio_bytes / 2**20:.0f} MiB in all); peak RSS x{measured['peak_rss_mb'] / baseline['peak_rss_mb']:.2f} "
        f"(+{measured['peak_rss_mb'] - baseline['peak_rss_mb']:.0f} MB for "
        f"{args.rows - args.baseline_rows} more rows: "
        f"{1024 * (measured['peak_rss_mb'] - baseline['peak_rss_mb']) / (args.rows - args.baseline_rows):.2f} KB/row)"
    )


if __name__ == "__main__":
    main()
