"""engine/backpressure.py's CommandLimiter on its own: the per-partition bound, the always-accepted
commands and the placed (round-robin) commands. The flood through a real engine is in
test_backpressure.py."""

from __future__ import annotations

import pytest

from engine.backpressure import COMMANDS, CommandLimiter


def test_bound_per_partition_and_recovery() -> None:
    limiter = CommandLimiter(limit=2, partition_count=2)
    assert limiter.try_keyed(1, "JOB", "THROW_ERROR")
    assert limiter.try_keyed(1, "JOB", "THROW_ERROR")
    assert not limiter.try_keyed(1, "JOB", "THROW_ERROR")
    assert limiter.try_keyed(2, "JOB", "THROW_ERROR")  # another partition has room
    # Completing work is never refused.
    assert limiter.try_keyed(1, "JOB", "COMPLETE")
    assert limiter.try_keyed(1, "JOB", "FAIL")
    assert limiter.try_keyed(1, "PROCESS_INSTANCE", "CANCEL")
    assert limiter.rejected == 1
    for _ in range(5):
        limiter.release_keyed(1)
    assert limiter.try_keyed(1, "JOB", "THROW_ERROR")  # drained: accepted again


def test_placed_commands_share_every_partition() -> None:
    limiter = CommandLimiter(limit=2, partition_count=2)
    for _ in range(4):
        assert limiter.try_placed("PROCESS_INSTANCE_CREATION", "CREATE")
    assert not limiter.try_placed("PROCESS_INSTANCE_CREATION", "CREATE")
    # Their share counts on each partition: key-addressed commands are refused too.
    assert not limiter.try_keyed(1, "JOB", "THROW_ERROR")
    limiter.release_placed()
    limiter.release_placed()
    assert limiter.try_keyed(1, "JOB", "THROW_ERROR")
    assert limiter.try_placed("PROCESS_INSTANCE_CREATION", "CREATE")
    assert not limiter.try_placed("PROCESS_INSTANCE_CREATION", "CREATE")


def test_zero_is_off_and_negative_is_refused() -> None:
    limiter = CommandLimiter(limit=0)
    for _ in range(10_000):
        assert limiter.try_placed("PROCESS_INSTANCE_CREATION", "CREATE")
        assert limiter.try_keyed(1, "JOB", "THROW_ERROR")
    with pytest.raises(ValueError):
        CommandLimiter(limit=-1)


def test_every_key_field_exists_in_the_gateway_protocol() -> None:
    from pyzeebe.proto import gateway_pb2 as pb

    for method, (_, _, key_field) in COMMANDS.items():
        request = getattr(pb, f"{method}Request")
        if key_field is not None:
            assert key_field in request.DESCRIPTOR.fields_by_name, (method, key_field)
