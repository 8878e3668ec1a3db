"""A partition whose log cannot be written acknowledges nothing more (fault injection on the
disk write, in process; everything else is the real engine)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.broker import Broker
from engine.partition import PartitionUnavailable
from tests.engine.helpers import one_task_process


def test_failed_fsync_is_never_acknowledged(tmp_path: Path) -> None:
    async def scenario() -> None:
        broker = Broker(tmp_path / "data", 1)
        await broker.start()
        try:
            await broker.deploy([("f.bpmn", one_task_process("fail-flow", "fail-work"))])
            partition = broker.partitions[1]
            assert partition.writer is not None

            def broken_sync() -> None:
                raise OSError(28, "No space left on device")

            partition.writer.sync = broken_sync  # type: ignore[method-assign]
            partition_, _, _ = broker.create_instance("fail-flow", -1, -1, {}, [])
            with pytest.raises(PartitionUnavailable):
                await partition_.durable()
            with pytest.raises(PartitionUnavailable):
                broker.create_instance("fail-flow", -1, -1, {}, [])
        finally:
            await broker.stop()

    asyncio.run(scenario())
