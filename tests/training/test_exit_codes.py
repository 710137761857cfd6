"""Exit codes the Jobs' podFailurePolicy relies on, against the real S3 server (SeaweedFS) and real
filesystems: configuration problems (missing bucket, rejected credentials, an endpoint nobody
answers, an output that cannot be written, a full disk) are 78 with one `error:` line naming what
to fix and no traceback; storage that fails after it has answered is 75 (a rerun resumes)."""

from __future__ import annotations

import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from trainer import exit_codes, storage
from trainer.exit_codes import ConfigError, StorageUnavailable

from .helpers import REPO, cli_env, run_cli, smoke_args


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_one_error_line(result: subprocess.CompletedProcess, code: int, *words: str) -> str:
    assert result.returncode == code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def _s3_train(smoke_data: Path, output: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return run_cli(
        smoke_args(smoke_data, output, "--max-steps", "1"), env=cli_env(TRAINER_CACHE_DIR=str(tmp_path), **env)
    )


def test_missing_bucket_is_a_config_error(smoke_data, s3_env, tmp_path):
    result = _s3_train(smoke_data, "s3://no-such-bucket-here/run", tmp_path, **s3_env.env())
    assert_one_error_line(result, exit_codes.CONFIG_ERROR, "output: s3://no-such-bucket-here/run", "NoSuchBucket")


@pytest.mark.parametrize(
    ("key", "secret", "code", "setting"),
    [
        ("nobody", "test", "InvalidAccessKeyId", "AWS_ACCESS_KEY_ID"),
        ("test", "wrong-secret", "SignatureDoesNotMatch", "AWS_SECRET_ACCESS_KEY"),
        ("reader", "reader-secret", "AccessDenied", "AWS_ACCESS_KEY_ID"),  # may read, may not write
    ],
)
def test_rejected_credentials_are_a_config_error(s3_env, monkeypatch, key, secret, code, setting):
    output = f"s3://{s3_env.new_bucket()}/run"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches the credentials it found first
    with pytest.raises(ConfigError) as info:
        storage.open_store(output).check_writable()
    message = str(info.value)
    assert message.startswith(f"output: {output}: {code}") and setting in message and "\n" not in message


def test_endpoint_nobody_answers_is_a_config_error_after_a_short_wait(smoke_data, s3_server, tmp_path):
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    env = {
        **s3_server.env(),
        "AWS_ENDPOINT_URL": endpoint,
        "TRAINER_S3_FIRST_CONTACT_SECONDS": "2",
        "AWS_MAX_ATTEMPTS": "1",
    }
    result = _s3_train(smoke_data, "s3://bucket/run", tmp_path, **env)
    assert_one_error_line(result, exit_codes.CONFIG_ERROR, "no answer from the S3 endpoint", endpoint)
    assert result.stderr.count("retrying in") >= 1  # it did wait, within the first-contact budget


def test_debug_shows_the_traceback(smoke_data, s3_env, tmp_path):
    env = {**s3_env.env(), "TRAINER_DEBUG": "1"}
    result = _s3_train(smoke_data, "s3://no-such-bucket-here/run", tmp_path, **env)
    assert result.returncode == exit_codes.CONFIG_ERROR
    assert "Traceback" in result.stderr and "NoSuchBucket" in result.stderr


def test_storage_failing_after_it_answered_is_retried_then_75(s3_server, monkeypatch):
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    for key, value in {**s3_server.env(), "AWS_ENDPOINT_URL": endpoint, "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(storage, "_answered", {endpoint})  # the endpoint answered earlier in this run
    monkeypatch.setattr(storage, "RETRY_SECONDS", 1.5)
    store = storage.open_store("s3://bucket/run")
    with pytest.raises(StorageUnavailable, match="TRAINER_S3_RETRY_SECONDS") as info:
        store.read_text("metrics.json")
    assert exit_codes.run_main(lambda: (_ for _ in ()).throw(info.value)) == exit_codes.PREEMPTED


# --------------------------------------------------------------------------- local disks


def _in_own_mount(tmp_path: Path, options: str, args: list[str]) -> subprocess.CompletedProcess:
    """`python -m trainer ARGS` with a fresh tmpfs (mount OPTIONS) at tmp_path/mnt, in a private
    user and mount namespace: a real read-only or full filesystem without privileges."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    script = f"mount -t tmpfs -o {options} tmpfs {shlex.quote(str(mount))} && exec {shlex.join([sys.executable, '-m', 'trainer', *args])}"
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if shutil.which("unshare") is None or probe.returncode != 0:
        pytest.skip("needs `unshare -rm` (user and mount namespaces) for a real read-only or full filesystem")
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_read_only_output_is_a_config_error(smoke_data, tmp_path):
    result = _in_own_mount(tmp_path, "ro,size=1m", smoke_args(smoke_data, tmp_path / "mnt" / "run", "--max-steps", "1"))
    assert_one_error_line(
        result, exit_codes.CONFIG_ERROR, f"output: {tmp_path / 'mnt' / 'run'}", "Read-only file system"
    )


@pytest.mark.slow
def test_output_disk_full_mid_run_is_a_config_error(smoke_data, tmp_path):
    """The first checkpoint does not fit: one line naming the disk, and nothing half-written is
    taken for a checkpoint."""
    output = tmp_path / "mnt" / "run"
    args = smoke_args(smoke_data, output, "--max-steps", "2", "--save-steps", "1", "--eval-steps", "2")
    result = _in_own_mount(tmp_path, "size=100k", args)
    assert_one_error_line(
        result, exit_codes.CONFIG_ERROR, f"{output}/.tmp-checkpoint-1-", "No space left on device", "rerun"
    )
    assert not (output / "checkpoint-1").exists()
    assert "step 1/2" in result.stderr  # it failed while saving, not at start-up


def test_disk_errors_map_to_78_and_bugs_keep_their_traceback(capsys):
    full = Path("/dev/full")  # every write fails with ENOSPC
    if not full.is_char_device():
        pytest.skip("no /dev/full device")
    assert exit_codes.run_main(lambda: full.write_text("x" * 65536)) == exit_codes.CONFIG_ERROR
    assert "No space left on device" in capsys.readouterr().err
    with pytest.raises(ZeroDivisionError):
        exit_codes.run_main(lambda: 1 // 0)


def test_output_below_a_file_is_a_config_error_naming_the_setting(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"^--output: .*/file/run: cannot write here \(Not a directory\)$"):
        storage.open_store(str(tmp_path / "file" / "run")).check_writable("--output")
