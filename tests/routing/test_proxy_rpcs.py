"""Every routing class of the proxy against two real engines: key fields, fan-out, activation.

Each test checks what the client got (global keys, statuses, texts) *and* what the owning
engine recorded in its log (the command arrived there, with that cluster's own key).
"""

import queue
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import pytest
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc

from routing.activation import is_hand_back
from routing.keys import ZEEBE_PARTITION_SHIFT, cluster_of, from_global, to_global
from tests.routing.conftest import Fleet, ZbCtl
from tests.routing.harness import iter_values
from tests.routing.models import empty_process, service_task_process, two_task_process
from tests.support import wait_for


@pytest.fixture(scope="module")
def stub(shared_fleet: Fleet) -> Any:
    channel = grpc.insecure_channel(shared_fleet.proxy.address)
    yield gateway_pb2_grpc.GatewayStub(channel)
    channel.close()


def deploy(stub: Any, process_id: str, content: bytes) -> pb.DeployResourceResponse:
    return stub.DeployResource(
        pb.DeployResourceRequest(resources=[pb.Resource(name=f"{process_id}.bpmn", content=content)]),
        timeout=30,
    )


def definition_keys(stub: Any, process_id: str) -> dict[int, int]:
    """Global definition key of ``process_id`` on each cluster (learned from placed creates)."""
    keys: dict[int, int] = {}
    for _ in range(10):
        response = stub.CreateProcessInstance(
            pb.CreateProcessInstanceRequest(bpmnProcessId=process_id), timeout=10
        )
        keys[cluster_of(response.processDefinitionKey)] = response.processDefinitionKey
        if len(keys) == 2:
            return keys
    raise AssertionError(f"placement never reached both clusters: {keys}")


def create_on(stub: Any, definition_key: int, variables: str = "") -> int:
    response = stub.CreateProcessInstance(
        pb.CreateProcessInstanceRequest(processDefinitionKey=definition_key, variables=variables), timeout=10
    )
    assert cluster_of(response.processInstanceKey) == cluster_of(definition_key)
    return int(response.processInstanceKey)


def activate(
    stub: Any, job_type: str, max_jobs: int = 10, request_timeout: int = 2000
) -> list[pb.ActivatedJob]:
    jobs: list[pb.ActivatedJob] = []
    request = pb.ActivateJobsRequest(
        type=job_type,
        worker="rt-test",
        timeout=300_000,
        maxJobsToActivate=max_jobs,
        requestTimeout=request_timeout,
    )
    for response in stub.ActivateJobs(request, timeout=30):
        jobs.extend(response.jobs)
    return jobs


def activate_all(stub: Any, job_type: str, count: int) -> list[pb.ActivatedJob]:
    jobs: list[pb.ActivatedJob] = []
    for _ in range(20):  # bounded
        if len(jobs) >= count:
            break
        jobs += activate(stub, job_type, max_jobs=count - len(jobs))
    assert len(jobs) == count
    return jobs


def records(fleet: Fleet, cluster_id: int) -> list[dict[str, Any]]:
    return fleet.engine(cluster_id).records()


def error_of(call: Any) -> grpc.RpcError:
    try:
        call()
    except grpc.RpcError as error:
        return error
    raise AssertionError("the call succeeded")


def test_zbctl_status_shows_both_clusters(shared_fleet: Fleet, zbctl_binary: Path) -> None:
    status = ZbCtl(binary=zbctl_binary, address=shared_fleet.proxy.address).ok("status")
    assert "Cluster size: 2" in status and "Partitions count: 4" in status
    for broker, engine in ((1000, shared_fleet.engine(1)), (2000, shared_fleet.engine(2))):
        assert f"Broker {broker} - {engine.address}" in status


