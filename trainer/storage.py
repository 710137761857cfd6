"""Where a run's outputs live: a local or PVC directory, or `s3://bucket/prefix`.

A checkpoint is a folder of files that only counts once its completion marker (`COMPLETE`) exists;
the marker is always written last, and removed first when a folder is replaced or deleted, so a
reader that trusts only marked folders never sees a half-written one:

- local/PVC: files are written into a temporary sibling folder, fsynced, renamed into place, then
  the marker is written (a crash leaves either the old folder or an unmarked one, never a mix);
- S3: every file is uploaded with the boto3 transfer manager (multipart for large files, retried
  with exponential backoff while the endpoint is unreachable), then the marker object last.

The endpoint comes from `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` (MinIO, SeaweedFS, Ceph...),
credentials from the usual boto3 chain. Errors that retrying cannot fix (a missing bucket, rejected
credentials, an endpoint that never answered) are ConfigErrors naming what to fix (`with_retries`).

Every read and publish of run outputs goes through this module, so no caller branches on the
backend: `open_store(uri)` gives a `Store` (read_text / exists / list_files / complete / publish /
fetch + release ...); `publish_dir(uri, write)` publishes a report folder atomically on either
backend (`publish_files` the files of one next to its subfolders) and `read_published(uri, name)`
reads a file of one only once it is complete;
`materialize(uri)` / `stored_folder(uri)` give a local path for any URI (S3 objects are downloaded
into a cache folder) for code that needs files on disk.

Inputs and outputs of the data steps (any path of the pipeline may be an `s3://` URI):
- `check_location(text, setting)`: the one check, where flags and settings are parsed, that a
  value is a local path or an `s3://bucket/...` URI (any other `scheme://` is refused), so a URI
  never reaches `pathlib.Path` (which would collapse `s3://b/k` to the local folder `s3:/b/k`);
- `local_file(uri)` / `local_folder(uri, names)`: a file, or chosen files of a folder, fetched
  into the pod's cache (`cached_path`: cache/s3/<bucket>/<key>) and fetched again only when the
  object changed; `prefetch(uris)` fetches many in parallel (the audio a step's manifests name);
- `output_folder(uri, last)`: a local folder to write a data step's output in; for S3 it is the
  cached copy of the published folder, and what changed in it is published like a checkpoint.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import os
import posixpath
import re
import shutil
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Protocol, TypeVar

from trainer.exit_codes import ConfigError, StorageUnavailable
from trainer.layout import COMPLETE_MARKER as MARKER

_log = logging.getLogger(__name__)
T = TypeVar("T")

# Retries of a whole file transfer while the server is unreachable (botocore retries each request
# a few times on its own; this outer loop rides out an endpoint that is down for minutes).
RETRY_SECONDS = float(os.environ.get("TRAINER_S3_RETRY_SECONDS", "600"))
# How long an endpoint that has not answered yet in this process may stay silent before the run
# stops with a configuration error (a wrong AWS_ENDPOINT_URL should not cost 10 minutes).
FIRST_CONTACT_SECONDS = float(os.environ.get("TRAINER_S3_FIRST_CONTACT_SECONDS", "20"))
MULTIPART_BYTES = 8 * 1024 * 1024
# Parallel downloads into the cache (boto3 clients are thread-safe; small files are latency-bound).
FETCH_THREADS = 16


def is_s3(uri: str | Path) -> bool:
    return str(uri).startswith("s3://")


def check_location(text: str, setting: str) -> str:
    """`text` when it is a local path or an `s3://bucket[/key]` URI; otherwise a ConfigError naming
    `setting` (another scheme, or an s3:// URI without a bucket)."""
    scheme, sep, _ = text.partition("://")
    if sep and scheme != "s3":
        raise ConfigError(f"{setting}: {text}: only local paths and s3:// URIs are supported")
    if sep and not re.fullmatch(r"s3://[^/]+(/.*)?", text):
        raise ConfigError(f"{setting}: {text}: expected s3://BUCKET/KEY")
    return text


def location_arg(flag: str) -> Callable[[str], str]:
    """argparse type of a flag taking a local path or an s3:// URI (`check_location`)."""
    return lambda text: check_location(text, flag)


def local_arg(flag: str, instead: str) -> Callable[[str], Path]:
    """argparse type of a flag taking a local path only: a URI is refused (ConfigError naming
    `flag`, `instead` saying what to use), never turned into a Path."""

    def parse(text: str) -> Path:
        if "://" in text:
            raise ConfigError(f"{flag}: {text}: a local path is needed here; {instead}")
        return Path(text)

    return parse


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


class Store(Protocol):
    """A folder of run outputs on some backend; names are paths relative to it ("" = itself)."""

    @property
    def uri(self) -> str: ...
    def staging_dir(self, name: str) -> Path: ...
    def publish(self, staged: Path, name: str, last: Optional[str] = None) -> None: ...
    def check_writable(self, setting: str = "output") -> None: ...
    def complete(self, name: str) -> bool: ...
    def exists(self, name: str) -> bool: ...
    def list_dirs(self) -> list[str]: ...
    def list_files(self, name: str = "") -> list[str]: ...
    def set_aside(self, name: str, suffix: str) -> str: ...
    def remove(self, name: str) -> None: ...
    def fetch(self, name: str) -> Path: ...
    def release(self, fetched: Path) -> None: ...
    def write_text(self, name: str, text: str) -> None: ...
    def read_text(self, name: str) -> Optional[str]: ...
    def log_dir(self, name: str) -> Path: ...
    def sync_log_dir(self, name: str) -> None: ...
    def cleanup_stale(self) -> None: ...
    def cleanup_staging(self, name: str) -> None: ...


def open_store(uri: str | Path) -> Store:
    uri = str(uri)
    if is_s3(uri):
        bucket, prefix = split_s3(uri)
        return S3Store(bucket, prefix)
    return LocalStore(Path(uri).expanduser())


def local_path(uri: str | Path) -> Optional[Path]:
    """The local (or mounted PVC) path `uri` names; None for a remote URI (s3://)."""
    return None if is_s3(uri) else Path(uri).expanduser()


def existing_local_dir(uri: str | Path) -> Optional[Path]:
    """The local folder `uri` names when it exists; None for an s3:// URI, a Hub id or a missing path."""
    local = local_path(uri)
    return local if local is not None and local.is_dir() else None


def expand_user(uri: str) -> str:
    """A local path with `~` expanded; a URI as it is."""
    local = local_path(uri)
    return uri if local is None else str(local)


def local_or_cached_dir(uri: str | Path, cache_key: str) -> Path:
    """A local folder for what this machine keeps of the location `uri` (step logs, scratch data
    that is never published): the local path itself, or for an s3:// URI the folder
    <cache>/<cache_key> of this machine's cache."""
    local = local_path(uri)
    return cache_dir() / cache_key if local is None else local


def needs_volume(uri: str | Path) -> bool:
    """Whether pods see the storage root `uri` only through a mounted volume (a local or PVC path),
    where a folder below it is shared by every step like a local one; an s3:// prefix every pod
    reaches over the network by itself, and keeps its own cache of it."""
    return local_path(uri) is not None


def split_uri(uri: str | Path) -> tuple[str, str]:
    """(parent, last component) of a local path (made absolute) or s3:// URI."""
    uri = str(uri)
    if is_s3(uri):
        parent, _, name = uri.rstrip("/").rpartition("/")
        if parent.endswith(":/") or not name:
            raise ConfigError(f"output: {uri} needs a folder below the bucket")
        return parent, name
    path = Path(uri).expanduser().resolve()
    return str(path.parent), path.name


def exists(uri: str | Path) -> bool:
    """Whether the file `uri` exists (a completion marker, a manifest ...)."""
    parent, name = split_uri(uri)
    return open_store(parent).exists(name)


def publish_dir(uri: str | Path, write: Callable[[Path], None]) -> None:
    """Publish the folder `uri` atomically, like a checkpoint: `write` fills a staging folder,
    which then replaces `uri` (local/PVC: a rename; S3: uploads, then the completion marker).
    A folder at `uri` that is neither a finished publish nor holds only files the new version
    rewrites (an interrupted publish of it) is not ours to replace: ConfigError, nothing deleted."""
    parent, name = split_uri(uri)
    store = open_store(parent)
    staged = store.staging_dir(name)
    try:
        write(staged)
        if not store.complete(name):
            rewritten = set(_file_list(staged)) | {MARKER}
            foreign = [name] if store.exists(name) else sorted(set(store.list_files(name)) - rewritten)
            if foreign:
                raise ConfigError(
                    f"output: {uri} already holds other files ({', '.join(foreign[:3])}"
                    f"{' ...' if len(foreign) > 3 else ''}); choose a new or empty folder"
                )
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    store.publish(staged, name)


def publish_files(uri: str | Path, write: Callable[[Path], None], last: str) -> None:
    """Publish the files `write` puts in a staging folder into the folder `uri` itself, next to
    the other things it holds: file by file, `last` (the file readers wait for) after all
    others, then the folder's completion marker."""
    store = open_store(uri)
    staged = store.staging_dir("files")
    try:
        write(staged)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    store.publish(staged, "", last=last)


def read_published(uri: str | Path, name: str) -> Optional[str]:
    """File `name` of the folder published at `uri`; None until that folder is complete."""
    parent, folder = split_uri(uri)
    store = open_store(parent)
    return store.read_text(f"{folder}/{name}") if store.complete(folder) else None


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

    def publish(self, staged: Path, name: str, last: Optional[str] = None) -> None:
        """Move `staged` into place as folder `name` (name "" = this store's own root: the files
        replace their namesakes one by one, `last` after all others, other entries of the root
        stay)."""
        target = self.root / name
        _fsync_tree(staged)
        if not name:
            (target / MARKER).unlink(missing_ok=True)
            files = _file_list(staged)
            for path in sorted(staged.iterdir(), key=lambda p: p.name == last):
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

    def check_writable(self, setting: str = "output") -> None:
        """ConfigError naming `setting` when the folder cannot be created or written to
        (read-only, forbidden, a file in the way), before any work is done."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".tmp-write-check-"):
                pass
        except OSError as exc:
            raise ConfigError(f"{setting}: {self.root}: cannot write here ({exc.strerror})") from None

    def complete(self, name: str) -> bool:
        return (self.root / name / MARKER).is_file()

    def exists(self, name: str) -> bool:
        return (self.root / name).is_file()

    def list_files(self, name: str = "") -> list[str]:
        """Files below folder `name`, as paths relative to it (temporary folders left out)."""
        folder = self.root / name
        if not folder.is_dir():
            return []
        found = (p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
        return sorted(p.as_posix() for p in found if not p.parts[0].startswith((".tmp-", ".trash-")))

    def set_aside(self, name: str, suffix: str) -> str:
        """Rename folder `name` to the first unused `name.suffix[-N]` (kept for a person to
        inspect; no longer a checkpoint name); returns the new name."""
        target = _unused(f"{name}.{suffix}", set(self.list_dirs()))
        (self.root / name).rename(self.root / target)
        return target

    def list_dirs(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def remove(self, name: str) -> None:
        (self.root / name / MARKER).unlink(missing_ok=True)
        shutil.rmtree(self.root / name, ignore_errors=True)

    def fetch(self, name: str) -> Path:
        return self.root / name

    def release(self, fetched: Path) -> None:
        """Nothing to do: `fetch` gave the folder in place."""

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

    def cleanup_staging(self, name: str) -> None:
        """Remove the staging and trash folders of publishing `name` (`staging_dir(name)`) that a
        killed writer left; only a writer holding `name`'s lease (trainer.lease) may call this."""
        if self.root.is_dir():
            own = re.compile(rf"\.(tmp|trash)-{re.escape(name)}-{_TEMP_SUFFIX}")
            for path in self.root.iterdir():
                if own.fullmatch(path.name) and path.is_dir():
                    _log.info("removing %s, left by an interrupted writer of %s", path, name)
                    shutil.rmtree(path, ignore_errors=True)


# What tempfile.mkdtemp appends to a prefix (tempfile._RandomNameSequence: 8 of [a-z0-9_]).
_TEMP_SUFFIX = "[a-z0-9_]{8}"


def _unused(name: str, taken: set[str]) -> str:
    """`name`, else the first of `name-1`, `name-2`, ... that is not taken."""
    return next(c for c in (name + (f"-{i}" if i else "") for i in itertools.count()) if c not in taken)


def _file_list(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MARKER
    }


def s3_endpoint() -> Optional[str]:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_client() -> Any:
    import boto3
    from botocore.config import Config

    endpoint = s3_endpoint()
    config = Config(
        # Attempts per request: AWS_MAX_ATTEMPTS (standard mode's default, 3); with_retries rides
        # out longer outages on top.
        retries={"mode": "standard"},
        connect_timeout=5,
        max_pool_connections=FETCH_THREADS,  # one connection per transfer thread
        read_timeout=60,
        # Path-style works with every S3-compatible server; virtual hosts need DNS per bucket.
        s3={"addressing_style": "path" if endpoint else "auto"},
    )
    return boto3.client("s3", endpoint_url=endpoint, config=config)


# What an S3 error code means for the person who has to fix it; retrying cannot help these.
_CONFIG_ERRORS = {
    "NoSuchBucket": "the bucket does not exist (check the s3:// URI, or create the bucket)",
    "InvalidBucketName": "not a valid bucket name (check the s3:// URI)",
    "InvalidAccessKeyId": "the access key (AWS_ACCESS_KEY_ID or AWS_SHARED_CREDENTIALS_FILE's) is not known to the endpoint",
    "SignatureDoesNotMatch": "the secret key does not match the access key (AWS_SECRET_ACCESS_KEY or AWS_SHARED_CREDENTIALS_FILE)",
    "AccessDenied": "the credentials (AWS_ACCESS_KEY_ID, AWS_SHARED_CREDENTIALS_FILE or the workload identity) may not access it",
    "403": "the credentials (AWS_ACCESS_KEY_ID, AWS_SHARED_CREDENTIALS_FILE or the workload identity) may not access it",
    "AllAccessDisabled": "all access to the bucket is disabled",
}
# Endpoints that have answered in this process: before the first answer an unreachable endpoint
# is a configuration error after FIRST_CONTACT_SECONDS; afterwards it is an outage to wait out.
_answered: set[Optional[str]] = set()


def _cause(exc: BaseException) -> BaseException:
    """The ClientError behind boto3's transfer wrappers (S3UploadFailedError)."""
    from botocore.exceptions import ClientError

    inner = exc.__cause__ or exc.__context__
    return inner if isinstance(inner, ClientError) else exc


def _error_code(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    exc = _cause(exc)
    return str(exc.response.get("Error", {}).get("Code", "")) if isinstance(exc, ClientError) else ""


def _config_problem(exc: BaseException) -> Optional[str]:
    """What to fix, for errors that retrying cannot help (missing bucket, rejected credentials)."""
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return (
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_SHARED_CREDENTIALS_FILE "
            "(a cluster run mounts it from the Secret) or a workload identity"
        )
    code = _error_code(exc)
    return f"{code}: {_CONFIG_ERRORS[code]}" if code in _CONFIG_ERRORS else None


def _transient(exc: BaseException) -> bool:
    """Errors worth waiting out: unreachable endpoint, dropped connection, throttling, 5xx."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    inner = _cause(exc)
    if isinstance(inner, ClientError):
        status = inner.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = inner.response.get("Error", {}).get("Code", "")
        return status >= 500 or status == 429 or code in {"SlowDown", "RequestTimeout"}
    return isinstance(exc, (BotoCoreError, S3UploadFailedError, ConnectionError, TimeoutError))


def with_retries(action: Callable[[], T], what: str, budget_s: Optional[float] = None) -> T:
    """Run `action`, retrying transient S3 failures with exponential backoff (1 s .. 30 s) for up
    to `budget_s` seconds (default RETRY_SECONDS, or FIRST_CONTACT_SECONDS while the endpoint has
    never answered). Errors retrying cannot fix are ConfigErrors (exit 78) saying what to fix; an
    endpoint that never answered is one too; transient errors that outlast the budget are
    StorageUnavailable (exit 75: a rerun resumes)."""
    endpoint = s3_endpoint()
    first_contact = endpoint not in _answered
    budget = budget_s if budget_s is not None else FIRST_CONTACT_SECONDS if first_contact else RETRY_SECONDS
    deadline = time.monotonic() + budget
    delay = 1.0
    while True:
        try:
            result = action()
            _answered.add(endpoint)
            return result
        except Exception as exc:  # noqa: BLE001 - classified below
            problem = _config_problem(exc)
            if problem:
                raise ConfigError(f"{what}: {problem}") from exc
            if not _transient(exc):
                raise
            if first_contact and _error_code(exc):  # an HTTP answer (throttling, 5xx): the endpoint is there
                _answered.add(endpoint)
                first_contact = False
                if budget_s is None:
                    budget = RETRY_SECONDS
                    deadline += RETRY_SECONDS - FIRST_CONTACT_SECONDS
            if time.monotonic() + delay > deadline:
                if first_contact:
                    raise ConfigError(
                        f"{what}: no answer from the S3 endpoint {endpoint or '(AWS default)'} within {budget:.0f} s "
                        f"(AWS_ENDPOINT_URL; wait set by TRAINER_S3_FIRST_CONTACT_SECONDS): {exc}"
                    ) from exc
                raise StorageUnavailable(
                    f"{what}: storage still failing after {budget:.0f} s of retries (TRAINER_S3_RETRY_SECONDS): "
                    f"{exc}; rerun the same command to resume from the last complete checkpoint"
                ) from exc
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
            return [
                o["Key"]
                for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
                for o in page.get("Contents", [])
            ]

        yield from with_retries(page_keys, f"list s3://{self.bucket}/{prefix}")

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[start : start + 1000]]
            with_retries(
                lambda: self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk}),  # noqa: B023 (called before the loop moves on)
                f"delete {len(chunk)} objects",
            )

    def upload_file(self, path: Path, key: str) -> None:
        with_retries(
            lambda: self.client.upload_file(str(path), self.bucket, key, Config=self._transfer_config()),
            f"upload s3://{self.bucket}/{key}",
        )

    def staging_dir(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"trainer-{name}-"))

    def publish(self, staged: Path, name: str, last: Optional[str] = None) -> None:
        """Upload `staged` as folder `name`, file `last` after all others, the marker at the end
        (name "" = this prefix itself: other objects under it stay)."""
        files = _file_list(staged)
        marker_key = self._key(name, MARKER)
        with_retries(lambda: self.client.delete_object(Bucket=self.bucket, Key=marker_key), "unmark")
        if name:  # a folder of its own: drop files the new version no longer has
            stale = [k for k in self._keys(self._key(name) + "/") if k[len(self._key(name)) + 1 :] not in files]
            self._delete(stale)
        self._upload_marked(staged, name, files, last)
        shutil.rmtree(staged, ignore_errors=True)

    def upload_tree(self, folder: Path, names: list[str], last: str) -> str:
        """Publish the files `names` of `folder` (kept) as this prefix itself: unmark, drop the
        objects the new version no longer has, upload (`last` after all others), mark. Returns
        the marker's text."""
        files = {rel: (folder / rel).stat().st_size for rel in names}
        self._delete([self._key(MARKER)])
        self._delete([k for k in self._keys(self._key() + "/") if k[len(self._key()) + 1 :] not in files])
        return self._upload_marked(folder, "", files, last)

    def _upload_marked(self, folder: Path, name: str, files: dict[str, int], last: Optional[str]) -> str:
        """Upload `files` of `folder` into folder `name` in parallel, then `last`, then the marker."""
        rest = [rel for rel in files if rel != last]
        self.client  # noqa: B018 (created once here, not by each upload thread)
        with ThreadPoolExecutor(max_workers=FETCH_THREADS) as pool:
            for future in [pool.submit(self.upload_file, folder / rel, self._key(name, rel)) for rel in rest]:
                future.result()
        if last in files:
            self.upload_file(folder / last, self._key(name, last))
        body = json.dumps({"files": files})
        marker_key = self._key(name, MARKER)
        with_retries(lambda: self.client.put_object(Bucket=self.bucket, Key=marker_key, Body=body.encode()), "mark")
        return body

    def check_writable(self, setting: str = "output") -> None:
        """ConfigError naming `setting` when the bucket is missing, the credentials are rejected
        or the endpoint never answers (see with_retries), before any work is done."""
        key = self._key(".tmp-write-check")
        what = f"{setting}: {self.uri}"
        # Listing first: some servers create a missing bucket on the first upload.
        with_retries(lambda: self.client.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1), what)
        with_retries(lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=b""), what)
        with_retries(lambda: self.client.delete_object(Bucket=self.bucket, Key=key), what)

    def complete(self, name: str) -> bool:
        return self.exists("/".join(p for p in (name, MARKER) if p))

    def exists(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        def head() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._key(name))
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

    def list_files(self, name: str = "") -> list[str]:
        """Objects below folder `name`, as paths relative to it."""
        base = self._key(name) + "/" if self._key(name) else ""
        return sorted(k[len(base) :] for k in self._keys(base))

    def set_aside(self, name: str, suffix: str) -> str:
        """Move the objects of folder `name` to the first unused `name.suffix[-N]` (server-side
        copies, then the originals are removed marker first); returns the new name."""
        target = _unused(f"{name}.{suffix}", set(self.list_dirs()))
        source = self._key(name) + "/"
        for key in list(self._keys(source)):
            new_key = self._key(target, key[len(source) :])
            with_retries(
                lambda: self.client.copy({"Bucket": self.bucket, "Key": key}, self.bucket, new_key),  # noqa: B023 (called before the loop moves on)
                f"copy s3://{self.bucket}/{key}",
            )
        self.remove(name)
        return target

    def remove(self, name: str) -> None:
        marker_key = self._key(name, MARKER)
        self._delete([marker_key])
        self._delete([k for k in self._keys(self._key(name) + "/") if k != marker_key])

    def fetch(self, name: str) -> Path:
        """Download a marked folder into a fresh local temporary folder."""
        dest = Path(tempfile.mkdtemp(prefix=f"trainer-fetch-{name}-"))
        download_prefix(self.client, self.bucket, self._key(name), dest)
        return dest

    def release(self, fetched: Path) -> None:
        """Delete the local copy `fetch` downloaded."""
        shutil.rmtree(fetched, ignore_errors=True)

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

    def cleanup_staging(self, name: str) -> None:
        """Nothing to do: S3 staging folders are local temporary folders of the writing process."""


