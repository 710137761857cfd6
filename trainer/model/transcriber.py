"""What an app imports to transcribe: a CTC model protocol, its PyTorch implementation and the
transcriber that decodes with any implementation (the ONNX one is trainer.model.onnx_runtime's).

    from trainer.model import load_for_inference
    from trainer.model.processor import TextCodec
    from trainer.model.transcriber import CtcTranscriber
    model, _, _ = load_for_inference("EXPORT")               # or any Wav2Vec2ForCTC, plain or peft-wrapped
    asr = CtcTranscriber(model, TextCodec.from_dir("EXPORT"))
    result = asr.decode([samples_16khz_float32])[0]          # .text, .confidence, .words[i].confidence
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np
import torch

from trainer.data.audio import SAMPLE_RATE
from trainer.model.chunking import chunk_bounds
from trainer.model.processor import Decoded, TextCodec


class CtcModel(Protocol):
    """What a transcriber runs: a padded batch in, (logits: batch x frames x vocabulary, valid
    frames of each utterance) out. `TorchCtcModel` and `OnnxCtcModel` implement it."""

    def __call__(self, input_values: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class TorchCtcModel:
    """A Wav2Vec2ForCTC (plain or peft-wrapped) as a `CtcModel`."""

    def __init__(self, model: torch.nn.Module, device: str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.device = device

    def __call__(self, input_values: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(logits: batch x frames x vocabulary, frames of each utterance) of a padded batch."""
        with torch.inference_mode():
            mask = torch.from_numpy(attention_mask).to(self.device)
            logits = self.model(input_values=torch.from_numpy(input_values).to(self.device), attention_mask=mask).logits
            frames = self.model._get_feat_extract_output_lengths(mask.sum(-1))
        return logits.float().cpu().numpy(), frames.cpu().numpy()


class CtcTranscriber:
    """Greedy CTC decoding of padded batches with one model: a torch module (base, adapter or
    merged) or any other `CtcModel`, e.g. an ONNX export (`trainer.model.onnx_runtime.OnnxCtcModel`).

    Audio longer than `chunk_seconds` is cut into overlapping chunks (chunking.chunk_bounds) that
    run as one batch; each chunk's logits lose the `stride` overlap at the sides it shares with
    a neighbour, and the centres are joined before decoding.
    """

    def __init__(
        self,
        model: torch.nn.Module | CtcModel,
        codec: TextCodec,
        device: str = "cpu",
        chunk_seconds: float = 0.0,
        stride_seconds: float = 0.0,
    ) -> None:
        self.model = TorchCtcModel(model, device) if isinstance(model, torch.nn.Module) else model
        self.codec = codec
        self.chunk = round(chunk_seconds * SAMPLE_RATE)
        self.stride = round(stride_seconds * SAMPLE_RATE)

    def __call__(self, audios: Sequence[np.ndarray]) -> list[str]:
        return [decoded.text for decoded in self.decode(audios)]

    def decode(self, audios: Sequence[np.ndarray]) -> list[Decoded]:
        """Text, words and confidences of each audio."""
        return [self.from_logits(logits) for logits in self.logits(audios)]

    def from_logits(self, logits: np.ndarray) -> Decoded:
        """What `decode` returns for one audio, from its logits."""
        return self.codec.decode(logits)

    def logits(self, audios: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each audio's logits (frames x vocabulary), chunks joined, padding frames cut off."""
        pieces: list[np.ndarray] = []
        plans: list[list[tuple[int, int, int, int]]] = []
        for audio in audios:
            plans.append(chunk_bounds(len(audio), self.chunk, self.stride))
            pieces += [audio[start:end] for start, end, _, _ in plans[-1]]
        features = self.codec.processor.feature_extractor(
            pieces, sampling_rate=SAMPLE_RATE, padding=True, return_attention_mask=True, return_tensors="np"
        )
        logits, frames = self.model(
            features["input_values"].astype(np.float32), features["attention_mask"].astype(np.int64)
        )
        joined, k = [], 0
        for plan in plans:
            centres = []
            for start, end, left, right in plan:
                # Frames past a piece's own length only ever saw padding: cut them off; of the
                # rest, drop the overlap shared with the neighbours.
                n = int(frames[k])
                drop_left, drop_right = (round(side * n / (end - start)) for side in (left, right))
                centres.append(logits[k, drop_left : n - drop_right])
                k += 1
            joined.append(np.concatenate(centres))
        return joined

    def warm_up(self) -> None:
        """One untimed pass: the first forward pays for memory allocation and kernel selection."""
        self.decode([np.zeros(SAMPLE_RATE, dtype=np.float32)])
