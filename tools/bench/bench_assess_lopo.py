"""Pronunciation assessment leave-process-out: each error kind scored by a detector whose
calibration never saw it, against baselines scored on the same children in the same run.

    .venv/bin/python tools/bench/bench_assess_lopo.py --model RUN/phase3/checkpoint-best --out DIR \
        [--baseline-model OTHER] [--children 72] [--utterances 10] [--rate 0.15] [--seed 100 ...] \
        [--processes NAME ...] [--speeds 0.9 1.0]

New synthetic children (`--seed`, voices and sentences the model never heard) read prompts:
- a calibration set whose children make every error kind of trainer.data.processes.select (the
  processes and "other") (seed);
- a test set whose children make every kind (seed + 1): the in-distribution figures, the rule
  calibrated on all of the calibration set;
- per kind P, a test set (the same children and sentences, seed + 1) whose children make P
  alone, kept to the children at the ages P is reported (the others make no error at all): the
  held-out figures, the rule calibrated on the calibration set without its P errors.
Each set is assessed once as `trainer assess` does (trainer.assessment.assess.assess_rows; the
model is run once per distinct audio); the rules are then calibrated and applied to the scores
(calibrated_rule, judge). Every syllable of the test children is scored: a flag on a correct
syllable is a false positive, whatever the process. The means are over the sets with errors.

Baselines, on the same scores: the decision rule calibrated for the best syllable F1 on the
calibration set (what `assess --calibrate` did before its false-alarm budget), and with
`--baseline-model` another model (e.g. an earlier run's phase 3) under both rules.
`--speeds`: every model is scored at each speed its recordings are played at before it (`assess
--speed`); the first speed's figures are the headline, the others baselines of the same run.
Each set also gets its F1 ceiling: the F1 of the rule (threshold and GOP weight) fitted for the
best F1 on that set's own ground truth. No calibration on other children can beat it, so a mean
ceiling below a goal says the scores (the model), not the rule, fall short.
The held-out mean F1 comes with a 95% bootstrap interval over the test children (the sets share
them, and with them most false flags: it is how far another 72 children could move the mean).
Writes DIR/lopo.json and prints the table (the README's pronunciation section).

Several seeds (`--seed 100 200 300`): the whole bench once per seed, each with its own children,
sentences and voices (DIR/seed-N/lopo.json, its tables printed), then each model's held-out mean
F1 per seed and the mean over seeds (DIR/lopo.json): one seed's mean moves by up to 0.05 from
another's, as much as the differences a bench is run to see.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np

from trainer.assessment.assess import (
    CtcPosteriors,
    assess_rows,
    calibrated_rule,
    check_speed,
    frame_seconds,
    ground_truth_scores,
    judge,
    labelled_syllables,
)
from trainer.assessment.detect import DEFAULT_RULE, FALSE_ALARM_RATE, GOP_WEIGHTS, Rule, detection
from trainer.data.importers import ImportOptions, import_aihub
from trainer.data.manifest import load_manifest, write_json, write_manifest
from trainer.data.processes import OTHER, select
from trainer.data.synth import synthesize_corpus
from trainer.evaluation.breakdown import BOOTSTRAP_RESAMPLES, CI_LEVEL
from trainer.evaluation.config import EvalConfig
from trainer.evaluation.evaluate import load_model, resolve_device
from trainer.evaluation.inference import default_batch_seconds, transcribe


class Assessor:
    """The model loaded once; log posteriors kept by audio fingerprint, so an utterance said the same
    in several sets (one without an error) is run through the model once."""

    def __init__(self, model: str, speed: float = 1.0) -> None:
        self.speed = speed
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
        result = transcribe(self.posteriors, new, self.batch_seconds, 0, False, self.speed)
        by_id = {r["utt_id"]: r["audio_fingerprint"] for r in new}
        self.cache.update({by_id[u]: log_probs for u, log_probs in result.decoded.items()})
        self.skipped.update(result.skipped)
        log_probs = {
            r["utt_id"]: self.cache[r["audio_fingerprint"]] for r in rows if r["audio_fingerprint"] in self.cache
        }
        lines, skipped = assess_rows(rows, log_probs, self.loaded.codec, frame_seconds(self.loaded.model, self.speed))
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


def best_f1_threshold(scores: np.ndarray, wrong: np.ndarray) -> tuple[float, float]:
    """The syllable F1 of the best threshold for `score < threshold` on these scores, and that
    threshold (midway between neighbouring distinct scores; the lowest among equals)."""
    order = np.argsort(scores, kind="stable")
    values, hits = scores[order], wrong[order]
    flagged = np.arange(len(values) + 1)  # cut i flags values[:i]
    tp = np.concatenate(([0], np.cumsum(hits)))
    f1 = 2 * tp / np.maximum(flagged + hits.sum(), 1)  # 2tp / (2tp + fp + fn)
    f1[1:-1][values[:-1] == values[1:]] = -1.0  # a cut between equal scores is no threshold
    i = int(np.argmax(f1))
    if i == 0:
        return float(f1[0]), float(values[0]) - 1.0
    if i == len(values):
        return float(f1[i]), float(values[-1]) + 1.0
    return float(f1[i]), float((values[i - 1] + values[i]) / 2)


def best_f1_rule(lines: list[dict], leave_out: str | None = None) -> tuple[float, Rule]:
    """The rule with the best syllable F1 on `lines` (per GOP weight the best threshold, then the
    weight whose F1 is best; the smallest among equals) and that F1. On the calibration set it is
    the baseline rule; on a test set its F1 is the ceiling: no rule calibrated elsewhere does better."""
    entries, truth = labelled_syllables(lines, leave_out)
    if not entries:
        return 0.0, DEFAULT_RULE
    wrong = np.asarray(truth, dtype=bool)
    llr, gop = (np.array([e[key] for e in entries], dtype=float) for key in ("llr", "gop"))
    best: tuple[float, Rule] | None = None
    for weight in GOP_WEIGHTS:
        f1, threshold = best_f1_threshold(llr + weight * gop, wrong)
        if best is None or f1 > best[0]:
            best = (f1, Rule(threshold, weight))
    return best


RULES: dict[str, Callable[[list[dict], str | None], Rule]] = {
    f"false-alarm budget {FALSE_ALARM_RATE:.1%}": lambda lines, out: calibrated_rule(lines, FALSE_ALARM_RATE, out),
    "best F1 on calibration (baseline)": lambda lines, out: best_f1_rule(lines, out)[1],
}


def scored(lines: list[dict], rule: Rule) -> dict:
    for line in lines:
        judge(line, rule)
    truth = ground_truth_scores(lines, rule)
    return {
        "rule": {"threshold": rule.threshold, "gop_weight": rule.gop_weight},
        "utterances": len(lines),
        "syllables": sum(len(line["syllables"]) for line in lines),
        **truth,
        "f1_ceiling": best_f1_rule(lines)[0],
        "per_child": child_counts(lines, rule),
    }


def child_counts(lines: list[dict], rule: Rule) -> dict[str, list[int]]:
    """Per child (speaker_id): the syllables [true flags, false flags, missed errors] under `rule`."""
    counts: dict[str, list[int]] = {}
    for line in lines:
        entries, truth = labelled_syllables([line])
        d = detection([rule.flags(e["llr"], e["gop"]) for e in entries], truth)
        child = counts.setdefault(line["speaker_id"], [0, 0, 0])
        for k, key in enumerate(("tp", "fp", "fn")):
            child[k] += d[key]
    return counts


def mean_f1_interval(results: dict, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> list[float] | None:
    """The CI_LEVEL percentile-bootstrap interval of the mean F1 over `results` (sets scored by
    `scored`), resampling the test children with replacement: one draw for all the sets, which
    share their children (and so their false flags). A set with no error in a draw is left out of
    that draw's mean, as `means` leaves out a set without errors."""
    children = sorted({child for r in results.values() for child in r["per_child"]})
    if not children:
        return None
    draws = np.random.default_rng(seed).integers(0, len(children), size=(resamples, len(children)))
    f1s = []
    for r in results.values():
        counts = np.array([r["per_child"].get(child, (0, 0, 0)) for child in children])
        tp, fp, fn = counts[draws].sum(axis=1).T
        f1s.append(np.where(tp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), np.nan))
    mean = np.nanmean(np.stack(f1s), axis=0)
    alpha = (1.0 - CI_LEVEL) / 2
    return [float(q) for q in np.quantile(mean, [alpha, 1.0 - alpha])]


