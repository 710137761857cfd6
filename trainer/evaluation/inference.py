"""Batched, length-sorted greedy CTC transcription of a manifest's utterances.

Utterances are sorted by duration (longest first, so an out-of-memory batch shows up at once) and
cut into batches whose padded size, batch size x longest utterance, stays within
`max_batch_seconds`: neighbours in the sorted order have similar lengths, so little compute goes
to padding. Audio is read by DataLoader workers while the model runs; a file that cannot be
decoded is skipped and reported with its reason, never fatal. Only the model's forward pass and
the decoding are timed, so the real-time factor does not depend on the disk.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from trainer.data.audio import SAMPLE_RATE, AudioError, change_speed, load_audio
from trainer.model.transcriber import CtcTranscriber

# Padded audio per batch when not given. On a GPU, big batches keep it busy; on a CPU, batches
# beyond ~10 s are memory-bound and slower per second of audio than small ones (measured with an
# 8x384 wav2vec2 on 2 cores: 16 x 5 s ran at 0.63x the speed of 1 x 5 s; tools/bench/bench_eval.py).
DEFAULT_BATCH_SECONDS = {"cpu": 10.0, "cuda": 100.0}


def default_batch_seconds(device: str) -> float:
    return DEFAULT_BATCH_SECONDS["cuda" if device.startswith("cuda") else "cpu"]


@dataclass
class Transcription:
    """What transcribing a set of utterances produced."""

    # utt_id -> what the transcriber's `decode` returns per audio: Decoded (text, words,
    # confidences), or log posteriors for trainer.assessment
    decoded: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # utt_id -> why its audio was unusable
    audio_seconds: float = 0.0  # audio actually transcribed
    # Wall time in feature extraction + forward pass. Decoding is timed apart: greedy decoding's
    # cost follows what a model writes (an untrained one writing little looked faster).
    model_seconds: float = 0.0
    decode_seconds: float = 0.0

    @property
    def hypotheses(self) -> dict[str, str]:
        return {utt_id: decoded.text for utt_id, decoded in self.decoded.items()}

    @property
    def real_time_factor(self) -> float:
        return self.model_seconds / self.audio_seconds if self.audio_seconds else 0.0


def length_sorted_batches(durations: Sequence[float], max_batch_seconds: float) -> list[list[int]]:
    """Indices into `durations`, longest first, in batches of at most `max_batch_seconds` padded
    audio (an utterance longer than that gets a batch of its own)."""
    order = sorted(range(len(durations)), key=lambda i: durations[i], reverse=True)
    batches: list[list[int]] = []
    for i in order:
        # Sorted descending, so the batch's first utterance is its longest.
        if batches and (len(batches[-1]) + 1) * durations[batches[-1][0]] <= max_batch_seconds:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


class _Utterances(torch.utils.data.Dataset):
    """(row, samples played at `speed`, None) or (row, None, why the audio is unusable); runs in
    loader workers, so a failure travels back as its reason string (exceptions do not always pickle)."""

    def __init__(self, rows: Sequence[dict], speed: float = 1.0) -> None:
        self.rows = rows
        self.speed = speed

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[dict, Optional[np.ndarray], Optional[str]]:
        row = self.rows[index]
        try:
            return row, change_speed(load_audio(row["audio_filepath"]), self.speed), None
        except AudioError as exc:
            return row, None, exc.reason


def _collate(items: list) -> list:
    return items


def transcribe(
    transcriber: CtcTranscriber,
    rows: Sequence[dict],
    max_batch_seconds: float,
    num_workers: int = 0,
    progress: bool = True,
    speed: float = 1.0,
) -> Transcription:
    """Transcribe every row (manifest rows with absolute `audio_filepath`) with the transcriber's
    `logits` then `from_logits` (Decoded; log posteriors for trainer.assessment), timed apart;
    `speed`: each recording played that many times faster first (trainer.data.audio.change_speed)."""
    result = Transcription()
    batches = length_sorted_batches([r["duration"] / speed for r in rows], max_batch_seconds)
    loader = torch.utils.data.DataLoader(
        _Utterances(rows, speed), batch_sampler=batches, collate_fn=_collate, num_workers=num_workers
    )
    bar = tqdm(
        total=round(sum(r["duration"] for r in rows)),
        unit="audio-s",
        desc="transcribing",
        disable=not progress,
        # Logs of batch jobs are not terminals: one line every half minute is enough there.
        mininterval=0.5 if sys.stderr.isatty() else 30,
    )
    transcriber.warm_up()
    with bar:
        for items in loader:
            good = [(row, audio) for row, audio, _ in items if audio is not None]
            for row, _, reason in items:
                if reason is not None:
                    result.skipped[row["utt_id"]] = reason
            if good:
                start = time.perf_counter()
                logits = transcriber.logits([audio for _, audio in good])
                forwarded = time.perf_counter()
                decoded = [transcriber.from_logits(each) for each in logits]
                result.model_seconds += forwarded - start
                result.decode_seconds += time.perf_counter() - forwarded
                for (row, audio), utterance in zip(good, decoded):
                    result.decoded[row["utt_id"]] = utterance
                    result.audio_seconds += len(audio) / SAMPLE_RATE
            bar.update(sum(row["duration"] for row, _, _ in items))
    return result
