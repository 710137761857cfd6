"""Scale of the split and curriculum: a 1.77M-row manifest (AI Hub children's corpus size, 3500 h).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python tools/bench/bench_split.py [--rows 1770000] [--speakers 3000]

Generates a manifest of rows only (no audio): a few thousand speakers aged 3-10 (1 % unknown),
each with its own recording room (speaker SNR ~ N(18, 6) dB, +-3 dB per utterance, 2 % unknown)
and speaking style (log-normal durations around 7.1 s, clipped to 0.5-30 s), Korean sentences,
AI Hub-like paths and source folders. Then, each in a fresh process so peak RSS is its own:

- baseline: read the manifest (validated) and write it back - the I/O floor of any
  manifest-to-manifest step;
- measured: what `data prepare` does after import - read, split by speaker (5 % / 5 %), write
  train/val/test + report, nested curriculum of 30/90/148 h from train, write the phases.

Target (issue 2): measured <= 60 s wall and <= 3 GB peak RSS on the 2-core machine. Prints the
figures, the ratio to the target and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from trainer.data.curriculum import nested_subsets
from trainer.data.manifest import load_manifest, write_json, write_manifest
from trainer.data.split import split_by_speaker
from trainer.data.synth.lexicon import make_sentence

TARGET_WALL_S = 60.0
TARGET_RSS_GB = 3.0
HOURS = (30.0, 90.0, 148.0)


def generate(path: Path, n_rows: int, n_speakers: int, seed: int) -> float:
    """Write the synthetic manifest; returns its hours."""
    rng = np.random.default_rng(seed)
    ages = rng.integers(3, 11, n_speakers).astype(object)
    ages[rng.random(n_speakers) < 0.01] = None
    room_snr = rng.normal(18, 6, n_speakers)
    pace = rng.normal(np.log(6.5), 0.25, n_speakers)
    share = rng.dirichlet(np.full(n_speakers, 5.0))
    speaker = rng.choice(n_speakers, size=n_rows, p=share)
    durations = np.clip(np.exp(pace[speaker] + rng.normal(0, 0.45, n_rows)), 0.5, 30.0)
    snr = room_snr[speaker] + rng.uniform(-3, 3, n_rows)
    unknown_snr = rng.random(n_rows) < 0.02
    folders = rng.choice(["1.Training", "2.Validation", "3.Test"], size=n_speakers, p=[0.8, 0.1, 0.1])
    sentences = [" ".join(make_sentence(rng)) for _ in range(5000)]

    def rows():
        for i in range(n_rows):
            s = int(speaker[i])
            sid = f"{1_000_000_000 + s:010d}-1"
            stem = f"KID_{sid}_{ages[s] or 0}_F_{i:07d}"
            yield {
                "utt_id": stem,
                "audio_filepath": f"/data/aihub/{folders[s]}/원천데이터/{sid}/{stem}.wav",
                "duration": round(float(durations[i]), 3),
                "text": sentences[i % len(sentences)],
                "speaker_id": sid,
                "age": ages[s],
                "gender": "F" if s % 2 else "M",
                "snr_db": None if unknown_snr[i] else round(float(snr[i]), 2),
                "source_split": folders[s],
                "audio_fingerprint": f"{i:024x}",
            }

    write_manifest(rows(), path)
    return float(durations.sum()) / 3600


def run_step(step: str, manifest: Path, out: Path) -> dict:
    """One measured step in this (fresh) process."""
    tic = time.perf_counter()
    rows = load_manifest(manifest)
    loaded = time.perf_counter() - tic
    if step == "baseline":
        write_manifest(rows, out / "copy.jsonl")
        figures = {}
    else:
        result = split_by_speaker(rows, 0.05, 0.05, seed=42)
        for name, part in result.parts().items():
            write_manifest(part, out / f"{name}.jsonl")
        write_json(result.report, out / "split_report.json")
        split_done = time.perf_counter() - tic
        phases, report = nested_subsets(result.train, hours=HOURS, seed=42)
        for number, phase in enumerate(phases, start=1):
            write_manifest(phase, out / f"phase{number}.jsonl")
        write_json(report, out / "curriculum_report.json")
        figures = {
            "split_s": split_done,
            "max_deviation_pp": result.report["max_deviation_pp"],
            "shared_speakers": result.report["leakage"]["shared_speakers"],
            "split_rows": {k: v["rows"] for k, v in result.report["splits"].items()},
            "phase_hours": [p["hours"] for p in report["phases"]],
            "phase_deviation_pct": [p["deviation_pct"] for p in report["phases"]],
        }
    return {
        "wall_s": time.perf_counter() - tic,
        "load_s": loaded,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        **figures,
    }


def measure(step: str, manifest: Path, out: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--step", step, "--manifest", str(manifest), "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_770_000)
    parser.add_argument("--speakers", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--step", choices=["baseline", "measured"], help=argparse.SUPPRESS)
    parser.add_argument("--manifest", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(run_step(args.step, Path(args.manifest), Path(args.out))))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench_split_") as tmp:
        tmp = Path(tmp)
        manifest = tmp / "all.jsonl"
        tic = time.perf_counter()
        hours = generate(manifest, args.rows, args.speakers, args.seed)
        size_mb = manifest.stat().st_size / 2**20
        print(
            f"manifest: {args.rows} rows, {args.speakers} speakers, {hours:.0f} h, {size_mb:.0f} MiB "
            f"(generated in {time.perf_counter() - tic:.1f} s)"
        )
        baseline = measure("baseline", manifest, tmp)
        measured = measure("measured", manifest, tmp)

    print(f"baseline (read + write back): {baseline['wall_s']:.1f} s wall, {baseline['peak_rss_gb']:.2f} GB peak RSS")
    print(
        f"split + curriculum:           {measured['wall_s']:.1f} s wall (load {measured['load_s']:.1f} s, "
        f"split+write {measured['split_s'] - measured['load_s']:.1f} s, curriculum+write "
        f"{measured['wall_s'] - measured['split_s']:.1f} s), {measured['peak_rss_gb']:.2f} GB peak RSS"
    )
    print(
        f"  split rows {measured['split_rows']}, max strata deviation {measured['max_deviation_pp']:.2f} pp, "
        f"shared speakers {measured['shared_speakers']}"
    )
    print(f"  curriculum hours {measured['phase_hours']} (deviation % {measured['phase_deviation_pct']})")
    print(
        f"ratio to target:   wall {measured['wall_s'] / TARGET_WALL_S:.2f} x {TARGET_WALL_S:.0f} s, "
        f"peak RSS {measured['peak_rss_gb'] / TARGET_RSS_GB:.2f} x {TARGET_RSS_GB:.0f} GB"
    )
    print(
        f"ratio to baseline: wall {measured['wall_s'] / baseline['wall_s']:.2f} x, "
        f"peak RSS {measured['peak_rss_gb'] / baseline['peak_rss_gb']:.2f} x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