def _objects(client: Any, bucket: str, prefix: str) -> dict[str, dict]:
    """{key: listing entry (Size, LastModified ...)} of every object whose key starts with `prefix`."""

    def listing() -> dict[str, dict]:
        paginator = client.get_paginator("list_objects_v2")
        return {
            o["Key"]: o for page in paginator.paginate(Bucket=bucket, Prefix=prefix) for o in page.get("Contents", [])
        }

    return with_retries(listing, f"list s3://{bucket}/{prefix}")


def _fresh(path: Path, entry: dict) -> bool:
    """Whether the cached `path` is the object `entry` describes (size and modification time,
    which `_download` copies from the object, like `aws s3 sync`)."""
    try:
        stat = path.stat()
    except OSError:
        return False
    return stat.st_size == entry["Size"] and int(stat.st_mtime) == int(entry["LastModified"].timestamp())


def _download(client: Any, bucket: str, entry: dict, target: Path) -> None:
    """Download one object into `target` atomically, stamped with the object's modification time."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{target.name}-", dir=target.parent)
    os.close(fd)
    try:
        with_retries(lambda: client.download_file(bucket, entry["Key"], tmp), f"download s3://{bucket}/{entry['Key']}")
        stamp = entry["LastModified"].timestamp()
        os.utime(tmp, (stamp, stamp))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _download_all(client: Any, bucket: str, jobs: list[tuple[dict, Path]]) -> None:
    """Download (listing entry, target) pairs in parallel; the first failure is raised."""
    if len(jobs) <= 1:
        for entry, target in jobs:
            _download(client, bucket, entry, target)
        return
    with ThreadPoolExecutor(max_workers=FETCH_THREADS) as pool:
        for future in [pool.submit(_download, client, bucket, e, t) for e, t in jobs]:
            future.result()


def download_prefix(client: Any, bucket: str, prefix: str, dest: Path) -> None:
    """Download every object under `prefix/` into `dest`, keeping the relative layout."""
    base = prefix.rstrip("/") + "/"
    found = _objects(client, bucket, base)
    if not found:
        raise ConfigError(f"s3://{bucket}/{prefix}: no objects under this prefix")
    _download_all(client, bucket, [(entry, dest / key[len(base) :]) for key, entry in found.items()])


def cache_dir() -> Path:
    return Path(os.environ.get("TRAINER_CACHE_DIR", Path.home() / ".cache" / "trainer"))


def cached_path(uri: str) -> Path:
    """Where this pod's cache keeps the object or folder `uri`: <cache>/s3/<bucket>/<key>."""
    bucket, key = split_s3(uri)
    return cache_dir().absolute() / "s3" / bucket / key


