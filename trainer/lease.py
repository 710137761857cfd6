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
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from trainer import exit_codes
from trainer.exit_codes import TrainerError
from trainer.storage import open_record, open_store, split_uri

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
        seen = self.backend.replace(self.seen, body)
        if seen is None:
            return False
        self.body, self.seen = body, seen
        return True

    def release(self) -> None:
        self.stop.set()
        _HELD_HERE.discard(self.body["token"])
        self.backend.delete(self.seen)


def acquire(output: str, setting: str = "output") -> Lease:
    """The lease of `output`, taken now, taken over when stale, or LeaseHeld naming its holder."""
    uri = lease_uri(output)
    backend = open_record(uri)
    while True:
        body = _identity()
        if (seen := backend.create(body)) is not None:
            return _held(uri, backend, body, seen)
        found = backend.read()
        if found is None:
            continue  # released meanwhile
        holder, seen = found
        silent = time.time() - float(holder.get("heartbeat", 0))
        if silent > LEASE_SECONDS or _process_gone(holder):
            if (taken := backend.take_over(seen, body)) is not None:
                _log.warning("%s: took over the lease of %s (%s)", output, _describe(holder), "holder gone")
                return _held(uri, backend, body, taken)
            continue
        if silent > LEASE_SECONDS / 2:  # beats missed: the holder is probably gone; wait it out
            _log.warning("%s: waiting for the lease of %s to expire", output, _describe(holder))
            time.sleep(min(LEASE_SECONDS - silent + 1, LEASE_SECONDS / 4))
            continue
        raise LeaseHeld(
            f"{setting}: {output} is being written by {_describe(holder)} (lease {uri}); "
            f"rerun when it has finished (a lease silent for {LEASE_SECONDS:.0f} s is taken over)"
        )


def _held(uri: str, backend: Any, body: dict[str, Any], seen: Any) -> Lease:
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
