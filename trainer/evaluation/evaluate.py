"""`python -m trainer evaluate`: one model on one test set -> `metrics.json` + `predictions.jsonl`.

The model is a base model folder, an adapter checkpoint or a merged export, local or `s3://`
(`trainer.model.load_for_inference`). References are scored as the model's own vocabulary writes
them (`TextCodec.reference`: normalised, round-tripped through syllable or jamo units), so a
model is never charged for characters its vocabulary cannot express differently from another.

metrics.json:
    model       uri, kind (base|adapter|merged|onnx|onnx-int8), r, lora_alpha, total_params,
                adapter_params, unit, size_bytes (weights on disk)
    test_set    manifest, sha256, utterances, scored, skipped {count, by_reason, utt_ids}, hours,
                model_limits {count, by_reason}. Skipped are only rows no model can be scored on
                (unusable audio, empty transcript, duration mismatch, and invalid_phones where the
                references' g2pK phones are scored: screening.screen_test_rows),
                so every model is scored on the same rows; rows this model cannot write in full
                (unknown characters, more labels than its frames) are scored as its errors and
                counted in model_limits
    g2p         the G2P behind PER (PER is comparable only between equal G2Ps); for phone-unit
                models the model's own phones ("model-phones"), compared with g2pK's of the reference
    metrics     {wer|swer|cer|jer|per: {value, ci_low, ci_high}}   (corpus-level, bootstrap 95% CI)
    breakdowns  {age_group|gender|snr_bin|duration_bin: {group: {count, <metric>: {...}}}}
    confidence  calibration of word confidences: words, accuracy, mean confidence of correct and of
                wrong words, ECE, per-bin accuracy (trainer.evaluation.confidence)
    speed       device, batch_seconds, audio_seconds, model_seconds (features + forward pass),
                decode_seconds, real_time_factor (model_seconds / audio_seconds); for an adapter
                also merged_real_time_factor and merged_differing (the same utterances through a
                merged copy, what `trainer export` ships: LoRA folded into the base's weights)
    fingerprint model uri and files, manifest sha256, G2P, chunking, scoring rules version:
                `compare` reuses a result only when all match
predictions.jsonl: one line per scored utterance: utt_id, speaker/age/gender/snr/duration,
reference, hypothesis, their phonemes, and `errors`/`ref_len` per metric (corpus rate =
sum(errors) / sum(ref_len) over any subset); `confidence` (mean of the words', null when empty)
and `words`: [{word, confidence, correct}] (confidences from the CTC posteriors,
`TextCodec.decode`; correct: aligned to an equal reference word).

The model may also be an export's ONNX file (`EXPORT/onnx/model.onnx`, `model_quantized.onnx`):
it runs with onnxruntime on the CPU. Recordings longer than `chunk_seconds` are transcribed in
overlapping chunks (trainer.model.chunking).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from trainer import storage
from trainer.data.manifest import atomic_write, fetch_audio, load_manifest, write_json
from trainer.data.screening import AUDIO_SKIP_REASONS, model_frames, model_limit, screen_test_rows
from trainer.evaluation.breakdown import CI_LEVEL, breakdowns, summarise
from trainer.evaluation.confidence import calibration
from trainer.evaluation.config import EvalConfig
from trainer.evaluation.g2p import G2P, g2p_for_unit, make_g2p
from trainer.evaluation.metrics import METRICS, Edits, correct_words, text_edits, token_edits
from trainer.exit_codes import ConfigError
from trainer.layout import METRICS_FILE
from trainer.model.inference import EXPORT_INFO
from trainer.model.lora import ADAPTER_CONFIG
from trainer.model.onnx_runtime import OnnxCtcModel, is_onnx, materialize_onnx, onnx_format

if TYPE_CHECKING:
    from trainer.model.processor import TextCodec

PREDICTIONS_FILE = "predictions.jsonl"
# The tokenizer writes an unknown unit as "[UNK]"; scored as text that would be 5 characters of
# errors, so it becomes one character that matches nothing.
UNKNOWN_CHAR = "\ufffd"
# Bumped when the rows or the scoring change, so `compare` re-evaluates older results. 2: rows are
# screened with the rules that hold for every model (screen_test_rows), not the model's own.
# 3: model_seconds leaves decoding out, so speeds from older results are not comparable.
# 4: texts are read NFC, sWER respaces only between matched characters (never above WER), rows
# without valid phones are skipped where g2pK's phones are scored.
SCORING_VERSION = 4
WEIGHT_SUFFIXES = (".safetensors", ".bin")
_log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    model: Any  # Wav2Vec2ForCTC or peft.PeftModel
    codec: Any  # trainer.model.processor.TextCodec
    info: dict[str, Any]
    _merged: Any = field(default=None, repr=False)

    def merged(self) -> Any:
        """An adapter folded into its base (what `trainer export` ships): a copy, so the adapter
        stays usable, made once however many test sets it runs on."""
        if self._merged is None:
            self._merged = copy.deepcopy(self.model).merge_and_unload()
        return self._merged

    def runs_on(self, device: str) -> str:
        """Where this model runs when `device` is asked for: ONNX exports run where apps run them,
        onnxruntime on the CPU."""
        return "cpu" if isinstance(self.model, OnnxCtcModel) else device

    def transcriber(self, model: Any, device: str, cfg: EvalConfig) -> Any:
        """A CtcTranscriber of `model` (this one, or its merged copy) with this model's codec."""
        from trainer.model.transcriber import CtcTranscriber

        return CtcTranscriber(model, self.codec, device, cfg.chunk_seconds, cfg.stride_seconds)


