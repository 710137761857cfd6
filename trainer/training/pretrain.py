"""`pretrain-base`: a tiny Wav2Vec2ForCTC trained from scratch, saved as a plain model folder.

XLS-R weights cannot be downloaded everywhere (tests, air-gapped demos), and LoRA on a random
base learns nothing, so the demo trains its own small base on adult voices first. The output
folder is a standard `save_pretrained` model + processor, usable as `train --model BASE_DIR`:

    BASE_DIR/config.json, model.safetensors, processor files, text_units.json, metrics.json
    BASE_DIR/base_build.json   digest of the inputs it was built from
    BASE_DIR/COMPLETE          written last
    BASE_DIR/runs/<digest>/    the training run (checkpoints, TensorBoard), resumable

It reuses the training loop (full training instead of LoRA), so it is resumable and atomic in
the same way, and it is skipped when BASE_DIR already holds a complete model built from the
same manifests, vocabulary and settings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil

from trainer import exit_codes, lease
from trainer.config import RUNTIME, TrainConfig, fields_with
from trainer.model.processor import UNITS_FILE, VOCAB_FILE, build_processor
from trainer.model.scratch import scratch_config
from trainer.storage import MARKER, join, local_file, local_folder, open_store
from trainer.training import checkpoint as ckpt
from trainer.training.loop import run_training
from trainer.training.methods import ScratchMethod

BUILD_INFO = "base_build.json"
RUNTIME_FIELDS = fields_with(TrainConfig, RUNTIME)  # they do not change the trained weights
_NOT_EXPORTED = {ckpt.STATE_FILE, ckpt.EMA_FILE, MARKER, "README.md"}
_log = logging.getLogger(__name__)


def inputs_digest(cfg: TrainConfig) -> str:
    """Hash of everything the base's weights depend on: data, vocabulary, settings and the
    architecture built from them (a changed front end in code rebuilds the base too)."""
    h = hashlib.sha256()
    vocab = local_folder(cfg.vocab, (VOCAB_FILE, UNITS_FILE))
    for path in (local_file(cfg.train_manifest), local_file(cfg.val_manifest), vocab / VOCAB_FILE, vocab / UNITS_FILE):
        h.update(path.read_bytes())
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in RUNTIME_FIELDS}
    settings.update(train_manifest=None, val_manifest=None, vocab=None)  # contents hashed above
    h.update(json.dumps(settings, sort_keys=True).encode())
    architecture = scratch_config(cfg, build_processor(cfg.vocab)).to_dict()
    architecture.pop("transformers_version", None)
    h.update(json.dumps(architecture, sort_keys=True, default=str).encode())
    return h.hexdigest()


def pretrain_base(cfg: TrainConfig) -> int:
    store = open_store(cfg.output)
    digest = inputs_digest(cfg)
    built = store.read_text(BUILD_INFO) if store.complete("") else None
    if built and json.loads(built).get("digest") == digest:
        _log.info("%s: base model is up to date (inputs digest %s); nothing to do", store.uri, digest[:12])
        return exit_codes.OK
    with lease.hold(cfg.output):
        store.cleanup_stale()  # the staging folder of a publish that was killed
        run_uri = join(cfg.output, "runs", digest[:12])
        code = run_training(dataclasses.replace(cfg, output=run_uri), ScratchMethod())
        if code != exit_codes.OK:
            return code
        best = open_store(run_uri).fetch(ckpt.BEST)
        staged = store.staging_dir("base")
        for path in best.iterdir():
            if path.is_file() and path.name not in _NOT_EXPORTED:
                shutil.copy2(path, staged / path.name)
        (staged / BUILD_INFO).write_text(json.dumps({"digest": digest, "run": run_uri}, indent=2), encoding="utf-8")
        store.publish(staged, "")
    _log.info("base model written to %s", store.uri)
    return exit_codes.OK
