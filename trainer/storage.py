"""Where a run's outputs live: a local or PVC directory, or `s3://bucket/prefix`.

A checkpoint is a folder of files that only counts once its completion marker (`COMPLETE`) exists;
the marker is always written last, and removed first when a folder is replaced or deleted, so a
reader that trusts only marked folders never sees a half-written one:

- local/PVC: files are written into a temporary sibling folder, fsynced, renamed into place, then
  the marker is written (a crash leaves either the old folder or an unmarked one, never a mix);
- S3: every file is uploaded with the boto3 transfer manager (multipart for large files, retried
  with exponential backoff while the endpoint is unreachable), then the marker object last.

The endpoint comes from `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` (MinIO, SeaweedFS, Ceph...),
credentials from the usual boto3 chain. `materialize(uri)` gives a local path for any URI (S3
objects are downloaded into a cache folder) for code that needs files on disk.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, TypeVar

MARKER = "COMPLETE"
_log = logging.getLogger(__name__)
T = TypeVar("T")

# Retries of a whole file transfer while the server is unreachable (botocore retries each request
# a few times on its own; this outer loop rides out an endpoint that is down for minutes).
RETRY_SECONDS = float(os.environ.get("TRAINER_S3_RETRY_SECONDS", "600"))
MULTIPART_BYTES = 8 * 1024 * 1024


def is_s3(uri: str | Path) -> bool:
    return str(uri).startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """`s3://bucket/a/b/` -> ("bucket", "a/b")."""
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", uri)
    if not match:
        raise ValueError(f"not an s3:// URI: {uri}")
    return match.group(1), match.group(2).strip("/")


def join(uri: str, *names: str) -> str:
    """Join path components onto a local path or s3:// URI."""
    if is_s3(uri):
        return "/".join([uri.rstrip("/"), *names])
    return str(Path(uri, *names))


def open_store(uri: str) -> "LocalStore | S3Store":
    if is_s3(uri):
        bucket, prefix = split_s3(uri)
        return S3Store(bucket, prefix)
    return LocalStore(Path(uri).expanduser())


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


@dataclass
class LocalStore:
    """A directory on a local disk or a mounted PVC."""

    root: Path

    @property
    def uri(self) -> str:
        return str(self.root)

    def staging_dir(self, name: str) -> Path:
        """An empty folder on the same filesystem as the target, so publishing is a rename."""
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=self.root))

    def publish(self, staged: Path, name: str) -> None:
        """Move `staged` into place as folder `name` (name "" = this store's own root: the files
        replace their namesakes one by one, other entries of the root stay)."""
        target = self.root / name
        _fsync_tree(staged)
        if not name:
            (target / MARKER).unlink(missing_ok=True)
            files = _file_list(staged)
            for path in staged.iterdir():
                os.replace(path, target / path.name)
            staged.rmdir()
            (target / MARKER).write_text(json.dumps({"files": files}), encoding="utf-8")
            return
        trash = None
        if target.exists():
            (target / MARKER).unlink(missing_ok=True)
            trash = Path(tempfile.mkdtemp(prefix=f".trash-{name}-", dir=self.root))
            target.rename(trash / name)
        staged.rename(target)
        (target / MARKER).write_text(json.dumps({"files": _file_list(target)}), encoding="utf-8")
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)

    def complete(self, name: str) -> bool:
        return (self.root / name / MARKER).is_file()

    def list_dirs(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def remove(self, name: str) -> None:
        (self.root / name / MARKER).unlink(missing_ok=True)
        shutil.rmtree(self.root / name, ignore_errors=True)

    def fetch(self, name: str) -> Path:
        return self.root / name

    def write_text(self, name: str, text: str) -> None:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".tmp-{target.name}-{os.getpid()}"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)

    def read_text(self, name: str) -> Optional[str]:
        path = self.root / name
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def log_dir(self, name: str) -> Path:
        """Where to write a live log folder (TensorBoard); it already is in its final place."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def sync_log_dir(self, name: str) -> None:
        """Nothing to do: `log_dir` writes in place."""

    def cleanup_stale(self) -> None:
        """Remove temporary folders left by a crash (they never hold the only copy of anything)."""
        if self.root.is_dir():
            for path in self.root.iterdir():
                if path.name.startswith((".tmp-", ".trash-")):
                    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()


def _file_list(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MARKER
    }


def s3_client() -> Any:
    import boto3
    from botocore.config import Config

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    config = Config(
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        # Path-style works with every S3-compatible server; virtual hosts need DNS per bucket.
        s3={"addressing_style": "path" if endpoint else "auto"},
    )
    return boto3.client("s3", endpoint_url=endpoint, config=config)


def _transient(exc: BaseException) -> bool:
    """Errors worth waiting out: unreachable endpoint, dropped connection, throttling, 5xx."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = exc.response.get("Error", {}).get("Code", "")
        return status >= 500 or status == 429 or code in {"SlowDown", "RequestTimeout"}
    return isinstance(exc, (BotoCoreError, S3UploadFailedError, ConnectionError, TimeoutError))


def with_retries(action: Callable[[], T], what: str, budget_s: Optional[float] = None) -> T:
    """Run `action`, retrying transient S3 failures with exponential backoff (1 s .. 30 s) for up
    to `budget_s` seconds (default RETRY_SECONDS)."""
    deadline = time.monotonic() + (RETRY_SECONDS if budget_s is None else budget_s)
    delay = 1.0
    while True:
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - filtered by _transient
            if not _transient(exc) or time.monotonic() + delay > deadline:
                raise
            _log.warning("%s failed (%s); retrying in %.0f s", what, type(exc).__name__, delay)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)


