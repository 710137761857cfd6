"""Layered configuration of `train` and `pretrain-base`: defaults < preset < preset's phase
section < --config FILE < command-line flags, then the curriculum phase's defaults fill what is
still unset (epochs, WER target, training manifest).

Presets are YAML files in trainer/presets/; each starts with a comment giving the command that
uses it. Sections: `train` and `pretrain_base` (TrainConfig fields for each command), `phases`
(per-phase TrainConfig fields for `train`), `smoke_data` (sizes of the synthetic corpus that
`smoke-data` and the pipeline's embedded default make).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from trainer.config import PHASES, TrainConfig, build, load_config
from trainer.exit_codes import ConfigError
from trainer.layout import phase_file
from trainer.storage import join

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"
DEFAULT_PRESET = "xlsr"
SECTIONS = ("description", "train", "pretrain_base", "phases", "smoke_data")
COMMAND_SECTIONS = {"train": "train", "pretrain-base": "pretrain_base"}


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> dict[str, Any]:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"preset: unknown preset '{name}' (choose from {', '.join(preset_names())})")
    preset = load_config(path)
    unknown = set(preset) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {sorted(unknown)} (allowed: {', '.join(SECTIONS)})")
    for phase in preset.get("phases", {}):
        if phase not in PHASES:
            raise ConfigError(f"{path}: phases: unknown phase {phase!r}")
    return preset


def apply_phase_defaults(cfg: TrainConfig, check: bool = True) -> TrainConfig:
    """Fill epochs / wer_target / train_manifest from the curriculum phase where left unset;
    `check`: ConfigError when the length of training is still unset."""
    spec = cfg.phase_spec()
    changes: dict[str, Any] = {}
    if spec is not None:
        if not cfg.epochs and not cfg.max_steps:
            changes["epochs"] = float(spec.epochs)
        if not cfg.wer_target:
            changes["wer_target"] = spec.wer_target
        if not cfg.train_manifest and cfg.curriculum_dir:
            changes["train_manifest"] = join(cfg.curriculum_dir, phase_file(cfg.phase))
    cfg = dataclasses.replace(cfg, **changes)
    if check and not cfg.epochs and not cfg.max_steps:
        raise ConfigError("epochs: set --epochs, --max-steps or --phase (which brings its epochs)")
    return cfg


def resolve(
    command: str, preset_name: str | None, config_file: str | None, flags: dict[str, Any], check: bool = True
) -> TrainConfig:
    """The TrainConfig for `command` ("train" or "pretrain-base") from all layers. `check=False`:
    as far as the layers go (the pipeline's settings digest; the job itself reports what is missing)."""
    preset = load_preset(preset_name or DEFAULT_PRESET)
    section = preset.get(COMMAND_SECTIONS[command]) or {}
    file_layer = load_config(config_file) if config_file else {}
    phase = flags.get("phase", file_layer.get("phase", section.get("phase", 0)))
    phase_layer = (preset.get("phases") or {}).get(phase, {}) if command == "train" else {}
    source = f"preset {preset_name or DEFAULT_PRESET}" + (f" + {config_file}" if config_file else "")
    cfg = build(TrainConfig, section, phase_layer, file_layer, flags, source=source)
    return apply_phase_defaults(cfg, check)
