"""Audio that only fails once decoded (its header passed the checks at start-up) is dropped from
its batch; a batch left empty still takes part in the step. Rows skipped at start-up are tested
in test_silent_failures."""

from __future__ import annotations

from .helpers import smoke_config


def test_an_all_unreadable_batch_still_takes_a_zero_gradient_step(smoke_data, tmp_path):
    """Every DDP rank must join each gradient all-reduce, so an empty batch runs a silent dummy
    clip with its loss multiplied by zero instead of skipping the step."""

    from trainer.training.dataset import CTCCollator, Skipped
    from trainer.training.loop import TrainingRun
    from trainer.training.methods import LoraMethod

    cfg = smoke_config(smoke_data, tmp_path / "run")
    run = TrainingRun(cfg, LoraMethod())
    batch = CTCCollator(run.processor.feature_extractor)([Skipped("u1", "/x.wav", "unreadable")])
    assert batch["input_values"] is None and len(batch["skipped"]) == 1
    loss = run._forward_loss(batch)
    loss.backward()
    assert loss.item() == 0.0
    assert all(p.grad is not None and not p.grad.any() for p in run.trainable)