def evaluate_model(assessor: Assessor, args, held_out) -> dict[str, dict]:
    """Per rule of RULES: the in-distribution and held-out results of one model."""
    calibration = assessed_lines(assessor, args.out, "calibration", args, None, args.seed, None)
    sets = {
        "all processes (in-distribution)": (
            assessed_lines(assessor, args.out, "test-all", args, None, args.seed + 1, None),
            None,
        )
    }
    for kind in held_out:
        lines = assessed_lines(assessor, args.out, f"test-{kind.name}", args, (kind.name,), args.seed + 1, kind.ages)
        sets[f"held out: {kind.name}"] = (lines, kind.name)
    return {
        rule_name: {name: scored(lines, make(calibration, leave_out)) for name, (lines, leave_out) in sets.items()}
        for rule_name, make in RULES.items()
    }


def means(results: dict) -> dict:
    """The in-distribution F1 and the held-out means (processes; processes and other)."""
    # A set whose prompts gave its kind no chance (no error) has no recall: left out of the means.
    held = {name: r for name, r in results.items() if name.startswith("held out") and r["injected_syllables"]}
    processes = {name: r for name, r in held.items() if name != f"held out: {OTHER}"}
    return {
        "in_distribution": results["all processes (in-distribution)"]["detection"],
        "held_out_mean": held_out_mean(processes),
        "held_out_mean_with_other": held_out_mean(held),
    }