def test_topology_is_synthesized_from_both_clusters(shared_fleet: Fleet, stub: Any) -> None:
    topology = stub.Topology(pb.TopologyRequest(), timeout=5)
    assert topology.clusterSize == 2
    assert topology.partitionsCount == 4
    assert {b.nodeId for b in topology.brokers} == {1000, 2000}
    assert {(b.host, b.port) for b in topology.brokers} == {
        ("127.0.0.1", e.port) for e in shared_fleet.engines
    }
    partition_ids = {p.partitionId for b in topology.brokers for p in b.partitions}
    # What Zeebe's decodePartitionId (key >> 51) gives for the global keys clients hold.
    assert partition_ids == {
        to_global(cluster_id, (partition << ZEEBE_PARTITION_SHIFT) + 1) >> ZEEBE_PARTITION_SHIFT
        for cluster_id in (1, 2)
        for partition in (1, 2)
    }


def test_deploy_reaches_every_cluster_and_answers_with_the_first_clusters_keys(
    shared_fleet: Fleet, stub: Any
) -> None:
    response = deploy(stub, "rt-dep", service_task_process("rt-dep", "rt-dep"))
    assert cluster_of(response.key) == 1
    process = response.deployments[0].process
    assert cluster_of(process.processDefinitionKey) == 1
    for cluster_id in (1, 2):
        created = [r for r in iter_values(records(shared_fleet, cluster_id), "PROCESS", "CREATED")]
        keys = {r["key"] for r in created if r["value"]["bpmnProcessId"] == "rt-dep"}
        assert len(keys) == 1
        if cluster_id == 1:
            assert keys == {from_global(process.processDefinitionKey)[1]}
    # The deprecated DeployProcess takes the same path and answers in its own shape.
    old = stub.DeployProcess(
        pb.DeployProcessRequest(
            processes=[
                pb.ProcessRequestObject(name="rt-dep-old.bpmn", definition=empty_process("rt-dep-old"))
            ]
        ),
        timeout=30,
    )
    assert cluster_of(old.key) == 1 and old.processes[0].bpmnProcessId == "rt-dep-old"
    assert cluster_of(old.processes[0].processDefinitionKey) == 1
    # A resource every cluster refuses: the first cluster's error, unchanged, and nothing journaled.
    bad = error_of(lambda: deploy(stub, "rt-bad", b"<not-bpmn"))
    assert bad.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert shared_fleet.proxy.metrics()["clusters"]["2"]["pendingDeployments"] == 0


def test_create_by_definition_key_goes_to_that_cluster_and_with_result(
    shared_fleet: Fleet, stub: Any
) -> None:
    deploy(stub, "rt-empty", empty_process("rt-empty"))
    keys = definition_keys(stub, "rt-empty")
    for cluster_id, definition_key in keys.items():
        for _ in range(3):
            assert cluster_of(create_on(stub, definition_key)) == cluster_id
        result = stub.CreateProcessInstanceWithResult(
            pb.CreateProcessInstanceWithResultRequest(
                request=pb.CreateProcessInstanceRequest(
                    processDefinitionKey=definition_key, variables='{"x": 1}'
                ),
                requestTimeout=10_000,
            ),
            timeout=15,
        )
        assert cluster_of(result.processInstanceKey) == cluster_id
        assert cluster_of(result.processDefinitionKey) == cluster_id
        assert '"x"' in result.variables
    placed = stub.CreateProcessInstanceWithResult(
        pb.CreateProcessInstanceWithResultRequest(
            request=pb.CreateProcessInstanceRequest(bpmnProcessId="rt-empty")
        ),
        timeout=15,
    )
    assert cluster_of(placed.processInstanceKey) in (1, 2)
    # Unknown process: the engine's NOT_FOUND and text, not retried elsewhere.
    missing = error_of(
        lambda: stub.CreateProcessInstance(
            pb.CreateProcessInstanceRequest(bpmnProcessId="rt-nope"), timeout=10
        )
    )
    assert missing.code() is grpc.StatusCode.NOT_FOUND
    assert "rt-nope" in missing.details()


