"""Issue 21, second half: an engine killed more often than its snapshot interval must not replay
an ever longer log. Five cycles of start -> 2,000 creates -> kill -9 against the real
`python -m engine`; the records each recovery replays (from its own log line) stay bounded by
what one cycle wrote, instead of growing with every crash (counts, never wall time)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import grpc
import pytest
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc as pb_grpc

from engine.log import LogReader
from tests.engine.conftest import EngineProcess
from tests.engine.helpers import deploy, gateway, one_task_process

pytestmark = pytest.mark.slow

CYCLES = 5
CREATES_PER_CYCLE = 2_000
CONCURRENCY = 32
_REPLAYED = re.compile(r"partition 1 recovered: snapshot up to (\d+), (\d+) records replayed")


async def create_many(address: str, count: int) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.GatewayStub(channel)
        queue = iter(range(count))
        created = 0

        async def creator() -> None:
            nonlocal created
            for n in queue:
                await stub.CreateProcessInstance(
                    pb.CreateProcessInstanceRequest(
                        bpmnProcessId="replay", version=-1, variables=f'{{"n":{n}}}'
                    ),
                    timeout=30,
                )
                created += 1

        await asyncio.gather(*(creator() for _ in range(CONCURRENCY)))
        return created


def replayed_on_start(engine: EngineProcess) -> int:
    found = _REPLAYED.findall(engine.stderr())
    assert found, engine.stderr()
    return int(found[-1][1])


def test_replay_stays_bounded_over_five_kill_cycles(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    written_per_cycle: list[int] = []
    replayed: list[int] = []
    last_position = 0
    for cycle in range(CYCLES):
        engine = EngineProcess(data_dir, partitions=1).start()
        try:
            if cycle > 0:
                replayed.append(replayed_on_start(engine))
            else:
                with gateway(engine.address) as stub:
                    deploy(stub, "replay.bpmn", one_task_process("replay", "replay-work"))
            assert asyncio.run(create_many(engine.address, CREATES_PER_CYCLE)) == CREATES_PER_CYCLE
        finally:
            engine.kill()
        position = LogReader(data_dir, 1).last_position()
        written_per_cycle.append(position - last_position)
        last_position = position
    engine = EngineProcess(data_dir, partitions=1).start()
    replayed.append(replayed_on_start(engine))
    engine.stop()

    # Far below the 50,000-record snapshot interval, so without counting the replay towards it
    # no snapshot is ever written and the replay grows by one cycle per crash.
    assert max(written_per_cycle) < 50_000
    assert len(replayed) == CYCLES
    bound = max(written_per_cycle)
    assert all(count <= bound for count in replayed), (replayed, written_per_cycle)