def load_model(uri: str) -> LoadedModel:
    """Load any kind of model for inference and describe it (kind, LoRA rank, parameter counts,
    size of its weights on disk)."""
    from trainer.data.text import load_unit
    from trainer.model import load_for_inference
    from trainer.model.processor import TextCodec

    if is_onnx(uri):
        return _load_onnx(uri)
    model, processor, kind = load_for_inference(uri)
    folder = storage.materialize(uri)
    unit = load_unit(folder)
    weights = [p for p in folder.glob("*") if p.suffix in WEIGHT_SUFFIXES] if folder.is_dir() else []
    info: dict[str, Any] = {
        "uri": uri,
        "kind": kind,
        "unit": unit,
        "r": None,
        "lora_alpha": None,
        "size_bytes": sum(p.stat().st_size for p in weights) or None,  # None: a hub id
    }
    adapter = base = 0
    for name, param in model.named_parameters():
        # peft keeps the base head as `original_module` next to the trained copy in `modules_to_save`.
        if "lora_" in name or ".modules_to_save." in name:
            adapter += param.numel()
        else:
            base += param.numel()
    if kind == "adapter":
        lora = model.peft_config["default"]
        info.update(r=lora.r, lora_alpha=lora.lora_alpha)
    elif kind == "merged" and (folder / EXPORT_INFO).is_file():
        exported = json.loads((folder / EXPORT_INFO).read_text(encoding="utf-8"))
        info.update(r=exported["r"], lora_alpha=exported["lora_alpha"])
        adapter = exported["adapter_params"]
    info.update(total_params=base + (adapter if kind == "adapter" else 0), adapter_params=adapter)
    return LoadedModel(model, TextCodec(processor, unit), info)


def model_unit(uri: str) -> str:
    """The text unit a model writes (its text_units.json), without loading the model."""
    from trainer.data.text import load_unit

    return load_unit(materialize_onnx(uri)[1] if is_onnx(uri) else storage.materialize(uri))


def _load_onnx(uri: str) -> LoadedModel:
    """An export's ONNX graph, described from the export's export_info.json."""
    from trainer.data.text import load_unit
    from trainer.model.processor import TextCodec

    path, folder = materialize_onnx(uri)
    exported = json.loads((folder / EXPORT_INFO).read_text(encoding="utf-8"))
    info = {
        "uri": uri,
        "kind": onnx_format(uri),
        "unit": load_unit(folder),
        "r": exported["r"],
        "lora_alpha": exported["lora_alpha"],
        "size_bytes": path.stat().st_size,
        "total_params": exported["total_params"],
        "adapter_params": exported["adapter_params"],
    }
    return LoadedModel(OnnxCtcModel(path), TextCodec.from_dir(folder), info)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {device} requested but no CUDA device is available")
    return device


@dataclass
class Scores:
    """Hypotheses scored against their references, one entry per utterance."""

    references: list[str]  # as the model's vocabulary writes them (TextCodec.reference)
    edits: dict[str, list[Edits]]  # by metric
    phonemes: list[tuple]  # (reference, hypothesis) phonemes; empty unless "per" is scored


