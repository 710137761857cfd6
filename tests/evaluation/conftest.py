"""Fixtures: synthetic Korean test sets (espeak-ng speech, one corrupt file) and tiny models in the
three forms `evaluate` accepts: a base model folder, a LoRA adapter checkpoint on top of it, and
(in test_export) its merged export. Weights are random, so transcripts are gibberish, but
deterministic: what the tests compare is that every path produces the same ones."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import soundfile as sf
import torch

SENTENCES = [
    "나는 학교에 간다",
    "사과를 먹었어요",
    "국물이 맛있다",
    "안녕하세요 친구야",
    "오늘 날씨가 좋아요",
    "강아지가 뛰어요",
]
# (age, gender, snr_db): children of several ages, an adult, unknown fields.
SPEAKERS = [(4, "F", 5.0), (7, "M", 15.0), (9, "F", None), (35, "M", 32.0), (None, None, 22.0), (6, "F", 8.0)]


def _write_manifest(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def eval_corpus(tmp_path_factory) -> dict[str, Path]:
    """test.jsonl: 12 spoken utterances + 1 corrupt file; adult.jsonl: 4 low-pitched utterances."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    root = tmp_path_factory.mktemp("eval_corpus")
    (root / "audio").mkdir()

    def utterance(utt_id: str, text: str, voice: str, pitch: int, speaker: tuple) -> dict:
        wav = root / "audio" / f"{utt_id}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", "150", "-w", str(wav), text], check=True)
        age, gender, snr = speaker
        return {
            "utt_id": utt_id,
            "audio_filepath": f"audio/{utt_id}.wav",
            "duration": sf.info(str(wav)).duration,
            "text": text,
            "speaker_id": f"spk{SPEAKERS.index(speaker)}",
            "age": age,
            "gender": gender,
            "snr_db": snr,
        }

    test_rows = [
        utterance(f"child{i:02d}", SENTENCES[i % 6], "ko+f2", 70 + 2 * i, SPEAKERS[i % 6]) for i in range(12)
    ]
    (root / "audio" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    test_rows.append({**test_rows[0], "utt_id": "broken", "audio_filepath": "audio/broken.wav"})
    adult_rows = [utterance(f"adult{i}", SENTENCES[i], "ko", 30, SPEAKERS[3]) for i in range(4)]
    return {"test": _write_manifest(root / "test.jsonl", test_rows), "adult": _write_manifest(root / "adult.jsonl", adult_rows)}


@pytest.fixture(scope="session")
def eval_models(tmp_path_factory) -> dict[str, str]:
    """{"base": folder, "adapter": checkpoint folder} for a 2-layer wav2vec2 (random weights)."""
    from transformers import Wav2Vec2ForCTC

    from trainer.config import TrainConfig
    from trainer.data.text import build_vocab, save_vocab
    from trainer.model.factory import tiny_wav2vec2_config
    from trainer.model.lora import build_lora_model
    from trainer.model.processor import build_processor, save_processor
    from trainer.storage import LocalStore

    root = tmp_path_factory.mktemp("eval_models")
    vocab_dir = root / "vocab"
    vocab = build_vocab(SENTENCES, "syllable")
    save_vocab(vocab, vocab_dir, "syllable")
    processor = build_processor(vocab_dir)

    torch.manual_seed(0)
    config = tiny_wav2vec2_config(vocab_size=len(vocab), hidden_size=32, num_layers=2, num_heads=2, conv_channels=32)
    base = Wav2Vec2ForCTC(config)
    base.save_pretrained(root / "base")
    save_processor(processor, vocab_dir, root / "base")

    cfg = TrainConfig(model=str(root / "base"), rank=4, frozen_layers=1, output=str(root))
    model, processor = build_lora_model(cfg, vocab_dir)
    with torch.no_grad():  # LoRA B starts at zero (a no-op adapter): give it weights that matter
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    store = LocalStore(root)
    staged = store.staging_dir("adapter")
    model.save_pretrained(staged)
    save_processor(processor, vocab_dir, staged)
    store.publish(staged, "adapter")
    return {"base": str(root / "base"), "adapter": str(root / "adapter")}
