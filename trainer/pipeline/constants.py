"""The numbers and paths every pod of a run agrees on, in one place: the Jinja2 templates get them
through render.py's context, the Helm chart through its generated `constants.json` (written by
`python -m trainer.pipeline.schema --write`, checked by tests/pipeline/test_schema_files.py).
The exit codes the Jobs' podFailurePolicy keys off are trainer/exit_codes.py's."""

from __future__ import annotations

from typing import Any

from trainer import exit_codes

STORAGE_MOUNT = "/storage"  # where pods mount the PVC
# Where pods mount storage.s3.secretName's credentials file (AWS_SHARED_CREDENTIALS_FILE points into it).
S3_CREDENTIALS_DIR = "/var/run/secrets/aws"
MASTER_PORT = 29500  # torchrun's rendezvous on a multi-node step's first pod
POD_UID = 10001  # the image's user (docker/Dockerfile); above 10000, so no node user shares it
TENSORBOARD_PORT = 6006
# torchrun SIGKILLs its workers this long after passing on SIGTERM (default 30 s: too short for a
# checkpoint save). It gets the pod's grace period minus a margin for its own exit.
TORCHRUN_EXIT_MARGIN = 30


def template_values() -> dict[str, Any]:
    """What the templates (Jinja2 and the chart) take from here, by the names they use."""
    return {
        "storage_path": STORAGE_MOUNT,
        "s3_credentials_dir": S3_CREDENTIALS_DIR,
        "master_port": MASTER_PORT,
        "uid": POD_UID,
        "tensorboard_port": TENSORBOARD_PORT,
        "config_error": exit_codes.CONFIG_ERROR,
        "preempted": exit_codes.PREEMPTED,
        "markers_missing": exit_codes.MARKERS_MISSING,
    }
