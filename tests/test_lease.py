"""The one-writer lease (trainer.lease) on both backends, against the real S3 server (SeaweedFS:
its PutObject honours `If-None-Match: *` and `If-Match`, checked here) and a real filesystem: a
held lease refuses a second writer naming the holder (exit 75), a silent one is taken over, and
its old holder then finds it lost."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from trainer import exit_codes, lease
from trainer.lease import LeaseHeld, acquire, lease_uri


def _outputs(s3_env, tmp_path) -> dict[str, str]:
    return {"local": str(tmp_path / "out"), "s3": f"s3://{s3_env.new_bucket()}/runs/out"}


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_second_writer_is_refused_naming_the_holder(s3_env, tmp_path, backend):
    output = _outputs(s3_env, tmp_path)[backend]
    held = acquire(output)
    try:
        with pytest.raises(LeaseHeld) as refused:
            acquire(output)
        assert refused.value.exit_code == exit_codes.PREEMPTED
        assert f"process {os.getpid()} on host {socket.gethostname()}" in str(refused.value)
    finally:
        held.release()
    acquire(output).release()  # released: free again


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_a_silent_lease_is_taken_over_and_its_holder_finds_it_lost(s3_env, tmp_path, monkeypatch, backend):
    output = _outputs(s3_env, tmp_path)[backend]
    monkeypatch.setattr(lease, "LEASE_SECONDS", 1000.0)  # no heartbeat thread beats during the test
    old = acquire(output)
    old.stop.set()
    monkeypatch.setattr(lease, "LEASE_SECONDS", 0.5)
    time.sleep(0.6)  # the old holder stays silent past the lease time (a frozen pod, a lost node)
    new = acquire(output)
    try:
        assert new.body["token"] != old.body["token"]
        assert not old.beat()  # the old holder learns it lost the lease and stops writing
        assert new.beat()
    finally:
        new.release()


def test_a_lease_left_by_a_dead_process_on_this_host_is_taken_at_once(tmp_path):
    output = str(tmp_path / "out")
    dead = {
        "host": socket.gethostname(),
        "pid": 2**22 + 1,
        "pod": None,
        "token": "x",
        "since": 0,
        "heartbeat": time.time(),
    }
    (tmp_path / ".out.lease").write_text(json.dumps(dead), encoding="utf-8")
    (tmp_path / ".tmp-out-abcd1234").mkdir()  # its partial staging copy
    with lease.hold(output):
        assert not (tmp_path / ".tmp-out-abcd1234").exists()
    assert not (tmp_path / ".out.lease").exists()


def test_conditional_create_is_honoured_by_the_s3_server(s3_env):
    from botocore.exceptions import ClientError

    from trainer.storage import s3_client

    bucket = s3_env.new_bucket()
    client = s3_client()
    client.put_object(Bucket=bucket, Key="k", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as second:
        client.put_object(Bucket=bucket, Key="k", Body=b"2", IfNoneMatch="*")
    assert second.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert lease_uri(f"s3://{bucket}/a/out") == f"s3://{bucket}/a/.out.lease"


def test_a_lease_whose_beats_stopped_is_waited_for_then_taken(tmp_path, monkeypatch):
    monkeypatch.setattr(lease, "LEASE_SECONDS", 2.0)
    elsewhere = {"host": "other-node", "pid": 1, "pod": "asr-r16-p1-x", "token": "y", "since": 0}
    (tmp_path / ".out.lease").write_text(json.dumps({**elsewhere, "heartbeat": time.time() - 1.5}), encoding="utf-8")
    started = time.monotonic()
    taken = acquire(str(tmp_path / "out"))  # beats missed but not yet for LEASE_SECONDS: it waits
    try:
        assert time.monotonic() - started >= 0.4
        assert json.loads((tmp_path / ".out.lease").read_text(encoding="utf-8"))["token"] == taken.body["token"]
    finally:
        taken.release()
    (tmp_path / ".out.lease").write_text(json.dumps({**elsewhere, "heartbeat": time.time()}), encoding="utf-8")
    with pytest.raises(LeaseHeld, match="pod asr-r16-p1-x"):  # beating on another node: retry later
        acquire(str(tmp_path / "out"))