@dataclass
class S3Store:
    """An `s3://bucket/prefix` output; files are staged locally and uploaded on publish."""

    bucket: str
    prefix: str
    _client: Any = field(default=None, repr=False)
    _local_logs: Path = field(default=None, repr=False)  # type: ignore[assignment]
    _synced: dict[str, tuple[int, float]] = field(default_factory=dict, repr=False)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client()
        return self._client

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _transfer_config(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(multipart_threshold=MULTIPART_BYTES, multipart_chunksize=MULTIPART_BYTES)

    def _keys(self, prefix: str) -> Iterator[str]:
        def page_keys() -> list[str]:
            paginator = self.client.get_paginator("list_objects_v2")
            return [o["Key"] for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix) for o in page.get("Contents", [])]

        yield from with_retries(page_keys, f"list s3://{self.bucket}/{prefix}")

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[start : start + 1000]]
            with_retries(
                lambda: self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk}),
                f"delete {len(chunk)} objects",
            )

    def upload_file(self, path: Path, key: str) -> None:
        with_retries(
            lambda: self.client.upload_file(str(path), self.bucket, key, Config=self._transfer_config()),
            f"upload s3://{self.bucket}/{key}",
        )

    def staging_dir(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"trainer-{name}-"))

    def publish(self, staged: Path, name: str) -> None:
        marker_key = self._key(name, MARKER)
        with_retries(lambda: self.client.delete_object(Bucket=self.bucket, Key=marker_key), "unmark")
        files = _file_list(staged)
        if name:  # a folder of its own: drop files the new version no longer has
            stale = [k for k in self._keys(self._key(name) + "/") if k[len(self._key(name)) + 1 :] not in files]
            self._delete(stale)
        for rel in files:
            self.upload_file(staged / rel, self._key(name, rel))
        body = json.dumps({"files": files}).encode()
        with_retries(lambda: self.client.put_object(Bucket=self.bucket, Key=marker_key, Body=body), "mark")
        shutil.rmtree(staged, ignore_errors=True)

    def complete(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        def head() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._key(name, MARKER))
                return True
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                    return False
                raise

        return with_retries(head, f"check {self.uri}/{name}")

    def list_dirs(self) -> list[str]:
        base = self._key() + "/" if self.prefix else ""
        names = {k[len(base) :].split("/", 1)[0] for k in self._keys(base) if "/" in k[len(base) :]}
        return sorted(names)

    def remove(self, name: str) -> None:
        marker_key = self._key(name, MARKER)
        self._delete([marker_key])
        self._delete([k for k in self._keys(self._key(name) + "/") if k != marker_key])

    def fetch(self, name: str) -> Path:
        """Download a marked folder into a fresh local temporary folder."""
        dest = Path(tempfile.mkdtemp(prefix=f"trainer-fetch-{name}-"))
        download_prefix(self.client, self.bucket, self._key(name), dest)
        return dest

    def write_text(self, name: str, text: str) -> None:
        key = self._key(name)
        with_retries(lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=text.encode()), f"put {key}")

    def read_text(self, name: str) -> Optional[str]:
        from botocore.exceptions import ClientError

        def get() -> Optional[str]:
            try:
                return self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read().decode()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                    return None
                raise

        return with_retries(get, f"get {self.uri}/{name}")

    def log_dir(self, name: str) -> Path:
        if self._local_logs is None:
            self._local_logs = Path(tempfile.mkdtemp(prefix="trainer-logs-"))
        path = self._local_logs / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def sync_log_dir(self, name: str) -> None:
        """Upload the files of `log_dir(name)` that changed since the last sync."""
        local = self.log_dir(name)
        for path in sorted(local.rglob("*")):
            if not path.is_file():
                continue
            stat = path.stat()
            rel = path.relative_to(local).as_posix()
            if self._synced.get(rel) != (stat.st_size, stat.st_mtime):
                self.upload_file(path, self._key(name, rel))
                self._synced[rel] = (stat.st_size, stat.st_mtime)

    def cleanup_stale(self) -> None:
        """Unmarked folders are simply overwritten by the next publish; nothing to clean."""


def download_prefix(client: Any, bucket: str, prefix: str, dest: Path) -> None:
    """Download every object under `prefix/` into `dest`, keeping the relative layout."""
    paginator = client.get_paginator("list_objects_v2")

    def keys() -> list[str]:
        return [o["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/") for o in page.get("Contents", [])]

    found = with_retries(keys, f"list s3://{bucket}/{prefix}")
    if not found:
        raise FileNotFoundError(f"s3://{bucket}/{prefix}: no objects under this prefix")
    for key in found:
        target = dest / key[len(prefix.rstrip("/")) + 1 :]
        target.parent.mkdir(parents=True, exist_ok=True)
        with_retries(lambda: client.download_file(bucket, key, str(target)), f"download s3://{bucket}/{key}")


def cache_dir() -> Path:
    return Path(os.environ.get("TRAINER_CACHE_DIR", Path.home() / ".cache" / "trainer"))


def materialize(uri: str | Path) -> Path:
    """A local folder holding `uri`: local paths as they are; an S3 prefix is downloaded into the
    cache (`TRAINER_CACHE_DIR`, default ~/.cache/trainer/s3/<bucket>/<prefix>) and downloaded
    again only when its completion marker changed (e.g. a newer checkpoint-best)."""
    uri = str(uri)
    if not is_s3(uri):
        return Path(uri).expanduser()
    bucket, prefix = split_s3(uri)
    store = S3Store(bucket, prefix)
    version = store.read_text(MARKER) or uri
    dest = cache_dir() / "s3" / bucket / prefix
    done = dest / ".materialized"
    if done.is_file() and done.read_text(encoding="utf-8") == version:
        return dest
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=_mkdir(dest.parent)))
    download_prefix(store.client, bucket, prefix, tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    done.write_text(version, encoding="utf-8")
    return dest


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
