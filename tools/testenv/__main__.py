"""`python -m tools.testenv prepare`: fetch/build everything tests/k8s needs; fast when cached.

    helm v3 + v4, kubectl      tools/testenv/fetch_helm.py   (~10 s once)
    checkov (policy suite)     tools/testenv/fetch_checkov.py (~1-2 min once)
    kube-apiserver, -controller-manager v1.20.2
                               tools/testenv/build_kube.sh   (~8 min of CPU once)
etcd-server, golang-go, golang-github-modern-go-reflect2-dev, rsync and openssl come from apt (tools/setup.sh --test installs them).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def prepare() -> int:
    from tools.testenv import fetch_checkov, fetch_helm
    from tools.testenv.kube_server import KUBE_BIN

    fetch_helm.main()
    fetch_checkov.main()
    subprocess.run(["bash", str(HERE / "build_kube.sh"), str(KUBE_BIN)], check=True)
    return 0


def main(argv: list[str]) -> int:
    if argv != ["prepare"]:
        print(__doc__, file=sys.stderr)
        return 2
    return prepare()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
