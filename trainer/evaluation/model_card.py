"""README.md of an export, in the Hugging Face model-card format (YAML metadata from
`huggingface_hub.ModelCardData`, including a model-index with the test metrics, then prose).

What it states comes from files, never from assumptions: export_info.json (base model, LoRA rank,
formats), the adapter checkpoint's training metrics.json (`train_data`: hours, speakers,
utterances per age group and gender of the training manifest) and, when given, an `evaluate`
output's metrics.json (headline metrics with 95% CIs and the per-age table). A missing source
is said to be missing.
"""

from __future__ import annotations

import posixpath
from typing import Any, Optional

from trainer.model.chunking import CHUNK_SECONDS

CARD_FILE = "README.md"
# Headline metrics of the model-index, in the order shown.
CARD_METRICS = {"cer": "CER", "wer": "WER", "per": "PER"}
TAGS = ["automatic-speech-recognition", "wav2vec2", "ctc", "lora", "korean", "children-speech"]


def _pct(stat: dict[str, float]) -> str:
    return f"{100 * stat['value']:.1f}% [{100 * stat['ci_low']:.1f}, {100 * stat['ci_high']:.1f}]"


def _hub_id(name: str) -> Optional[str]:
    """`name` if it is a Hub model id (owner/name), not a local path or a URI (s3://...)."""
    return name if name.count("/") == 1 and "://" not in name and not name.startswith((".", "/", "~")) else None


def render_model_card(
    info: dict[str, Any], training: Optional[dict[str, Any]], test: Optional[dict[str, Any]], license: str
) -> str:
    """The card's text. `info`: export_info.json; `training`: the adapter's metrics.json;
    `test`: an `evaluate` metrics.json of this model (or None)."""
    from huggingface_hub import EvalResult, ModelCardData

    test_name = posixpath.splitext(posixpath.basename(test["test_set"]["manifest"]))[0] if test else None
    eval_results = (
        [
            EvalResult(
                task_type="automatic-speech-recognition",
                task_name="Speech Recognition",
                dataset_type="custom",
                dataset_name=test_name,
                dataset_split="test",
                metric_type=metric,
                metric_name=f"Test {label}",
                metric_value=round(100 * test["metrics"][metric]["value"], 2),
            )
            for metric, label in CARD_METRICS.items()
        ]
        if test
        else None
    )
    name = info.get("name") or "ko-child-asr"
    data = ModelCardData(
        language="ko",
        license=license,
        base_model=_hub_id(info["base_model"]),
        library_name="transformers",
        pipeline_tag="automatic-speech-recognition",
        tags=TAGS + (["onnx"] if any(f.startswith("onnx") for f in info["formats"]) else []),
        metrics=list(CARD_METRICS) if test else None,
        model_name=name if test else None,
        eval_results=eval_results,
    )
    lines = [
        "---",
        data.to_yaml(),
        "---",
        "",
        f"# {name}: Korean children's speech recognition",
        "",
        f"wav2vec2 CTC model fine-tuned with LoRA (rank {info['r']}, alpha {info['lora_alpha']}, "
        f"on {', '.join(info['target_modules']) if isinstance(info['target_modules'], list) else info['target_modules']}; "
        f"{info['adapter_params']:,} trained parameters) from base model `{info['base_model']}`, "
        f"merged into a plain `Wav2Vec2ForCTC` ({info['total_params']:,} parameters). Output units: {info['unit']}"
        + (" (conjoining jamo: NFC-normalise the text to get syllables)." if info["unit"] == "jamo" else "."),
        "",
        "## Files",
        "",
        *_files(info["formats"]),
        "",
        "## Training data",
        "",
        *_training(training),
        "",
        "## Evaluation",
        "",
        *_evaluation(test),
        "",
        "## Intended use and limits",
        "",
        "- Transcribing **Korean read speech of children** (the training data's speakers), 16 kHz mono audio, "
        "e.g. in education and VR apps; each word and utterance comes with a confidence (0-1) an app can use "
        "to ask a child to say it again.",
        "- Not evaluated on spontaneous speech, other languages, adults' or far-field/noisy recordings beyond "
        "the test set above; error rates differ by age group (table above): check the ages of your users.",
        f"- Greedy CTC decoding without a language model; recordings longer than {CHUNK_SECONDS:g} s are "
        "transcribed in overlapping chunks.",
        "- Speech of minors is personal data: process it only with consent and under the rules that apply to you.",
        "",
        "## Licence notes",
        "",
        f"- This card's `license: {license}` covers the fine-tuned weights as released by their owner; "
        "it cannot grant more than the base model's and the training data's terms allow.",
        f"- Base model `{info['base_model']}`: see its own licence (facebook/wav2vec2-xls-r-300m: Apache-2.0).",
        "- Training data: the terms of the corpus the adapter was trained on apply (AI Hub corpora are "
        "licensed for use and redistribution only under AI Hub's terms, including for models derived from them).",
        "",
    ]
    return "\n".join(lines)