def held_out_mean(results: dict) -> dict:
    """Each figure's mean over the held-out sets (the AUCs over those where they are defined)."""

    def mean(values: list) -> float | None:
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    figures = {k: mean([r["detection"][k] for r in results.values()]) for k in ("precision", "recall", "f1")}
    others = {k: mean([r[k] for r in results.values()]) for k in ("f1_ceiling", "score_auc", "gop_auc")}
    return {"sets": len(results), **figures, "f1_interval": mean_f1_interval(results), **others}


def table(results: dict) -> list[str]:
    rows = [
        "| test set | errors / syllables | P / R / F1 | F1 ceiling | syllable AUC | GOP AUC |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        d = r["detection"]
        auc = ["-" if r[k] is None else f"{r[k]:.3f}" for k in ("score_auc", "gop_auc")]
        rows.append(
            f"| {name} | {r['injected_syllables']} / {r['syllables']} | "
            f"{d['precision']:.3f} / {d['recall']:.3f} / {d['f1']:.3f} | {r['f1_ceiling']:.3f} | {auc[0]} | {auc[1]} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="phone-unit model (checkpoint, base or export)")
    parser.add_argument("--baseline-model", help="another phone-unit model scored on the same children")
    parser.add_argument(
        "--speeds",
        nargs="+",
        type=float,
        default=[1.0],
        help="each model scored with its recordings played at each speed (`assess --speed`); the first is the headline",
    )
    parser.add_argument("--out", required=True, type=Path)
    # 72 children: with 24, a process of ages 3-5 had 2-6 errors and its F1 swung by tenths between seeds.
    parser.add_argument("--children", type=int, default=72, help="child speakers per set (ages 3-10)")
    parser.add_argument("--utterances", type=int, default=10, help="utterances per child")
    parser.add_argument("--rate", type=float, default=0.15, help="probability a syllable is said wrong")
    parser.add_argument("--seed", type=int, nargs="+", default=[100], help="one bench per seed (docstring)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--processes", nargs="+", help="held out in turn (default: every kind)")
    args = parser.parse_args()
    for speed in args.speeds:
        check_speed(speed)
    if len(set(args.seed)) < len(args.seed):
        parser.error(f"--seed: a seed given twice ({' '.join(map(str, args.seed))})")
    logging.basicConfig(level=logging.WARNING)
    if len(args.seed) == 1:
        run_seed(argparse.Namespace(**{**vars(args), "seed": args.seed[0]}))
        return
    started = time.monotonic()
    summaries = {
        seed: run_seed(argparse.Namespace(**{**vars(args), "seed": seed, "out": args.out / f"seed-{seed}"}))
        for seed in args.seed
    }
    over_seeds = seed_means(summaries)
    summary = {"seeds": args.seed, "means": over_seeds, "seconds": round(time.monotonic() - started, 1)}
    write_json(summary, args.out / "lopo.json")
    seeds = " / ".join(str(seed) for seed in args.seed)
    print(f"\n| model | rule | held-out processes F1, seeds {seeds} | mean | in-distribution F1, seeds {seeds} |")
    print("|---|---|---|---|---|")
    for label, per_rule in over_seeds.items():
        for rule, m in per_rule.items():
            print(
                f"| {label} | {rule} | {' / '.join(map(_f, m['held_out_f1']))} | {_f(m['held_out_f1_mean'])} | "
                f"{' / '.join(map(_f, m['in_distribution_f1']))} |"
            )
    print(f"{summary['seconds']:.0f} s; {args.out / 'lopo.json'}")


def seed_means(summaries: dict[int, dict]) -> dict[str, dict[str, dict]]:
    """Per model and rule, from each seed's summary (run_seed): the held-out mean F1 (processes) and
    the in-distribution F1 per seed, in the order given, and the mean of the held-out ones over the
    seeds that had one."""
    first = next(iter(summaries.values()))["means"]
    result: dict[str, dict[str, dict]] = {}
    for label, per_rule in first.items():
        for rule in per_rule:
            runs = [s["means"][label][rule] for s in summaries.values()]
            held = [m["held_out_mean"]["f1"] for m in runs]
            present = [f for f in held if f is not None]
            result.setdefault(label, {})[rule] = {
                "held_out_f1": held,
                "held_out_f1_mean": float(np.mean(present)) if present else None,
                "in_distribution_f1": [m["in_distribution"]["f1"] for m in runs],
            }
    return result


def run_seed(args) -> dict:
    """The bench on one seed's children (module docstring): writes args.out/lopo.json, prints the
    tables, returns the summary."""
    started = time.monotonic()
    held_out = select(tuple(args.processes) if args.processes else None)
    paths = {"model": args.model, **({"baseline model": args.baseline_model} if args.baseline_model else {})}
    # The headline is the model at the first speed ("model"); every other pair is a baseline.
    models = {
        label if k == 0 else f"{label} at speed {speed}": (path, speed)
        for label, path in paths.items()
        for k, speed in enumerate(args.speeds)
    }
    skipped: dict[str, str] = {}
    results: dict[str, dict] = {}
    for label, (path, speed) in models.items():
        assessor = Assessor(path, speed)
        results[label] = evaluate_model(assessor, args, held_out)
        skipped.update(assessor.skipped)
    shipped = next(iter(RULES))
    summary = {
        "models": {label: {"model": path, "speed": speed} for label, (path, speed) in models.items()},
        "children": args.children,
        "utterances_per_child": args.utterances,
        "rate": args.rate,
        "seed": args.seed,
        "processes": [p.name for p in select(None)],
        "means": {label: {rule: means(r) for rule, r in per_rule.items()} for label, per_rule in results.items()},
        "skipped": {"count": len(skipped), "utt_ids": sorted(skipped)},
        "results": results,
        "seconds": round(time.monotonic() - started, 1),
    }
    write_json(summary, args.out / "lopo.json")
    print(f"seed {args.seed}: {args.model} at speed {args.speeds[0]}, {shipped}:")
    print("\n".join(table(results["model"][shipped])))
    print("\n| model | rule | held-out processes P / R / F1 | with other F1 | in-distribution P / R / F1 |")
    print("|---|---|---|---|---|")
    for label, per_rule in summary["means"].items():
        for rule, m in per_rule.items():
            held, other, ind = m["held_out_mean"], m["held_out_mean_with_other"], m["in_distribution"]
            print(
                f"| {label} | {rule} | {_f(held['precision'])} / {_f(held['recall'])} / {_f(held['f1'])} | "
                f"{_f(other['f1'])} | {ind['precision']:.3f} / {ind['recall']:.3f} / {ind['f1']:.3f} |"
            )
    base = [m[rule]["held_out_mean"]["f1"] for m in summary["means"].values() for rule in m][1:]
    own = summary["means"]["model"][shipped]["held_out_mean"]
    interval = own["f1_interval"] and "-".join(f"{v:.3f}" for v in own["f1_interval"])
    print(
        f"held-out processes ({own['sets']} with errors): F1 {_f(own['f1'])} ({CI_LEVEL:.0%} interval over "
        f"resampled children {interval or '-'}; ceiling, each set's best rule fitted on itself: "
        f"{_f(own['f1_ceiling'])}), syllable AUC {_f(own['score_auc'])}, "
        f"GOP AUC {_f(own['gop_auc'])}; F1 vs each baseline above: "
        + ", ".join(f"{own['f1'] / b:.2f}x" if own["f1"] and b else "-" for b in base)
    )
    print(f"{summary['seconds']:.0f} s; {args.out / 'lopo.json'}")
    return summary


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
