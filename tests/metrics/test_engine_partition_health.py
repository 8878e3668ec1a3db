"""The partition gauges when a partition's log cannot be written (fault injection on the disk
write, in process; everything else is the real engine): healthy drops to 0 for that partition only."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from engine.broker import Broker
from engine.metrics import EngineCollector
from engine.partition import PartitionUnavailable
from tests.support import sequence_process


def gauges(broker: Broker) -> dict[tuple[str, str], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(lambda: broker.partitions.values(), None))
    values = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            values[sample.name, sample.labels.get("partition", "")] = sample.value
    return values


def test_a_partition_that_cannot_write_reports_unhealthy(tmp_path: Path) -> None:
    async def scenario() -> None:
        broker = Broker(tmp_path / "data", 2)
        await broker.start()
        try:
            await broker.deploy([("f.bpmn", sequence_process("health-flow", "health-work"))])
            before = gauges(broker)
            assert before["fleetflow_engine_partition_healthy", "1"] == 1
            assert before["fleetflow_engine_partition_healthy", "2"] == 1
            partition = broker.partitions[1]
            assert partition.writer is not None

            def broken_sync() -> None:
                raise OSError(28, "No space left on device")

            partition.writer.sync = broken_sync  # type: ignore[method-assign]
            created = None
            for _ in range(4):  # round-robin placement: one of the next two lands on partition 1
                created, _, _ = broker.create_instance("health-flow", -1, -1, {}, [])
                if created is partition:
                    break
            assert created is partition
            with pytest.raises(PartitionUnavailable):
                await partition.durable()
            after = gauges(broker)
            assert after["fleetflow_engine_partition_healthy", "1"] == 0
            assert after["fleetflow_engine_partition_healthy", "2"] == 1
            assert after["fleetflow_engine_log_position", "1"] > before["fleetflow_engine_log_position", "1"]
        finally:
            await broker.stop()

    asyncio.run(scenario())
