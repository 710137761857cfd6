"""`python -m trainer smoke-data`: the smoke preset's own data and model, made once, for `train`.

    python -m trainer smoke-data --out /tmp/smoke-data
    python -m trainer train --preset smoke --output /tmp/smoke \\
        --train-manifest /tmp/smoke-data/prepared/train.jsonl \\
        --val-manifest /tmp/smoke-data/prepared/val.jsonl \\
        --vocab /tmp/smoke-data/prepared --model /tmp/smoke-data/base

A tiny synthetic corpus (espeak-ng Korean voices, AI Hub layout, via trainer.data; its sizes,
unit, splits and curriculum fractions from the smoke preset's `smoke_data` section, which
`tools/submit.py --local --preset smoke` reads too) is prepared into `<out>/prepared/`, with a randomly
initialised tiny wav2vec2 saved as the base model in `<out>/base/`. Everything is seeded. The
folder counts once its READY file (written last) exists: a rerun then does nothing, and a build
that was killed half-way is removed and started again by the next run.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from trainer import lease

READY = "READY"
PRESET = "smoke"  # whose `smoke_data` section gives the corpus and its preparation
_log = logging.getLogger(__name__)


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
        n_child_speakers=spec["child_speakers"],
        n_adult_speakers=spec["adult_speakers"],
        utterances_per_speaker=spec["utterances_per_speaker"],
        seed=seed,
        workers=1,
    )
    options = PrepareOptions(
        source=str(corpus),
        out=str(folder / "prepared"),
        seed=seed,
        unit=spec["unit"],
        val_fraction=spec["val_fraction"],
        test_fraction=spec["test_fraction"],
        fractions=tuple(spec["fractions"]),
    )
    prepare(options)
    make_random_base(folder / "prepared", folder / "base", seed)
    (folder / READY).write_text("ok\n", encoding="utf-8")


def smoke_data(out: Path, seed: int) -> None:
    """Build the smoke data into `out` unless a complete build is there already."""
    from trainer.training.configure import load_preset

    with lease.hold(str(out), "--out"):
        if (out / READY).is_file():
            _log.info("%s: smoke data is complete; nothing to do", out)
            return
        shutil.rmtree(out, ignore_errors=True)  # what an interrupted build left
        build_smoke_data(out, load_preset(PRESET)["smoke_data"], seed)
    prepared = out / "prepared"
    _log.info(
        "smoke data written to %s; train on it with: python -m trainer train --preset %s --output RUN "
        "--train-manifest %s --val-manifest %s --vocab %s --model %s",
        out,
        PRESET,
        prepared / "train.jsonl",
        prepared / "val.jsonl",
        prepared,
        out / "base",
    )
