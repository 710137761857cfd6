"""The processor (feature extractor + CTC tokenizer) built from a vocabulary folder, and the
text codec that turns transcripts into label ids and CTC output back into text.

A vocabulary folder (written by `trainer data vocab`) holds `vocab.json` in the
Wav2Vec2CTCTokenizer format and `text_units.json` saying whether the labels are syllables, jamo or phones.
Both files travel with every checkpoint so a checkpoint decodes on its own.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

from trainer import storage
from trainer.data.audio import SAMPLE_RATE
from trainer.data.text import (
    PAD,
    UNITS_FILE,
    UNK,
    VOCAB_FILE,
    WORD_DELIMITER,
    from_units,
    load_unit,
    normalize_transcript,
    to_units,
)
from trainer.exit_codes import ConfigError


def build_processor(vocab_dir: str | Path) -> Wav2Vec2Processor:
    vocab_file = storage.local_folder(vocab_dir, (VOCAB_FILE, UNITS_FILE)) / VOCAB_FILE
    if not vocab_file.is_file():
        raise ConfigError(
            f"{storage.join(str(vocab_dir), VOCAB_FILE)}: vocabulary not found "
            "(build it with `python -m trainer data prepare`)"
        )
    check_vocab(vocab_file)
    tokenizer = Wav2Vec2CTCTokenizer(
        str(vocab_file),
        unk_token=UNK,
        pad_token=PAD,
        word_delimiter_token=WORD_DELIMITER,
        # CTC has no use for sentence markers; adding them would grow the vocabulary.
        bos_token=None,
        eos_token=None,
    )
    features = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )
    return Wav2Vec2Processor(feature_extractor=features, tokenizer=tokenizer)


def check_vocab(vocab_file: Path) -> None:
    """ConfigError unless the file maps units to distinct integer ids and holds the special units."""
    try:
        vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8 or not JSON
        raise ConfigError(f"{vocab_file}: not a readable vocabulary ({exc})") from None
    if not isinstance(vocab, dict) or not all(
        isinstance(k, str) and type(v) is int and v >= 0 for k, v in vocab.items()
    ):
        raise ConfigError(f"{vocab_file}: must map each unit to a non-negative integer id")
    missing = [unit for unit in (PAD, UNK, WORD_DELIMITER) if unit not in vocab]
    if missing:
        raise ConfigError(f"{vocab_file}: lacks the special unit(s) {', '.join(missing)}")
    if len(set(vocab.values())) != len(vocab):
        raise ConfigError(f"{vocab_file}: two units share an id")


def save_processor(processor: Wav2Vec2Processor, vocab_dir: str | Path, dest: str | Path) -> None:
    """Write the processor files and the text-units file into `dest`."""
    processor.save_pretrained(str(dest))
    shutil.copyfile(storage.local_folder(vocab_dir, (UNITS_FILE,)) / UNITS_FILE, Path(dest) / UNITS_FILE)


def read_vocab(folder: str | Path) -> dict[str, int] | None:
    path = Path(folder) / VOCAB_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


@dataclass
class TextCodec:
    """Transcript <-> label ids for one vocabulary and unit ("syllable", "jamo" or "phone").

    `pronounced`: a manifest row's pronounced form when it has one (phone units; see
    trainer.data.text), which spares a g2pK call.
    """

    processor: Wav2Vec2Processor
    unit: str

    @classmethod
    def from_dir(cls, folder: str | Path) -> "TextCodec":
        return cls(build_processor(folder), load_unit(folder))

    @property
    def vocab_size(self) -> int:
        return len(self.processor.tokenizer)

    def reference(self, text: str, pronounced: str | None = None) -> str:
        """The transcript as it is scored: normalised, and round-tripped through the units."""
        return from_units(to_units(normalize_transcript(text), self.unit, pronounced), self.unit)

    def encode(self, text: str, pronounced: str | None = None) -> list[int]:
        units = to_units(normalize_transcript(text), self.unit, pronounced)
        return self.processor.tokenizer(units).input_ids

    def encode_row(self, row: dict) -> list[int]:
        """Label ids of a manifest row (its pronounced form used when it has one)."""
        return self.encode(row["text"], row.get("pronounced"))

    def decode_logits(self, logits: np.ndarray, lengths: Sequence[int]) -> list[str]:
        """Greedy CTC decoding (argmax, collapse repeats, drop blanks) of a padded batch."""
        return [self.decode(row[:n]).text for row, n in zip(logits, lengths)]

    def decode(self, logits: np.ndarray) -> Decoded:
        """Greedy CTC decoding of one utterance's logits (frames x vocabulary), with confidences.

        A word's confidence is the lowest posterior of the units it emitted over the frames that
        emitted them (blank frames inside the word do not count): one doubtful unit makes a
        doubtful word. The utterance's confidence is the mean of its words' (None when empty).
        """
        tokenizer = self.processor.tokenizer
        ids = logits.argmax(-1)
        # Softmax of the winning class only: exp(max - max) / sum(exp(logits - max)).
        shifted = logits - logits.max(-1, keepdims=True)
        best = 1.0 / np.exp(shifted).sum(-1)
        out = tokenizer.decode(ids, output_word_offsets=True)
        emitting = ids != tokenizer.pad_token_id
        words = []
        for offset in out.word_offsets:
            start, end = int(offset["start_offset"]), int(offset["end_offset"])
            span = best[start:end][emitting[start:end]]
            words.append(Word(from_units(offset["word"], self.unit), float(span.min()), start, end))
        return Decoded(from_units(out.text, self.unit), words)


@dataclass
class Word:
    """One decoded word: its text, confidence, and frames [start, end) of the logits."""

    text: str
    confidence: float
    start_frame: int
    end_frame: int


@dataclass
class Decoded:
    text: str
    words: list[Word]

    @property
    def confidence(self) -> float | None:
        return float(np.mean([w.confidence for w in self.words])) if self.words else None
