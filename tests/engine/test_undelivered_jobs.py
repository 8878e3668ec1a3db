"""Jobs activated for a caller that goes away before they are delivered are yielded back
(JOB YIELDED) instead of staying locked until their timeout. Here the failing write is driven
in process on the real broker and servicer, deterministically; the network race is
test_undelivered_jobs_network.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pyzeebe.proto import gateway_pb2 as pb

from engine.broker import Broker
from engine.gateway import GatewayServicer
from engine.log import LogReader
from tests.engine.helpers import one_task_process


class _Context:
    """The two servicer-context calls activation uses; `write` fails like grpc's write to a
    call the client has cancelled, or simply collects the messages."""

    def __init__(self, fail_writes: bool):
        self.fail_writes = fail_writes
        self.written: list[Any] = []

    async def abort(self, code: Any, details: str) -> None:
        raise AssertionError(f"unexpected abort {code}: {details}")

    async def write(self, message: Any) -> None:
        if self.fail_writes:
            raise asyncio.CancelledError()
        self.written.append(message)


def test_cancelled_activation_yields_jobs_back(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        broker = Broker(tmp_path / "data", 1)
        await broker.start()
        try:
            servicer = GatewayServicer(broker)
            await broker.deploy([("y.bpmn", one_task_process("yield-flow", "yield-work"))])
            partition, _, _ = broker.create_instance("yield-flow", -1, -1, {}, [])
            await partition.durable()
            request = pb.ActivateJobsRequest(
                type="yield-work", worker="gone", timeout=600_000, maxJobsToActivate=5
            )
            gone = _Context(fail_writes=True)
            try:
                await servicer.ActivateJobs(request, gone)  # activated, but the write fails
            except asyncio.CancelledError:
                pass
            else:
                raise AssertionError("the failed write must end the call")
            # the job is activatable again at once, not after the 10-minute timeout
            again = _Context(fail_writes=False)
            await servicer.ActivateJobs(
                pb.ActivateJobsRequest(
                    type="yield-work", worker="next", timeout=1000, maxJobsToActivate=5, requestTimeout=-1
                ),
                again,
            )
            jobs = [job for response in again.written for job in response.jobs]
            assert len(jobs) == 1
            await partition.durable()
            return [partition.state.jobs[jobs[0].key].state]
        finally:
            await broker.stop()

    assert asyncio.run(scenario()) == ["ACTIVATED"]
    intents = [
        r["intent"]
        for r in LogReader(tmp_path / "data", 1).read()
        if r["valueType"] == "JOB" and r["recordType"] == "EVENT"
    ]
    assert intents == ["CREATED", "YIELDED"]
