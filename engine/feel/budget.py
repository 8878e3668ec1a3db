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

import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from engine.feel.errors import FeelEvaluationError

#: Steps one evaluation may take (an ordinary mapping or condition takes a handful).
MAX_STEPS = 200_000
#: Estimated bytes one evaluation may produce (4 MiB is also the largest message the engine
#: accepts, so a larger result could never be stored or sent anyway).
MAX_MEMORY_BYTES = 8 * 1024 * 1024
#: CPU time one evaluation may take on the processing thread: what one instance can delay the
#: others by (a few thousand loop iterations fit; bench/engine.py --hostile measures the delay).
MAX_CPU_SECONDS = 0.005
#: Environment variable that overrides MAX_CPU_SECONDS for the whole process, in milliseconds
#: (`ENGINE_FEEL_CPU_MS=20 python -m engine ...`): on a loaded host a legitimate large
#: expression can exceed 5 ms of CPU and become an incident; raising the allowance trades that
#: for a longer worst-case delay of the other instances on the partition.
CPU_ENV_VAR = "ENGINE_FEEL_CPU_MS"
#: Bounds of a configured allowance: at least 0.1 ms, at most 10 s (beyond that the step and
#: memory limits are the only protection left, and one expression could stall a partition).
MIN_CPU_SECONDS = 0.0001
MAX_CONFIGURABLE_CPU_SECONDS = 10.0
CHECK_EVERY = 256
#: Estimated bytes per list item / context entry produced.
ITEM_BYTES = 16


_F = TypeVar("_F", bound=Callable[..., Any])


class FeelBudgetExceeded(FeelEvaluationError):
    """The evaluation used up its budget (steps, memory or CPU time)."""


def validate_cpu_seconds(seconds: float) -> float:
    """`seconds` as a CPU allowance, or ValueError naming the accepted range."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds != seconds:
        raise ValueError(f"FEEL CPU allowance must be a number of seconds, not {seconds!r}")
    if not MIN_CPU_SECONDS <= seconds <= MAX_CONFIGURABLE_CPU_SECONDS:
        raise ValueError(
            f"FEEL CPU allowance must be between {MIN_CPU_SECONDS * 1000:g} ms and "
            f"{MAX_CONFIGURABLE_CPU_SECONDS * 1000:g} ms, not {seconds * 1000:g} ms"
        )
    return float(seconds)


def _cpu_seconds_from_environment() -> float:
    raw = os.environ.get(CPU_ENV_VAR, "").strip()
    if not raw:
        return MAX_CPU_SECONDS
    try:
        milliseconds = float(raw)
    except ValueError:
        raise ValueError(f"{CPU_ENV_VAR}={raw!r}: expected milliseconds, e.g. {CPU_ENV_VAR}=20") from None
    try:
        return validate_cpu_seconds(milliseconds / 1000)
    except ValueError as error:
        raise ValueError(f"{CPU_ENV_VAR}={raw!r}: {error}") from None


# Read once at import, so a bad value stops `python -m engine` at start with the message above
# rather than turning every evaluation into an incident later.
_default_cpu_seconds = _cpu_seconds_from_environment()


def default_cpu_seconds() -> float:
    """The CPU allowance of an evaluation that does not pass its own."""
    return _default_cpu_seconds


def set_default_cpu_seconds(seconds: float) -> None:
    """Change the process-wide default CPU allowance (an embedding's configuration)."""
    global _default_cpu_seconds
    _default_cpu_seconds = validate_cpu_seconds(seconds)


class Budget:
    __slots__ = ("_countdown", "cpu_deadline", "max_cpu", "memory", "steps")

    def __init__(
        self,
        steps: int = MAX_STEPS,
        memory: int = MAX_MEMORY_BYTES,
        cpu_seconds: float | None = None,
    ) -> None:
        if cpu_seconds is None:
            cpu_seconds = _default_cpu_seconds
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
                    f" (the allowance is set by {CPU_ENV_VAR})"
                )


def size_of(value: object) -> int:
    """Estimated bytes of a produced value (shallow: its items were charged when produced)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | dict):
        return ITEM_BYTES * len(value)
    return 0


# The budget of the evaluation whose built-in is running on this thread. Most built-ins do
# linear work, charged before the call (`compiler._run_builtin`); the few whose work can grow
# faster than their arguments (pairwise comparisons, an output item per regex match, a
# replacement per match) are registered with `charges_as_it_goes` and charge through
# `charge_running`, so the limits interrupt them mid-way instead of after the damage. Set only
# around those calls (a thread-local write per evaluation cost 4-10% of a simple one).
_running = threading.local()
CHARGING_BUILTINS: set[object] = set()


def charges_as_it_goes(implementation: _F) -> _F:
    """Mark a built-in implementation that calls `charge_running`."""
    CHARGING_BUILTINS.add(implementation)
    return implementation


def run_charging(implementation: Callable[..., Any], arguments: list[Any], budget: Budget) -> Any:
    _running.budget = budget
    try:
        return implementation(*arguments)
    finally:
        _running.budget = None


def charge_running(steps: int, memory: int = 0) -> None:
    """Charge work done inside a built-in to the running evaluation's budget."""
    budget = getattr(_running, "budget", None)
    if budget is not None:
        budget.charge(steps, memory)