def test_job_rpcs_and_set_variables_reach_the_owning_cluster(shared_fleet: Fleet, stub: Any) -> None:
    deploy(stub, "rt-jobs", service_task_process("rt-jobs", "rt-jobs"))
    keys = definition_keys(stub, "rt-jobs")
    instances = {c: [create_on(stub, k) for _ in range(3)] for c, k in keys.items()}
    jobs = activate_all(stub, "rt-jobs", 2 * 3 + 2)  # +2 from definition_keys' own creates
    by_cluster: dict[int, list[pb.ActivatedJob]] = {1: [], 2: []}
    for job in jobs:
        assert cluster_of(job.key) == cluster_of(job.processInstanceKey) == cluster_of(job.elementInstanceKey)
        assert cluster_of(job.processDefinitionKey) == cluster_of(job.key)
        by_cluster[cluster_of(job.key)].append(job)
    for cluster_id, cluster_jobs in by_cluster.items():
        assert {j.processInstanceKey for j in cluster_jobs} >= set(instances[cluster_id])
        first, second, third, *rest = cluster_jobs
        stub.UpdateJobTimeout(pb.UpdateJobTimeoutRequest(jobKey=first.key, timeout=600_000), timeout=10)
        stub.UpdateJobRetries(pb.UpdateJobRetriesRequest(jobKey=first.key, retries=5), timeout=10)
        document = stub.SetVariables(
            pb.SetVariablesRequest(
                elementInstanceKey=first.elementInstanceKey, variables='{"local": 1}', local=True
            ),
            timeout=10,
        )
        assert cluster_of(document.key) == cluster_id
        on_instance = stub.SetVariables(
            pb.SetVariablesRequest(elementInstanceKey=first.processInstanceKey, variables='{"root": 2}'),
            timeout=10,
        )
        stub.ThrowError(
            pb.ThrowErrorRequest(jobKey=second.key, errorCode="RT-ERR", errorMessage="rt"), timeout=10
        )
        stub.FailJob(pb.FailJobRequest(jobKey=third.key, retries=0, errorMessage="rt-fail"), timeout=10)
        for job in [first, *rest]:
            stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key, variables='{"done": true}'), timeout=10)
        log = records(shared_fleet, cluster_id)
        local = lambda key: from_global(key)[1]  # noqa: E731
        assert local(first.key) in {r["key"] for r in iter_values(log, "JOB", "TIMEOUT_UPDATED")}
        assert local(first.key) in {r["key"] for r in iter_values(log, "JOB", "RETRIES_UPDATED")}
        documents = {r["key"]: r["value"] for r in iter_values(log, "VARIABLE_DOCUMENT", "UPDATED")}
        assert documents[local(document.key)]["scopeKey"] == local(first.elementInstanceKey)
        assert documents[local(on_instance.key)]["scopeKey"] == local(first.processInstanceKey)
        assert local(second.key) in {r["key"] for r in iter_values(log, "JOB", "ERROR_THROWN")}
        assert local(third.key) in {r["key"] for r in iter_values(log, "JOB", "FAILED")}
        completed = {r["key"] for r in iter_values(log, "JOB", "COMPLETED")}
        assert {local(j.key) for j in [first, *rest]} <= completed
        incidents = list(iter_values(log, "INCIDENT", "CREATED"))
        mine = [r for r in incidents if r["value"]["jobKey"] in (local(second.key), local(third.key))]
        assert len(mine) == 2
        for incident in mine:
            if incident["value"]["jobKey"] == local(third.key):
                stub.UpdateJobRetries(pb.UpdateJobRetriesRequest(jobKey=third.key, retries=1), timeout=10)
                stub.ResolveIncident(
                    pb.ResolveIncidentRequest(incidentKey=to_global(cluster_id, incident["key"])), timeout=10
                )
        resolved = {r["key"] for r in iter_values(records(shared_fleet, cluster_id), "INCIDENT", "RESOLVED")}
        assert any(r["key"] in resolved for r in mine)
        for job in (second, third):  # still running (error thrown / failed and resolved)
            stub.CancelProcessInstance(
                pb.CancelProcessInstanceRequest(processInstanceKey=job.processInstanceKey), timeout=10
            )
    for cluster_id in (1, 2):
        rejections = [
            r
            for r in records(shared_fleet, cluster_id)
            if r["recordType"] == "COMMAND_REJECTION" and r["valueType"] != "PROCESS_INSTANCE_CREATION"
        ]  # (creating the unknown 'rt-nope' is rejected on purpose in another test)
        assert [r for r in rejections if r["rejectionType"] == "NOT_FOUND"] == []


