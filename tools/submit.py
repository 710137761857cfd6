"""`python tools/submit.py ...` from a checkout: the same command as `ko-child-asr-submit`
(trainer.pipeline.submit_cli, where the flags and their help live)."""

import sys

from trainer.pipeline.submit_cli import main

if __name__ == "__main__":
    sys.exit(main())
