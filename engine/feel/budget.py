"""The evaluation budget: every evaluation may take so many steps, allocate so much and burn so
much CPU time, then it fails with `FeelBudgetExceeded` (Zeebe's engine turns that into an
incident on the element, like any evaluation failure).

Why: evaluation runs on the partition's single processing thread, so one expression that loops
over millions of items (`for x in 1..1999999 return for y in 1..10 return y`) or builds huge
values would stall every other instance's commands. Regular expressions go through RE2
(linear time, see `builtins.strings`), so a catastrophic-backtracking pattern is no concern.

Steps are charged where work grows with data, not per syntax node: per iteration of
`for`/`some`/`every` (and per item of a numeric range before it is materialised), per filtered
item, per user function call, per built-in call plus the size of its list arguments. Memory is
the estimated size of what loops, built-ins and string concatenation produce (cumulative, so an
overestimate). The CPU time (`time.thread_time`, so other processes on a busy machine do not
count) is checked every CHECK_EVERY steps.
"""

from __future__ import annotations

import time

from engine.feel.errors import FeelEvaluationError

#: Steps one evaluation may take (an ordinary mapping or condition takes a handful).
MAX_STEPS = 200_000
#: Estimated bytes one evaluation may produce (4 MiB is also the largest message the engine
#: accepts, so a larger result could never be stored or sent anyway).
MAX_MEMORY_BYTES = 8 * 1024 * 1024
#: CPU time one evaluation may take on the processing thread: what one instance can delay the
#: others by (a few thousand loop iterations fit; bench/engine.py --hostile measures the delay).
MAX_CPU_SECONDS = 0.005
CHECK_EVERY = 256
#: Estimated bytes per list item / context entry produced.
ITEM_BYTES = 16


class FeelBudgetExceeded(FeelEvaluationError):
    """The evaluation used up its budget (steps, memory or CPU time)."""


class Budget:
    __slots__ = ("_countdown", "cpu_deadline", "max_cpu", "memory", "steps")

    def __init__(
        self,
        steps: int = MAX_STEPS,
        memory: int = MAX_MEMORY_BYTES,
        cpu_seconds: float = MAX_CPU_SECONDS,
    ) -> None:
        self.steps = steps
        self.memory = memory
        self.max_cpu = cpu_seconds
        self.cpu_deadline = time.thread_time() + cpu_seconds
        self._countdown = CHECK_EVERY

    def charge(self, steps: int, memory: int = 0) -> None:
        self.steps -= steps
        self.memory -= memory
        if self.steps < 0:
            raise FeelBudgetExceeded(f"evaluation budget exhausted: more than {MAX_STEPS} steps")
        if self.memory < 0:
            raise FeelBudgetExceeded(
                f"evaluation budget exhausted: produces more than {MAX_MEMORY_BYTES} bytes of values"
            )
        self._countdown -= steps
        if self._countdown <= 0:
            self._countdown = CHECK_EVERY
            if time.thread_time() > self.cpu_deadline:
                raise FeelBudgetExceeded(
                    f"evaluation budget exhausted: more than {self.max_cpu * 1000:g} ms of CPU time"
                )


def size_of(value: object) -> int:
    """Estimated bytes of a produced value (shallow: its items were charged when produced)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | dict):
        return ITEM_BYTES * len(value)
    return 0