def test_modify_process_instance_rewrites_instructions(shared_fleet: Fleet, stub: Any) -> None:
    deploy(stub, "rt-mod", two_task_process("rt-mod", "rt-mod-first", "rt-mod-second"))
    keys = definition_keys(stub, "rt-mod")
    instances = {c: create_on(stub, k) for c, k in keys.items()}
    first_jobs = {
        cluster_of(j.key): j
        for j in activate_all(stub, "rt-mod-first", 4)
        if j.processInstanceKey in instances.values()
    }
    assert set(first_jobs) == {1, 2}
    for cluster_id, job in first_jobs.items():
        stub.ModifyProcessInstance(
            pb.ModifyProcessInstanceRequest(
                processInstanceKey=job.processInstanceKey,
                activateInstructions=[
                    pb.ModifyProcessInstanceRequest.ActivateInstruction(
                        elementId="second", ancestorElementInstanceKey=-1
                    )
                ],
                terminateInstructions=[
                    pb.ModifyProcessInstanceRequest.TerminateInstruction(
                        elementInstanceKey=job.elementInstanceKey
                    )
                ],
            ),
            timeout=10,
        )
        terminated = {
            r["key"]
            for r in iter_values(records(shared_fleet, cluster_id), "PROCESS_INSTANCE", "ELEMENT_TERMINATED")
        }
        assert from_global(job.elementInstanceKey)[1] in terminated
    seconds = activate_all(stub, "rt-mod-second", 2)
    assert {j.processInstanceKey for j in seconds} == set(instances.values())
    # One request cannot address two clusters.
    mixed = error_of(
        lambda: stub.ModifyProcessInstance(
            pb.ModifyProcessInstanceRequest(
                processInstanceKey=instances[1],
                terminateInstructions=[
                    pb.ModifyProcessInstanceRequest.TerminateInstruction(
                        elementInstanceKey=seconds[0].elementInstanceKey
                    )
                    if cluster_of(seconds[0].key) == 2
                    else pb.ModifyProcessInstanceRequest.TerminateInstruction(
                        elementInstanceKey=seconds[1].elementInstanceKey
                    )
                ],
            ),
            timeout=10,
        )
    )
    assert mixed.code() is grpc.StatusCode.INVALID_ARGUMENT and "two clusters" in mixed.details()


def test_engine_errors_pass_through_unchanged_for_every_routing_class(shared_fleet: Fleet, stub: Any) -> None:
    some_key = to_global(2, 2251799813685249)
    calls = {
        # The engine runs messages and signals now: requests it refuses (fan-out class).
        "PublishMessage": pb.PublishMessageRequest(name="", correlationKey="c"),
        "BroadcastSignal": pb.BroadcastSignalRequest(signalName="s", variables="[1]"),
        "EvaluateDecision": pb.EvaluateDecisionRequest(decisionId="d"),
        "MigrateProcessInstance": pb.MigrateProcessInstanceRequest(processInstanceKey=some_key),
        "DeleteResource": pb.DeleteResourceRequest(resourceKey=some_key),
    }
    with grpc.insecure_channel(shared_fleet.engine(2).address) as channel:
        direct = gateway_pb2_grpc.GatewayStub(channel)
        for method, request in calls.items():
            through_proxy = error_of(lambda m=method, r=request: getattr(stub, m)(r, timeout=10))
            plain = type(request)()
            plain.CopyFrom(request)
            for name in ("processInstanceKey", "resourceKey"):
                if name in plain.DESCRIPTOR.fields_by_name and getattr(plain, name):
                    setattr(plain, name, from_global(getattr(plain, name))[1])
            from_engine = error_of(lambda m=method, r=plain: getattr(direct, m)(r, timeout=10))
            assert (through_proxy.code(), through_proxy.details()) == (
                from_engine.code(),
                from_engine.details(),
            )


