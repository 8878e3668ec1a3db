"""The demo's flows and workers (demo/) against a real `python -m engine`: the models deploy; a BMC that
times out is retried with a backoff and then answers; an unreachable machine ends in an incident that an
operator's retry (update retries + resolve) lets finish; a special model waits for a person (a job-based
user task); a rack sweep repairs four servers through call activities and completes.

The trouble is made certain here (every BMC times out before it answers, no part is ever out of stock)
and the work fast (`speed`), so the outcome does not depend on the dice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from pyzeebe import ZeebeClient
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc as pb_grpc

from demo.fleet import fleet, racks
from demo.seed import deploy_models
from demo.workers import Trouble, build_worker
from tests.engine.conftest import EngineProcess
from tests.engine.helpers import all_records

pytestmark = pytest.mark.slow

SPEED = 40.0


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[EngineProcess]:
    process = EngineProcess(tmp_path / "engine", partitions=2).start()
    try:
        yield process
    finally:
        process.stop()


def records_where(data_dir: Path, value_type: str, intent: str, **value: Any) -> list[dict[str, Any]]:
    return [
        record
        for record in all_records(data_dir)
        if record["recordType"] == "EVENT"
        and record["valueType"] == value_type
        and record["intent"] == intent
        and all(record["value"].get(name) == wanted for name, wanted in value.items())
    ]


async def eventually(what: str, probe: Callable[[], Any], timeout: float = 60.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        result = probe()
        if result:
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def completed(data_dir: Path, process_instance_key: int) -> bool:
    return any(
        record["key"] == process_instance_key
        for record in records_where(
            data_dir, "PROCESS_INSTANCE", "ELEMENT_COMPLETED", bpmnElementType="PROCESS"
        )
    )


def test_demo_flows_with_their_trouble_on_a_real_engine(engine: EngineProcess) -> None:
    assert deploy_models(gateway=engine.address) == ["hardware-diagnosis", "server-repair", "rack-sweep"]
    data_dir = engine.data_dir
    unreachable = next(server for server in fleet() if server.unreachable and not server.special_model)
    special = next(server for server in fleet() if server.special_model and not server.unreachable)
    rack = next(
        name for name, members in racks().items() if not any(server.unreachable for server in members)
    )

    async def scenario() -> None:
        trouble = Trouble(
            seed=7, speed=SPEED, bmc_timeout_share=1.0, vendor_api_error_share=0.0, no_stock_share=0.0
        )
        async with grpc.aio.insecure_channel(engine.address) as channel:
            worker = build_worker(channel, trouble)
            working = asyncio.create_task(worker.work())
            client = ZeebeClient(channel)
            try:
                lost = (
                    await client.run_process("hardware-diagnosis", variables=unreachable.variables())
                ).process_instance_key
                waiting = (
                    await client.run_process("hardware-diagnosis", variables=special.variables())
                ).process_instance_key
                sweep = (
                    await client.run_process(
                        "rack-sweep", variables={"rack": rack, "dataCentre": rack.split("-")[0]}
                    )
                ).process_instance_key

                # Unreachable: every attempt fails, with a growing backoff while retries remain, then an incident.
                incident = (
                    await eventually(
                        "an incident on the unreachable machine's log download",
                        lambda: records_where(
                            data_dir,
                            "INCIDENT",
                            "CREATED",
                            processInstanceKey=lost,
                            elementId="download-logs",
                        ),
                    )
                )[0]
                assert "unreachable" in incident["value"]["errorMessage"]
                failures = records_where(data_dir, "JOB", "FAILED", processInstanceKey=lost)
                assert [failure["value"]["retries"] for failure in failures] == [3, 2, 1, 0]
                backoffs = [failure["value"]["retryBackoff"] for failure in failures]
                assert backoffs[:3] == sorted(backoffs[:3]) and backoffs[0] > 0 and backoffs[3] == 0

                # The operator's retry: the machine is back, the flow finishes.
                stub = pb_grpc.GatewayStub(channel)
                await stub.UpdateJobRetries(
                    pb.UpdateJobRetriesRequest(jobKey=incident["value"]["jobKey"], retries=1)
                )
                await stub.ResolveIncident(pb.ResolveIncidentRequest(incidentKey=incident["key"]))
                await eventually("the retried flow to complete", lambda: completed(data_dir, lost))

                # A BMC that times out is retried with backoff and answers on the last retry.
                swept = await eventually(
                    "the rack sweep to complete", lambda: completed(data_dir, sweep), timeout=120
                )
                assert swept
                repairs = [
                    record
                    for record in records_where(
                        data_dir, "PROCESS_INSTANCE", "ELEMENT_COMPLETED", bpmnElementType="PROCESS"
                    )
                    if record["value"]["bpmnProcessId"] == "server-repair"
                    and record["value"]["parentProcessInstanceKey"] == sweep
                ]
                assert len(repairs) == 4
                timeouts = [
                    failure
                    for failure in records_where(data_dir, "JOB", "FAILED", type="bmc-log-download")
                    if failure["value"]["processInstanceKey"] != lost
                ]
                assert timeouts and all(
                    "timed out" in failure["value"]["errorMessage"] for failure in timeouts
                )
                assert all(failure["value"]["retryBackoff"] > 0 for failure in timeouts)

                # The special model waits for a person: a job-based user task for the analysts, no incident.
                user_task = (
                    await eventually(
                        "the manual analysis to wait",
                        lambda: records_where(
                            data_dir,
                            "JOB",
                            "CREATED",
                            processInstanceKey=waiting,
                            elementId="manual-analysis",
                        ),
                    )
                )[0]
                assert user_task["value"]["type"] == "io.camunda.zeebe:userTask"
                headers = user_task["value"]["customHeaders"]
                assert json.loads(headers["io.camunda.zeebe:candidateGroups"]) == ["hw-analysts"]
                assert not completed(data_dir, waiting)
                assert not records_where(data_dir, "INCIDENT", "CREATED", processInstanceKey=waiting)
            finally:
                await worker.stop()
                working.cancel()
                await asyncio.gather(working, return_exceptions=True)

    asyncio.run(scenario())
