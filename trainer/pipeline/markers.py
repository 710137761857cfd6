"""Completion markers: the files a step writes last (see trainer.pipeline.plan), on a local folder,
a mounted PVC or S3. Reads go through trainer.storage, which retries an unreachable S3 endpoint.
"""

from __future__ import annotations

from trainer.storage import is_s3, open_store


def exists(uri: str) -> bool:
    folder, _, name = uri.rstrip("/").rpartition("/")
    if not folder and not is_s3(uri):
        folder = "."
    return open_store(folder).read_text(name) is not None


def missing(markers: list[str] | tuple[str, ...]) -> list[str]:
    """The markers that do not exist (empty: the step is done)."""
    return [uri for uri in markers if not exists(uri)]