def test_activation_never_exceeds_max_across_clusters(shared_fleet: Fleet, stub: Any) -> None:
    deploy(stub, "rt-max", service_task_process("rt-max", "rt-max"))
    keys = definition_keys(stub, "rt-max")
    for definition_key in keys.values():
        for _ in range(3):
            create_on(stub, definition_key)
    first = activate(stub, "rt-max", max_jobs=4)
    assert len(first) == 4
    rest = activate_all(stub, "rt-max", 4)  # 3 + 3 + 2 from definition_keys = 8 in all
    everything = [j.key for j in first + rest]
    assert len(set(everything)) == 8
    assert {cluster_of(k) for k in everything} == {1, 2}
    # No long polling asked: an empty answer at once, not an error.
    assert activate(stub, "rt-max", request_timeout=-1) == []
    blank = error_of(lambda: activate(stub, " ", request_timeout=-1))
    assert blank.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_long_poll_answers_from_any_cluster_and_never_loses_a_job(shared_fleet: Fleet, stub: Any) -> None:
    """A parked ActivateJobs(max 1) on both clusters; one job appears on each at once. The client
    gets exactly one; the other is either still activatable or was given back (FailJob, retries
    unchanged, no backoff) - never locked until its 5-minute deadline."""
    deploy(stub, "rt-poll", service_task_process("rt-poll", "rt-poll"))
    keys = definition_keys(stub, "rt-poll")
    activate_all(stub, "rt-poll", 2)  # the two from definition_keys
    created: list[int] = []
    delivered: list[pb.ActivatedJob] = []
    for _ in range(6):
        answers: queue.Queue[list[pb.ActivatedJob]] = queue.Queue()
        poller = threading.Thread(
            target=lambda sink=answers: sink.put(activate(stub, "rt-poll", max_jobs=1, request_timeout=8000))
        )
        poller.start()
        shared_fleet.proxy.wait_parked("rt-poll", {1, 2})
        makers = [
            threading.Thread(target=lambda k=k: created.append(create_on(stub, k))) for k in keys.values()
        ]
        for maker in makers:
            maker.start()
        for maker in makers:
            maker.join(timeout=10)
        poller.join(timeout=15)
        first = answers.get(timeout=1)
        assert len(first) == 1
        delivered += first
        delivered += activate_all(stub, "rt-poll", 1)
    assert sorted(j.processInstanceKey for j in delivered) == sorted(created)
    for job in delivered:
        stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key), timeout=10)
    given_back = 0
    for cluster_id in (1, 2):
        for record in iter_values(records(shared_fleet, cluster_id), "JOB", "FAILED"):
            if is_hand_back(record["value"]["errorMessage"]):
                given_back += 1
                assert record["value"]["retries"] == 3 and record["value"]["retryBackoff"] == 0
    print(f"jobs handed back by the proxy in this test: {given_back}")


