"""The step's CTC loss is transformers' ForCTCLoss on padded targets; label ids are checked once."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers.loss.loss_ctc import ForCTCLoss

from trainer.training.ctc import IGNORE, ctc_loss, label_id_problem, label_lengths

from .helpers import smoke_config


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_ctc_loss_equals_transformers_on_padded_targets(reduction):
    torch.manual_seed(0)
    logits = torch.randn(3, 30, 9, requires_grad=True)
    labels = torch.tensor([[3, 4, 4, 5], [6, IGNORE, IGNORE, IGNORE], [IGNORE] * 4])  # the last: no labels
    frames = torch.tensor([30, 21, 12])
    config = SimpleNamespace(pad_token_id=0, ctc_loss_reduction=reduction, ctc_zero_infinity=True)
    ours = ctc_loss(logits, labels, frames, label_lengths(labels), config)
    (grad_ours,) = torch.autograd.grad(ours, logits)
    theirs = ForCTCLoss(logits, labels, frames, blank_token_id=0, reduction=reduction, zero_infinity=True)
    (grad_theirs,) = torch.autograd.grad(theirs, logits)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(grad_ours, grad_theirs)
    assert label_lengths(labels).tolist() == [4, 1, 0]


def test_label_ids_outside_the_model_or_blank_are_named():
    assert label_id_problem([1, 2, 8], vocab_size=9, blank=0) is None
    assert "[9]" in label_id_problem([1, 9], vocab_size=9, blank=0)
    assert "[0]" in label_id_problem([0, 3], vocab_size=9, blank=0)


def test_a_vocabulary_with_ids_past_its_size_stops_before_training(smoke_data, tmp_path):
    """Ids need not be contiguous in vocab.json, but the CTC head has len(vocab) outputs: a row
    whose labels fall outside is named at setup (exit 78), not by a ValueError in some step."""
    import json
    import shutil

    from trainer.exit_codes import ConfigError
    from trainer.training.loop import TrainingRun
    from trainer.training.methods import LoraMethod

    prepared = smoke_data / "prepared"
    vocab_dir = tmp_path / "vocab"
    vocab_dir.mkdir()
    shutil.copy(prepared / "text_units.json", vocab_dir)
    vocab = json.loads((prepared / "vocab.json").read_text(encoding="utf-8"))
    vocab["ᄀ"] = 500  # a unit the smoke transcripts use
    (vocab_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    cfg = smoke_config(smoke_data, tmp_path / "run", vocab=str(vocab_dir))
    with pytest.raises(
        ConfigError, match=rf"^train_manifest: \S+: label id\(s\) \[500\] outside the model's {len(vocab)}"
    ):
        TrainingRun(cfg, LoraMethod())
