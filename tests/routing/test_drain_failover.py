"""Draining, disabling and failover of a cluster behind the proxy, against real engines (must-show)."""

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import grpc
from pyzeebe import Job, ZeebeClient, ZeebeWorker, create_insecure_channel
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc

from routing.keys import cluster_of, from_global
from tests.routing.conftest import Fleet
from tests.routing.harness import iter_values
from tests.routing.models import service_task_process
from tests.support import wait_for

CONFIG_CONTRACT_SECONDS = 2.0  # a change to the clusters file takes effect within 2 s


def _applied(fleet: Fleet, cluster_id: int, **expected: Any) -> None:
    """Until the proxy routes with the changed entry (its metrics.json shows it; rewritten every
    second, hence the extra second over the 2 s contract)."""
    wait_for(
        lambda: all(fleet.proxy.metrics()["clusters"][str(cluster_id)][k] == v for k, v in expected.items()),
        CONFIG_CONTRACT_SECONDS + 1.0,
        interval=0.0,
        what=f"cluster {cluster_id} configured with {expected}",
    )


def _completed(fleet: Fleet, cluster_id: int, process_id: str) -> set[int]:
    return {
        r["key"]
        for r in iter_values(fleet.engine(cluster_id).records(), "PROCESS_INSTANCE", "ELEMENT_COMPLETED")
        if r["value"]["bpmnElementType"] == "PROCESS" and r["value"]["bpmnProcessId"] == process_id
    }


def _deploy(stub: gateway_pb2_grpc.GatewayStub, name: str, content: bytes) -> pb.DeployResourceResponse:
    return stub.DeployResource(
        pb.DeployResourceRequest(resources=[pb.Resource(name=name, content=content)]), timeout=30
    )


def _create(stub: gateway_pb2_grpc.GatewayStub, process_id: str) -> int:
    response = stub.CreateProcessInstance(
        pb.CreateProcessInstanceRequest(bpmnProcessId=process_id, version=-1), timeout=30
    )
    return int(response.processInstanceKey)


async def _work_until(address: str, job_type: str, done: Any, timeout: float = 60.0) -> None:
    """Run a pyzeebe worker through the proxy until ``done()`` (called in a thread) is true."""
    channel = create_insecure_channel(grpc_address=address)
    worker = ZeebeWorker(channel, name="rt-drain-worker", request_timeout=1000)

    @worker.task(task_type=job_type, timeout_ms=60_000, max_running_jobs=500)
    async def work(job: Job) -> dict[str, Any]:
        return {"by": "worker"}

    task = asyncio.ensure_future(worker.work())
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not await asyncio.to_thread(done):
            await asyncio.sleep(0.2)
    finally:
        # Bounded: pyzeebe's stop() waits for its job queue to drain, with no limit of its own (a
        # full run once hit pytest's 300 s timeout in here, cause not pinned down); the caller's
        # assertions on the engines' records then say what was or was not done.
        try:
            await asyncio.wait_for(worker.stop(), timeout=15)
        except TimeoutError:
            print("pyzeebe worker.stop() did not return within 15 s")
        task.cancel()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), timeout=15)
        await channel.close()


