"""The CTC loss of a training step, computed outside the model so that it needs no host reads.

Wav2Vec2ForCTC(labels=...) checks `labels.max() < vocab_size` (a read of a device value) and
flattens the targets with `masked_select` (a data-dependent shape: the host waits for the
device). The same loss is computed here from the model's logits with padded targets [B, U] and
lengths counted on the host from the collated batch (CPU tensors). The settings are transformers'
(ForCTCLoss): log-softmax in fp32, the config's blank (`pad_token_id`), `ctc_loss_reduction` and
`ctc_zero_infinity`, cuDNN off. Label ids are checked against the vocabulary once per row, when
the manifests are screened (`label_id_problem`), not on every step.

torch's CUDA CTC kernel itself still copies its length arrays to the device (ATen passes them as
host arrays), which torch gives no way to avoid.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

IGNORE = -100  # the label padding of the collated batch (transformers' ignore index)


def label_lengths(labels: torch.Tensor) -> torch.Tensor:
    """Labels per utterance of a padded (host) label batch."""
    return (labels != IGNORE).sum(-1)


def ctc_loss(
    logits: torch.Tensor, labels: torch.Tensor, frames: torch.Tensor, lengths: torch.Tensor, config: Any
) -> torch.Tensor:
    """Wav2Vec2ForCTC's loss for `logits` [B, T, V]; `labels` [B, U] padded with IGNORE (on the
    logits' device), `frames` and `lengths` [B] the valid logit frames and labels (host tensors)."""
    log_probs = torch.nn.functional.log_softmax(logits, dim=-1, dtype=torch.float32).transpose(0, 1)
    targets = labels.clamp_min(0)  # padding past each length is ignored by ctc_loss; any valid id will do
    with torch.backends.cudnn.flags(enabled=False):
        return torch.nn.functional.ctc_loss(
            log_probs,
            targets,
            frames,
            lengths,
            blank=config.pad_token_id,
            reduction=config.ctc_loss_reduction,
            zero_infinity=config.ctc_zero_infinity,
        )


def batch_ctc_loss(logits: torch.Tensor, batch: dict[str, Any], base: Any, device: torch.device) -> torch.Tensor:
    """The CTC loss of `logits` for a collated (host) batch (trainer.training.dataset), lengths
    counted on the host; `base` the Wav2Vec2ForCTC (its frame count per input length)."""
    labels = batch["labels"]
    frames = base._get_feat_extract_output_lengths(batch["attention_mask"].sum(-1))
    device_labels = labels.to(device, non_blocking=True)
    return ctc_loss(logits, device_labels, frames, label_lengths(labels), base.config)


def label_id_problem(labels: Sequence[int], vocab_size: int, blank: int) -> Optional[str]:
    """Why label ids cannot be CTC targets of a model with `vocab_size` outputs (None: they can)."""
    bad = sorted({i for i in labels if not 0 <= i < vocab_size or i == blank})
    if bad:
        return f"label id(s) {bad} outside the model's {vocab_size} outputs or equal to the blank ({blank})"
    return None