def score_utterances(
    codec: TextCodec,
    texts: Sequence[str],
    pronounced: Sequence[Optional[str]],
    hyps: Sequence[str],
    metrics: Sequence[str] = METRICS,
    g2p: Optional[G2P] = None,
) -> Scores:
    """Score `hyps` against the transcripts `texts` (`pronounced`: their pronounced forms or None)
    on `metrics` (PER needs `g2p`). `evaluate` and the trainer's validation
    (trainer.training.validation) both score here: the same hypotheses get the same references
    and edit counts."""
    refs = [codec.reference(text, said) for text, said in zip(texts, pronounced)]
    edits: dict[str, list[Edits]] = {m: [] for m in metrics}
    text_metrics = [m for m in metrics if m != "per"]
    for ref, hyp in zip(refs, hyps):
        for metric, e in text_edits(ref, hyp, text_metrics).items():
            edits[metric].append(e)
    phonemes: list[tuple] = []
    if "per" in metrics:
        assert g2p is not None, "PER is scored on a G2P's phonemes"
        found = g2p.phonemes([*refs, *hyps])
        phonemes = list(zip(found[: len(refs)], found[len(refs) :]))
        edits["per"] = [token_edits(rp, hp) for rp, hp in phonemes]
    return Scores(refs, edits, phonemes)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(storage.local_file(path), "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_identity(uri: str) -> str:
    """Changes whenever the model's files do: SHA-256 of (name, size, mtime) of every file in its
    folder and, for an adapter, in its base's folder (a retrained checkpoint-best at the same
    path must not be mistaken for the one evaluated before)."""
    folder = materialize_onnx(uri)[1] if is_onnx(uri) else storage.materialize(uri)
    folders = [folder]
    adapter_config = folder / ADAPTER_CONFIG
    if adapter_config.is_file():
        base = json.loads(adapter_config.read_text(encoding="utf-8")).get("base_model_name_or_path") or ""
        local_base = storage.existing_local_dir(base)
        if local_base is not None:
            folders.append(local_base)
    digest = hashlib.sha256()
    for root in folders:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            stat = path.stat()
            digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def fingerprint(model_uri: str, manifest: str | Path, g2p: G2P, cfg: EvalConfig) -> dict[str, Any]:
    return {
        "model": model_uri,
        "model_files": model_identity(model_uri),
        "manifest_sha256": file_sha256(manifest),
        "g2p": g2p.name,
        # Chunking changes the transcripts of long recordings (batching does not).
        "chunking": [cfg.chunk_seconds, cfg.stride_seconds],
        "scoring": SCORING_VERSION,
    }


def evaluate(
    model_uri: str,
    manifest: str | Path,
    output: str,
    cfg: EvalConfig,
    g2p: Optional[G2P] = None,
    loaded: Optional[LoadedModel] = None,
    progress: bool = True,
    time_merged: bool = True,
) -> dict[str, Any]:
    """Transcribe and score `manifest` with one model; write and return the metrics report.

    `g2p` and `loaded` (from `load_model(model_uri)`) let callers that evaluate several test sets
    share one G2P cache and one loaded model. `time_merged`: also time an adapter's merged form
    (callers with several test sets need it on one only).
    """
    from trainer.evaluation.inference import default_batch_seconds, transcribe

    rows = load_manifest(manifest)
    if not rows:
        raise ConfigError(f"{manifest}: no utterances to evaluate")
    fetch_audio(rows)
    loaded = loaded or load_model(model_uri)
    device = loaded.runs_on(resolve_device(cfg.device))
    g2p = g2p_for_unit(loaded.info["unit"], g2p or make_g2p(cfg.g2p))
    rows, skips = screen_test_rows(rows, str(manifest), phones=g2p.reads_phone_targets)
    _log.info(
        "evaluating %s (%s) on %s: %d utterances, %s", model_uri, loaded.info["kind"], manifest, len(rows), device
    )
    batch_seconds = cfg.batch_seconds or default_batch_seconds(device)
    result = transcribe(loaded.transcriber(loaded.model, device, cfg), rows, batch_seconds, cfg.num_workers, progress)
    for utt_id, reason in result.skipped.items():
        skips.add(AUDIO_SKIP_REASONS[reason], utt_id, "audio could not be decoded")
    timed = time_merged and loaded.info["kind"] == "adapter"
    merged = _merged_speed(loaded, rows, result, device, batch_seconds, cfg) if timed else {}
    scored = [row for row in rows if row["utt_id"] in result.decoded]
    if not scored:
        raise ConfigError(f"{skips.summary()}: nothing left to score{skips.first()}")
    limits = model_limits(loaded, scored)
    unk = loaded.codec.processor.tokenizer.unk_token
    decoded = [result.decoded[row["utt_id"]] for row in scored]
    hyps = [" ".join(d.text.replace(unk, UNKNOWN_CHAR).split()) for d in decoded]
    scores = score_utterances(
        loaded.codec, [row["text"] for row in scored], [row.get("pronounced") for row in scored], hyps, g2p=g2p
    )
    refs, edits, phonemes = scores.references, scores.edits, scores.phonemes
    arrays = {m: (np.array([e.errors for e in es]), np.array([e.ref_len for e in es])) for m, es in edits.items()}

    predictions = [
        {
            **{k: row[k] for k in ("utt_id", "speaker_id", "age", "gender", "snr_db", "duration")},
            "reference": ref,
            "hypothesis": hyp,
            "reference_phonemes": " ".join(rp),
            "hypothesis_phonemes": " ".join(hp),
            "errors": {m: edits[m][i].errors for m in METRICS},
            "ref_len": {m: edits[m][i].ref_len for m in METRICS},
            "confidence": d.confidence,
            "words": [
                {"word": w.text.replace(unk, UNKNOWN_CHAR), "confidence": w.confidence, "correct": ok}
                for w, ok in zip(d.words, correct_words(ref, hyp), strict=True)
            ],
        }
        for i, (row, ref, hyp, (rp, hp), d) in enumerate(zip(scored, refs, hyps, phonemes, decoded))
    ]
    report = {
        "model": loaded.info,
        "test_set": {
            "manifest": storage.absolute(manifest),
            "sha256": file_sha256(manifest),
            "utterances": skips.total,
            "scored": len(scored),
            "skipped": {
                "count": skips.skipped,
                "by_reason": dict(sorted(skips.counts.items())),
                "utt_ids": sorted(skips.utt_ids),
            },
            # Scored rows this model cannot write in full (its vocabulary or frame rate): its errors.
            "model_limits": {"count": sum(limits.values()), "by_reason": dict(sorted(limits.items()))},
            "hours": sum(row["duration"] for row in scored) / 3600,  # measured durations (screen_rows)
        },
        "g2p": g2p.name,
        "metrics": summarise(arrays, cfg.bootstrap, cfg.seed),
        "breakdowns": breakdowns(scored, arrays, cfg.bootstrap, cfg.seed),
        "bootstrap": {"resamples": cfg.bootstrap, "level": CI_LEVEL, "unit": "utterance"},
        "confidence": calibration([w for p in predictions for w in p["words"]]),
        "speed": {
            "device": device,
            "batch_seconds": batch_seconds,
            "audio_seconds": result.audio_seconds,
            "model_seconds": result.model_seconds,
            "decode_seconds": result.decode_seconds,
            "real_time_factor": result.real_time_factor,
            **merged,
        },
        "fingerprint": fingerprint(model_uri, manifest, g2p, cfg),
    }
    storage.publish_dir(output, lambda folder: _write(folder, report, predictions))
    headline = ", ".join(f"{m.upper()} {report['metrics'][m]['value']:.3f}" for m in METRICS)
    _log.info("%s: %s (%d scored, %d skipped) -> %s", model_uri, headline, len(scored), skips.skipped, output)
    _log.info("%s", skips.summary())
    return report


def model_limits(loaded: LoadedModel, rows: Sequence[dict]) -> Counter:
    """How many of `rows` the model cannot transcribe in full, by reason (screening.MODEL_LIMITS)."""
    tokenizer = loaded.codec.processor.tokenizer
    frames = model_frames(loaded.model.config)
    reasons = (
        model_limit(
            loaded.codec.encode_row(row),
            frames(row["duration"]),
            tokenizer.unk_token_id,
            tokenizer.word_delimiter_token_id,
        )
        for row in rows
    )
    return Counter(reason for reason in reasons if reason is not None)


def _merged_speed(
    loaded: LoadedModel, rows: Sequence[dict], adapter: Any, device: str, batch_seconds: float, cfg: EvalConfig
) -> dict[str, Any]:
    """Time the merged form of an adapter on the same batches (users ship `trainer export`'s merged
    model, which runs at the base's cost), and count the transcripts that differ from the adapter's."""
    from trainer.evaluation.inference import transcribe

    merged = transcribe(
        loaded.transcriber(loaded.merged(), device, cfg), rows, batch_seconds, cfg.num_workers, progress=False
    )
    merged_texts = merged.hypotheses  # a property that builds a dict: once, not per utterance
    differing = sum(merged_texts.get(utt) != text for utt, text in adapter.hypotheses.items())
    return {"merged_real_time_factor": merged.real_time_factor, "merged_differing": differing}


def _write(folder: Path, report: dict, predictions: list[dict]) -> None:
    encode = json.JSONEncoder(ensure_ascii=False).encode
    with atomic_write(folder / PREDICTIONS_FILE) as fh:
        for line in predictions:
            fh.write(encode(line) + "\n")
    write_json(report, folder / METRICS_FILE)  # last: its presence means the folder is complete


def read_report(output: str) -> Optional[dict[str, Any]]:
    """The metrics.json of a finished (published) evaluation at `output`, or None."""
    text = storage.read_published(output, METRICS_FILE)
    return json.loads(text) if text else None