def test_draining_cluster_gets_no_new_instances_but_finishes_its_own(fleet: Fleet) -> None:
    with grpc.insecure_channel(fleet.proxy.address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        _deploy(stub, "rt-drain.bpmn", service_task_process("rt-drain", "rt-drain"))
        before = [_create(stub, "rt-drain") for _ in range(40)]
        on_two_before = {from_global(k)[1] for k in before if cluster_of(k) == 2}
        assert on_two_before, "placement never chose cluster 2"

        fleet.proxy.write_clusters(fleet.entries(c2={"state": "draining"}))
        _applied(fleet, 2, state="draining")
        after = [_create(stub, "rt-drain") for _ in range(100)]
        assert {cluster_of(k) for k in after} == {1}

    expected = {1: {from_global(k)[1] for k in before + after if cluster_of(k) == 1}, 2: on_two_before}
    asyncio.run(
        _work_until(
            fleet.proxy.address,
            "rt-drain",
            lambda: all(_completed(fleet, c, "rt-drain") >= expected[c] for c in (1, 2)),
        )
    )
    # Existing instances on the draining cluster still got their jobs and finished.
    assert _completed(fleet, 2, "rt-drain") == on_two_before
    assert _completed(fleet, 1, "rt-drain") == expected[1]
    metrics = fleet.proxy.metrics()["clusters"]
    assert metrics["2"]["state"] == "draining"


def test_disabled_cluster_routes_nothing_and_names_itself(fleet: Fleet) -> None:
    with grpc.insecure_channel(fleet.proxy.address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        _deploy(stub, "rt-off.bpmn", service_task_process("rt-off", "rt-off"))
        keys = [_create(stub, "rt-off") for _ in range(6)]
        on_two = [k for k in keys if cluster_of(k) == 2]
        assert on_two
        fleet.proxy.write_clusters(fleet.entries(c2={"state": "disabled"}))
        _applied(fleet, 2, state="disabled")
        try:
            stub.CancelProcessInstance(
                pb.CancelProcessInstanceRequest(processInstanceKey=on_two[0]), timeout=5
            )
        except grpc.RpcError as error:
            assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert "disabled" in error.details() and "cluster 2" in error.details()
        else:
            raise AssertionError("a key of a disabled cluster was routed")
        jobs = []
        for response in stub.ActivateJobs(
            pb.ActivateJobsRequest(
                type="rt-off", worker="t", timeout=60_000, maxJobsToActivate=50, requestTimeout=500
            ),
            timeout=10,
        ):
            jobs.extend(response.jobs)
        # Only cluster 1's jobs: nothing is fetched from a disabled cluster.
        assert sorted(j.processInstanceKey for j in jobs) == sorted(k for k in keys if cluster_of(k) == 1)
        assert {cluster_of(_create(stub, "rt-off")) for _ in range(4)} == {1}
    # Nothing reached cluster 2 after it was disabled: its instances are untouched.
    records = fleet.engine(2).records()
    assert not list(iter_values(records, "JOB_BATCH", "ACTIVATED"))
    assert not [r for r in iter_values(records, "PROCESS_INSTANCE", "ELEMENT_TERMINATED")]


def test_failover_kill_nine_then_return_with_missed_deployments(fleet: Fleet) -> None:
    address = fleet.proxy.address
    with grpc.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        _deploy(stub, "rt-fo.bpmn", service_task_process("rt-fo", "rt-fo"))
        before = [_create(stub, "rt-fo") for _ in range(20)]
        on_two_before = {from_global(k)[1] for k in before if cluster_of(k) == 2}
        assert on_two_before

    async def load_through_kill() -> dict[str, Any]:
        channel = create_insecure_channel(grpc_address=address)
        client = ZeebeClient(channel)
        successes: list[tuple[float, int]] = []
        failures: list[str] = []
        kill_at = time.monotonic() + 1.0
        killed_at: float | None = None
        end = kill_at + 3.0
        try:
            while time.monotonic() < end:  # bounded by time
                if killed_at is None and time.monotonic() >= kill_at:
                    await asyncio.to_thread(fleet.engine(2).kill9)
                    killed_at = time.monotonic()
                try:
                    result = await client.run_process("rt-fo", {"fo": True})
                    successes.append((time.monotonic(), cluster_of(result.process_instance_key)))
                except Exception as error:  # any failed create is what this test is about
                    failures.append(repr(error))
        finally:
            await channel.close()
        assert killed_at is not None
        times = [t for t, _ in successes if t >= killed_at - 0.5]
        gap = max((b - a for a, b in itertools.pairwise(times)), default=None)
        return {"successes": successes, "failures": failures, "killed_at": killed_at, "gap": gap}

    outcome = asyncio.run(load_through_kill())
    print(f"failover placement gap: {outcome['gap'] * 1000:.1f} ms over {len(outcome['successes'])} creates")
    # A create the dying cluster may have taken is not retried elsewhere (issue 21): the one in
    # flight at the kill, if any, fails with the documented unknown-outcome answer; no other.
    assert len(outcome["failures"]) <= 1, outcome["failures"]
    assert all("may or may not have created" in failure for failure in outcome["failures"])
    after_kill = [c for t, c in outcome["successes"] if t > outcome["killed_at"]]
    assert after_kill and set(after_kill) == {1}
    wait_for(
        lambda: fleet.proxy.metrics()["clusters"]["2"]["health"] == "down", 5, what="cluster 2 reported down"
    )
    # Placement skipped the dead cluster instead of trying it for every create.
    # (creates cluster 2 was asked for, minus those it answered before the kill)
    answered_by_two = sum(1 for k in before if cluster_of(k) == 2) + sum(
        1 for _, c in outcome["successes"] if c == 2
    )
    asked_of_two = fleet.proxy.metrics()["clusters"]["2"]["byMethod"]["CreateProcessInstance"]
    assert asked_of_two - answered_by_two <= 3, (asked_of_two, answered_by_two)

    with grpc.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        # A key of the down cluster: UNAVAILABLE with a clear message, not NOT_FOUND.
        some_key_on_two = next(k for k in before if cluster_of(k) == 2)
        try:
            stub.CancelProcessInstance(
                pb.CancelProcessInstanceRequest(processInstanceKey=some_key_on_two), timeout=5
            )
        except grpc.RpcError as error:
            assert error.code() is grpc.StatusCode.UNAVAILABLE
            assert "cluster 2" in error.details() and "down" in error.details()
        else:
            raise AssertionError("a key of a dead cluster was answered")
        # Deployed while cluster 2 is down: it must get it when it returns.
        late = _deploy(stub, "rt-fo-late.bpmn", service_task_process("rt-fo-late", "rt-fo"))
        assert cluster_of(late.key) == 1
        assert fleet.proxy.metrics()["clusters"]["2"]["pendingDeployments"] == 1

    fleet.engine(2).start()  # same data dir, same port
    wait_for(
        lambda: (
            (m := fleet.proxy.metrics()["clusters"]["2"])["health"] == "up" and m["pendingDeployments"] == 0
        ),
        20,
        what="cluster 2 back up with the missed deployment delivered",
    )
    processes = {
        r["value"]["bpmnProcessId"] for r in iter_values(fleet.engine(2).records(), "PROCESS", "CREATED")
    }
    assert "rt-fo-late" in processes
    with grpc.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        late_keys = [_create(stub, "rt-fo-late") for _ in range(6)]
    assert 2 in {cluster_of(k) for k in late_keys}  # back in placement, with the late definition

    # Its instances from before the crash continue: their jobs are delivered and they finish.
    late_on_two = {from_global(k)[1] for k in late_keys if cluster_of(k) == 2}
    asyncio.run(
        _work_until(
            address,
            "rt-fo",
            lambda: (
                _completed(fleet, 2, "rt-fo") >= on_two_before
                and _completed(fleet, 2, "rt-fo-late") >= late_on_two
            ),
        )
    )
    assert _completed(fleet, 2, "rt-fo") >= on_two_before
    assert _completed(fleet, 2, "rt-fo-late") == late_on_two


def test_cluster_file_errors_keep_the_previous_list(fleet: Fleet, tmp_path: Path) -> None:
    fleet.proxy.clusters_file.write_text('[{"id": 0, "address": "nowhere"}]', encoding="utf-8")
    wait_for(
        lambda: "cluster list rejected" in fleet.proxy.log_path.read_text(encoding="utf-8"),
        CONFIG_CONTRACT_SECONDS,
        what="the bad cluster file read and rejected",
    )
    assert fleet.proxy.serving()
    with grpc.insecure_channel(fleet.proxy.address) as channel:
        topology = gateway_pb2_grpc.GatewayStub(channel).Topology(pb.TopologyRequest(), timeout=5)
    assert topology.clusterSize == 2  # still both clusters
    log = fleet.proxy.log_path.read_text(encoding="utf-8")
    assert "cluster list rejected, keeping the previous one" in log and "cluster id 0 is out of range" in log


def test_placement_follows_weights_changed_at_runtime(fleet: Fleet) -> None:
    fleet.proxy.write_clusters(fleet.entries(c1={"weight": 3}, c2={"weight": 1}))
    _applied(fleet, 1, weight=3)
    with grpc.insecure_channel(fleet.proxy.address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        _deploy(stub, "rt-w.bpmn", service_task_process("rt-w", "rt-w"))
        placed = [cluster_of(_create(stub, "rt-w")) for _ in range(40)]
    # Smooth weighted round robin: exactly 3:1 over any 4 picks (+-1 for where the cycle starts).
    assert abs(placed.count(1) - 30) <= 1 and abs(placed.count(2) - 10) <= 1, placed
    assert "2, 2" not in ", ".join(map(str, placed))  # spread out, never two in a row for the 1


def test_hung_cluster_is_taken_out_and_back(fleet: Fleet) -> None:
    import signal

    with grpc.insecure_channel(fleet.proxy.address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        _deploy(stub, "rt-hang.bpmn", service_task_process("rt-hang", "rt-hang"))
        keys = [_create(stub, "rt-hang") for _ in range(4)]
        engine = fleet.engine(2)
        assert engine.process is not None
        engine.process.send_signal(signal.SIGSTOP)
        try:
            wait_for(
                lambda: fleet.proxy.metrics()["clusters"]["2"]["health"] == "down",
                10,
                what="hung cluster down",
            )
            assert {cluster_of(_create(stub, "rt-hang")) for _ in range(6)} == {1}
            on_two = next(k for k in keys if cluster_of(k) == 2)
            try:
                stub.CancelProcessInstance(
                    pb.CancelProcessInstanceRequest(processInstanceKey=on_two), timeout=5
                )
            except grpc.RpcError as error:
                assert error.code() is grpc.StatusCode.UNAVAILABLE and "DEADLINE_EXCEEDED" in error.details()
            else:
                raise AssertionError("a key of a hung cluster was answered")
        finally:
            engine.process.send_signal(signal.SIGCONT)
        wait_for(lambda: fleet.proxy.metrics()["clusters"]["2"]["health"] == "up", 10, what="cluster 2 back")
        assert 2 in {cluster_of(_create(stub, "rt-hang")) for _ in range(6)}
