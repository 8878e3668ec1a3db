"""Issue 18: job activation through the proxy over two real engines.

* A trickle of jobs (40 one-task instances at 4/s) to one worker polling with
  ``maxJobsToActivate`` 16 and ``requestTimeout`` 1000 ms: a leg parked for an answered call
  used to take the next job on its cluster and fail it back (38 of 40 jobs). Now at most one
  job may be handed back, and every FAILED record is checked in the engines' logs.
* One of two clusters SIGSTOPped: the healthy cluster's jobs reach the worker, raw gRPC calls
  answer within their own deadline, and pyzeebe's worker sees no activation error.
"""

# No "from __future__ import annotations": pyzeebe finds the Job parameter by its real annotation.
import asyncio
import logging
import signal
import threading
import time
from typing import Any

import grpc
import pytest
from pyzeebe import Job, ZeebeWorker, create_insecure_channel
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc

from routing.activation import is_hand_back
from routing.keys import cluster_of, from_global
from tests.routing.conftest import Fleet
from tests.routing.harness import iter_values
from tests.routing.models import service_task_process
from tests.support import wait_for

TRICKLE_INSTANCES = 40
TRICKLE_INTERVAL = 0.25  # 4 instances/s, the reproduction
TRICKLE_MAX_JOBS = 16
TRICKLE_REQUEST_TIMEOUT_MS = 1000


def _deploy(stub: gateway_pb2_grpc.GatewayStub, process_id: str, job_type: str) -> None:
    stub.DeployResource(
        pb.DeployResourceRequest(
            resources=[
                pb.Resource(name=f"{process_id}.bpmn", content=service_task_process(process_id, job_type))
            ]
        ),
        timeout=30,
    )


def _create_trickle(stub: gateway_pb2_grpc.GatewayStub, process_id: str) -> list[int]:
    created = []
    for _ in range(TRICKLE_INSTANCES):
        response = stub.CreateProcessInstance(
            pb.CreateProcessInstanceRequest(bpmnProcessId=process_id, version=-1), timeout=10
        )
        created.append(int(response.processInstanceKey))
        time.sleep(TRICKLE_INTERVAL)  # the workload's pace, not a wait for some state
    return created


def _failed_records(fleet: Fleet, job_type: str) -> list[dict[str, Any]]:
    return [
        record
        for engine in fleet.engines
        for record in iter_values(engine.records(), "JOB", "FAILED")
        if record["value"]["type"] == job_type
    ]


def _raw_worker(address: str, job_type: str, stop: threading.Event, completed: list[int]) -> None:
    """A plain ActivateJobs loop, as in the issue: activate, complete each job, poll again."""
    with grpc.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        request = pb.ActivateJobsRequest(
            type=job_type,
            worker="trickle-worker",
            timeout=60_000,
            maxJobsToActivate=TRICKLE_MAX_JOBS,
            requestTimeout=TRICKLE_REQUEST_TIMEOUT_MS,
        )
        for _ in range(1000):  # bounded; each poll lasts at most ~1 s
            if stop.is_set():
                return
            for response in stub.ActivateJobs(request, timeout=10):
                for job in response.jobs:
                    stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key), timeout=10)
                    completed.append(int(job.processInstanceKey))


async def _pyzeebe_worker(
    address: str, job_type: str, stop: threading.Event, completed: list[int], request_timeout: int
) -> None:
    channel = create_insecure_channel(grpc_address=address)
    worker = ZeebeWorker(channel, name="trickle-worker", request_timeout=request_timeout)

    @worker.task(task_type=job_type, timeout_ms=60_000, max_jobs_to_activate=TRICKLE_MAX_JOBS)
    async def work(job: Job) -> dict[str, Any]:
        completed.append(job.process_instance_key)
        return {}

    task = asyncio.ensure_future(worker.work())
    try:
        for _ in range(600):  # bounded: 60 s
            if stop.is_set():
                break
            await asyncio.sleep(0.1)
    finally:
        await worker.stop()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), timeout=15)
        await channel.close()


@pytest.mark.parametrize("client", ["grpc", "pyzeebe"])
def test_trickle_through_two_clusters_hands_back_at_most_one_job(fleet: Fleet, client: str) -> None:
    job_type = f"rt-trickle-{client}"
    address = fleet.proxy.address
    with grpc.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        _deploy(stub, "rt-trickle", job_type)
        stop = threading.Event()
        completed: list[int] = []
        if client == "grpc":
            worker = threading.Thread(target=_raw_worker, args=(address, job_type, stop, completed))
        else:
            worker = threading.Thread(
                target=lambda: asyncio.run(
                    _pyzeebe_worker(address, job_type, stop, completed, TRICKLE_REQUEST_TIMEOUT_MS)
                )
            )
        worker.start()
        try:
            created = _create_trickle(stub, "rt-trickle")
            wait_for(lambda: len(completed) >= len(created), 30, what="every trickled job completed")
        finally:
            stop.set()
            worker.join(timeout=30)
    assert {cluster_of(key) for key in created} == {1, 2}
    assert sorted(completed) == sorted(created)  # each job done once
    failed = _failed_records(fleet, job_type)
    assert all(is_hand_back(r["value"]["errorMessage"]) for r in failed)  # the worker never failed one
    assert len(failed) <= 1, f"{len(failed)} of {len(created)} jobs handed back"


