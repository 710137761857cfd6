"""Process environment the launchers give trainer processes (Makefile, local runner, Docker image).

Both settings must be in place before the process starts (glibc reads its tunables at start-up),
so they are set by whoever launches `python -m trainer`, not by the trainer itself.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Optional

# No OMP_WAIT_POLICY: OpenMP's default lets a thread spin briefly after each parallel region (and
# less when threads outnumber CPUs) before it sleeps. PASSIVE puts every thread to sleep after
# every op, and a small model's step is thousands of small ops, so the demo's steps take far longer
# with it (tools/bench/bench_demo_step.py; BENCHMARKS.md). A user's own OMP_WAIT_POLICY is left
# as it is.
CPU_ENV = {
    # glibc gives a freed block above its mmap threshold (at most 32 MiB unless set) straight back to
    # the OS, so a step whose activations exceed it pays page faults to zero fresh pages every time
    # (the reason PyTorch's CPU launcher preloads jemalloc/tcmalloc). Keeping freed memory in the
    # heap makes CPU steps on large batches faster for a little more peak memory
    # (tools/bench/bench_train.py; BENCHMARKS.md); batches whose activations stay under the
    # threshold gain nothing. GPU activations do not go through malloc.
    "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184",
}


def with_cpu_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` plus CPU_ENV; values already in `env` win, so a user's own tuning is kept."""
    return {**CPU_ENV, **env}


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by its cgroup's CPU quota (a pod's
    CPU limit, which the affinity mask does not show)."""
    cpus = len(os.sched_getaffinity(0))
    quota = _cgroup_cpu_quota()
    return cpus if quota is None else min(cpus, max(1, math.ceil(quota)))


def _cgroup_cpu_quota() -> Optional[float]:
    try:  # cgroup v2: "<quota|max> <period>"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        try:  # cgroup v1
            quota, period = (
                Path(f"/sys/fs/cgroup/cpu/cpu.cfs_{name}_us").read_text().strip() for name in ("quota", "period")
            )
        except OSError:
            return None
    return None if quota in ("max", "-1") else int(quota) / int(period)
