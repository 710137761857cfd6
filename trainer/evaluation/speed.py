"""The comparison's speed column: every model's forward pass timed against the baseline's in one
process, round by round on the same utterances, the best round of each kept.

Each evaluation also times its own transcription (metrics.json `speed`), but in one `compare`
process those times drift: the same forward pass ran 20-40% slower in later evaluations than in the
first, so the model evaluated first (the base) looked fastest. On the demo, a merged phase-3 model
read 63-75% of the base's speed that way, and 92-105% timed alternately with it.
"""

from __future__ import annotations

from typing import Any, Optional

from trainer.data.manifest import load_manifest
from trainer.data.screening import screen_test_rows
from trainer.evaluation.config import EvalConfig
from trainer.evaluation.evaluate import LoadedModel, resolve_device
from trainer.evaluation.inference import default_batch_seconds, transcribe

ROUNDS = 3
# Audio per round and model: enough batches to average over shapes, a few seconds on a CPU.
AUDIO_SECONDS = 120.0


def _subset(manifest: str) -> list[dict]:
    rows, _ = screen_test_rows(load_manifest(manifest), manifest)
    picked, total = [], 0.0
    for row in rows:
        if total >= AUDIO_SECONDS:
            break
        picked.append(row)
        total += row["duration"]
    return picked


def relative_speeds(
    models: dict[str, LoadedModel], baseline: str, manifest: str, cfg: EvalConfig, rounds: int = ROUNDS
) -> dict[str, dict[str, Optional[float]]]:
    """name -> {relative_speed, relative_speed_merged}: the baseline's forward-pass seconds over the
    model's (1.0 = as fast). For an adapter `relative_speed` is the unmerged adapter's and
    `relative_speed_merged` its merged copy's (what `trainer export` ships); None for the others."""
    rows = _subset(manifest)
    requested = resolve_device(cfg.device)
    # (name, form) -> (transcriber, padded audio seconds per batch on its device)
    timed: dict[tuple[str, str], tuple[Any, float]] = {}
    for name, loaded in models.items():
        device = loaded.runs_on(requested)
        forms: dict[str, Any] = {"own": loaded.model}
        if loaded.info["kind"] == "adapter":
            forms["merged"] = loaded.merged()
        for form, model in forms.items():
            batch_seconds = cfg.batch_seconds or default_batch_seconds(device)
            timed[name, form] = (loaded.transcriber(model, device, cfg), batch_seconds)
    best: dict[tuple[str, str], float] = {}
    for _ in range(rounds):
        for key, (transcriber, batch_seconds) in timed.items():
            seconds = transcribe(transcriber, rows, batch_seconds, num_workers=0, progress=False).model_seconds
            best[key] = min(seconds, best.get(key, seconds))
    reference = best[baseline, "merged"] if (baseline, "merged") in best else best[baseline, "own"]
    return {
        name: {
            "relative_speed": reference / best[name, "own"],
            "relative_speed_merged": reference / best[name, "merged"] if (name, "merged") in best else None,
        }
        for name in models
    }
