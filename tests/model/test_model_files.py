"""Model files a user hands to train, evaluate and export, checked before they are loaded
(trainer.model.artefact): a checkpoint trained with another vocabulary, a vocabulary changed under a
run, a run or base folder given as a checkpoint, a truncated adapter, an empty adapter_config.json
and a moved base model are each one `error:` line naming the file and exit 78, never a traceback,
and never a run that goes on with a head built for another unit -> id mapping (that one exited 0)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.training.helpers import run_cli, smoke_args
from tests.training.test_exit_codes import assert_one_error_line
from trainer import exit_codes


@pytest.fixture(scope="module")
def trained(smoke_data, tmp_path_factory) -> Path:
    """A one-step smoke run (its checkpoint-best is an adapter checkpoint); treat as read-only."""
    output = tmp_path_factory.mktemp("trained") / "run"
    result = run_cli(smoke_args(smoke_data, output, "--max-steps", "1"))
    assert result.returncode == 0, result.stderr[-3000:]
    return output


def _vocab_copy(smoke_data: Path, folder: Path, change) -> Path:
    """The smoke vocabulary (vocab.json + text_units.json) in `folder`, vocab.json passed through `change`."""
    folder.mkdir(parents=True, exist_ok=True)
    prepared = smoke_data / "prepared"
    shutil.copy(prepared / "text_units.json", folder / "text_units.json")
    vocab = json.loads((prepared / "vocab.json").read_text(encoding="utf-8"))
    (folder / "vocab.json").write_text(json.dumps(change(vocab), ensure_ascii=False), encoding="utf-8")
    return folder


def _swap_two_units(vocab: dict[str, int]) -> dict[str, int]:
    """The same units and size, two ordinary units' ids exchanged."""
    a, b = [unit for unit, i in sorted(vocab.items(), key=lambda kv: kv[1]) if len(unit) == 1 and unit != "|"][-2:]
    return {**vocab, a: vocab[b], b: vocab[a]}


def _one_more_unit(vocab: dict[str, int]) -> dict[str, int]:
    return {**vocab, "Q": max(vocab.values()) + 1}


def _train(smoke_data: Path, output: Path, vocab: Path, *extra: str):
    args = smoke_args(smoke_data, output, "--max-steps", "1", *extra)
    args[args.index("--vocab") + 1] = str(vocab)
    return run_cli(args)


@pytest.mark.parametrize("change", [_swap_two_units, _one_more_unit], ids=["ids-shifted", "one-unit-more"])
def test_warm_start_from_a_checkpoint_with_another_vocabulary_is_refused(smoke_data, trained, tmp_path, change):
    vocab = _vocab_copy(smoke_data, tmp_path / "vocab", change)
    init = str(trained / "checkpoint-best")
    refused = _train(smoke_data, tmp_path / "phase2", vocab, "--init-from", init)
    assert_one_error_line(refused, exit_codes.CONFIG_ERROR, "init_from:", "vocab.json", "--new-head")
    # Asked for: the adapters carry over, the head starts anew for the run's vocabulary.
    renewed = _train(smoke_data, tmp_path / "phase2-new-head", vocab, "--init-from", init, "--new-head")
    assert renewed.returncode == 0, renewed.stderr[-3000:]
    assert "new CTC head" in renewed.stderr


def test_resume_after_vocab_json_changed_in_place_is_refused(smoke_data, tmp_path):
    vocab = _vocab_copy(smoke_data, tmp_path / "vocab", lambda v: v)
    output = tmp_path / "run"
    first = _train(smoke_data, output, vocab)
    assert first.returncode == 0, first.stderr[-3000:]
    changed = json.loads((vocab / "vocab.json").read_text(encoding="utf-8"))
    (vocab / "vocab.json").write_text(json.dumps(_swap_two_units(changed)), encoding="utf-8")
    args = smoke_args(smoke_data, output, "--max-steps", "2")
    args[args.index("--vocab") + 1] = str(vocab)
    resumed = run_cli(args)
    assert_one_error_line(resumed, exit_codes.CONFIG_ERROR, "checkpoint-1/vocab.json", "another vocabulary")


def test_warm_start_from_a_run_folder_or_the_base_names_what_to_pass(smoke_data, trained, tmp_path):
    from_run = run_cli(smoke_args(smoke_data, tmp_path / "a", "--max-steps", "1", "--init-from", str(trained)))
    assert_one_error_line(from_run, exit_codes.CONFIG_ERROR, "training run's folder", "checkpoint-best")
    from_base = run_cli(
        smoke_args(smoke_data, tmp_path / "b", "--max-steps", "1", "--init-from", str(smoke_data / "base"))
    )
    assert_one_error_line(from_base, exit_codes.CONFIG_ERROR, "is a full model, not an adapter checkpoint", "--model")


def _truncated_weights(folder: Path) -> str:
    weights = folder / "adapter_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    return "adapter_model.safetensors"


def _empty_adapter_config(folder: Path) -> str:
    (folder / "adapter_config.json").write_text("", encoding="utf-8")
    return "adapter_config.json: empty"


def _moved_base(folder: Path) -> str:
    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = str(folder.parent / "moved-away-base")
    (folder / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    return "moved-away-base not found"


DAMAGE = {
    "truncated-adapter": _truncated_weights,
    "empty-adapter-config": _empty_adapter_config,
    "moved-base": _moved_base,
}


def _command(smoke_data: Path, command: str, checkpoint: Path, out: Path) -> list[str]:
    if command == "evaluate":
        manifest = smoke_data / "prepared" / "val.jsonl"
        return ["evaluate", "--model", str(checkpoint), "--manifest", str(manifest), "--output", str(out)]
    if command == "export":
        return ["export", "--adapter", str(checkpoint), "--output", str(out)]
    return smoke_args(smoke_data, out, "--max-steps", "1", "--init-from", str(checkpoint))


# A warm start puts the adapters on the run's own --model: the base a checkpoint records is not
# read there, so a moved base is no damage to --init-from.
@pytest.mark.parametrize(
    "command, damage",
    [
        (command, damage)
        for command in ("evaluate", "export", "init-from")
        for damage in DAMAGE
        if (command, damage) != ("init-from", "moved-base")
    ],
)
def test_damaged_checkpoint_given_to_a_command_is_one_line_naming_the_file(
    smoke_data, trained, tmp_path, command, damage
):
    checkpoint = tmp_path / "checkpoint-best"
    shutil.copytree(trained / "checkpoint-best", checkpoint)
    named = DAMAGE[damage](checkpoint)
    result = run_cli(_command(smoke_data, command, checkpoint, tmp_path / "out"))
    line = assert_one_error_line(result, exit_codes.CONFIG_ERROR, named)
    assert str(checkpoint) in line
