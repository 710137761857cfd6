"""What a batch holds: manifest rows -> (perturbed) waveforms and CTC label ids.

The dataset is map-style over manifest rows (metadata only; audio is read per item by the
loader workers, never all at once). Keys (`ItemKey`) carry the epoch and row index (augmentation is
seeded per utterance and epoch) and what the batch plan decided: the speed factor and the rung of
the length ladder the batch is padded to. Unreadable audio does not stop training: the item comes back as a
`Skipped` record, the collator drops it from the batch and reports it, and the trainer counts it.

Batch format (B utterances, T samples of the longest, U labels of the longest):
    input_values    float32 [B, T]  normalised waveforms, zero-padded
    attention_mask  int64   [B, T]  1 on real samples
    labels          int64   [B, U]  label ids, -100 on padding
    mask_time_indices bool  [B, F]  SpecAugment time masks over the F output frames (only from a
                                    collator given `time_masks`: training batches)
    seconds         float           real audio seconds in the batch
    padded_seconds  float           B x T / sample rate (T: a rung of the length ladder)
    utt_ids         list[str]
    texts           list[str]       transcripts; `pronounced` their pronounced forms or None
    skipped         list[Skipped]   items dropped because their audio could not be read
An all-skipped batch has `input_values` None. The model is called with MODEL_INPUTS (`model_inputs`);
the CTC loss is computed outside it (trainer.training.ctc).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Sequence

import numpy as np
import torch
from transformers import Wav2Vec2FeatureExtractor

from trainer.data.audio import SAMPLE_RATE, AudioError, load_audio
from trainer.model.frontend import CONV_KERNEL, CONV_STRIDE, conv_frames
from trainer.model.processor import TextCodec
from trainer.training.augment import Perturbation
from trainer.training.sampler import LengthLadder
from trainer.training.spec_augment import TimeMasks

MODEL_INPUTS = ("input_values", "attention_mask", "mask_time_indices")


def model_inputs(batch: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
    """`batch`'s MODEL_INPUTS (those it has) on `device`. Pinned (on CUDA) host batches: the
    copies overlap the running step instead of waiting for it."""
    return {key: batch[key].to(device, non_blocking=True) for key in MODEL_INPUTS if key in batch}


class ItemKey(NamedTuple):
    epoch: int
    index: int
    speed: float = 1.0
    samples: int = 0  # the padded length the plan gave the item's batch (0: its own length)


@dataclass(frozen=True)
class Skipped:
    utt_id: str
    path: str
    reason: str


class SpeechDataset(torch.utils.data.Dataset):
    def __init__(
        self, rows: Sequence[dict], codec: TextCodec, seed: int, perturb: Optional[Perturbation] = None
    ) -> None:
        self.rows = rows
        self.codec = codec
        self.seed = seed
        self.perturb = perturb

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: ItemKey) -> dict[str, Any] | Skipped:
        epoch, index, speed, samples = key
        row = self.rows[index]
        try:
            audio = load_audio(row["audio_filepath"])
        except AudioError as exc:
            return Skipped(row["utt_id"], row["audio_filepath"], exc.reason)
        if self.perturb is not None:
            audio = self.perturb(audio, speed, np.random.default_rng([self.seed, epoch, index]))
        return {
            "utt_id": row["utt_id"],
            "audio": audio,
            "labels": self.codec.encode_row(row),
            "text": row["text"],
            "pronounced": row.get("pronounced"),
            "pad_to": samples,
            "draw": (self.seed, epoch, index),  # seeds the batch's SpecAugment masks
        }


@dataclass
class CTCCollator:
    """Pads a list of items into the batch format above.

    `min_samples` pads every batch to at least that many samples: SpecAugment's time masks need
    `mask_time_length` frames in the padded batch, or transformers raises on very short clips.
    A batch is padded to the length its plan gave it (items' `pad_to`), and with a `ladder` up to
    a rung of it, so that a clip longer than planned (a manifest duration rounded down) still
    lands on a rung rather than on a shape of its own.

    With `time_masks`, the batch carries SpecAugment time masks over the frames of the model's conv
    front end (`conv_kernel`, `conv_stride`), seeded by its items' (seed, epoch, index).
    """

    features: Wav2Vec2FeatureExtractor
    min_samples: int = 0
    ladder: Optional[LengthLadder] = None
    time_masks: Optional[TimeMasks] = None
    conv_kernel: tuple[int, ...] = CONV_KERNEL
    conv_stride: tuple[int, ...] = CONV_STRIDE

    def __call__(self, items: Sequence[dict[str, Any] | Skipped]) -> dict[str, Any]:
        kept = [x for x in items if not isinstance(x, Skipped)]
        skipped = [x for x in items if isinstance(x, Skipped)]
        batch: dict[str, Any] = {"skipped": skipped, "utt_ids": [x["utt_id"] for x in kept], "input_values": None}
        if not kept:
            return {**batch, "seconds": 0.0, "padded_seconds": 0.0, "texts": [], "pronounced": []}
        longest = max(self.min_samples, *(max(len(x["audio"]), x.get("pad_to", 0)) for x in kept))
        if self.ladder is not None:
            longest = int(self.ladder.padded_samples(longest))
        inputs = self.features(
            [x["audio"] for x in kept],
            sampling_rate=SAMPLE_RATE,
            padding="max_length",
            max_length=longest,
            return_attention_mask=True,
            return_tensors="pt",
        )
        width = max(1, max(len(x["labels"]) for x in kept))
        labels = torch.full((len(kept), width), -100, dtype=torch.long)
        for row, x in enumerate(kept):
            labels[row, : len(x["labels"])] = torch.tensor(x["labels"], dtype=torch.long)
        if self.time_masks is not None:
            frames = [conv_frames(self.conv_kernel, self.conv_stride, len(x["audio"])) for x in kept]
            padded = conv_frames(self.conv_kernel, self.conv_stride, longest)
            batch["mask_time_indices"] = self.time_masks.draw(frames, padded, [s for x in kept for s in x["draw"]])
        return {
            **batch,
            "input_values": inputs["input_values"],
            "attention_mask": inputs["attention_mask"],
            "labels": labels,
            "texts": [x["text"] for x in kept],
            "pronounced": [x.get("pronounced") for x in kept],
            "seconds": sum(len(x["audio"]) for x in kept) / SAMPLE_RATE,
            "padded_seconds": len(kept) * longest / SAMPLE_RATE,
        }
