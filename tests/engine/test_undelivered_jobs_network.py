"""Over the network: jobs activated for callers that leave (client deadlines, explicit cancels,
streams closed mid-flight) are never left locked. Many short ActivateJobs long polls and
StreamActivatedJobs streams race against job creation on a real `python -m engine`; afterwards a
fresh worker must get every job the racing clients did not read, long before the 5-minute job
timeout, and the log must show every job completed (none stuck ACTIVATED).

Zeebe's gateway does the same: a response it could not hand to the client (call closed or the
write failed) is reactivated at once (InflightActivateJobsRequest.tryToSendActivatedJobs →
reactivateJobs; job streams yield their jobs back, reference §1.4).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path

import grpc
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc as pb_grpc

from tests.engine.conftest import EngineProcess
from tests.engine.helpers import all_records, create_instances_paced, one_task_process

JOB_TYPE = "race-work"
JOB_TIMEOUT_MS = 300_000  # a leaked lock would hold the job for 5 minutes: unmistakable
INSTANCES = 240
POLLERS = 6
STREAMERS = 3
STRESS_SECONDS = 20.0  # upper bound for the racing phase
COLLECT_SECONDS = 20.0  # upper bound for the fresh worker (far below the job timeout)


def _activate_request(worker: str, max_jobs: int, request_timeout_ms: int) -> pb.ActivateJobsRequest:
    return pb.ActivateJobsRequest(
        type=JOB_TYPE,
        worker=worker,
        timeout=JOB_TIMEOUT_MS,
        maxJobsToActivate=max_jobs,
        requestTimeout=request_timeout_ms,
    )


async def _read_until_cancelled(call: grpc.aio.UnaryStreamCall, received: dict[int, int]) -> None:
    try:
        async for message in call:
            for job in getattr(message, "jobs", None) or [message]:
                received[job.key] = job.processInstanceKey
    except (grpc.aio.AioRpcError, asyncio.CancelledError):
        pass


async def _poller(
    stub: pb_grpc.GatewayStub, index: int, stop: asyncio.Event, received: dict[int, int]
) -> None:
    rng = random.Random(index)
    for _ in range(5000):
        if stop.is_set():
            return
        request = _activate_request(f"poller-{index}", rng.randint(1, 4), 10_000)
        if rng.random() < 0.5:
            # a client deadline shorter than the long poll: gRPC cancels the call server-side
            call = stub.ActivateJobs(request, timeout=rng.uniform(0.001, 0.03))
            await _read_until_cancelled(call, received)
        else:
            call = stub.ActivateJobs(request, timeout=30)
            reader = asyncio.ensure_future(_read_until_cancelled(call, received))
            await asyncio.sleep(rng.uniform(0.0, 0.03))
            call.cancel()
            await reader


async def _streamer(
    stub: pb_grpc.GatewayStub, index: int, stop: asyncio.Event, received: dict[int, int]
) -> None:
    rng = random.Random(1000 + index)
    for _ in range(5000):
        if stop.is_set():
            return
        request = pb.StreamActivatedJobsRequest(
            type=JOB_TYPE, worker=f"streamer-{index}", timeout=JOB_TIMEOUT_MS
        )
        call = stub.StreamActivatedJobs(request, timeout=30)
        reader = asyncio.ensure_future(_read_until_cancelled(call, received))
        await asyncio.sleep(rng.uniform(0.0, 0.05))
        call.cancel()
        await reader


def _handed_over(engine: EngineProcess) -> Counter[int]:
    """Job keys grpc accepted for a client, per the engine's DEBUG delivery log."""
    counts: Counter[int] = Counter()
    for line in engine.stderr().splitlines():
        marker = line.find("handed over jobs [")
        if marker >= 0:
            counts.update(int(key) for key in line[marker + 18 : line.rindex("]")].split(","))
    return counts


