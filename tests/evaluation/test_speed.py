"""The speed column's timing: models alternate round by round, and each keeps its best round, so a
forward pass that gets slower over a process's life does not favour the model timed first."""

from types import SimpleNamespace

import pytest

from trainer.evaluation import speed
from trainer.evaluation.config import EvalConfig
from trainer.evaluation.evaluate import load_model


def test_models_alternate_by_round_and_keep_their_best(eval_models, eval_corpus, monkeypatch):
    calls = []

    def drifting(transcriber, rows, *args, **kwargs):
        calls.append(transcriber)
        assert rows and sum(r["duration"] for r in rows[:-1]) < speed.AUDIO_SECONDS
        return SimpleNamespace(model_seconds=1.0 + 0.5 * len(calls))  # every call slower than the last

    monkeypatch.setattr(speed, "transcribe", drifting)
    models = {"base": load_model(eval_models["base"]), "r4": load_model(eval_models["adapter"])}
    speeds = speed.relative_speeds(models, "base", str(eval_corpus["test"]), EvalConfig(num_workers=0), rounds=3)

    # base, adapter, merged adapter; then again in the same order: alternating, not one model's rounds in a row
    assert len(set(calls)) == 3 and calls == calls[:3] * 3
    # each keeps its first (fastest) round: 1.5 s, 2.0 s, 2.5 s
    assert speeds["base"] == {"relative_speed": 1.0, "relative_speed_merged": None}
    assert speeds["r4"]["relative_speed"] == pytest.approx(1.5 / 2.0)
    assert speeds["r4"]["relative_speed_merged"] == pytest.approx(1.5 / 2.5)