@functools.lru_cache(maxsize=4)
def _resolved_s3_cache(cache: str) -> str:
    """<cache>/s3/ as resolved paths spell it (once per cache: manifests have millions of rows)."""
    return os.path.join(os.path.realpath(cache), "s3", "")


def uri_of_cached(path: str) -> Optional[str]:
    """The s3:// URI that a resolved path (absolute, links resolved) in this pod's cache (`cached_path`) stands for; None for any other
    path. Files written from the cache (a manifest naming cached audio) name the object instead,
    so that another pod, with another cache, reads the same data."""
    root = _resolved_s3_cache(str(cache_dir()))
    return "s3://" + path[len(root) :].replace(os.sep, "/") if path.startswith(root) else None


def prefetch(uris: Iterable[str]) -> None:
    """Fetch the s3:// objects among `uris` into the cache in parallel: those not cached yet or
    changed since (one listing per bucket and common prefix, then only the needed downloads).
    Objects that do not exist are left out; whoever opens them reports them missing."""
    by_bucket: dict[str, set[str]] = {}
    for uri in uris:
        if is_s3(uri):
            bucket, key = split_s3(uri)
            by_bucket.setdefault(bucket, set()).add(key)
    for bucket, keys in by_bucket.items():
        common = os.path.commonprefix(sorted(keys))
        client = s3_client()
        listed = _objects(client, bucket, common if len(keys) == 1 else common[: common.rfind("/") + 1])
        jobs = []
        for key in sorted(keys & listed.keys()):
            target = cached_path(f"s3://{bucket}/{key}")
            if not _fresh(target, listed[key]):
                jobs.append((listed[key], target))
        if jobs:
            _log.info("fetching %d objects from s3://%s into %s", len(jobs), bucket, cache_dir())
        _download_all(client, bucket, jobs)


