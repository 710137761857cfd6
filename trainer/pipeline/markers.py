"""Completion markers: the files a step writes last (see trainer.pipeline.plan), on a local folder,
a mounted PVC or S3. Reads go through trainer.storage, which retries an unreachable S3 endpoint.
"""

from __future__ import annotations

from trainer.storage import exists


def missing(markers: list[str] | tuple[str, ...]) -> list[str]:
    """The markers that do not exist (empty: the step is done)."""
    return [uri for uri in markers if not exists(uri)]
