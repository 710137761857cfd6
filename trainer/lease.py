"""One writer per output folder: a lease every writing step holds while it writes.

Two writers on one folder delete each other's staging folders and prune the checkpoints the other
is writing. Kubernetes already keeps a Job's replacement pod from starting before the old pod is
terminal (podFailurePolicy), but not a pod on a node that lost contact and keeps running, a step
rerun by hand while its Job runs, or two runs pointed at one folder. The lease covers those.

The lease of folder `.../NAME` is the file or object `.../.NAME.lease` beside it (beside, not
inside: a published folder is replaced as a whole). It records who holds it (host, process, pod)
and when it last beat; the holder rewrites it every `LEASE_SECONDS / 4`:

- local or PVC: created with O_CREAT|O_EXCL (one creator wins, also on NFS v3+); a stale lease is
  renamed aside (one taker wins the rename) and the create is retried;
- S3: PutObject with `If-None-Match: *` (one creator wins); heartbeats and the take-over of a stale
  lease are PutObject with `If-Match: <the ETag read>`, so a lease is never overwritten unread
  (SeaweedFS, MinIO and AWS S3 support both conditions).

A second writer finds the lease: held and beating -> exit 75 naming the holder (a Job retries
later without counting a failure); no beat for `LEASE_SECONDS` (the holder was killed, or lost its
node), or its holder's process is gone on this same host -> it takes the lease over; beats missed
but not yet for that long -> it waits. A holder whose lease was taken over stops at once (exit 75)
rather than write beside the new one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from trainer import exit_codes
from trainer.exit_codes import TrainerError
from trainer.storage import is_s3, open_store, s3_client, split_s3, split_uri, with_retries

LEASE_SECONDS = float(os.environ.get("TRAINER_LEASE_SECONDS", "120"))
_log = logging.getLogger(__name__)
_HELD_HERE: set[str] = set()  # tokens of the leases this process holds


class LeaseHeld(TrainerError):
    """Another writer holds the folder: retry later (exit 75)."""

    exit_code = exit_codes.PREEMPTED


def lease_uri(uri: str) -> str:
    """Where the lease of output folder `uri` lives: `.NAME.lease` beside it."""
    parent, name = split_uri(uri)
    return f"{parent.rstrip('/')}/.{name}.lease"


def _identity() -> dict[str, Any]:
    now = time.time()
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "pod": os.environ.get("POD_NAME") or None,
        "token": uuid.uuid4().hex,
        "since": now,
        "heartbeat": now,
    }


def _describe(holder: dict[str, Any]) -> str:
    where = f"pod {holder['pod']}" if holder.get("pod") else f"host {holder.get('host')}"
    age = time.time() - float(holder.get("heartbeat", 0))
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(holder.get("since", 0))))
    return f"process {holder.get('pid')} on {where} since {started}, last heartbeat {age:.0f} s ago"


def _process_gone(holder: dict[str, Any]) -> bool:
    """The holder ran on this host and its process is not running (a killed run on a workstation)."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    if holder["pid"] == os.getpid():  # ours, or a restarted container's predecessor with the same pid
        return holder.get("token") not in _HELD_HERE
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class _LocalLease:
    """The lease as a file (local disk or PVC)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def create(self, body: dict[str, Any]) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(body, handle)
        return True

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

    def replace(self, seen: Any, body: dict[str, Any]) -> bool:
        """Write `body` if the lease still reads as `seen` (not atomic with the check: a taker
        only acts on a lease silent for LEASE_SECONDS, far longer than this takes)."""
        current = self.read()
        if current is None or current[1] != seen:
            return False
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(body), encoding="utf-8")
        os.replace(tmp, self.path)
        return True

    def take_over(self, seen: Any, body: dict[str, Any]) -> bool:
        aside = self.path.with_name(f"{self.path.name}.stale-{uuid.uuid4().hex}")
        current = self.read()
        if current is None or current[1] != seen:
            return False
        try:
            os.rename(self.path, aside)  # one taker wins; the others find the file gone
        except FileNotFoundError:
            return False
        aside.unlink(missing_ok=True)
        return self.create(body)

    def delete(self, seen: Any) -> None:
        current = self.read()
        if current is not None and current[1] == seen:
            self.path.unlink(missing_ok=True)


class _S3Lease:
    """The lease as an object, written only under a precondition (If-None-Match / If-Match)."""

    def __init__(self, uri: str) -> None:
        self.bucket, self.key = split_s3(uri)
        self.client = s3_client()
        self.etag: Optional[str] = None

    def _put(self, body: dict[str, Any], **condition: str) -> Optional[str]:
        from botocore.exceptions import ClientError

        data = json.dumps(body).encode()
        try:
            put = lambda: self.client.put_object(Bucket=self.bucket, Key=self.key, Body=data, **condition)  # noqa: E731
            return with_retries(put, f"lease s3://{self.bucket}/{self.key}")["ETag"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {
                "PreconditionFailed",
                "ConditionalRequestConflict",
                "412",
                "409",
            }:
                return None
            raise

    def create(self, body: dict[str, Any]) -> bool:
        self.etag = self._put(body, IfNoneMatch="*")
        return self.etag is not None

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

        return with_retries(get, f"lease s3://{self.bucket}/{self.key}")

    def replace(self, seen: Any, body: dict[str, Any]) -> bool:
        etag = self._put(body, IfMatch=seen)
        if etag is not None:
            self.etag = etag
        return etag is not None

    def take_over(self, seen: Any, body: dict[str, Any]) -> bool:
        return self.replace(seen, body)

    def delete(self, seen: Any) -> None:
        """Delete the lease if it is still ours; storage trouble leaves it to expire (the step's
        own outcome, e.g. exit 75 for an outage, is what the caller reports)."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=seen)
        except Exception as exc:  # noqa: BLE001 - PreconditionFailed: taken over; else unreachable
            _log.warning("lease s3://%s/%s not released (%s); it expires on its own", self.bucket, self.key, exc)


