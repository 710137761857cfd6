"""`torchrun` that exits with the trainer's exit codes, for multi-GPU and multi-node Jobs:

    python -m trainer.torchrun --standalone --nproc-per-node=8 -m trainer train ...

Plain torchrun exits 1 whatever its workers exited with, and on SIGTERM it passes the signal on
and then dies of it. The Jobs' podFailurePolicy needs the trainer's codes (trainer/exit_codes.py):
a configuration error must fail the Job at once instead of being retried backoffLimit times.
"""

from __future__ import annotations

from typing import Iterable

from trainer import exit_codes


def job_exit_code(worker_codes: Iterable[int]) -> int:
    """One exit code for the failed workers: any configuration error wins (no retry can help),
    all preempted is preempted, anything else (a crash, a signal) is a plain failure."""
    codes = set(worker_codes)
    if exit_codes.CONFIG_ERROR in codes:
        return exit_codes.CONFIG_ERROR
    if codes == {exit_codes.PREEMPTED}:
        return exit_codes.PREEMPTED
    return exit_codes.FAILED


def main(argv: list[str] | None = None) -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    try:
        run(parse_args(argv))
    except ChildFailedError as exc:
        return job_exit_code(failure.exitcode for failure in exc.failures.values())
    except SignalException:
        # torchrun has passed SIGTERM on and waited for the workers (--shutdown-timeout): they
        # saved a checkpoint and stopped, so re-running resumes, as with a single process.
        return exit_codes.PREEMPTED
    return exit_codes.OK


if __name__ == "__main__":
    raise SystemExit(main())
