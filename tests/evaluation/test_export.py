"""Merged export: a plain Wav2Vec2ForCTC folder whose transcripts equal the unmerged adapter's and
what `transformers.pipeline` makes of it."""

import json
from pathlib import Path

import pytest

from trainer.data.audio import load_audio
from trainer.data.manifest import load_manifest
from trainer.evaluation.evaluate import load_model
from trainer.evaluation.export import export_merged
from trainer.exit_codes import ConfigError
from trainer.model.inference import EXPORT_INFO
from trainer.model.transcriber import CtcTranscriber
from trainer.storage import MARKER


@pytest.fixture(scope="module")
def merged(eval_models, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "merged"
    export_merged(eval_models["adapter"], str(out))
    return out


def test_export_is_a_standard_model_folder(merged):
    assert (merged / "config.json").is_file() and (merged / "model.safetensors").is_file()
    assert (merged / "vocab.json").is_file() and (merged / MARKER).is_file()
    assert not (merged / "adapter_config.json").exists()
    info = json.loads((merged / EXPORT_INFO).read_text(encoding="utf-8"))
    assert (info["r"], info["unit"]) == (4, "syllable")
    loaded = load_model(str(merged))
    assert (loaded.info["kind"], loaded.info["r"]) == ("merged", 4)
    assert not any("lora_" in name for name, _ in loaded.model.named_parameters())


def test_merged_transcripts_equal_adapter_and_pipeline(eval_models, merged, audios):
    from transformers import pipeline

    adapter, export, base = (load_model(uri) for uri in (eval_models["adapter"], str(merged), eval_models["base"]))
    adapter_texts = CtcTranscriber(adapter.model, adapter.codec)(audios)
    merged_texts = CtcTranscriber(export.model, export.codec)(audios)
    assert merged_texts == adapter_texts
    assert all(adapter_texts)
    # The adapter matters: the base alone transcribes differently.
    assert CtcTranscriber(base.model, base.codec)(audios) != adapter_texts

    asr = pipeline("automatic-speech-recognition", model=str(merged), device="cpu")
    assert [asr(audio.copy())["text"] for audio in audios] == merged_texts


def test_export_refuses_a_model_that_is_not_an_adapter(eval_models, tmp_path):
    with pytest.raises(ConfigError, match="not a LoRA adapter"):
        export_merged(eval_models["base"], str(tmp_path / "out"))


def test_jamo_models_are_scored_and_exported_as_syllables(eval_corpus, tmp_path):
    """A jamo-unit model emits conjoining jamo; evaluation scores them recomposed (NFC), and the
    exported model's pipeline output gives the same text once NFC-normalised (export docstring)."""
    import unicodedata

    from transformers import pipeline

    from trainer.evaluation.config import EvalConfig
    from trainer.evaluation.evaluate import evaluate
    from trainer.evaluation.random_models import write_random_models

    rows = load_manifest(eval_corpus["all"])
    uris = write_random_models(
        tmp_path,
        [r["text"] for r in rows],
        rank=4,
        frozen_layers=1,
        lora_std=0.5,
        unit="jamo",
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        conv_channels=32,
    )
    report = evaluate(
        uris["adapter"],
        eval_corpus["test"],
        str(tmp_path / "eval"),
        EvalConfig(num_workers=0, bootstrap=20),
        progress=False,
    )
    assert report["model"]["unit"] == "jamo"
    predictions = [
        json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    texts = {r["utt_id"]: r["text"] for r in rows}
    assert all(p["reference"] == texts[p["utt_id"]] for p in predictions)  # syllables, as in the manifest
    assert all(p["hypothesis"] and unicodedata.is_normalized("NFC", p["hypothesis"]) for p in predictions)

    export_merged(uris["adapter"], str(tmp_path / "merged"))
    asr = pipeline("automatic-speech-recognition", model=str(tmp_path / "merged"), device="cpu")
    first = min(predictions, key=lambda p: p["utt_id"])
    audio = load_audio(next(r for r in rows if r["utt_id"] == first["utt_id"])["audio_filepath"])
    raw = asr(audio)["text"]
    assert not unicodedata.is_normalized("NFC", raw)  # jamo, as the CTC head emits them
    assert " ".join(unicodedata.normalize("NFC", raw).replace("[UNK]", "\ufffd").split()) == first["hypothesis"]
