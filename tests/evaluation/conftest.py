"""Fixtures: synthetic Korean test sets (the project's synthetic corpus, one corrupt file) and tiny models in the
three forms `evaluate` accepts: a base model folder, a LoRA adapter checkpoint on top of it, and
(in test_export) its merged export. Weights are random, so transcripts are gibberish, but
deterministic: what the tests compare is that every path produces the same ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def eval_corpus(tmp_path_factory) -> dict[str, Path]:
    """test.jsonl: child utterances (one without age/gender) + 1 corrupt file; adult.jsonl: adults.

    Speech from the project's synthetic corpus (espeak-ng child and adult voices), imported from
    its AI Hub layout like real data.
    """
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    from trainer.data.importers import import_aihub
    from trainer.data.manifest import load_manifest, write_manifest
    from trainer.data.synth import synthesize_corpus

    root = tmp_path_factory.mktemp("eval_corpus")
    synthesize_corpus(root / "corpus", n_child_speakers=4, n_adult_speakers=2, utterances_per_speaker=3, seed=0)
    import_aihub(root / "corpus", root / "all.jsonl")
    rows = load_manifest(root / "all.jsonl")
    children = [r for r in rows if r["age"] < 18]
    children[-1] = {**children[-1], "age": None, "gender": None}
    broken = root / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    children.append({**children[0], "utt_id": "broken", "audio_filepath": str(broken)})
    write_manifest(children, root / "test.jsonl")
    write_manifest([r for r in rows if r["age"] >= 18], root / "adult.jsonl")
    return {"test": root / "test.jsonl", "adult": root / "adult.jsonl", "all": root / "all.jsonl"}


@pytest.fixture(scope="session")
def eval_models(eval_corpus, tmp_path_factory) -> dict[str, str]:
    """{"base": folder, "adapter": checkpoint folder} for a 2-layer wav2vec2 (random weights)."""
    from trainer.data.manifest import load_manifest
    from trainer.evaluation.random_models import write_random_models

    texts = [r["text"] for r in load_manifest(eval_corpus["all"])]
    root = tmp_path_factory.mktemp("eval_models")
    return write_random_models(
        root, texts, rank=4, frozen_layers=1, lora_std=0.5, hidden_size=32, num_layers=2, num_heads=2, conv_channels=32
    )


@pytest.fixture(scope="session")
def audios(eval_corpus) -> list:
    """The readable test clips as arrays (the corpus's `broken` row is unreadable on purpose)."""
    from trainer.data.audio import load_audio
    from trainer.data.manifest import load_manifest

    return [load_audio(r["audio_filepath"]) for r in load_manifest(eval_corpus["test"]) if r["utt_id"] != "broken"]