def test_stream_activated_jobs_merges_clusters_and_closes_legs(shared_fleet: Fleet, stub: Any) -> None:
    deploy(stub, "rt-stream", service_task_process("rt-stream", "rt-stream"))
    keys = definition_keys(stub, "rt-stream")
    activate_all(stub, "rt-stream", 2)
    received: queue.Queue[pb.ActivatedJob] = queue.Queue()
    stream = stub.StreamActivatedJobs(
        pb.StreamActivatedJobsRequest(type="rt-stream", worker="rt-streamer", timeout=300_000), timeout=60
    )

    def read() -> None:
        try:
            for job in stream:
                received.put(job)
        except grpc.RpcError:
            pass  # cancelled below

    reader = threading.Thread(target=read)
    reader.start()
    wait_for(
        lambda: {c for c, n in open_streams(shared_fleet, "rt-stream").items() if n} == {1, 2},
        10,
        interval=0.0,
        what="stream legs open on both clusters",
    )
    created = {create_on(stub, k) for k in keys.values() for _ in range(2)}
    jobs = [received.get(timeout=15) for _ in range(4)]
    assert {j.processInstanceKey for j in jobs} == created
    assert {cluster_of(j.key) for j in jobs} == {1, 2}
    for job in jobs:
        assert job.worker == "rt-streamer"
        stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key), timeout=10)
    stream.cancel()
    reader.join(timeout=10)
    wait_for(
        lambda: not any(open_streams(shared_fleet, "rt-stream").values()),
        10,
        interval=0.0,
        what="every stream leg closed",
    )
    # With the client gone, no leg may still grab jobs: new ones are activatable by others.
    later = {create_on(stub, k) for k in keys.values()}
    polled = activate_all(stub, "rt-stream", 2)
    assert {j.processInstanceKey for j in polled} == later
    assert received.empty()


def test_metrics_count_requests_per_cluster(shared_fleet: Fleet, stub: Any) -> None:
    stub.Topology(pb.TopologyRequest(), timeout=5)
    metrics = wait_for(
        lambda: (m := shared_fleet.proxy.metrics())["clusters"]["1"]["requests"] > 0 and m, 5, what="metrics"
    )
    for cluster_id in ("1", "2"):
        cluster = metrics["clusters"][cluster_id]
        assert cluster["health"] == "up"
        assert cluster["byMethod"]["DeployResource"] >= 1
        assert cluster["latencyMs"]["count"] > 0 and cluster["latencyMs"]["p99"] is not None
    counts = Counter({k: v["instancesCreated"] for k, v in metrics["clusters"].items()})
    assert counts["1"] > 0 and counts["2"] > 0


def open_streams(fleet: Fleet, job_type: str) -> dict[int, int]:
    clusters = fleet.proxy.metrics()["activation"]["clusters"]
    return {
        int(c): entry["jobTypes"].get(job_type, {}).get("openStreams", 0) for c, entry in clusters.items()
    }


def _handed_back(fleet: Fleet, cluster_id: int, job_key: int) -> list[dict[str, Any]]:
    return [
        r
        for r in iter_values(records(fleet, cluster_id), "JOB", "FAILED")
        if r["key"] == from_global(job_key)[1] and is_hand_back(r["value"]["errorMessage"])
    ]


def test_job_of_a_leftover_leg_goes_to_the_next_call_of_the_same_worker(
    shared_fleet: Fleet, stub: Any
) -> None:
    """The answer came from cluster 1; cluster 2's leg, parked for that call, then activates a new
    job. The worker's next call gets it, with no FailJob in between (issue 18: before, every such
    job was failed back with a message that read like the worker's failure)."""
    deploy(stub, "rt-left", service_task_process("rt-left", "rt-left"))
    keys = definition_keys(stub, "rt-left")
    activate_all(stub, "rt-left", 2)
    answers: queue.Queue[list[pb.ActivatedJob]] = queue.Queue()
    poller = threading.Thread(
        target=lambda: answers.put(activate(stub, "rt-left", max_jobs=1, request_timeout=8000))
    )
    poller.start()
    shared_fleet.proxy.wait_parked("rt-left", {1, 2})
    on_one = create_on(stub, keys[1])
    poller.join(timeout=15)
    assert [j.processInstanceKey for j in answers.get(timeout=1)] == [on_one]
    on_two = create_on(stub, keys[2])  # cluster 2's leftover slice is still parked
    job = activate_all(stub, "rt-left", 1)[0]
    assert job.processInstanceKey == on_two
    assert _handed_back(shared_fleet, 2, job.key) == []
    failed = [
        r
        for r in iter_values(records(shared_fleet, 2), "JOB", "FAILED")
        if r["key"] == from_global(job.key)[1]
    ]
    assert failed == []
    activations = [
        r
        for r in iter_values(records(shared_fleet, 2), "JOB_BATCH", "ACTIVATED")
        if from_global(job.key)[1] in r["value"]["jobKeys"]
    ]
    assert len(activations) == 1  # activated once, by the leftover leg, and delivered
    stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key), timeout=10)


