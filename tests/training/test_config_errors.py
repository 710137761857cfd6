"""Bad training configuration is a ConfigError (exit 78) naming the field, from flags or a file."""

from __future__ import annotations

import pytest

from trainer.config import TrainConfig, build
from trainer.exit_codes import ConfigError


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"save_steps": 0}, "save_steps: must be >= 1, got 0"),  # would divide by zero mid-run
        ({"lora_dropout": 1.0}, "lora_dropout: must be < 1"),
        ({"warmup_ratio": 1.5}, "warmup_ratio: must be <= 1"),
        ({"speed_perturb": [1.0, 0.0]}, "speed_perturb: must be > 0, got [1.0, 0.0]"),
        ({"max_batch_seconds": -5}, "max_batch_seconds: must be > 0"),
        ({"grad_accum": 0}, "grad_accum: must be >= 1"),
        ({"learning_rate": "fast"}, "learning_rate: expected float, got 'fast'"),
        ({"rank": 16.5}, "rank: expected int, got 16.5"),
        ({"gradient_checkpointing": "yes"}, "gradient_checkpointing: expected bool"),
        ({"precision": "bf17"}, "precision: expected one of auto, fp32, bf16, fp16, got 'bf17'"),
        ({"target_modules": ["q_proj", 3]}, "target_modules: expected list[str]"),
    ],
)
def test_out_of_range_or_mistyped_values_name_the_field(values, message) -> None:
    with pytest.raises(ConfigError, match="^run.yaml: " + message.replace("[", r"\[").replace("]", r"\]")):
        build(TrainConfig, values, source="run.yaml")


def test_boundary_and_integer_values_are_accepted() -> None:
    cfg = build(
        TrainConfig, {"learning_rate": 0, "lora_dropout": 0.0, "warmup_ratio": 1, "ema_decay": 0, "patience": 0}
    )
    assert cfg.learning_rate == 0 and cfg.warmup_ratio == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"[PAD]": 0, "[UNK]": 1', "not a readable vocabulary"),
        (b'\xff{"[PAD]": 0}', "not a readable vocabulary"),
        (b'["a", "b"]', "must map each unit to a non-negative integer id"),
        (b'{"[PAD]": 0, "[UNK]": 1, "a": "2"}', "must map each unit to a non-negative integer id"),
        (b'{"[PAD]": 0, "[UNK]": 1, "a": 2}', r"lacks the special unit\(s\) \|"),
        (b'{"[PAD]": 0, "[UNK]": 1, "|": 2, "a": 2}', "two units share an id"),
    ],
)
def test_a_broken_vocabulary_is_a_config_error(tmp_path, content, message) -> None:
    from trainer.model.processor import build_processor

    (tmp_path / "vocab.json").write_bytes(content)
    with pytest.raises(ConfigError, match=f"^{tmp_path / 'vocab.json'}: {message}"):
        build_processor(tmp_path)
