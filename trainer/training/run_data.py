"""What a training run reads: its manifests, screened against the model, and the loaders over them.

The training and validation rows are read (invalid rows counted, not fatal), checked against what
the model can learn (trainer.data.screening: labels its vocabulary writes, frames enough for the
labels, durations measured from the audio) and planned into duration-bucketed batches. Too many
rows skipped is a ConfigError (exit 78). With several processes each screens its share of the
rows and all get the joined result, so every rank plans the same batches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object

from trainer.config import TrainConfig
from trainer.data.manifest import fetch_audio, read_manifest
from trainer.data.screening import SkipTally, join_shares, model_frames, screen_rows, share
from trainer.evaluation.breakdown import data_summary
from trainer.exit_codes import ConfigError
from trainer.model.processor import TextCodec
from trainer.runtime_env import usable_cpus
from trainer.storage import local_file
from trainer.training.augment import Perturbation
from trainer.training.ctc import label_id_problem
from trainer.training.dataset import CTCCollator, ItemKey, SpeechDataset
from trainer.training.sampler import DurationBucketSampler, LengthLadder


def read_rows(path: str, flag: str, stats: dict[str, int]) -> list[dict]:
    if not path:
        raise ConfigError(f"{flag}: required")
    if not local_file(path).is_file():
        raise ConfigError(f"{flag}: {path}: manifest not found")
    rows = list(read_manifest(path, skip_invalid=True, stats=stats))
    if not rows:
        list(read_manifest(path))  # raises the first bad row's ManifestError, naming file, line and field
        raise ConfigError(f"{flag}: {path}: no rows")
    fetch_audio(rows)
    return rows


def _own_process_group(worker_id: int) -> None:
    """Loader workers leave a signal sent to the trainer's process group to the trainer.

    torchrun passes SIGTERM on to its workers' whole process groups; a loader worker that died of
    it would make the training process raise before it could finish the step and save. Signals sent
    to the worker itself (the loader's shutdown, multiprocessing's exit) still reach it, and it
    exits on its own when the trainer dies (the loader's parent watchdog).
    """
    os.setpgid(0, 0)


def loader_workers(requested: int) -> int:
    """`requested`, or for -1 the CPUs this process may use (shared with the other processes of
    its node) less one for the process itself."""
    if requested >= 0:
        return requested
    return max(1, usable_cpus() // int(os.environ.get("LOCAL_WORLD_SIZE", "1")) - 1)


@dataclass
class RunData:
    """The screened rows of a run, its batch plan (`sampler`, this rank's share) and datasets."""

    train_rows: list[dict]
    val_rows: list[dict]
    train_skips: SkipTally
    val_skips: SkipTally
    invalid_rows: dict[str, int]  # manifest rows that did not parse, by reason (both manifests)
    train_summary: dict[str, Any]  # metrics.json, for an export's model card
    sampler: DurationBucketSampler
    train_set: SpeechDataset
    val_set: SpeechDataset
    num_workers: int
    seed: int
    pin_memory: bool

    def loader(
        self, dataset: SpeechDataset, keyed_batches: list[list[ItemKey]], collate: CTCCollator, persistent: bool = False
    ) -> torch.utils.data.DataLoader:
        """A loader over `keyed_batches`; `persistent` keeps its workers between passes (the
        validation loader, read at every evaluation, would otherwise start them each time)."""
        return torch.utils.data.DataLoader(
            dataset,
            batch_sampler=keyed_batches,
            collate_fn=collate,
            num_workers=self.num_workers,
            persistent_workers=persistent and self.num_workers > 0,
            # A private generator keeps loader start-up from drawing on the global RNG, which
            # would make a resumed run's random stream differ from an uninterrupted one.
            generator=torch.Generator().manual_seed(self.seed),
            pin_memory=self.pin_memory,
            worker_init_fn=_own_process_group,
        )


def load_data(
    cfg: TrainConfig, model: torch.nn.Module, codec: TextCodec, ladder: LengthLadder, acc: Accelerator
) -> RunData:
    """Read, screen and plan the run's training and validation rows (see the module docstring)."""
    train_invalid: dict[str, int] = {}
    val_invalid: dict[str, int] = {}
    train_rows = read_rows(cfg.train_manifest, "train_manifest", train_invalid)
    val_rows = read_rows(cfg.val_manifest, "val_manifest", val_invalid)
    if 0 < cfg.max_eval_utterances < len(val_rows):
        # Evenly spaced rows, not the first ones: manifests run speaker by speaker, and the
        # subset should hear every validation speaker.
        picks = np.linspace(0, len(val_rows) - 1, cfg.max_eval_utterances).round().astype(int)
        val_rows = [val_rows[i] for i in picks]
    invalid_rows = {k: train_invalid.get(k, 0) + val_invalid.get(k, 0) for k in {*train_invalid, *val_invalid}}
    fastest = max(cfg.speed_perturb, default=1.0)
    train_rows, train_skips = screen(
        train_rows, "train_manifest", train_invalid, fastest, model, codec, acc, cfg.max_batch_seconds
    )
    val_rows, val_skips = screen(val_rows, "val_manifest", val_invalid, 1.0, model, codec, acc, cfg.max_batch_seconds)
    train_summary = data_summary(train_rows)
    train_skips.check_share(cfg.max_skipped_train_share, "max_skipped_train_share")
    val_skips.check_share(cfg.max_skipped_val_share, "max_skipped_val_share")
    sampler = DurationBucketSampler(
        [r["duration"] for r in train_rows],
        cfg.max_batch_seconds,
        ladder,
        cfg.seed,
        tuple(cfg.speed_perturb),
        acc.process_index,
        acc.num_processes,
    )
    return RunData(
        train_rows,
        val_rows,
        train_skips,
        val_skips,
        invalid_rows,
        train_summary,
        sampler,
        SpeechDataset(train_rows, codec, cfg.seed, Perturbation(cfg.pitch_perturb_semitones)),
        SpeechDataset(val_rows, codec, cfg.seed),
        loader_workers(cfg.num_workers),
        cfg.seed,
        pin_memory=acc.device.type == "cuda",
    )


def screen(
    rows: list[dict],
    flag: str,
    invalid: dict[str, int],
    fastest_speed: float,
    model: torch.nn.Module,
    codec: TextCodec,
    acc: Accelerator,
    max_batch_seconds: float,
) -> tuple[list[dict], SkipTally]:
    """The rows this model can learn from, with measured durations (trainer.data.screening).

    With several processes each reads the audio headers of its share of the rows, and all get
    the joined result: the same rows everywhere, so every rank plans the same batches."""
    tokenizer = codec.processor.tokenizer
    config = model.config

    def encode_checked(row: dict) -> list[int]:
        """The row's label ids; ConfigError when the model cannot take them as CTC targets."""
        labels = codec.encode_row(row)
        problem = label_id_problem(labels, config.vocab_size, config.pad_token_id)
        if problem:
            raise ConfigError(f"{flag}: {row['utt_id']}: {problem}: vocab and model do not match")
        return labels

    world, rank = acc.num_processes, acc.process_index
    screened: tuple[list[dict], SkipTally] | ConfigError
    try:
        screened = screen_rows(
            share(rows, rank, world),
            flag,
            encode_checked,
            model_frames(config, fastest_speed),
            tokenizer.unk_token_id,
            tokenizer.word_delimiter_token_id,
            invalid if rank == 0 else None,  # counted once
            max_batch_seconds,
        )
    except ConfigError as exc:  # found in one share: every process stops with it, none waits
        screened = exc
    shares = gather_object([screened]) if world > 1 else [screened]
    for found in shares:
        if isinstance(found, ConfigError):
            raise found
    return join_shares(shares, flag)
