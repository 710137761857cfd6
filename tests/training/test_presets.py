"""Every shipped preset is valid for both commands and every phase, and documents its command."""

from __future__ import annotations

import pytest

from trainer.config import PHASES, TrainConfig
from trainer.exit_codes import ConfigError
from trainer.training.configure import PRESET_DIR, load_preset, preset_names, resolve


def test_the_expected_presets_ship():
    assert {"smoke", "demo", "demo-small", "xlsr"} <= set(preset_names())


@pytest.mark.parametrize("name", preset_names())
def test_preset_resolves_for_every_command_and_phase(name):
    preset = load_preset(name)
    first_line = (PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith("# python -m trainer ") and f"--preset {name}" in first_line
    for phase in PHASES:
        cfg = resolve("train", name, None, {"phase": phase, "output": "out"})
        assert isinstance(cfg, TrainConfig) and (cfg.epochs or cfg.max_steps)
        # The phase's own target (config.PHASES) unless the preset sets one for it.
        own = {**preset.get("train", {}), **(preset.get("phases") or {}).get(phase, {})}.get("wer_target")
        assert cfg.wer_target == (own or PHASES[phase].wer_target) > 0
    if "pretrain_base" in preset:
        cfg = resolve("pretrain-base", name, None, {"output": "out"})
        assert cfg.epochs or cfg.max_steps


def test_layers_flags_over_file_over_preset(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("learning_rate: 0.5\nrank: 8\n")
    cfg = resolve("train", "smoke", str(config), {"rank": 2, "max_steps": 1})
    assert (cfg.learning_rate, cfg.rank, cfg.lora_alpha) == (0.5, 2, load_preset("smoke")["train"]["lora_alpha"])


def test_phase_defaults_fill_epochs_target_and_manifest():
    cfg = resolve("train", "xlsr", None, {"phase": 2, "curriculum_dir": "/data/curriculum"})
    assert (cfg.epochs, cfg.wer_target, cfg.train_manifest) == (8.0, 0.18, "/data/curriculum/phase2.jsonl")


def test_bad_presets_and_fields_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve("train", "nope", None, {})
    config = tmp_path / "bad.yaml"
    config.write_text("learning_rat: 0.1\n")
    with pytest.raises(ConfigError, match="learning_rat"):
        resolve("train", "smoke", str(config), {})
