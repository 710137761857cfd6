"""One config dialect everywhere: `train --config`, presets, `submit.py --values` and `--set-train`
read YAML 1.2 numbers through one parser with size, alias and nesting limits; every free-form
string has a pattern and a length limit, and names that become folders cannot leave them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer import exit_codes
from trainer.config import MAX_CONFIG_BYTES, TrainConfig, build, load_config, parse_config
from trainer.evaluation.cli import named_values
from trainer.exit_codes import ConfigError
from trainer.pipeline import submit_cli as submit
from trainer.training.configure import resolve

BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def _write(tmp_path: Path, text: str | bytes, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_scientific_notation_is_a_float_in_every_front_end(tmp_path, capsys):
    config = _write(tmp_path, "learning_rate: 1e-4\nmax_steps: 3\n")
    assert resolve("train", "smoke", str(config), {}).learning_rate == 1e-4

    values = _write(tmp_path, "trainOverrides:\n  learning_rate: 1e-4\n", "values.yaml")
    args = submit.build_parser().parse_args(["--values", str(values), "--set-train", "head_learning_rate=3E-4"])
    overrides = submit.build_config(args).train_overrides
    assert overrides == {"learning_rate": 1e-4, "head_learning_rate": 3e-4}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (BILLION_LAUGHS, "aliases"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        ("a: " + "x" * MAX_CONFIG_BYTES + "\n", "larger than"),
        (b"learning_rate: \xff\xfe\n", "not UTF-8"),
        ("- a\n- b\n", "mapping"),
        ("a: [\n", "invalid YAML"),
    ],
)
def test_hostile_config_files_are_one_line_config_errors(tmp_path, capsys, text, problem):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=problem):
        load_config(path)
    with pytest.raises(ConfigError, match=problem):
        resolve("train", "smoke", str(path), {})
    assert submit.main(["--values", str(path), "--render-only", str(tmp_path / "out")]) == exit_codes.CONFIG_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ") and problem in err and "Traceback" not in err


def test_json_values_files_are_read_by_the_same_parser(tmp_path):
    path = _write(tmp_path, json.dumps({"trainOverrides": {"learning_rate": 0.0003}}), "values.json")
    assert load_config(path) == {"trainOverrides": {"learning_rate": 0.0003}}
    assert parse_config("", "empty") == {}


@pytest.mark.parametrize(
    ("layer", "field"),
    [
        ({"output": "runs/a\nb"}, "output"),
        ({"train_manifest": "m" * 2000}, "train_manifest"),
        ({"target_modules": ["q_proj; rm -rf /"]}, "target_modules"),
        (parse_config("learning_rate: .inf", "f"), "learning_rate: must be a finite number"),
        (parse_config("speed_perturb: [1.0, .nan]", "f"), "speed_perturb: must be a finite number"),
    ],
)
def test_free_form_train_strings_are_checked(layer, field):
    with pytest.raises(ConfigError, match=field):
        build(TrainConfig, layer)


@pytest.mark.parametrize("name", ["..", ".hidden", "a/b", "/abs", "x" * 65, ""])
def test_names_used_as_folders_stay_in_their_folder(name):
    with pytest.raises(ConfigError):
        named_values([f"{name}=runs/model"], "--model")
    assert named_values(["r16.p3=runs/model"], "--model") == {"r16.p3": "runs/model"}
