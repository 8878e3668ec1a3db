"""engine/backpressure.py on its own: the per-partition bound, the always-accepted commands and the
round-robin fallback. The flood through a real engine is in test_backpressure.py."""

from __future__ import annotations

import pytest

from engine.backpressure import (
    RESOURCE_EXHAUSTED_MESSAGE,
    RETRIES_EXHAUSTED_MESSAGE,
    Backpressure,
    CommandLimiter,
)


def test_bound_per_partition_and_recovery() -> None:
    limiter = CommandLimiter(limit=2)
    with limiter.command(1, "JOB", "THROW_ERROR"), limiter.command(1, "JOB", "THROW_ERROR"):
        with pytest.raises(Backpressure) as refused, limiter.command(1, "JOB", "THROW_ERROR"):
            pass
        assert refused.value.message == RESOURCE_EXHAUSTED_MESSAGE
        with limiter.command(2, "JOB", "THROW_ERROR"):  # another partition has room
            pass
        with limiter.command(1, "JOB", "COMPLETE"), limiter.command(1, "JOB", "FAIL"):
            assert limiter.in_flight[1] == 4  # completing work is never refused
    assert limiter.in_flight == {1: 0, 2: 0}
    assert limiter.rejected == {1: 1}
    with limiter.command(1, "JOB", "THROW_ERROR"):  # drained: accepted again
        pass


def test_round_robin_takes_the_next_partition_then_gives_up() -> None:
    limiter = CommandLimiter(limit=1)
    assert limiter.first_free([2, 1], "PROCESS_INSTANCE_CREATION", "CREATE") == 2
    assert limiter.first_free([2, 1], "PROCESS_INSTANCE_CREATION", "CREATE") == 1
    with pytest.raises(Backpressure) as refused:
        limiter.first_free([1, 2], "PROCESS_INSTANCE_CREATION", "CREATE")
    assert refused.value.message == RETRIES_EXHAUSTED_MESSAGE
    limiter.release(1)
    assert limiter.first_free([2, 1], "PROCESS_INSTANCE_CREATION", "CREATE") == 1


def test_zero_is_off_and_negative_is_refused() -> None:
    limiter = CommandLimiter(limit=0)
    for _ in range(10_000):
        assert limiter.try_acquire(1, "PROCESS_INSTANCE_CREATION", "CREATE")
    with pytest.raises(ValueError):
        CommandLimiter(limit=-1)