def local_file(uri: str | Path) -> Path:
    """A local path holding the file `uri`: a local path as it is; an S3 object fetched into the
    cache (again only when it changed). A missing object gives a path that does not exist."""
    if not is_s3(uri):
        return Path(uri).expanduser()
    prefetch([str(uri)])
    return cached_path(str(uri))


def cached_file(uri: str | Path) -> Path:
    """Like `local_file`, but an object already in the cache is used as it is (no request): for
    files read many times after a `prefetch` checked them, e.g. audio in every epoch."""
    if not is_s3(uri):
        return Path(uri)
    path = cached_path(str(uri))
    return path if path.is_file() else local_file(uri)


def local_folder(uri: str | Path, names: Iterable[str]) -> Path:
    """A local folder holding the files `names` of the folder `uri` (only those are fetched)."""
    if not is_s3(uri):
        return Path(uri).expanduser()
    prefetch(join(str(uri), name) for name in names)
    return cached_path(str(uri))


def absolute(uri: str) -> str:
    """A local path made absolute (links resolved); a URI as it is."""
    return uri if is_s3(uri) else str(Path(uri).expanduser().resolve())


def parent_uri(uri: str) -> str:
    """The folder holding the file `uri` (local path or s3:// URI)."""
    return posixpath.dirname(uri.rstrip("/")) if is_s3(uri) else str(Path(uri).expanduser().resolve().parent)


