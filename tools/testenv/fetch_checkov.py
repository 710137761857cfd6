"""Install checkov, the policy suite tests/k8s/test_checkov.py runs, into its own virtualenv.

    python -m tools.testenv.fetch_checkov     # ~1-2 min once; a no-op when cached

checkov pins dozens of packages of its own, so it is not a dependency of the project: it lives in
${KIDS_ASR_CACHE:-~/.cache/ko-child-asr}/checkov-<version>/. A marker written last tells a finished
install from an interrupted one, which is removed and redone (a venv cannot be renamed: its scripts
name their interpreter by absolute path).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

from tools.testenv.fetch_helm import CACHE

VERSION = "3.3.30"
HOME = CACHE / f"checkov-{VERSION}"


def executable() -> Path:
    return HOME / "bin" / "checkov"


def main() -> int:
    done = HOME / ".installed"
    if not done.exists():
        shutil.rmtree(HOME, ignore_errors=True)
        venv.create(HOME, with_pip=True)
        subprocess.run(
            [
                str(HOME / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"checkov=={VERSION}",
            ],
            check=True,
        )
        done.touch()
    print(f"checkov: {executable()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