def test_job_activated_after_the_client_went_away_is_handed_back(shared_fleet: Fleet, stub: Any) -> None:
    """A true hand-back: the caller left, its leg (still parked) activates a job, and no call of
    the same worker comes for it. The proxy fails it back with retries unchanged, no backoff and
    a message that says it is not the worker's failure."""
    deploy(stub, "rt-gone", service_task_process("rt-gone", "rt-gone"))
    keys = definition_keys(stub, "rt-gone")
    activate_all(stub, "rt-gone", 2)
    call = stub.ActivateJobs(
        pb.ActivateJobsRequest(
            type="rt-gone", worker="rt-gone", timeout=300_000, maxJobsToActivate=5, requestTimeout=8000
        ),
        timeout=30,
    )
    shared_fleet.proxy.wait_parked("rt-gone", {1, 2})
    call.cancel()  # the client goes away; the proxy's slices stay parked
    created = create_on(stub, keys[1])
    job = activate_all(stub, "rt-gone", 1)[0]  # another worker name ("rt-test"): gets it once handed back
    assert job.processInstanceKey == created
    handed_back = _handed_back(shared_fleet, 1, job.key)
    assert len(handed_back) == 1
    value = handed_back[0]["value"]
    assert value["retries"] == 3 and value["retryBackoff"] == 0
    assert value["errorMessage"].startswith("routing-proxy hand-back: not a worker failure")
    stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key), timeout=10)


def test_pyzeebe_streaming_worker_gets_jobs_of_both_clusters(shared_fleet: Fleet, stub: Any) -> None:
    import asyncio

    from pyzeebe import Job, ZeebeWorker, create_insecure_channel

    deploy(stub, "rt-pzs", service_task_process("rt-pzs", "rt-pzs"))
    keys = definition_keys(stub, "rt-pzs")
    seen: dict[int, int] = {}

    async def run() -> None:
        channel = create_insecure_channel(grpc_address=shared_fleet.proxy.address)
        worker = ZeebeWorker(channel, name="rt-pzs", request_timeout=1000, stream_enabled=True)

        @worker.task(task_type="rt-pzs", timeout_ms=60_000)
        async def work(job: Job) -> dict[str, Any]:
            seen[job.key] = job.process_instance_key
            return {}

        task = asyncio.ensure_future(worker.work())
        try:
            await asyncio.to_thread(
                wait_for,
                lambda: {c for c, n in open_streams(shared_fleet, "rt-pzs").items() if n} == {1, 2},
                10,
                interval=0.0,
                what="the worker's stream open on both clusters",
            )
            for definition_key in keys.values():
                for _ in range(3):
                    await asyncio.to_thread(create_on, stub, definition_key)
            for _ in range(100):  # bounded: 10 s
                if len(seen) >= 8:
                    break
                await asyncio.sleep(0.1)
        finally:
            await worker.stop()
            await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), timeout=15)
            await channel.close()

    asyncio.run(run())
    assert len(seen) == 8  # 2 from definition_keys + 3 per cluster
    assert {cluster_of(k) for k in seen} == {1, 2}
    for cluster_id in (1, 2):
        completed = {r["key"] for r in iter_values(records(shared_fleet, cluster_id), "JOB", "COMPLETED")}
        assert {from_global(k)[1] for k in seen if cluster_of(k) == cluster_id} <= completed