def resolve_below(folder: str, path: str) -> str:
    """`path` as it is when absolute or a URI, else resolved against `folder` (a local folder or
    s3:// URI), `..` folded."""
    if os.path.isabs(path) or "://" in path:
        return path
    if is_s3(folder):
        bucket, key = split_s3(folder)
        return f"s3://{bucket}/" + posixpath.normpath(posixpath.join(key, path)).lstrip("/")
    return os.path.normpath(os.path.join(folder, path))


def stored_folder(uri: str | Path) -> Optional[Path]:
    """A local folder holding `uri` when it names stored files (an s3:// prefix, downloaded into
    the cache, or a local path that exists); None otherwise (e.g. a Hugging Face Hub id)."""
    local = local_path(uri)
    return materialize(uri) if local is None or local.exists() else None


def _version_file(dest: Path) -> Path:
    """Which published version a cached folder holds; beside it, so it is not one of its files."""
    return dest.parent / f".{dest.name}.materialized"


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
    dest = cached_path(uri)
    done = _version_file(dest)
    if done.is_file() and done.read_text(encoding="utf-8") == version and dest.is_dir():
        return dest
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=_mkdir(dest.parent)))
    download_prefix(store.client, bucket, prefix, tmp)
    done.unlink(missing_ok=True)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    done.write_text(version, encoding="utf-8")
    return dest


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file below `folder`, its marker and temporary (dot) files left out."""
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and rel != MARKER and not any(part.startswith(".") for part in rel.split("/")):
            stat = path.stat()
            found[rel] = (stat.st_size, stat.st_mtime_ns)
    return found


@contextlib.contextmanager
def output_folder(uri: str, last: str, setting: str = "--out") -> Iterator[Path]:
    """A local folder for a step to write the folder `uri` in, that step deciding itself what is
    up to date. Local: `uri` itself. S3: the cached copy of the published folder (`materialize`;
    an empty folder when none is published); when the block ends without an error and changed
    files in it, the folder is published: uploads, `last` (what readers wait for) after all
    others, then the completion marker, objects the new version no longer has deleted. A prefix
    holding objects the new version does not rewrite is not ours: ConfigError, nothing touched."""
    local = local_path(uri)
    if local is not None:
        yield local
        return
    bucket, prefix = split_s3(uri)
    if not prefix:
        raise ConfigError(f"{setting}: {uri} needs a folder below the bucket")
    store = S3Store(bucket, prefix)
    store.check_writable(setting)
    if store.complete(""):
        folder = materialize(uri)
    else:
        folder = cached_path(uri)
        _version_file(folder).unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    before = _snapshot(folder)
    yield folder
    files = _snapshot(folder)
    if files == before:
        return
    if not store.complete(""):
        foreign = sorted(set(store.list_files()) - set(files) - {MARKER})
        if foreign:
            raise ConfigError(
                f"{setting}: {uri} already holds other objects ({', '.join(foreign[:3])}"
                f"{' ...' if len(foreign) > 3 else ''}); choose a new or empty prefix"
            )
    body = store.upload_tree(folder, list(files), last)
    # The cached copy now is the published version, marker included and stamped as a download
    # of it would be (`materialize`), so readers in this pod (prefetch) fetch nothing again and a
    # step that fingerprints the folder (prepare's inputs hash) sees what any other pod sees.
    (folder / MARKER).write_text(body, encoding="utf-8")
    listed = _objects(store.client, bucket, store._key() + "/")
    for rel in [*files, MARKER]:
        stamp = listed[store._key(rel)]["LastModified"].timestamp()
        os.utime(folder / rel, (stamp, stamp))
    _version_file(folder).write_text(body, encoding="utf-8")


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


class LocalRecord:
    """A small JSON record as a file (local disk or PVC), written under a precondition; "seen" is
    the text last read."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def create(self, body: dict[str, Any]) -> Optional[str]:
        """Create the record if there is none (O_CREAT|O_EXCL: one creator wins, also on NFS v3+)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return None
        text = json.dumps(body)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return text

    def read(self) -> Optional[tuple[dict[str, Any], Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return json.loads(text), text
        except ValueError:  # half-written (its creator was killed at once, or is writing now)
            try:
                return {"heartbeat": self.path.stat().st_mtime}, text
            except FileNotFoundError:
                return None

    def replace(self, seen: Any, body: dict[str, Any]) -> Optional[str]:
        """Write `body` if the record still reads as `seen` (not atomic with the check: the lease
        only takes over a record silent for far longer than this takes)."""
        current = self.read()
        if current is None or current[1] != seen:
            return None
        text = json.dumps(body)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path)
        return text

    def take_over(self, seen: Any, body: dict[str, Any]) -> Optional[str]:
        """Replace a record that still reads as `seen`, racing other takers: the rename aside has
        one winner, who then creates it anew."""
        aside = self.path.with_name(f"{self.path.name}.stale-{uuid.uuid4().hex}")
        current = self.read()
        if current is None or current[1] != seen:
            return None
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return None
        aside.unlink(missing_ok=True)
        return self.create(body)

    def delete(self, seen: Any) -> None:
        current = self.read()
        if current is not None and current[1] == seen:
            self.path.unlink(missing_ok=True)


class S3Record:
    """A small JSON record as an object, written only under a precondition (If-None-Match /
    If-Match); "seen" is its ETag."""

    def __init__(self, uri: str) -> None:
        self.bucket, self.key = split_s3(uri)
        self.client = s3_client()

    def _put(self, body: dict[str, Any], **condition: str) -> Optional[str]:
        from botocore.exceptions import ClientError

        data = json.dumps(body).encode()
        try:
            put = lambda: self.client.put_object(Bucket=self.bucket, Key=self.key, Body=data, **condition)  # noqa: E731
            return with_retries(put, f"record s3://{self.bucket}/{self.key}")["ETag"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {
                "PreconditionFailed",
                "ConditionalRequestConflict",
                "412",
                "409",
            }:
                return None
            raise

    def create(self, body: dict[str, Any]) -> Optional[str]:
        return self._put(body, IfNoneMatch="*")

    def read(self) -> Optional[tuple[dict[str, Any], Any]]:
        from botocore.exceptions import ClientError

        def get() -> Optional[tuple[dict[str, Any], Any]]:
            try:
                found = self.client.get_object(Bucket=self.bucket, Key=self.key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                    return None
                raise
            return json.loads(found["Body"].read()), found["ETag"]

        return with_retries(get, f"record s3://{self.bucket}/{self.key}")

    def replace(self, seen: Any, body: dict[str, Any]) -> Optional[str]:
        return self._put(body, IfMatch=seen)

    def take_over(self, seen: Any, body: dict[str, Any]) -> Optional[str]:
        return self.replace(seen, body)

    def delete(self, seen: Any) -> None:
        """Delete the record if it still reads as `seen`; storage trouble leaves it be (a lease
        then expires; the step's own outcome, e.g. exit 75 for an outage, is what counts)."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=seen)
        except Exception as exc:  # noqa: BLE001 - PreconditionFailed: taken over; else unreachable
            _log.warning("record s3://%s/%s not deleted (%s)", self.bucket, self.key, exc)


def open_record(uri: str) -> LocalRecord | S3Record:
    """The conditional-write record at `uri` (a lease, trainer/lease.py)."""
    return S3Record(uri) if is_s3(uri) else LocalRecord(Path(uri))
