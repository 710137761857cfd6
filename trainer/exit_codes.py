"""Process exit codes shared by the trainer, the local runner and the Kubernetes Job specs.

The Job's podFailurePolicy keys off these numbers, so they are part of the product's interface:
- PREEMPTED: the process got SIGTERM, saved a complete checkpoint and stopped; re-running the same
  command resumes. Retryable (counts against backoffLimit like any pod failure).
- CONFIG_ERROR: bad flags, bad config file, bad manifest; retrying cannot help, so the Job fails at
  once (podFailurePolicy action FailJob).
"""

OK = 0
FAILED = 1
PREEMPTED = 75  # EX_TEMPFAIL from sysexits.h
CONFIG_ERROR = 78  # EX_CONFIG from sysexits.h


class ConfigError(Exception):
    """A user-facing configuration problem; the CLI prints it and exits with CONFIG_ERROR."""
