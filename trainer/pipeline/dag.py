"""Which steps of a plan may start now: the rules the orchestrator and the local runner share.

Pure functions over the plan's steps (name + depends_on, in plan order, which is topological) and
each step's state. A step starts once everything it depends on is done; independent chains (one
per LoRA rank) run side by side, at most `max_parallel` steps at a time (0: no bound). A failed
step stops only what depends on it, directly or not: those become `blocked`.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

PENDING = "pending"
DONE = "done"
FAILED = "failed"
BLOCKED = "blocked"
# Started and not finished: the orchestrator's checking/running/verifying, the local runner's running.
ACTIVE = frozenset({"checking", "running", "verifying"})
FINISHED = frozenset({DONE, FAILED, BLOCKED})

Steps = Sequence[tuple[str, Sequence[str]]]  # (name, depends_on) in plan order


def newly_blocked(steps: Steps, states: Mapping[str, str]) -> dict[str, str]:
    """Pending steps that can never start, each with the failed step it waits for."""
    stopped = {name: name for name, _ in steps if states.get(name) == FAILED}
    stopped.update({name: name for name, _ in steps if states.get(name) == BLOCKED})
    found: dict[str, str] = {}
    for name, depends_on in steps:  # plan order: a step's dependencies come before it
        if states.get(name, PENDING) != PENDING:
            continue
        cause = next((stopped[d] for d in depends_on if d in stopped), None)
        if cause is not None:
            stopped[name] = found[name] = cause
    return found


def startable(steps: Steps, states: Mapping[str, str], max_parallel: int) -> list[str]:
    """Pending steps whose dependencies are all done, in plan order, within the parallelism bound."""
    ready = [
        name
        for name, depends_on in steps
        if states.get(name, PENDING) == PENDING and all(states.get(d) == DONE for d in depends_on)
    ]
    if max_parallel <= 0:
        return ready
    active = sum(states.get(name, PENDING) in ACTIVE for name, _ in steps)
    return ready[: max(max_parallel - active, 0)]


def outcome(names: Iterable[str], states: Mapping[str, str]) -> str:
    """'Succeeded' (all done), 'Failed' (all finished, some not done) or 'Running'."""
    finished = [states.get(name, PENDING) for name in names]
    if not all(state in FINISHED for state in finished):
        return "Running"
    return "Succeeded" if all(state == DONE for state in finished) else "Failed"
