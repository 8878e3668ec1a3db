"""Jobs activated for a caller that goes away before they are delivered are yielded back
(JOB YIELDED) instead of staying locked until their timeout. The cancellation is driven
in process on the real broker and servicer, because the window between activation and
delivery cannot be hit reliably over the network."""

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
    async def abort(self, code: Any, details: str) -> None:
        raise AssertionError(f"unexpected abort {code}: {details}")


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
            stream = servicer.ActivateJobs(request, _Context())
            first = await stream.__anext__()  # activated and handed to the transport ...
            assert len(first.jobs) == 1
            await stream.aclose()  # ... but the caller is cancelled before it was sent
            # the job is activatable again at once, not after the 10-minute timeout
            again = servicer.ActivateJobs(
                pb.ActivateJobsRequest(
                    type="yield-work", worker="next", timeout=1000, maxJobsToActivate=5, requestTimeout=-1
                ),
                _Context(),
            )
            jobs = [job async for response in again for job in response.jobs]
            assert [job.key for job in jobs] == [first.jobs[0].key]
            await partition.durable()
            return [partition.state.jobs[first.jobs[0].key]["state"]]
        finally:
            await broker.stop()

    assert asyncio.run(scenario()) == ["ACTIVATED"]
    intents = [
        r["intent"]
        for r in LogReader(tmp_path / "data", 1).read()
        if r["valueType"] == "JOB" and r["recordType"] == "EVENT"
    ]
    assert intents == ["CREATED", "YIELDED"]
