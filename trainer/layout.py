"""Names of the files and folders one step writes and another reads: the storage layout, defined once.

The producers (`data synth`, `data prepare`, `pretrain-base`, `train`, `evaluate`/`compare`) write
these names and trainer.pipeline.plan waits for them as completion markers, so a rename here moves
both sides.
"""

from __future__ import annotations

# Written last into a folder published atomically (trainer.storage): the folder is complete.
COMPLETE_MARKER = "COMPLETE"
CHECKPOINT_BEST = "checkpoint-best"
# A finished training phase (after its final checkpoint) or a finished evaluation.
METRICS_FILE = "metrics.json"
SYNTH_SUMMARY_FILE = "synth_summary.json"  # `data synth`, last
PREPARE_REPORT_FILE = "prepare_report.json"  # `data prepare`, last
COMPARISON_FILE = "comparison.md"  # `compare`, last
ASSESSMENT_REPORT_FILE = "assessment.md"  # `assess`, last; linked from comparison.md
ASSESSMENT_DIR = "assessment"  # `compare --assess`: one assessment folder per phone-unit model
ASSESSMENT_CALIBRATION_DIR = "assessment-calibration"  # `compare --assess-calibration`: one per model

# The prepared data folder (`data prepare`).
CURRICULUM_DIR = "curriculum"
VOCAB_FILE = "vocab.json"
UNITS_FILE = "text_units.json"

# Below the storage root and a run (trainer.pipeline.plan).
CORPORA_DIR = "corpora"
MODELS_DIR = "models"
HF_CACHE_DIR = "cache/huggingface"  # Hub datasets that `data prepare --format hf` downloads
REPORT_DIR = "report"


def group_file(split: str, group: str) -> str:
    """A split's child or adult view, e.g. `val_child.jsonl`."""
    return f"{split}_{group}.jsonl"


def phase_file(phase: int) -> str:
    """One curriculum phase's manifest in CURRICULUM_DIR."""
    return f"phase{phase}.jsonl"
