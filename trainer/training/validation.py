"""The training run's validation: CER, WER and CTC loss of the (EMA) weights on the val rows.

Hypotheses are scored as `python -m trainer evaluate` scores them (trainer.evaluation.evaluate.
score_utterances: references as the model's vocabulary writes them). They are the decoded text as
is: an unknown unit counts as the characters of "[UNK]", where `evaluate` counts one (validation
numbers of a run stay comparable with its earlier ones). The validation batches are
padded to the run's length ladder, each rank scores its share and the sums are reduced. Audio that
cannot be read is skipped and counted; more skipped rows than `max_skipped_val_share` allows (or
none scored) is a ConfigError rather than a score of zero.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Optional

import torch
from accelerate import Accelerator

from trainer.config import TrainConfig
from trainer.evaluation.evaluate import score_utterances
from trainer.exit_codes import ConfigError
from trainer.model.processor import TextCodec
from trainer.training.ctc import batch_ctc_loss
from trainer.training.dataset import CTCCollator, ItemKey, model_inputs
from trainer.training.ema import EMA
from trainer.training.run_data import RunData
from trainer.training.sampler import LengthLadder, plan_eval_batches

_log = logging.getLogger(__package__)  # the run's one logger, "trainer.training"
DECODED_EXAMPLES = 4  # validation utterances shown as text in TensorBoard
SCORED = ("cer", "wer")


class Validation:
    """The validation of one run: its val rows, planned once, read by one persistent loader."""

    def __init__(
        self,
        cfg: TrainConfig,
        acc: Accelerator,
        data: RunData,
        codec: TextCodec,
        base: Any,
        collator: CTCCollator,
        ladder: LengthLadder,
    ) -> None:
        self.cfg, self.acc, self.data, self.codec, self.base = cfg, acc, data, codec, base
        self.collator, self.ladder = collator, ladder
        self.loader: Optional[torch.utils.data.DataLoader] = None

    def _batches(self) -> list[list[ItemKey]]:
        plan = plan_eval_batches([r["duration"] for r in self.data.val_rows], self.cfg.max_batch_seconds, self.ladder)
        mine = plan[self.acc.process_index :: self.acc.num_processes]
        return [[ItemKey(0, i, 1.0, batch.samples) for i in batch.indices] for batch in mine]

    @torch.inference_mode()
    def run(self, model: torch.nn.Module, ema: Optional[EMA], step: int) -> dict[str, Any]:
        """CER/WER (trainer.evaluation.metrics definitions) of the EMA weights on the val set."""
        acc, device = self.acc, self.acc.device
        model = acc.unwrap_model(model)
        model.eval()
        if self.loader is None:  # one loader (and its workers) for every evaluation of the run
            self.loader = self.data.loader(self.data.val_set, self._batches(), self.collator, persistent=True)
        # char errors, chars, word errors, words, loss, utts, empty hyps, unreadable audio
        totals = torch.zeros(8, dtype=torch.float64)
        examples: list[tuple[str, str]] = []
        first_unreadable = ""
        with ema.applied() if ema is not None else contextlib.nullcontext():
            for batch in self.loader:
                totals[7] += len(batch["skipped"])
                for item in batch["skipped"]:
                    first_unreadable = first_unreadable or f"{item.utt_id}: {item.reason}: {item.path}"
                    _log.warning(
                        "validation: skipped unreadable audio %s (%s): %s", item.utt_id, item.reason, item.path
                    )
                if batch["input_values"] is None:
                    continue
                with acc.autocast():
                    logits = model(**model_inputs(batch, device)).logits
                loss = batch_ctc_loss(logits, batch, self.base, device)
                lengths = self.base._get_feat_extract_output_lengths(batch["attention_mask"].sum(-1)).tolist()
                hyps = self.codec.decode_logits(logits.float().cpu().numpy(), lengths)
                scores = score_utterances(self.codec, batch["texts"], batch["pronounced"], hyps, SCORED)
                for c, w in zip(scores.edits["cer"], scores.edits["wer"]):
                    totals[:4] += torch.tensor([c.errors, c.ref_len, w.errors, w.ref_len], dtype=torch.float64)
                refs = scores.references
                totals[4] += float(loss) * len(refs)
                totals[5] += len(refs)
                totals[6] += sum(not h.strip() for h in hyps)
                examples += list(zip(refs, hyps))[: DECODED_EXAMPLES - len(examples)]
        model.train()
        if acc.num_processes > 1:
            totals = acc.reduce(totals.to(device), "sum").cpu()
        char_err, chars, word_err, words, loss, utts, empty, unreadable = totals.tolist()
        skips = self.data.val_skips
        skipped = skips.skipped + int(unreadable)
        if utts == 0 or skipped > self.cfg.max_skipped_val_share * skips.total:
            raise ConfigError(
                f"val_manifest: evaluation at step {step} scored {int(utts)} of {skips.total} "
                f"rows ({skips.skipped} skipped before training, {int(unreadable)} unreadable now; "
                f"max_skipped_val_share={self.cfg.max_skipped_val_share:g})"
                + (f"; first unreadable: {first_unreadable}" if first_unreadable else "")
            )
        return {
            "step": step,
            "cer": char_err / max(chars, 1.0),
            "wer": word_err / max(words, 1.0),
            "loss": loss / max(utts, 1.0),
            "utterances": int(utts),
            "empty_fraction": empty / max(utts, 1.0),
            "examples": [{"ref": r, "hyp": h} for r, h in examples],
        }
