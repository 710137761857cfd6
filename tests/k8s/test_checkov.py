"""A platform team's policy suite, checkov, on what `submit.py --render-only` writes and on the chart's
own objects (values, launcher): every check passes except the deliberate exceptions in
k8s/checkov.yaml, and each of those still fails (the list stays exact).

checkov is not a dependency of the project (it pins dozens of packages of its own): `make test`
installs it in a virtualenv of its own (tools/testenv/fetch_checkov.py); $CHECKOV overrides that."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tools.testenv import fetch_checkov  # noqa: E402
from trainer import exit_codes  # noqa: E402
from trainer.pipeline import submit_cli as submit  # noqa: E402
from trainer.pipeline import values_io  # noqa: E402

from .helpers import helm_template  # noqa: E402

EXCEPTIONS = REPO / "k8s" / "checkov.yaml"
DIGEST = "sha256:" + "ab" * 32

pytestmark = pytest.mark.slow


def checkov() -> str:
    found = os.environ.get("CHECKOV") or str(fetch_checkov.executable())
    if not Path(found).is_file():
        pytest.skip(f"checkov not found at {found}: run `python -m tools.testenv prepare` (make test does)")
    return found


# The same exceptions hold on every storage: S3 credentials are a mounted file, not env vars (CKV_K8S_35).
STORAGE = {
    "pvc": [],
    "s3-secret": ["--storage", "s3://asr-bucket/runs", "--s3-secret", "s3-creds"],
    "s3-workload-identity": ["--storage", "s3://asr-bucket/runs", "--service-account", "asr-s3"],
}


@pytest.mark.parametrize("storage", sorted(STORAGE))
@pytest.mark.parametrize("source", ["submit", "chart"])
def test_checkov_fails_only_the_deliberate_exceptions(
    source: str, storage: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    binary = checkov()
    out = tmp_path / "manifests"
    argv = [
        "--rank",
        "16",
        "32",
        "--name",
        "ck",
        "-n",
        "asr",
        "--image",
        f"ghcr.io/example/ko-child-asr:0.1.0@{DIGEST}",
        *STORAGE[storage],
    ]
    if source == "chart":
        cfg = submit.build_config(submit.build_parser().parse_args(argv))
        objects = helm_template(values_io.to_values(cfg), "ck", "asr", request.getfixturevalue("helm3"))
        out.mkdir()
        (out / "chart.yaml").write_text(yaml.safe_dump_all(objects), encoding="utf-8")
    else:
        assert submit.main([*argv, "--render-only", str(out)]) == exit_codes.OK
    proc = subprocess.run(
        [binary, "-d", str(out), "--framework", "kubernetes", "-o", "json", "--quiet"], capture_output=True, text=True
    )
    report = json.loads(proc.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = {check["check_id"] for check in report["results"]["failed_checks"]}
    deliberate = set(yaml.safe_load(EXCEPTIONS.read_text(encoding="utf-8"))["skip-check"])
    assert report["summary"]["passed"] > 0 and report["summary"]["parsing_errors"] == 0
    assert failed - deliberate == set(), "checks failing that k8s/checkov.yaml does not explain"
    assert deliberate - failed == set(), "exceptions in k8s/checkov.yaml that no longer fail: remove them"