async def _race(engine: EngineProcess, process: bytes) -> tuple[set[int], dict[int, int], dict[int, int]]:
    async with grpc.aio.insecure_channel(engine.address) as channel:
        stub = pb_grpc.GatewayStub(channel)
        await stub.DeployResource(
            pb.DeployResourceRequest(resources=[pb.Resource(name="race.bpmn", content=process)]), timeout=20
        )
        received: dict[int, int] = {}
        stop = asyncio.Event()
        clients = [asyncio.ensure_future(_poller(stub, i, stop, received)) for i in range(POLLERS)]
        clients += [asyncio.ensure_future(_streamer(stub, i, stop, received)) for i in range(STREAMERS)]
        created = await create_instances_paced(stub, "race-flow", INSTANCES, STRESS_SECONDS)
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*clients), 30)

        # The racing clients complete what they really read ...
        for job_key in received:
            await stub.CompleteJob(pb.CompleteJobRequest(jobKey=job_key, variables="{}"), timeout=10)
        # ... and a fresh worker must get all the rest now, not after the 5-minute lock. Jobs
        # the engine handed over but a racing client dropped unread (it cancelled with the
        # answer already on its side) are the client's loss, as with Zeebe: not waited for.
        fresh: dict[int, int] = {}
        deadline = time.monotonic() + COLLECT_SECONDS
        while time.monotonic() < deadline:
            dropped = set(_handed_over(engine)) - set(received) - set(fresh)
            if len(received) + len(fresh) + len(dropped) >= len(created):
                break
            call = stub.ActivateJobs(_activate_request("fresh", 100, 500), timeout=10)
            async for response in call:
                for job in response.jobs:
                    fresh[job.key] = job.processInstanceKey
                    await stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key, variables="{}"), timeout=10)
        return created, received, fresh


def test_jobs_of_departed_callers_are_handed_back(tmp_path: Path) -> None:
    engine = EngineProcess(tmp_path / "data", partitions=2, log_level="DEBUG").start()
    try:
        process = one_task_process("race-flow", JOB_TYPE)
        created, received, fresh = asyncio.run(_race(engine, process))
    finally:
        engine.stop()
    handed_over = _handed_over(engine)

    # Every activation of every job is accounted for exactly once: handed over to a client
    # (delivery log) or yielded back (JOB YIELDED). None is left locked without a delivery.
    activations: Counter[int] = Counter()
    yields: Counter[int] = Counter()
    last_intent: dict[int, str] = {}
    instance_of: dict[int, int] = {}
    for record in all_records(tmp_path / "data"):
        if record["recordType"] != "EVENT":
            continue
        if record["valueType"] == "JOB_BATCH" and record["intent"] == "ACTIVATED":
            activations.update(record["value"]["jobKeys"])
        elif record["valueType"] == "JOB":
            last_intent[record["key"]] = record["intent"]
            instance_of[record["key"]] = record["value"]["processInstanceKey"]
            if record["intent"] == "YIELDED":
                yields[record["key"]] += 1
    assert len(created) > 50 and len(last_intent) == len(created)
    unaccounted = {
        key: (count, yields[key], handed_over[key])
        for key, count in activations.items()
        if count != yields[key] + handed_over[key]
    }
    assert not unaccounted, f"activations neither handed over nor yielded back: {unaccounted}"
    assert sum(yields.values()) > 0, "the race never hit an activation whose caller had left"

    # Every job reached a worker well before its 5-minute timeout, except those a racing
    # client dropped after the engine had handed them over.
    dropped = set(handed_over) - set(received) - set(fresh)
    stuck = {key for key, intent in last_intent.items() if intent != "COMPLETED"}
    assert stuck == dropped, (
        f"{len(stuck - dropped)} of {len(created)} jobs stayed locked without having been handed over "
        f"(racing clients read {len(received)}, fresh worker got {len(fresh)}, yielded back "
        f"{sum(yields.values())}, handed over but dropped by the client {len(dropped)})"
    )
    reached = set(received.values()) | set(fresh.values()) | {instance_of[key] for key in dropped}
    assert reached == created