@dataclass
class Lease:
    """A held lease: `release()` it, or let `hold` do so."""

    uri: str
    backend: Any
    body: dict[str, Any]
    seen: Any
    stop: threading.Event

    def beat(self) -> bool:
        """Refresh the heartbeat; False when the lease is no longer ours."""
        body = {**self.body, "heartbeat": time.time()}
        if not self.backend.replace(self.seen, body):
            return False
        self.body = body
        self.seen = self.backend.etag if isinstance(self.backend, _S3Lease) else json.dumps(body)
        return True

    def release(self) -> None:
        self.stop.set()
        _HELD_HERE.discard(self.body["token"])
        self.backend.delete(self.seen)


def _backend(uri: str) -> Any:
    return _S3Lease(uri) if is_s3(uri) else _LocalLease(Path(uri))


def acquire(output: str, setting: str = "output") -> Lease:
    """The lease of `output`, taken now, taken over when stale, or LeaseHeld naming its holder."""
    uri = lease_uri(output)
    backend = _backend(uri)
    while True:
        body = _identity()
        if backend.create(body):
            return _held(uri, backend, body)
        found = backend.read()
        if found is None:
            continue  # released meanwhile
        holder, seen = found
        silent = time.time() - float(holder.get("heartbeat", 0))
        if silent > LEASE_SECONDS or _process_gone(holder):
            if backend.take_over(seen, body):
                _log.warning("%s: took over the lease of %s (%s)", output, _describe(holder), "holder gone")
                return _held(uri, backend, body)
            continue
        if silent > LEASE_SECONDS / 2:  # beats missed: the holder is probably gone; wait it out
            _log.warning("%s: waiting for the lease of %s to expire", output, _describe(holder))
            time.sleep(min(LEASE_SECONDS - silent + 1, LEASE_SECONDS / 4))
            continue
        raise LeaseHeld(
            f"{setting}: {output} is being written by {_describe(holder)} (lease {uri}); "
            f"rerun when it has finished (a lease silent for {LEASE_SECONDS:.0f} s is taken over)"
        )


def _held(uri: str, backend: Any, body: dict[str, Any]) -> Lease:
    seen = backend.etag if isinstance(backend, _S3Lease) else json.dumps(body)
    lease = Lease(uri, backend, body, seen, threading.Event())
    _HELD_HERE.add(body["token"])
    threading.Thread(target=_heartbeat, args=(lease,), name="lease-heartbeat", daemon=True).start()
    return lease


def _heartbeat(lease: Lease) -> None:
    while not lease.stop.wait(LEASE_SECONDS / 4):
        try:
            ours = lease.beat()
        except Exception as exc:  # noqa: BLE001 - storage trouble: keep beating until LEASE_SECONDS
            _log.warning("lease %s: heartbeat failed (%s)", lease.uri, exc)
            continue
        if not ours and not lease.stop.is_set():
            # Writing on would interleave with the writer that took over: stop here, unsaved work
            # is lost but nothing published is damaged (publishing is atomic).
            _log.error("lease %s was taken over by another writer; stopping (rerun to resume)", lease.uri)
            os._exit(exit_codes.PREEMPTED)


@contextlib.contextmanager
def hold(output: str, setting: str = "output") -> Iterator[Optional[Lease]]:
    """Hold the lease of `output` for the duration of the block; first remove what an earlier,
    killed writer of `output` left staged beside it (only ever partial copies). In a torchrun job
    rank 0 writes every file, and holds the lease for all ranks."""
    if int(os.environ.get("RANK", "0")) != 0:
        yield None
        return
    lease = acquire(output, setting)
    parent, name = split_uri(output)
    try:
        open_store(parent).cleanup_staging(name)
        yield lease
    finally:
        lease.release()
