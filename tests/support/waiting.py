"""Wait on something observable instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T | None],
    timeout: float = 10.0,
    *,
    interval: float = 0.05,
    what: str = "condition",
    stop_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `probe` until it returns something truthy and return that; a probe that raises counts as
    "not yet" (a server still starting), except an error of a `stop_on` type, which ends the wait at
    once (a child that exited will not start serving). Fails after `timeout` seconds naming `what`
    and the last error."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = probe()
        except stop_on:
            raise
        except Exception as error:
            last_error, value = error, None
        if value:
            return value
        if time.monotonic() >= deadline:
            suffix = f" (last error: {last_error!r})" if last_error is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{suffix}")
        time.sleep(interval)
