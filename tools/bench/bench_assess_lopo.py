"""Pronunciation assessment leave-process-out: each phonological process scored by a detector whose
calibration never saw it.

    .venv/bin/python tools/bench/bench_assess_lopo.py --model RUN/phase3/checkpoint-best --out DIR \
        [--children 24] [--utterances 8] [--rate 0.15] [--seed 100] [--processes NAME ...]

New synthetic children (`--seed`, voices and sentences the model never heard) read prompts:
- a calibration set whose children make every process of trainer.data.processes (seed);
- a test set whose children make every process (seed + 1): the in-distribution figures, the rule
  calibrated on all of the calibration set;
- per process P, a test set (the same children and sentences, seed + 1) whose children make P
  alone, kept to the children at the ages P is reported (the others make no error at all): the
  held-out figures, the rule calibrated on the calibration set without its P errors.
Each set is assessed once as `trainer assess` does (trainer.assessment.assess.assess_rows; the
model is run once per distinct audio); the rules are then calibrated and applied to the scores
(calibrated_rule, judge). Every syllable of the
test children is scored: a flag on a correct syllable is a false positive, whatever the process.
Writes DIR/lopo.json and prints the table (the README's pronunciation section).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from trainer.assessment.assess import (
    CtcPosteriors,
    assess_rows,
    calibrated_rule,
    frame_seconds,
    ground_truth_scores,
    judge,
)
from trainer.data.importers import ImportOptions, import_aihub
from trainer.data.manifest import load_manifest, write_json, write_manifest
from trainer.data.processes import PROCESSES, select
from trainer.data.synth import synthesize_corpus
from trainer.evaluation.config import EvalConfig
from trainer.evaluation.evaluate import load_model, resolve_device
from trainer.evaluation.inference import default_batch_seconds, transcribe


class Assessor:
    """The model loaded once; log posteriors kept by audio fingerprint, so an utterance said the same
    in several sets (one without an error) is run through the model once."""

    def __init__(self, model: str) -> None:
        self.loaded = load_model(model)
        cfg = EvalConfig(num_workers=0)
        device = resolve_device(cfg.device)
        self.batch_seconds = default_batch_seconds(device)
        self.posteriors = CtcPosteriors(
            self.loaded.model, self.loaded.codec, device, cfg.chunk_seconds, cfg.stride_seconds
        )
        self.cache: dict[str, np.ndarray] = {}
        self.skipped: dict[str, str] = {}

    def lines(self, rows: list[dict]) -> list[dict]:
        new = [r for r in rows if r["audio_fingerprint"] not in self.cache]
        result = transcribe(self.posteriors, new, self.batch_seconds, 0, False)
        by_id = {r["utt_id"]: r["audio_fingerprint"] for r in new}
        self.cache.update({by_id[u]: log_probs for u, log_probs in result.decoded.items()})
        self.skipped.update(result.skipped)
        log_probs = {
            r["utt_id"]: self.cache[r["audio_fingerprint"]] for r in rows if r["audio_fingerprint"] in self.cache
        }
        lines, skipped = assess_rows(rows, log_probs, self.loaded.codec, frame_seconds(self.loaded.model))
        self.skipped.update(skipped)
        return lines


def assessed_lines(
    assessor: Assessor, out: Path, name: str, args, processes: tuple[str, ...] | None, seed: int, ages
) -> list[dict]:
    """Synthesise (or reuse) a corpus of children making `processes`, keep those aged within
    `ages` (None: all), assess it."""
    corpus = out / "corpora" / name
    synthesize_corpus(corpus, args.children, 0, args.utterances, seed, args.workers, args.rate, processes)
    manifest = out / "manifests" / f"{name}.jsonl"
    import_aihub(corpus, manifest, options=ImportOptions(unit="phone"))
    rows = load_manifest(manifest)
    if ages is not None:
        rows = [r for r in rows if ages[0] <= int(r["age"]) <= ages[1]]
        write_manifest(rows, manifest)
    return assessor.lines(rows)


def scored(lines: list[dict], calibration: list[dict], leave_out: str | None) -> dict:
    rule = calibrated_rule(calibration, leave_out)
    for line in lines:
        judge(line, rule)
    truth = ground_truth_scores(lines, rule)
    return {
        "rule": {"threshold": rule.threshold, "gop_weight": rule.gop_weight},
        "utterances": len(lines),
        "syllables": sum(len(line["syllables"]) for line in lines),
        **truth,
    }


def table(results: dict) -> list[str]:
    rows = ["| test set | errors / syllables | P / R / F1 | syllable AUC | GOP AUC |", "|---|---|---|---|---|"]
    for name, r in results.items():
        d = r["detection"]
        auc = ["-" if r[k] is None else f"{r[k]:.3f}" for k in ("score_auc", "gop_auc")]
        rows.append(
            f"| {name} | {r['injected_syllables']} / {r['syllables']} | "
            f"{d['precision']:.3f} / {d['recall']:.3f} / {d['f1']:.3f} | {auc[0]} | {auc[1]} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="phone-unit model (checkpoint, base or export)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--children", type=int, default=24, help="child speakers per set (ages 3-10)")
    parser.add_argument("--utterances", type=int, default=8, help="utterances per child")
    parser.add_argument("--rate", type=float, default=0.15, help="probability a syllable is said wrong")
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--processes", nargs="+", help="held out in turn (default: every process)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    held_out = select(tuple(args.processes) if args.processes else None)
    assessor = Assessor(args.model)
    calibration = assessed_lines(assessor, args.out, "calibration", args, None, args.seed, None)
    test_all = assessed_lines(assessor, args.out, "test-all", args, None, args.seed + 1, None)
    results = {"all processes (in-distribution)": scored(test_all, calibration, None)}
    for process in held_out:
        lines = assessed_lines(
            assessor, args.out, f"test-{process.name}", args, (process.name,), args.seed + 1, process.ages
        )
        results[f"held out: {process.name}"] = scored(lines, calibration, process.name)
    held = [r for name, r in results.items() if name.startswith("held out")]
    summary = {
        "model": args.model,
        "children": args.children,
        "utterances_per_child": args.utterances,
        "rate": args.rate,
        "seed": args.seed,
        "processes": [p.name for p in PROCESSES],
        "held_out_mean": {
            "f1": float(np.mean([r["detection"]["f1"] for r in held])) if held else None,
            "gop_auc": float(np.mean([r["gop_auc"] for r in held if r["gop_auc"] is not None])) if held else None,
        },
        "skipped": {"count": len(assessor.skipped), "utt_ids": sorted(assessor.skipped)},
        "results": results,
        "seconds": round(time.monotonic() - started, 1),
    }
    write_json(summary, args.out / "lopo.json")
    print("\n".join(table(results)))
    print(
        f"mean over {len(held)} held-out processes: F1 {summary['held_out_mean']['f1']:.3f}, "
        f"GOP AUC {summary['held_out_mean']['gop_auc']:.3f} ({summary['seconds']:.0f} s; {args.out / 'lopo.json'})"
    )


if __name__ == "__main__":
    main()
