"""Learning, not just running: a tiny base trained from scratch on synthetic adult voices (the
stand-in for XLS-R), then LoRA on synthetic child voices. On held-out child speakers the adapted
model's CER must be clearly below the base's (LoRA on a random base would not learn at all)."""

from __future__ import annotations

import pytest

from trainer.data.manifest import load_manifest

from .helpers import run_cli

PRESET = "demo-small"


def error_rates(model_uri: str, manifest) -> tuple[float, float]:
    """(CER, jamo error rate) on a manifest as `trainer evaluate` computes them (greedy CTC;
    CER over syllables, so one wrong jamo costs the whole syllable; JER over jamo)."""
    from trainer.evaluation.evaluate import load_model
    from trainer.evaluation.inference import CtcTranscriber, transcribe
    from trainer.evaluation.metrics import cer, jer

    loaded = load_model(model_uri)
    rows = load_manifest(manifest)
    result = transcribe(CtcTranscriber(loaded.model, loaded.codec), rows, max_batch_seconds=60, progress=False)
    refs = [loaded.codec.reference(r["text"]) for r in rows]
    hyps = [result.hypotheses[r["utt_id"]] for r in rows]
    return cer(refs, hyps), jer(refs, hyps)


@pytest.mark.slow
def test_lora_on_child_voices_beats_the_adult_base(tmp_path):
    from trainer.data.prepare import PrepareOptions, prepare
    from trainer.data.synth.corpus import synthesize_corpus

    synthesize_corpus(tmp_path / "corpus", n_child_speakers=10, n_adult_speakers=10, utterances_per_speaker=40, seed=7, workers=2)
    data = tmp_path / "prepared"
    prepare(PrepareOptions(source=str(tmp_path / "corpus"), out=str(data), seed=7, unit="jamo", val_fraction=0.1, test_fraction=0.1, fractions=(1.0,)))

    base = tmp_path / "base"
    pretrain = run_cli([
        "pretrain-base", "--preset", PRESET, "--train-manifest", str(data / "train_adult.jsonl"),
        "--val-manifest", str(data / "val_adult.jsonl"), "--vocab", str(data), "--output", str(base),
    ], timeout=900)
    assert pretrain.returncode == 0, pretrain.stderr[-3000:]

    adapted = tmp_path / "lora"
    lora = run_cli([
        "train", "--preset", PRESET, "--phase", "1", "--model", str(base), "--output", str(adapted),
        "--train-manifest", str(data / "train_child.jsonl"), "--val-manifest", str(data / "val_child.jsonl"),
        "--vocab", str(data), "--max-steps", "200",
    ], timeout=900)
    assert lora.returncode == 0, lora.stderr[-3000:]

    base_cer, base_jer = error_rates(str(base), data / "test_child.jsonl")
    lora_cer, lora_jer = error_rates(str(adapted / "checkpoint-best"), data / "test_child.jsonl")
    print(f"held-out child speakers: base CER {base_cer:.3f} JER {base_jer:.3f} -> LoRA CER {lora_cer:.3f} JER {lora_jer:.3f}")
    # Measured here: CER 0.99 -> 0.85, JER 0.92 -> 0.81 (a base this short reads adults at CER 0.85).
    assert lora_cer <= base_cer - 0.08, (base_cer, lora_cer)
    assert lora_jer < base_jer, (base_jer, lora_jer)
