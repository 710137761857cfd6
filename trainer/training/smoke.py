"""`train --preset smoke`: a self-contained check of a setup, with its own data and model.

When the preset has a `smoke_data` section and no manifests are given, a tiny synthetic corpus
(espeak-ng Korean voices, AI Hub layout, via trainer.data) is prepared into
`<output>/smoke-data/` (a local cache folder when the output is on S3), with a randomly
initialised tiny wav2vec2 saved next to it as the base model. Everything is seeded, so a re-run
(e.g. a resume after SIGTERM) finds the same data. The folder counts once its READY file (written
last) exists; a build that was killed half-way is removed and started again by the next run, and
concurrent runs on one output (DDP ranks) build it once, under a lock.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import shutil
from pathlib import Path
from typing import Any

import torch

from trainer.config import DEFAULT_BASE_MODEL, TrainConfig
from trainer.storage import join, local_or_cached_dir
from trainer.training.configure import load_preset

READY = "READY"


def smoke_data_dir(output: str) -> Path:
    """<output>/smoke-data, or for a remote output a folder of this machine's cache."""
    return local_or_cached_dir(
        join(output, "smoke-data"), f"smoke-data/{hashlib.sha256(output.encode()).hexdigest()[:12]}"
    )


def make_random_base(vocab_dir: Path, dest: Path, seed: int) -> None:
    """A randomly initialised tiny Wav2Vec2ForCTC + processor, saved so adapters can reference it."""
    from transformers import Wav2Vec2ForCTC

    from trainer.model.factory import tiny_wav2vec2_config
    from trainer.model.processor import build_processor, save_processor

    processor = build_processor(vocab_dir)
    torch.manual_seed(seed)
    config = tiny_wav2vec2_config(
        len(processor.tokenizer),
        hidden_size=64,
        num_layers=2,
        num_heads=2,
        conv_channels=32,
        pad_token_id=processor.tokenizer.pad_token_id,
    )
    Wav2Vec2ForCTC(config).save_pretrained(str(dest))
    save_processor(processor, vocab_dir, dest)


def build_smoke_data(folder: Path, spec: dict[str, Any], seed: int) -> None:
    from trainer.data.prepare import PrepareOptions, prepare
    from trainer.data.synth.corpus import synthesize_corpus

    corpus = folder / "corpus"
    synthesize_corpus(
        corpus,
        n_child_speakers=spec.get("child_speakers", 4),
        n_adult_speakers=spec.get("adult_speakers", 2),
        utterances_per_speaker=spec.get("utterances_per_speaker", 6),
        seed=seed,
        workers=1,
    )
    options = PrepareOptions(
        source=str(corpus),
        out=str(folder / "prepared"),
        seed=seed,
        unit="jamo",  # ~60 units instead of hundreds of syllables: a smaller head for a tiny model
        val_fraction=0.25,
        test_fraction=0.25,
        fractions=(1.0,),
        curriculum_source="all",
    )
    prepare(options)
    make_random_base(folder / "prepared", folder / "base", seed)
    (folder / READY).write_text("ok\n", encoding="utf-8")


def with_smoke_data(cfg: TrainConfig, preset_name: str) -> TrainConfig:
    """`cfg` pointing at the smoke data (built on first use) when the preset asks for it."""
    spec = load_preset(preset_name).get("smoke_data")
    if not spec or cfg.train_manifest or cfg.curriculum_dir:
        return cfg
    folder = smoke_data_dir(cfg.output or ".")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / READY).is_file():
            shutil.rmtree(folder, ignore_errors=True)  # what an interrupted build left
            build_smoke_data(folder, spec, cfg.seed)
    prepared = folder / "prepared"
    changes: dict[str, Any] = {
        "train_manifest": str(prepared / "train.jsonl"),
        "val_manifest": cfg.val_manifest or str(prepared / "val.jsonl"),
        "vocab": cfg.vocab or str(prepared),
    }
    if cfg.model == DEFAULT_BASE_MODEL:
        changes["model"] = str(folder / "base")
    return dataclasses.replace(cfg, **changes)
