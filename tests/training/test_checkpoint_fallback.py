"""Resume survives a damaged checkpoint: a complete (marked) checkpoint whose files do not load is
reported in one line, moved aside as checkpoint-N.corrupt (not deleted), and the next older
complete one is resumed, locally and on S3."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from trainer import storage
from trainer.training import checkpoint as ckpt

from .helpers import assert_same_weights, run_cli, smoke_args, smoke_config

EXTRA = ("--save-steps", "2", "--eval-steps", "2", "--log-steps", "1", "--num-workers", "0")


def _publish_checkpoint(store, step: int) -> None:
    """A small checkpoint with one file of each kind resuming reads."""
    staged = store.staging_dir(f"checkpoint-{step}")
    save_file({"w": torch.arange(1000, dtype=torch.float32)}, str(staged / "adapter_model.safetensors"))
    torch.save({"state": {0: {"exp_avg": torch.ones(100)}}}, staged / ckpt.OPTIMIZER_FILE)
    (staged / ckpt.STATE_FILE).write_text(ckpt.Progress(step=step).to_json(), encoding="utf-8")
    store.publish(staged, f"checkpoint-{step}")


def _same_size_garbage(path: Path) -> None:
    path.write_bytes(b"\x00" * path.stat().st_size)


@pytest.mark.parametrize(
    ("file", "damage", "reason"),
    [
        ("adapter_model.safetensors", lambda p: p.write_bytes(p.read_bytes()[:-100]), "bytes"),
        (ckpt.OPTIMIZER_FILE, _same_size_garbage, "optimizer.pt: "),
        (ckpt.STATE_FILE, _same_size_garbage, "JSONDecodeError"),
        # Valid JSON of the right size, but not a progress record.
        (ckpt.STATE_FILE, lambda p: p.write_text("[" + " " * (p.stat().st_size - 2) + "]"), "AttributeError"),
    ],
)
def test_damaged_newest_checkpoint_is_set_aside(tmp_path, caplog, file, damage, reason):
    store = storage.open_store(str(tmp_path / "run"))
    for step in (2, 4):
        _publish_checkpoint(store, step)
    ckpt.verify(store.fetch("checkpoint-4"))  # intact: no complaint
    damage(tmp_path / "run" / "checkpoint-4" / file)

    ckpt.set_aside_damaged(store)
    assert ckpt.complete_steps(store) == [2]
    assert (tmp_path / "run" / "checkpoint-4.corrupt" / file).is_file()  # kept for a person to look at
    [record] = [r for r in caplog.records if "does not load" in r.getMessage()]
    assert f"checkpoint-4 does not load ({file}" in record.getMessage() and reason in record.getMessage()

    # The same step damaged again later gets its own name; the older one stays.
    _publish_checkpoint(store, 4)
    damage(tmp_path / "run" / "checkpoint-4" / file)
    ckpt.set_aside_damaged(store)
    assert {"checkpoint-4.corrupt", "checkpoint-4.corrupt-1", "checkpoint-2"} <= set(store.list_dirs())


def test_damaged_checkpoint_on_s3_is_moved_aside(s3_env, tmp_path):
    bucket = s3_env.new_bucket()
    store = storage.open_store(f"s3://{bucket}/run")
    for step in (2, 4):
        _publish_checkpoint(store, step)
    s3_env.client().put_object(Bucket=bucket, Key="run/checkpoint-4/optimizer.pt", Body=b"not a torch file")

    fetched = []
    fetch = store.fetch
    store.fetch = lambda name: fetched.append(name) or fetch(name)

    verified = ckpt.set_aside_damaged(store)
    assert ckpt.complete_steps(store) == [2]
    # The checkpoint that loads is handed over as downloaded and read, for resuming to use as it is.
    assert (verified.name, fetched) == ("checkpoint-2", ["checkpoint-4", "checkpoint-2"])
    assert verified.read(ckpt.STATE_FILE).step == 2 and ckpt.STATE_FILE not in verified.parsed
    assert torch.equal(verified.read(ckpt.OPTIMIZER_FILE)["state"][0]["exp_avg"], torch.ones(100))
    assert (verified.folder / "adapter_model.safetensors").is_file()
    aside = storage.open_store(f"s3://{bucket}/run/checkpoint-4.corrupt")
    assert json.loads(aside.read_text(storage.MARKER))["files"].keys() >= {ckpt.OPTIMIZER_FILE}
    assert aside.read_text(ckpt.OPTIMIZER_FILE) == "not a torch file"


@pytest.mark.slow
def test_truncated_newest_checkpoint_resumes_from_the_older_one(smoke_data, tmp_path):
    first = tmp_path / "first"
    assert run_cli(smoke_args(smoke_data, first, "--max-steps", "4", *EXTRA)).returncode == 0
    damaged, reference = tmp_path / "damaged", tmp_path / "reference"
    shutil.copytree(first, damaged)
    shutil.copytree(first, reference)
    weights = damaged / "checkpoint-4" / "adapter_model.safetensors"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[: size // 2])
    shutil.rmtree(reference / "checkpoint-4")  # what an uninterrupted resume from checkpoint-2 sees

    runs = {out: run_cli(smoke_args(smoke_data, out, "--max-steps", "6", *EXTRA)) for out in (damaged, reference)}
    for result in runs.values():
        assert result.returncode == 0, result.stderr[-3000:]
    log = runs[damaged].stderr
    assert "Traceback" not in log
    assert f"checkpoint-4 does not load (adapter_model.safetensors: {size // 2} bytes, {size} when saved)" in log
    assert f"resuming from {damaged}/checkpoint-2 at step 2" in log
    assert (damaged / "checkpoint-4.corrupt" / "adapter_model.safetensors").stat().st_size == size // 2
    assert_same_weights(reference, damaged, 6)


def test_resuming_reads_each_file_of_the_checkpoint_once(smoke_data, tmp_path, monkeypatch):
    """Verifying the checkpoint reads its files; resuming loads what verification read."""
    from trainer.training.loop import TrainingRun
    from trainer.training.methods import LoraMethod

    out = tmp_path / "run"
    assert run_cli(smoke_args(smoke_data, out, "--max-steps", "2", *EXTRA)).returncode == 0
    loaded = []
    load = torch.load
    monkeypatch.setattr(torch, "load", lambda f, *a, **kw: loaded.append(Path(f).name) or load(f, *a, **kw))
    run = TrainingRun(smoke_config(smoke_data, out, max_steps=4, num_workers=0), LoraMethod())
    assert run.resumed_from == "checkpoint-2" and run.progress.step == 2
    assert sorted(loaded) == sorted([ckpt.OPTIMIZER_FILE, ckpt.SCHEDULER_FILE, ckpt.RNG_FILE])
