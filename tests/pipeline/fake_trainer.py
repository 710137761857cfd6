"""Stands in for `python -m trainer` in the local-runner tests (no training; see test_local_runner).

Records its arguments in $FAKE_TRAINER_LOG, then, per $FAKE_TRAINER_SPEC (JSON):
  "fail": {substring of the arguments: exit code}   exit with that code
  "no_markers": [substring, ...]                    exit 0 without writing anything
  "markers": {joined arguments: [paths]}            write those files, exit 0
  "together": {"dir": path, "steps": [substring, ...], "wait_seconds": 120}
      each step matching one of the substrings waits (before anything else) until every one of
      them has started; one left alone that long exits 1 (the steps did not run side by side)
  "until_sigterm": {"steps": [substring, ...], "armed_dir": path}
      a matching step creates a file in armed_dir once it handles SIGTERM, waits (up to 60 s) for
      it, then exits 75 as the trainer does after saving a checkpoint
"""

import json
import os
import signal
import sys
import time
from pathlib import Path

argv = sys.argv[1:]
with open(os.environ["FAKE_TRAINER_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(argv) + "\n")
spec = json.loads(Path(os.environ["FAKE_TRAINER_SPEC"]).read_text(encoding="utf-8"))
joined = " ".join(argv)
together = spec.get("together", {"steps": []})
mine = [i for i, needle in enumerate(together["steps"]) if needle in joined]
if mine:
    rendezvous = Path(together["dir"])
    rendezvous.mkdir(parents=True, exist_ok=True)
    (rendezvous / str(mine[0])).touch()
    deadline = time.monotonic() + together.get("wait_seconds", 120)
    while len(list(rendezvous.iterdir())) < len(together["steps"]):
        if time.monotonic() > deadline:
            print("fake trainer: the other steps never started while this one ran")
            sys.exit(1)
        time.sleep(0.05)
until_sigterm = spec.get("until_sigterm", {"steps": []})
if any(needle in joined for needle in until_sigterm["steps"]):
    signal.signal(signal.SIGTERM, lambda *_: (print("fake trainer: SIGTERM, checkpoint saved"), sys.exit(75)))
    armed = Path(until_sigterm["armed_dir"])
    armed.mkdir(parents=True, exist_ok=True)
    (armed / str(os.getpid())).touch()
    time.sleep(60)
    sys.exit(1)
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