def _definition_key_on(stub: gateway_pb2_grpc.GatewayStub, process_id: str, cluster_id: int) -> int:
    for _ in range(10):
        response = stub.CreateProcessInstance(
            pb.CreateProcessInstanceRequest(bpmnProcessId=process_id, version=-1), timeout=10
        )
        if cluster_of(response.processDefinitionKey) == cluster_id:
            return int(response.processDefinitionKey)
    raise AssertionError(f"placement never reached cluster {cluster_id}")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_hung_cluster_does_not_hold_up_activation_from_the_healthy_one(fleet: Fleet) -> None:
    address = fleet.proxy.address
    hung = fleet.engine(2)
    assert hung.process is not None
    with grpc.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        _deploy(stub, "rt-hung-raw", "rt-hung-raw")
        _deploy(stub, "rt-hung", "rt-hung")
        raw_key = _definition_key_on(stub, "rt-hung-raw", 1)
        on_one = _definition_key_on(stub, "rt-hung", 1)
        # Drain what placement put anywhere, so only the jobs created below are left.
        for job_type in ("rt-hung-raw", "rt-hung"):
            for response in stub.ActivateJobs(
                pb.ActivateJobsRequest(
                    type=job_type, worker="drain", timeout=60_000, maxJobsToActivate=50, requestTimeout=-1
                ),
                timeout=10,
            ):
                for job in response.jobs:
                    stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key), timeout=10)
        raw_jobs = {
            int(
                stub.CreateProcessInstance(
                    pb.CreateProcessInstanceRequest(processDefinitionKey=raw_key), timeout=10
                ).processInstanceKey
            )
            for _ in range(2)
        }

        hung.process.send_signal(signal.SIGSTOP)
        try:
            # Raw gRPC, right after the hang (the health checker has not noticed yet): each call
            # gets a healthy cluster's job within a 1.5 s deadline, whichever cluster the
            # proxy's rotation starts at. (Before: a sequential pass waited up to 5 s on the
            # hung cluster, so the call missed its deadline.)
            got: set[int] = set()
            for _ in range(2):
                request = pb.ActivateJobsRequest(
                    type="rt-hung-raw", worker="raw", timeout=60_000, maxJobsToActivate=1, requestTimeout=1000
                )
                for response in stub.ActivateJobs(request, timeout=1.5):
                    for job in response.jobs:
                        got.add(int(job.processInstanceKey))
                        stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key), timeout=5)
            assert got == raw_jobs

            # pyzeebe: a worker polling (deadline 2 x requestTimeout) while jobs appear on the
            # healthy cluster: every job done, and not one activation error in its log.
            warnings = _Collect()
            poller_log = logging.getLogger("pyzeebe.worker.job_poller")
            poller_log.addHandler(warnings)
            stop = threading.Event()
            completed: list[int] = []
            worker = threading.Thread(
                target=lambda: asyncio.run(_pyzeebe_worker(address, "rt-hung", stop, completed, 1000))
            )
            worker.start()
            try:
                created = []
                for _ in range(12):
                    response = stub.CreateProcessInstance(
                        pb.CreateProcessInstanceRequest(processDefinitionKey=on_one), timeout=10
                    )
                    created.append(int(response.processInstanceKey))
                    time.sleep(0.25)  # the workload's pace
                wait_for(lambda: len(completed) >= len(created), 20, what="the healthy cluster's jobs done")
            finally:
                stop.set()
                worker.join(timeout=30)
                poller_log.removeHandler(warnings)
        finally:
            hung.process.send_signal(signal.SIGCONT)
    assert sorted(completed) == sorted(created)
    assert [m for m in warnings.messages if "Failed to activate jobs" in m] == []
    wait_for(lambda: fleet.proxy.metrics()["clusters"]["2"]["health"] == "up", 15, what="cluster 2 back up")


def test_jobs_held_for_a_departed_worker_are_handed_back_when_the_proxy_stops(fleet: Fleet) -> None:
    """Hostile timing: the worker left, its parked leg activated a job, and the proxy is told to
    stop while that job is held for a worker that will not come. The job must not stay locked:
    it is handed back (FailJob, hand-back message) before the proxy exits."""
    with grpc.insecure_channel(fleet.proxy.address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        _deploy(stub, "rt-stop", "rt-stop")
        on_one = _definition_key_on(stub, "rt-stop", 1)
        for response in stub.ActivateJobs(  # the instance placement made: out of the way
            pb.ActivateJobsRequest(
                type="rt-stop", worker="drain", timeout=60_000, maxJobsToActivate=50, requestTimeout=-1
            ),
            timeout=10,
        ):
            for job in response.jobs:
                stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key), timeout=10)
        call = stub.ActivateJobs(
            pb.ActivateJobsRequest(
                type="rt-stop", worker="gone", timeout=300_000, maxJobsToActivate=5, requestTimeout=8000
            ),
            timeout=30,
        )
        fleet.proxy.wait_parked("rt-stop", {1, 2})
        call.cancel()
        instance = int(
            stub.CreateProcessInstance(
                pb.CreateProcessInstanceRequest(processDefinitionKey=on_one), timeout=10
            ).processInstanceKey
        )
    assert fleet.proxy.stop() == 0
    records = fleet.engine(1).records()
    job_keys = {
        r["key"]
        for r in iter_values(records, "JOB", "CREATED")
        if r["value"]["processInstanceKey"] == from_global(instance)[1]
    }
    activated = [
        r for r in iter_values(records, "JOB_BATCH", "ACTIVATED") if set(r["value"]["jobKeys"]) & job_keys
    ]
    handed_back = [r for r in iter_values(records, "JOB", "FAILED") if r["key"] in job_keys]
    # Activated once, for the departed worker (its leg's 2 s slice was still parked), and handed
    # back rather than left locked for 5 minutes.
    assert len(activated) == len(handed_back) == 1
    assert all(is_hand_back(r["value"]["errorMessage"]) for r in handed_back)