def _files(formats: list[str]) -> list[str]:
    from trainer.model.onnx_runtime import ONNX_DIR, ONNX_FILES

    lines = []
    if "hf" in formats:
        lines.append(
            "- `model.safetensors`, `config.json`: PyTorch; "
            '`transformers.pipeline("automatic-speech-recognition", model=FOLDER)`.'
        )
    for fmt in ("onnx", "onnx-int8"):
        if fmt in formats:
            kind = "fp32" if fmt == "onnx" else "int8 (onnxruntime: static int8 convolutions, dynamic int8 MatMuls)"
            lines.append(
                f"- `{ONNX_DIR}/{ONNX_FILES[fmt]}`: ONNX, {kind}; inputs `input_values`, `attention_mask`, outputs "
                "`logits`, `logit_lengths`; `trainer.model.onnx_runtime.onnx_transcriber(path)` runs it."
            )
    lines.append("- `vocab.json`, `preprocessor_config.json`, tokenizer files, `text_units.json`: the processor.")
    return lines


def _training(training: Optional[dict[str, Any]]) -> list[str]:
    data = (training or {}).get("train_data")
    if not data:
        return ["Not recorded (the adapter checkpoint has no training metrics.json with `train_data`)."]
    ages = ", ".join(f"{group}: {n}" for group, n in data["utterances_by_age_group"].items())
    genders = ", ".join(f"{group}: {n}" for group, n in data["utterances_by_gender"].items())
    lines = [
        f"{data['hours']:.2f} h, {data['utterances']} utterances from {data['speakers']} speakers.",
        "",
        f"- Utterances per age group: {ages}",
        f"- Utterances per gender: {genders}",
    ]
    best = training.get("best")
    if training.get("phase") is not None and best:
        metric = training["metric"]
        lines.append(
            f"- Training phase {training['phase']}, {training['steps']} steps; best validation "
            f"{metric.upper()} {100 * best[metric]:.1f}% at step {best['step']} (these weights)."
        )
    return lines


def _evaluation(test: Optional[dict[str, Any]]) -> list[str]:
    if not test:
        return ["No test report was given to the export (`--test-report`): no test metrics."]
    test_set = test["test_set"]
    lines = [
        f"Test set `{test_set['manifest']}`: {test_set['scored']} utterances ({test_set['hours']:.2f} h). "
        "In brackets: bootstrap 95% confidence intervals over utterances.",
        "",
        "| " + " | ".join(CARD_METRICS.values()) + " |",
        "|" + "---|" * len(CARD_METRICS),
        "| " + " | ".join(_pct(test["metrics"][m]) for m in CARD_METRICS) + " |",
        "",
        "Per age group:",
        "",
        "| Age group | Utterances | " + " | ".join(CARD_METRICS.values()) + " |",
        "|" + "---|" * (2 + len(CARD_METRICS)),
    ]
    for group, stats in test["breakdowns"]["age_group"].items():
        lines.append(f"| {group} | {stats['count']} | " + " | ".join(_pct(stats[m]) for m in CARD_METRICS) + " |")
    return lines
