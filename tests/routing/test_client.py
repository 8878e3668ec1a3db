"""The synchronous Router (routing/client.py) against real engines, with keys from the proxy."""

from typing import Any

import grpc
import pytest
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc

from routing.client import (
    ActivateInstruction,
    ClusterUnavailableError,
    GatewayError,
    Router,
    health_from_metrics_file,
)
from routing.keys import InvalidKeyError, UnknownClusterError, cluster_of, from_global, to_global
from tests.routing.conftest import Fleet
from tests.routing.harness import iter_values
from tests.routing.models import service_task_process, two_task_process
from tests.support import wait_for


def _proxy_stub(fleet: Fleet) -> Any:
    return gateway_pb2_grpc.GatewayStub(grpc.insecure_channel(fleet.proxy.address))


def _setup(stub: Any, process_id: str, content: bytes, count: int) -> list[int]:
    stub.DeployResource(
        pb.DeployResourceRequest(resources=[pb.Resource(name=f"{process_id}.bpmn", content=content)]),
        timeout=30,
    )
    return [
        stub.CreateProcessInstance(
            pb.CreateProcessInstanceRequest(bpmnProcessId=process_id), timeout=10
        ).processInstanceKey
        for _ in range(count)
    ]


def _activate(stub: Any, job_type: str, count: int) -> list[pb.ActivatedJob]:
    jobs: list[pb.ActivatedJob] = []
    for _ in range(20):
        if len(jobs) >= count:
            break
        request = pb.ActivateJobsRequest(
            type=job_type,
            worker="rt-client",
            timeout=300_000,
            maxJobsToActivate=count - len(jobs),
            requestTimeout=2000,
        )
        for response in stub.ActivateJobs(request, timeout=30):
            jobs.extend(response.jobs)
    assert len(jobs) == count
    return jobs


def test_router_helpers_reach_the_owning_cluster(shared_fleet: Fleet) -> None:
    stub = _proxy_stub(shared_fleet)
    router = Router(shared_fleet.entries())
    instances = _setup(stub, "rt-client", service_task_process("rt-client", "rt-client"), 8)
    assert {cluster_of(k) for k in instances} == {1, 2}
    jobs = _activate(stub, "rt-client", 8)
    by_cluster: dict[int, list[pb.ActivatedJob]] = {1: [], 2: []}
    for job in jobs:
        by_cluster[cluster_of(job.key)].append(job)
    for cluster_id, (done, failing, cancelled, *_rest) in by_cluster.items():
        gateway, local_key = router.gateway_for(done.key)
        assert local_key == from_global(done.key)[1]
        assert isinstance(gateway, gateway_pb2_grpc.GatewayStub)
        document_key = router.set_variables(done.elementInstanceKey, {"note": "from celery"}, local=True)
        assert cluster_of(document_key) == cluster_id
        router.update_job_timeout(done.key, 600_000)
        router.complete_job(done.key, {"ok": True})
        router.fail_job(failing.key, retries=0, error_message="rt-client: broken")
        log = shared_fleet.engine(cluster_id).records()
        incident = next(
            r
            for r in iter_values(log, "INCIDENT", "CREATED")
            if r["value"]["jobKey"] == from_global(failing.key)[1]
        )
        router.update_job_retries(failing.key, 2)
        router.resolve_incident(to_global(cluster_id, incident["key"]))
        router.cancel_process_instance(cancelled.processInstanceKey)
        with pytest.raises(GatewayError) as caught:
            router.complete_job(done.key)  # already completed: Zeebe's own NOT_FOUND
        assert caught.value.code is grpc.StatusCode.NOT_FOUND
        assert f"'{from_global(done.key)[1]}'" in caught.value.details
        log = shared_fleet.engine(cluster_id).records()
        local = lambda key: from_global(key)[1]  # noqa: E731
        assert local(done.key) in {r["key"] for r in iter_values(log, "JOB", "COMPLETED")}
        assert local(failing.key) in {r["key"] for r in iter_values(log, "JOB", "RETRIES_UPDATED")}
        assert incident["key"] in {r["key"] for r in iter_values(log, "INCIDENT", "RESOLVED")}
        terminated = {r["key"] for r in iter_values(log, "PROCESS_INSTANCE", "ELEMENT_TERMINATED")}
        assert local(cancelled.processInstanceKey) in terminated
        documents = {r["key"] for r in iter_values(log, "VARIABLE_DOCUMENT", "UPDATED")}
        assert local(document_key) in documents


def test_router_modify_skips_a_step(shared_fleet: Fleet) -> None:
    stub = _proxy_stub(shared_fleet)
    router = Router(shared_fleet.entries())
    _setup(stub, "rt-skip", two_task_process("rt-skip", "rt-skip-first", "rt-skip-second"), 2)
    for job in _activate(stub, "rt-skip-first", 2):
        router.modify_process_instance(
            job.processInstanceKey,
            activate=[ActivateInstruction(element_id="second", variables={"skipped": True})],
            terminate=[job.elementInstanceKey],
        )
    seconds = _activate(stub, "rt-skip-second", 2)
    assert {cluster_of(j.key) for j in seconds} == {1, 2}
    assert all('"skipped": true' in j.variables or '"skipped":true' in j.variables for j in seconds)


def test_router_errors_are_typed(fleet: Fleet) -> None:
    plain = 2251799813685249
    router = Router(fleet.entries(c2={"state": "disabled"}))
    with pytest.raises(UnknownClusterError, match="cluster id 0"):
        router.complete_job(plain)
    with pytest.raises(UnknownClusterError, match="cluster 9 is not configured"):
        router.complete_job(to_global(9, plain))
    with pytest.raises(InvalidKeyError):
        router.cancel_process_instance(-1)
    with pytest.raises(ClusterUnavailableError, match="disabled") as disabled:
        router.complete_job(to_global(2, plain))
    assert disabled.value.reason == "disabled"

    stub = _proxy_stub(fleet)
    keys = _setup(stub, "rt-down", service_task_process("rt-down", "rt-down"), 4)
    on_two = next(k for k in keys if cluster_of(k) == 2)
    fleet.engine(2).kill9()
    with pytest.raises(ClusterUnavailableError) as unreachable:
        Router(fleet.entries(), timeout=3).cancel_process_instance(on_two)
    assert unreachable.value.reason == "unreachable" and unreachable.value.cluster_id == 2
    # With the proxy's health file, a down cluster is refused without trying it.
    wait_for(lambda: fleet.proxy.metrics()["clusters"]["2"]["health"] == "down", 5, what="cluster 2 down")
    informed = Router(
        fleet.entries(), health=health_from_metrics_file(fleet.proxy.state_dir / "metrics.json")
    )
    with pytest.raises(ClusterUnavailableError, match="down") as down:
        informed.cancel_process_instance(on_two)
    assert down.value.reason == "down"
    on_one = next(k for k in keys if cluster_of(k) == 1)
    informed.cancel_process_instance(on_one)  # the healthy cluster is still served


def test_router_takes_a_callable_source(shared_fleet: Fleet) -> None:
    calls = []

    def source() -> list[dict[str, Any]]:
        calls.append(1)
        return shared_fleet.entries()

    router = Router(source)
    assert router.cluster(2).address == shared_fleet.engine(2).address
    assert calls
