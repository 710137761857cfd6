"""A manifest with unreadable audio trains anyway: the bad rows are skipped and counted."""

from __future__ import annotations

import json

from .helpers import run_cli, smoke_args


def test_corrupt_and_missing_audio_are_skipped_and_counted(smoke_data, tmp_path):
    rows = [json.loads(line) for line in (smoke_data / "prepared" / "train.jsonl").read_text().splitlines()]
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 40)
    bad = [
        {**rows[0], "utt_id": "bad-garbage", "audio_filepath": str(garbage)},
        {**rows[1], "utt_id": "bad-missing", "audio_filepath": str(tmp_path / "missing.wav")},
    ]
    manifest = tmp_path / "train_with_bad_audio.jsonl"
    manifest.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows + bad), encoding="utf-8")

    args = smoke_args(smoke_data, tmp_path / "run", "--epochs", "1", "--max-steps", "0", "--train-manifest", str(manifest))
    result = run_cli(args)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # One epoch: every row is read exactly once, so each bad row is counted once.
    assert metrics["skipped_audio"]["count"] == 2
    assert {e["utt_id"] for e in metrics["skipped_audio"]["examples"]} == {"bad-garbage", "bad-missing"}
    assert metrics["train_utterances"] == len(rows) + 2 and metrics["finished"]
    assert "skipped unreadable audio bad-garbage" in result.stderr


def test_an_all_unreadable_batch_still_takes_a_zero_gradient_step(smoke_data, tmp_path):
    """Every DDP rank must join each gradient all-reduce, so an empty batch runs a silent dummy
    clip with its loss multiplied by zero instead of skipping the step."""
    import torch

    from trainer.training.configure import resolve
    from trainer.training.dataset import CTCCollator, Skipped
    from trainer.training.loop import TrainingRun
    from trainer.training.methods import LoraMethod

    prepared = smoke_data / "prepared"
    cfg = resolve("train", "smoke", None, {
        "output": str(tmp_path / "run"), "train_manifest": str(prepared / "train.jsonl"),
        "val_manifest": str(prepared / "val.jsonl"), "vocab": str(prepared), "model": str(smoke_data / "base"),
    })
    run = TrainingRun(cfg, LoraMethod())
    batch = CTCCollator(run.processor.feature_extractor)([Skipped("u1", "/x.wav", "unreadable")])
    assert batch["input_values"] is None and len(batch["skipped"]) == 1
    loss = run._forward_loss(batch)
    loss.backward()
    assert loss.item() == 0.0
    assert all(p.grad is not None and not p.grad.any() for p in run.trainable)
