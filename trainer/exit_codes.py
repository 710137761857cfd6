"""Process exit codes shared by the trainer, the local runner and the Kubernetes Job specs.

The Job's podFailurePolicy keys off these numbers, so they are part of the product's interface:
- PREEMPTED: the run stopped early and re-running the same command resumes from its last complete
  checkpoint: it got SIGTERM and saved one, or its storage stayed unreachable for the whole retry
  budget (EX_TEMPFAIL). Neither is the trainer's fault: the Job replaces the pod without counting
  it against backoffLimit (podFailurePolicy action Ignore), bounded by activeDeadlineSeconds.
- CONFIG_ERROR: bad flags (ArgumentParser), config file or manifest, an output the run cannot write (missing
  bucket, rejected credentials, an endpoint that never answers, a read-only or full disk);
  retrying cannot help, so the Job fails at once (podFailurePolicy action FailJob).
- FAILED: anything else, i.e. a bug; the only case that prints a traceback.
"""

import argparse
import errno
import os
import sys
import traceback
from typing import Callable, NoReturn

OK = 0
FAILED = 1
PREEMPTED = 75  # EX_TEMPFAIL from sysexits.h
CONFIG_ERROR = 78  # EX_CONFIG from sysexits.h
# `orchestrator check-marker`: a completion marker is absent (the step is not done). The check Job
# then fails at once (podFailurePolicy FailJob), which is how an Argo Workflow sees the result.
MARKERS_MISSING = 3

# Set to 1 (or pass --debug) to see the traceback of an anticipated failure too.
DEBUG_ENV = "TRAINER_DEBUG"
# Filesystem errors that retrying cannot fix: a person has to free space or fix the mount.
_DISK_ERRORS = {
    errno.ENOSPC: "no space left",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only filesystem",
    errno.EACCES: "permission denied",
}


class TrainerError(Exception):
    """An anticipated failure: the CLI prints its message as one line and exits with `exit_code`."""

    exit_code = FAILED


class ConfigError(TrainerError):
    """A user-facing configuration or input problem; retrying cannot help."""

    exit_code = CONFIG_ERROR


class StorageUnavailable(TrainerError):
    """Storage kept failing with transient errors for the whole retry budget; a rerun resumes."""

    exit_code = PREEMPTED


class ArgumentParser(argparse.ArgumentParser):
    """argparse with this module's contract: a bad flag or value is one `error:` line and exit
    CONFIG_ERROR (argparse's own is a usage block and exit 2). Subparsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(CONFIG_ERROR)


def disk_error(exc: OSError) -> ConfigError | None:
    """The ConfigError for a full, read-only or forbidden disk, naming the path; None otherwise."""
    what = _DISK_ERRORS.get(exc.errno or 0)
    if what is None:
        return None
    return ConfigError(
        f"{exc.filename or 'output'}: {what} ({os.strerror(exc.errno or 0)}); fix the volume, "
        "then rerun the same command"
    )


def run_main(action: Callable[[], int], debug: bool = False) -> int:
    """Run a CLI's action; anticipated failures become one `error:` line and their exit code."""
    debug = debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        return int(action() or 0)
    except TrainerError as exc:
        return _report(exc, exc.exit_code, debug)
    except Exception as exc:
        # A full or read-only disk, also when a library reports it as its own error raised while
        # handling the OSError (torch.save's RuntimeError).
        mapped = next(filter(None, (disk_error(e) for e in _chain(exc) if isinstance(e, OSError))), None)
        if mapped is None:
            raise
        return _report(exc, mapped.exit_code, debug, str(mapped))


def _chain(exc: BaseException | None) -> list[BaseException]:
    """`exc` and the exceptions it was raised from or while handling."""
    found: list[BaseException] = []
    while exc is not None and exc not in found:
        found.append(exc)
        exc = exc.__cause__ or exc.__context__
    return found


def _report(exc: BaseException, code: int, debug: bool, message: str = "") -> int:
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"error: {message or exc}", file=sys.stderr)
    return code
