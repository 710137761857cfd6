"""Stands in for `python -m trainer` in the local-runner tests (no training; see test_local_runner).

Records its arguments in $FAKE_TRAINER_LOG, then, per $FAKE_TRAINER_SPEC (JSON):
  "fail": {substring of the arguments: exit code}   exit with that code
  "no_markers": [substring, ...]                    exit 0 without writing anything
  "markers": {joined arguments: [paths]}            write those files, exit 0
"""

import json
import os
import sys
from pathlib import Path

argv = sys.argv[1:]
with open(os.environ["FAKE_TRAINER_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(argv) + "\n")
spec = json.loads(Path(os.environ["FAKE_TRAINER_SPEC"]).read_text(encoding="utf-8"))
joined = " ".join(argv)
for needle, code in spec.get("fail", {}).items():
    if needle in joined:
        print(f"fake trainer: failing with {code}")
        sys.exit(code)
if not any(needle in joined for needle in spec.get("no_markers", [])):
    for marker in spec["markers"][joined]:
        Path(marker).parent.mkdir(parents=True, exist_ok=True)
        Path(marker).write_text("{}", encoding="utf-8")
print(f"fake trainer: GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES')}")
print(f"fake trainer: {argv[0]} done")
