"""S3 output against a real S3 server (SeaweedFS): training writes marked checkpoints, resumes
from them, survives a server outage in the middle of an upload, and never trusts an unmarked one."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from trainer import storage
from trainer.exit_codes import StorageUnavailable
from trainer.training import checkpoint as ckpt

from .helpers import cli_env, run_cli, smoke_args


def test_training_to_s3_writes_marked_checkpoints_and_resumes(smoke_data, s3_env, tmp_path):
    from trainer.model import load_for_inference

    output = f"s3://{s3_env.new_bucket()}/runs/smoke"
    env = cli_env(**s3_env.env(), TRAINER_CACHE_DIR=str(tmp_path / "cache"))
    first = run_cli(smoke_args(smoke_data, output, "--max-steps", "3"), env=env)
    assert first.returncode == 0, first.stderr[-3000:]

    store = storage.open_store(output)
    assert ckpt.complete_steps(store) == [3]
    assert store.complete(ckpt.BEST)
    assert json.loads(store.read_text("metrics.json"))["steps"] == 3
    assert any(name.startswith("events.out.tfevents") for name in _keys(s3_env, output, "tensorboard/"))

    # Same output, longer schedule: resumes from the S3 checkpoint instead of starting over.
    second = run_cli(smoke_args(smoke_data, output, "--max-steps", "6"), env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming from {output}/checkpoint-3 at step 3" in second.stderr
    assert ckpt.complete_steps(store) == [3, 6]

    model, processor, kind = load_for_inference(f"{output}/checkpoint-best")
    assert kind == "adapter" and len(processor.tokenizer) == model.base_model.model.config.vocab_size


def _keys(server, uri: str, under: str) -> list[str]:
    bucket, prefix = storage.split_s3(uri)
    listing = server.client().list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{under}")
    return [o["Key"].rsplit("/", 1)[-1] for o in listing.get("Contents", [])]


def _staged_checkpoint(tmp_path, megabytes: int = 24):
    staged = tmp_path / "staged"
    staged.mkdir(parents=True)
    for i in range(3):  # several multipart files, so the outage lands between and inside uploads
        (staged / f"part{i}.bin").write_bytes(os.urandom(megabytes * 1024 * 1024 // 3))
    (staged / "trainer_state.json").write_text("{}")
    return staged, {p.name: p.read_bytes() for p in staged.iterdir()}


@pytest.mark.slow
def test_publish_survives_server_outage_mid_upload(s3_env, tmp_path, caplog):
    bucket = s3_env.new_bucket()
    store = storage.open_store(f"s3://{bucket}/run")
    staged, contents = _staged_checkpoint(tmp_path)
    outage = threading.Event()

    def stop_during_upload() -> None:
        client = s3_env.client()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until the upload has started
            uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
            listed = client.list_objects_v2(Bucket=bucket).get("KeyCount", 0)
            if uploads or listed:
                break
            time.sleep(0.05)
        s3_env.stop()
        outage.set()
        time.sleep(4)
        s3_env.start()

    killer = threading.Thread(target=stop_during_upload)
    killer.start()
    store.publish(staged, "checkpoint-7")  # retries with backoff until the server is back
    killer.join()

    assert outage.is_set()
    assert any("retrying" in r.getMessage() for r in caplog.records if r.name == "trainer.storage")
    assert store.complete("checkpoint-7") and ckpt.complete_steps(store) == [7]
    fetched = store.fetch("checkpoint-7")
    for name, data in contents.items():
        assert (fetched / name).read_bytes() == data


def test_unmarked_or_failed_uploads_are_not_resumed(s3_env, tmp_path, monkeypatch):
    bucket = s3_env.new_bucket()
    store = storage.open_store(f"s3://{bucket}/run")
    staged, _ = _staged_checkpoint(tmp_path / "one", megabytes=3)
    store.publish(staged, "checkpoint-1")
    # A writer that died after some files of checkpoint-2 (no marker)...
    s3_env.client().put_object(Bucket=bucket, Key="run/checkpoint-2/adapter_model.safetensors", Body=b"partial")
    # ...and a publish of checkpoint-3 that gives up because the server stays down.
    staged, _ = _staged_checkpoint(tmp_path / "three", megabytes=3)
    monkeypatch.setattr(storage, "RETRY_SECONDS", 2.0)
    s3_env.stop()
    try:
        with pytest.raises(StorageUnavailable):  # exit 75: a rerun resumes from checkpoint-1
            store.publish(staged, "checkpoint-3")
    finally:
        s3_env.start()
    assert ckpt.complete_steps(store) == [1]
