"""`submit.py --local` runs exactly the plan that would be submitted: the same steps, in the same
order, with the same trainer arguments (only the storage root differs: a local folder instead of
the PVC mounted at /storage). `helm install` creates what would be submitted (tests/k8s/test_parity.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # tools/ is not an installed package

from trainer.pipeline import render  # noqa: E402
from trainer.pipeline import submit_cli as submit  # noqa: E402
from trainer.pipeline.constants import STORAGE_MOUNT  # noqa: E402
from trainer.pipeline.plan import build_plan  # noqa: E402

LOCAL_ROOT = "runs"


def local_and_cluster_steps(argv: list[str]) -> tuple[list, list]:
    args = submit.build_parser().parse_args([*argv, "--local"])
    cfg = submit.build_config(args)
    local = [(j.name, list(j.argv)) for j in build_plan(cfg, LOCAL_ROOT).jobs]
    objects = render.render_jinja(cfg, "asr")
    cluster = [
        (
            name,
            [a.replace(STORAGE_MOUNT, LOCAL_ROOT, 1) for a in job["spec"]["template"]["spec"]["containers"][0]["args"]],
        )
        for name, job in render.job_manifests(objects).items()
    ]
    return local, cluster


@pytest.mark.parametrize(
    "argv",
    [["--phase", "all", "--rank", "32"], ["--phase", "all", "--rank", "16", "32"], ["--phase", "2", "--rank", "16"]],
)
def test_local_plan_equals_the_rendered_kubernetes_plan(argv: list[str]) -> None:
    local, cluster = local_and_cluster_steps([*argv, "--preset", "smoke"])
    assert [name for name, _ in local] == [name for name, _ in cluster]
    assert local == cluster
    assert any(args[0] == "train" for _, args in local)
