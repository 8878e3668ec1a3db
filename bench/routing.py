"""Routing proxy benchmark: what the proxy costs, and how long failover leaves placement idle.

Prints one JSON object per figure (JSON lines), then a summary line:

* ``throughput``: instances/s for the same workload (create N instances, activate their jobs
  in batches, complete each job) on one engine, four ways: direct; through a do-nothing gRPC
  passthrough (the proxy's server stack forwarding raw bytes, no routing:
  ``bench/routing.py --serve-passthrough PORT UPSTREAM``); through the proxy; through the
  in-process routing channel (``routing.connect``, no second hop). ``--rounds`` rounds (default
  12), each running every mode once on ``--instances`` instances in an order rotated per round;
  ``ratio_X`` = median over rounds of X / direct in the same round, with the middle half of the
  per-round ratios (goals: channel >= 0.95; proxy >= 0.9). Each run connects its channel before
  the clock starts, and rate and CPU cover the same window;
* ``cpu_per_call``: CPU time per gRPC call of that workload, of the passthrough's and the
  proxy's process, and of the client process for direct and the channel (goal: proxy <= 1.1 x
  passthrough);
* ``unary_latency``: sequential CompleteJob calls for an unknown job (answered NOT_FOUND by the
  engine, a full round trip with no log write), p50/p99 direct and through the proxy; the proxy's
  added p99 is ``p99_proxy - p99_direct`` (goal < 3 ms), median over runs;
* ``failover_gap``: two engines behind the proxy, a client creating instances in a loop, kill -9
  of one engine: the longest pause between two successful creates around the kill, median over
  runs;
* ``handbacks``: two engines behind the proxy, jobs handed back (JOB FAILED records in the
  engines' logs: the bench's workers never fail a job, so each is the proxy's) per 1,000 jobs, for
  the issue-18 trickle (40 one-task instances at 4/s, one ActivateJobs worker, maxJobsToActivate
  16, requestTimeout 1000 ms) and for a loaded run (``--instances`` created by 16 creators, 4
  workers polling 32 at a time);
* ``hung_activation``: one of two engines SIGSTOPped: how long the first ActivateJobs after the
  hang takes to return the healthy cluster's job, then the delay from a create's answer to the
  job's delivery for jobs created on the healthy cluster while a worker polls (requestTimeout 1000 ms, gRPC deadline
  2 s as pyzeebe sets it), and how many of the worker's calls failed;
* ``failover_creates``: six creators (each request tagged with a unique variable) and two
  workers while the engines are killed -9 and restarted in turn: failed creates and duplicate
  instances (a tag with two instances in the engines' logs) per failover, acknowledged creates
  missing, and hand-backs per 1,000 jobs completed through the kills.

Run: ``.venv/bin/python bench/routing.py [--runs 3] [--instances 400]``.
Everything runs on 127.0.0.1 in subprocesses (engine, proxy) plus the client in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from pyzeebe.proto import gateway_pb2 as pb  # noqa: E402
from pyzeebe.proto import gateway_pb2_grpc  # noqa: E402

from engine.log import LogReader, partition_ids  # noqa: E402
from routing.keys import ZEEBE_PARTITION_SHIFT, cluster_of, to_global  # noqa: E402
from tests.services import free_port  # noqa: E402

PROCESS_ID = "bench-routing"
JOB_TYPE = "bench-routing-work"


def bpmn(process_id: str = PROCESS_ID, job_type: str = JOB_TYPE) -> bytes:
    """One service task of ``job_type`` between a start and an end event."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="defs" targetNamespace="http://fleetflow.example/bench">
  <bpmn:process id="{process_id}" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:serviceTask id="work">
      <bpmn:extensionElements><zeebe:taskDefinition type="{job_type}" /></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work" />
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
""".encode()


BPMN = bpmn()


def env() -> dict[str, str]:
    variables = dict(os.environ)
    variables["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + os.environ.get("BENCH_EXTRA_PATH", "")
    return variables


def wait_ready(address: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        while time.monotonic() < deadline:
            try:
                stub.Topology(pb.TopologyRequest(), timeout=1.0)
                return
            except grpc.RpcError:
                time.sleep(0.1)
    raise RuntimeError(f"{address} did not come up")


def start_engine(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine",
                "--port",
                str(port),
                "--partitions",
                "2",
                "--data-dir",
                str(data_dir),
            ],
            cwd=REPO_ROOT,
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    wait_ready(f"127.0.0.1:{port}")
    return process


def start_proxy(port: int, clusters: list[str], log: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "routing", "--port", str(port), "--log-level", "WARNING"]
    for spec in clusters:
        args += ["--cluster", spec]
    with open(log, "ab") as stderr:
        process = subprocess.Popen(args, cwd=REPO_ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=stderr)
    wait_ready(f"127.0.0.1:{port}")
    return process


def start_passthrough(port: int, upstream: str, log: Path) -> subprocess.Popen[bytes]:
    """This script in ``--serve-passthrough`` mode: the do-nothing gRPC passthrough."""
    args = [sys.executable, __file__, "--serve-passthrough", str(port), upstream]
    with open(log, "ab") as stderr:
        process = subprocess.Popen(args, cwd=REPO_ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=stderr)
    wait_ready(f"127.0.0.1:{port}")
    return process


async def serve_passthrough(port: int, upstream: str) -> None:
    """A do-nothing gRPC passthrough: the proxy's server stack (grpc.aio server, uvloop, the same
    message size options) with generic handlers that forward each call's raw bytes to one
    engine, no parsing, no routing. What a second hop costs in Python, as a floor for the proxy."""
    channel = grpc.aio.insecure_channel(upstream)

    def unary(method: str) -> Any:
        forward = channel.unary_unary(method)

        async def handle(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            try:
                return await forward(request, timeout=context.time_remaining())
            except grpc.aio.AioRpcError as error:
                context.set_code(error.code())
                context.set_details(error.details() or "")
                return b""

        return grpc.unary_unary_rpc_method_handler(handle)

    def streaming(method: str) -> Any:
        forward = channel.unary_stream(method)

        async def handle(request: bytes, context: grpc.aio.ServicerContext) -> None:
            try:
                async for response in forward(request, timeout=context.time_remaining()):
                    await context.write(response)
            except grpc.aio.AioRpcError as error:
                await context.abort(error.code(), error.details() or "")

        return grpc.unary_stream_rpc_method_handler(handle)

    streams = {"/gateway_protocol.Gateway/ActivateJobs", "/gateway_protocol.Gateway/StreamActivatedJobs"}

    class Passthrough(grpc.GenericRpcHandler):
        def service(self, handler_call_details: Any) -> Any:
            method = handler_call_details.method
            return streaming(method) if method in streams else unary(method)

    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ]
    )
    server.add_generic_rpc_handlers([Passthrough()])
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop_event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_event.set)
    await stop_event.wait()
    await server.stop(1.0)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def deploy(address: str, content: bytes = BPMN) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        await stub.DeployResource(
            pb.DeployResourceRequest(resources=[pb.Resource(name="bench.bpmn", content=content)]), timeout=30
        )


ChannelFactory = Any
"""A zero-argument callable returning a grpc.aio channel (or a RoutingChannel) to run a workload on."""


def grpc_channel(address: str) -> ChannelFactory:
    return lambda: grpc.aio.insecure_channel(address)


@dataclass
class WorkloadRun:
    """One timed workload: its rate and what it cost, all over the same window (first create to
    last completion; connecting and closing the channel are outside it)."""

    rate: float  # instances per second, first create to last completion
    calls: int  # gRPC calls the client made in the window
    client_cpu: float  # CPU seconds of this process in the window
    intermediary_cpu: float | None  # CPU seconds of the intermediary's process, if one is watched


async def workload(
    target: str | ChannelFactory,
    instances: int,
    concurrency: int = 16,
    batch: int = 32,
    workers: int = 4,
    watch_pid: int | None = None,
    request_timeout_ms: int = 1000,
    process_id: str = PROCESS_ID,
    job_type: str = JOB_TYPE,
) -> WorkloadRun:
    """Create ``instances`` and complete all their jobs, on a channel that is connected first.

    ``target`` is an address or a channel factory (the routing channel). Before the clock starts
    one Topology call connects the channel (for the routing channel it also starts the core and
    its first health check), so connection setup is not part of the rate in any mode. The rate
    and the CPU figures cover the same window; ``watch_pid``'s CPU is read at both ends of it."""
    factory = grpc_channel(target) if isinstance(target, str) else target
    channel = factory()
    made = 0
    try:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        await stub.Topology(pb.TopologyRequest(), timeout=30)
        completed = 0
        done = asyncio.Event()
        watched_before = cpu_seconds(watch_pid) if watch_pid is not None else None
        client_before = time.process_time()
        started = time.perf_counter()

        async def creator(count: int) -> None:
            nonlocal made
            for _ in range(count):
                await stub.CreateProcessInstance(
                    pb.CreateProcessInstanceRequest(bpmnProcessId=process_id, version=-1), timeout=30
                )
                made += 1

        async def worker() -> None:
            nonlocal completed, made
            while not done.is_set():
                request = pb.ActivateJobsRequest(
                    type=job_type,
                    worker="bench",
                    timeout=60_000,
                    maxJobsToActivate=batch,
                    requestTimeout=request_timeout_ms,
                )
                jobs = []
                async for response in stub.ActivateJobs(request, timeout=10):
                    jobs.extend(response.jobs)
                made += 1
                await asyncio.gather(
                    *(stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key), timeout=30) for job in jobs)
                )
                made += len(jobs)
                completed += len(jobs)
                if completed >= instances:
                    done.set()

        share = [
            instances // concurrency + (1 if i < instances % concurrency else 0) for i in range(concurrency)
        ]
        worker_tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
        await asyncio.gather(*(creator(n) for n in share))
        await asyncio.wait_for(done.wait(), timeout=300)
        elapsed = time.perf_counter() - started
        client_cpu = time.process_time() - client_before
        watched_after = cpu_seconds(watch_pid) if watch_pid is not None else None
        for task in worker_tasks:
            task.cancel()
        await asyncio.gather(*worker_tasks, return_exceptions=True)
        return WorkloadRun(
            rate=instances / elapsed,
            calls=made,
            client_cpu=client_cpu,
            intermediary_cpu=(
                watched_after - watched_before
                if watched_before is not None and watched_after is not None
                else None
            ),
        )
    finally:
        await channel.close()


async def unary_latencies(address: str, calls: int, job_key: int) -> list[float]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        samples = []
        for _ in range(calls + 50):
            started = time.perf_counter()
            try:
                await stub.CompleteJob(pb.CompleteJobRequest(jobKey=job_key), timeout=5)
            except grpc.aio.AioRpcError as error:
                if error.code() is not grpc.StatusCode.NOT_FOUND:
                    raise
            samples.append((time.perf_counter() - started) * 1000)
        return samples[50:]  # warm-up excluded


def cpu_seconds(pid: int) -> float | None:
    """User+system CPU seconds of a process (Linux /proc), None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def failover_gap(work: Path) -> dict[str, Any]:
    ports = [free_port(), free_port()]
    engines = [start_engine(work / f"fo-{i}", ports[i], work / f"fo-{i}.log") for i in range(2)]
    proxy_port = free_port()
    proxy = start_proxy(
        proxy_port, [f"{i + 1}=127.0.0.1:{ports[i]}" for i in range(2)], work / "fo-proxy.log"
    )
    try:
        address = f"127.0.0.1:{proxy_port}"
        await deploy(address)
        async with grpc.aio.insecure_channel(address) as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            successes: list[tuple[float, int]] = []
            failures = 0
            kill_at = time.perf_counter() + 1.0
            killed = False
            end = kill_at + 3.0
            while time.perf_counter() < end:
                if not killed and time.perf_counter() >= kill_at:
                    engines[1].send_signal(signal.SIGKILL)
                    killed = True
                try:
                    response = await stub.CreateProcessInstance(
                        pb.CreateProcessInstanceRequest(bpmnProcessId=PROCESS_ID, version=-1), timeout=10
                    )
                    successes.append((time.perf_counter(), cluster_of(response.processInstanceKey)))
                except grpc.aio.AioRpcError:
                    failures += 1
            around = [t for t, _ in successes if kill_at - 0.5 <= t]
            gaps = [b - a for a, b in itertools.pairwise(around)]
            after_kill = [c for t, c in successes if t > kill_at + 1.0]
            return {
                "gap_ms": round(max(gaps) * 1000, 2) if gaps else None,
                "failed_creates": failures,
                "creates": len(successes),
                "placed_on_dead_after_1s": sum(1 for c in after_kill if c == 2),
            }
    finally:
        stop(proxy)
        for engine in engines:
            stop(engine)


def log_records(data_dir: Path) -> list[dict[str, Any]]:
    """Every record of an engine's log (its truth), read with engine.log's reader."""
    found: list[dict[str, Any]] = []
    for partition_id in partition_ids(data_dir):
        found.extend(LogReader(data_dir, partition_id).iter_records(1))
    return found


def count_records(data_dirs: list[Path], value_type: str, intent: str) -> int:
    return sum(
        1
        for data_dir in data_dirs
        for record in log_records(data_dir)
        if record.get("valueType") == value_type and record.get("intent") == intent
    )


class TwoClusters:
    """Two engines and a proxy in front of them, in ``work``."""

    def __init__(self, work: Path, name: str) -> None:
        self.work = work
        self.name = name
        self.ports = [free_port(), free_port()]
        self.data_dirs = [work / f"{name}-{i + 1}" for i in range(2)]
        self.engines = [self.start_engine(i) for i in range(2)]
        self.proxy_port = free_port()
        self.proxy = start_proxy(
            self.proxy_port,
            [f"{i + 1}=127.0.0.1:{self.ports[i]}" for i in range(2)],
            work / f"{name}-proxy.log",
        )
        self.address = f"127.0.0.1:{self.proxy_port}"

    def start_engine(self, index: int) -> subprocess.Popen[bytes]:
        return start_engine(
            self.data_dirs[index], self.ports[index], self.work / f"{self.name}-{index + 1}.log"
        )

    def stop(self) -> None:
        stop(self.proxy)
        for engine in self.engines:
            if engine.poll() is None:
                engine.send_signal(signal.SIGCONT)
            stop(engine)


async def trickle(address: str, instances: int = 40, interval: float = 0.25) -> int:
    """The issue-18 reproduction: one plain ActivateJobs worker, instances created at 4/s."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        completed = 0
        done = asyncio.Event()

        async def worker() -> None:
            nonlocal completed
            request = pb.ActivateJobsRequest(
                type=JOB_TYPE,
                worker="bench-trickle",
                timeout=60_000,
                maxJobsToActivate=16,
                requestTimeout=1000,
            )
            while not done.is_set():
                async for response in stub.ActivateJobs(request, timeout=10):
                    for job in response.jobs:
                        await stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key), timeout=10)
                        completed += 1
                if completed >= instances:
                    done.set()

        task = asyncio.ensure_future(worker())
        for _ in range(instances):
            await stub.CreateProcessInstance(
                pb.CreateProcessInstanceRequest(bpmnProcessId=PROCESS_ID, version=-1), timeout=10
            )
            await asyncio.sleep(interval)
        await asyncio.wait_for(done.wait(), timeout=60)
        await asyncio.wait_for(task, timeout=15)
        return completed


async def handbacks(work: Path, instances: int, run: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for mode in ("trickle", "loaded"):
        fleet = TwoClusters(work, f"hb-{mode}-{run}")
        try:
            await deploy(fleet.address)
            if mode == "trickle":
                jobs = await trickle(fleet.address)
            else:
                await workload(fleet.address, instances)
                jobs = instances
            await asyncio.sleep(1.5)  # a hand-back happens within 1 s of the activation
        finally:
            fleet.stop()
        failed = count_records(fleet.data_dirs, "JOB", "FAILED")
        result[mode] = {"jobs": jobs, "handed_back": failed, "per_1000_jobs": round(failed * 1000 / jobs, 1)}
    return result


async def hung_activation(work: Path, run: int, jobs: int = 20) -> dict[str, Any]:
    fleet = TwoClusters(work, f"hung-{run}")
    try:
        await deploy(fleet.address)
        async with grpc.aio.insecure_channel(fleet.address) as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            create = pb.CreateProcessInstanceRequest(bpmnProcessId=PROCESS_ID, version=-1)
            definition_on_one = 0
            for _ in range(10):
                response = await stub.CreateProcessInstance(create, timeout=10)
                if cluster_of(response.processDefinitionKey) == 1:
                    definition_on_one = response.processDefinitionKey
                    break
            # drain what placement put on either cluster
            drain = pb.ActivateJobsRequest(
                type=JOB_TYPE, worker="drain", timeout=60_000, maxJobsToActivate=100, requestTimeout=-1
            )
            async for response in stub.ActivateJobs(drain, timeout=10):
                for job in response.jobs:
                    await stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key), timeout=10)
            on_one = pb.CreateProcessInstanceRequest(processDefinitionKey=definition_on_one)
            await stub.CreateProcessInstance(on_one, timeout=10)

            fleet.engines[1].send_signal(signal.SIGSTOP)
            request = pb.ActivateJobsRequest(
                type=JOB_TYPE, worker="bench-hung", timeout=60_000, maxJobsToActivate=16, requestTimeout=1000
            )
            started = time.perf_counter()
            first: list[Any] = []
            first_error = None
            try:
                async for response in stub.ActivateJobs(request, timeout=2.0):
                    first.extend(response.jobs)
            except grpc.aio.AioRpcError as error:
                first_error = error.code().name
            first_call_ms = (time.perf_counter() - started) * 1000
            for job in first:
                await stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key), timeout=10)

            created_at: dict[int, float] = {}
            delays: list[float] = []
            errors: list[str] = []
            done = asyncio.Event()

            async def worker() -> None:
                while not done.is_set():
                    try:
                        # pyzeebe's deadline: twice the requestTimeout
                        async for response in stub.ActivateJobs(request, timeout=2.0):
                            for job in response.jobs:
                                received = time.perf_counter()
                                await stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key), timeout=10)
                                delays.append(
                                    (received - created_at.get(job.processInstanceKey, received)) * 1000
                                )
                    except grpc.aio.AioRpcError as error:
                        errors.append(error.code().name)
                    if len(delays) >= jobs:
                        done.set()

            task = asyncio.ensure_future(worker())
            for _ in range(jobs):
                response = await stub.CreateProcessInstance(on_one, timeout=10)
                # From the create's answer (the job exists): a slow fsync on a loaded machine
                # is the engine's, not activation's. A job can arrive before the answer: 0.
                created_at[response.processInstanceKey] = time.perf_counter()
                await asyncio.sleep(0.2)
            try:
                await asyncio.wait_for(done.wait(), timeout=30)
            finally:
                done.set()
                await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), timeout=15)
    finally:
        fleet.stop()
    return {
        "first_call_ms": round(first_call_ms, 1),
        "first_call_jobs": len(first),
        "first_call_error": first_error,
        "delivery_p50_ms": round(pct(delays, 0.5), 1) if delays else None,
        "delivery_max_ms": round(max(delays), 1) if delays else None,
        "jobs": len(delays),
        "worker_call_errors": len(errors),
    }


async def failover_creates(work: Path, run: int, creators: int = 6, kills: int = 4) -> dict[str, Any]:
    fleet = TwoClusters(work, f"fc-{run}")
    acks: dict[str, Any] = {}
    try:
        await deploy(fleet.address)
        stop_event = asyncio.Event()

        async def creator(index: int) -> None:
            async with grpc.aio.insecure_channel(fleet.address) as channel:
                stub = gateway_pb2_grpc.GatewayStub(channel)
                for n in range(1_000_000):
                    if stop_event.is_set():
                        return
                    tag = f"c{index}-{n}"
                    request = pb.CreateProcessInstanceRequest(
                        bpmnProcessId=PROCESS_ID, version=-1, variables=json.dumps({"tag": tag})
                    )
                    try:
                        acks[tag] = (await stub.CreateProcessInstance(request, timeout=10)).processInstanceKey
                    except grpc.aio.AioRpcError as error:
                        acks[tag] = error.code().name
                        await asyncio.sleep(0.05)

        completed = 0

        async def worker(index: int) -> None:
            # Completes jobs through the kills: the hand-backs of a chaos run are counted too.
            nonlocal completed
            async with grpc.aio.insecure_channel(fleet.address) as channel:
                stub = gateway_pb2_grpc.GatewayStub(channel)
                request = pb.ActivateJobsRequest(
                    type=JOB_TYPE,
                    worker=f"chaos-{index}",
                    timeout=30_000,
                    maxJobsToActivate=32,
                    requestTimeout=1000,
                )
                while not stop_event.is_set():
                    try:
                        async for response in stub.ActivateJobs(request, timeout=2.0):
                            for job in response.jobs:
                                await stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key), timeout=5)
                                completed += 1
                    except grpc.aio.AioRpcError:
                        await asyncio.sleep(0.1)

        tasks = [asyncio.ensure_future(creator(i)) for i in range(creators)]
        tasks += [asyncio.ensure_future(worker(i)) for i in range(2)]
        try:
            for round_number in range(kills):
                await asyncio.sleep(1.0)
                index = round_number % 2
                fleet.engines[index].send_signal(signal.SIGKILL)
                fleet.engines[index].wait()
                await asyncio.sleep(0.5)
                fleet.engines[index] = await asyncio.to_thread(fleet.start_engine, index)
                await asyncio.sleep(1.0)  # the proxy sees it up again (health every 250 ms)
        finally:
            stop_event.set()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    finally:
        fleet.stop()
    instances: dict[str, list[int]] = {}
    for cluster_id, data_dir in enumerate(fleet.data_dirs, start=1):
        for record in log_records(data_dir):
            if record.get("valueType") == "PROCESS_INSTANCE_CREATION" and record.get("intent") == "CREATED":
                variables = record["value"].get("variables") or {}
                if isinstance(variables, str):
                    variables = json.loads(variables or "{}")
                if "tag" in variables:
                    key = to_global(cluster_id, record["value"]["processInstanceKey"])
                    instances.setdefault(variables["tag"], []).append(key)
    acknowledged = {tag: key for tag, key in acks.items() if isinstance(key, int)}
    failed = [tag for tag, key in acks.items() if not isinstance(key, int)]
    duplicates = sum(1 for keys in instances.values() if len(keys) > 1)
    missing = sum(1 for tag, key in acknowledged.items() if key not in instances.get(tag, []))
    handed_back = count_records(fleet.data_dirs, "JOB", "FAILED")
    return {
        "jobs_completed": completed,
        "handed_back": handed_back,
        "handbacks_per_1000_jobs": round(handed_back * 1000 / completed, 1) if completed else None,
        "kills": kills,
        "acknowledged": len(acknowledged),
        "failed_creates": len(failed),
        "failed_but_created": sum(1 for tag in failed if tag in instances),
        "duplicates": duplicates,
        "acknowledged_missing": missing,
        "failed_per_failover": round(len(failed) / kills, 2),
        "duplicates_per_failover": round(duplicates / kills, 2),
    }


MODES = ("direct", "passthrough", "proxy", "channel")


def _spread(values: list[float]) -> list[float]:
    """[first quartile, third quartile] of ``values`` (the middle half), rounded."""
    if len(values) < 2:
        return [round(v, 3) for v in values * 2]
    quartiles = statistics.quantiles(values, n=4, method="inclusive")
    return [round(quartiles[0], 3), round(quartiles[2], 3)]


async def throughput_and_latency(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Throughput and CPU per call of the same workload on one engine: direct, through the
    do-nothing passthrough, through the proxy, and through the in-process routing channel.

    Measured in ``--rounds`` rounds; each round runs every mode once on ``--instances``
    instances, in an order rotated from round to round, so each mode runs as often in each
    position. A mode's ratio is the median over rounds of (its rate / direct's rate in the same
    round): the machine's load drifts (other processes on the two cores), and rounds a few
    seconds long see the same load in every mode far more often than whole invocations do.
    Every mode is measured the same way: a fresh channel per run, connected before the clock
    starts, rate and CPU over the same window. CPU per call is the intermediary's process CPU
    (passthrough, proxy) or this process's (direct, channel: the channel's routing runs here)
    divided by the calls the workload made."""
    import routing  # the channel: the routing core in this process

    engine_port, proxy_port, passthrough_port = free_port(), free_port(), free_port()
    engine = start_engine(work / "engine", engine_port, work / "engine.log")
    proxy = start_proxy(proxy_port, [f"1=127.0.0.1:{engine_port}"], work / "proxy.log")
    passthrough = start_passthrough(passthrough_port, f"127.0.0.1:{engine_port}", work / "passthrough.log")
    direct, via_proxy = f"127.0.0.1:{engine_port}", f"127.0.0.1:{proxy_port}"
    targets: dict[str, Any] = {
        "direct": direct,
        "passthrough": f"127.0.0.1:{passthrough_port}",
        "proxy": via_proxy,
        "channel": lambda: routing.connect(clusters=[f"1=127.0.0.1:{engine_port}"]),
    }
    intermediary = {"passthrough": passthrough.pid, "proxy": proxy.pid}
    rounds = args.rounds
    # A job type per mode: the proxy never cancels a parked long poll (routing/activation.py),
    # so its workers' last polls stay parked on the engine for up to requestTimeout after its run,
    # and with one shared job type they took the next run's first jobs, held them 1 s for a
    # caller that never came and handed them back: the run after the proxy's (the channel's in
    # three rounds of four) lasted >= 1 s whatever its speed (rates bunched at 400 / 1.03 s).
    kinds = {mode: (f"{PROCESS_ID}-{mode}", f"{JOB_TYPE}-{mode}") for mode in MODES}
    try:
        for process_id, job_type in kinds.values():
            await deploy(via_proxy, bpmn(process_id, job_type))
        for _ in range(2):  # warm-up of every path (imports, connections, the engine's caches)
            for mode in MODES:
                await workload(targets[mode], 100, process_id=kinds[mode][0], job_type=kinds[mode][1])
        rates: dict[str, list[float]] = {m: [] for m in MODES}
        cpu_per_call: dict[str, list[float]] = {m: [] for m in MODES}
        client_cpu_per_call: dict[str, list[float]] = {m: [] for m in MODES}
        ratios: dict[str, list[float]] = {m: [] for m in MODES if m != "direct"}
        cpu_ratios: dict[str, list[float]] = {"proxy_over_passthrough": [], "channel_over_direct": []}
        for run in range(rounds):
            order = MODES[run % len(MODES) :] + MODES[: run % len(MODES)]
            results: dict[str, WorkloadRun] = {}
            for mode in order:
                result = await workload(
                    targets[mode],
                    args.instances,
                    watch_pid=intermediary.get(mode),
                    request_timeout_ms=args.poll_timeout_ms,
                    process_id=kinds[mode][0],
                    job_type=kinds[mode][1],
                )
                results[mode] = result
                rates[mode].append(result.rate)
                client_cpu_per_call[mode].append(result.client_cpu / result.calls * 1e6)
                if mode not in intermediary:
                    cpu_per_call[mode].append(result.client_cpu / result.calls * 1e6)
                elif result.intermediary_cpu is not None:
                    cpu_per_call[mode].append(result.intermediary_cpu / result.calls * 1e6)
            for mode in ratios:
                ratios[mode].append(results[mode].rate / results["direct"].rate)
            if len(cpu_per_call["passthrough"]) == run + 1 and len(cpu_per_call["proxy"]) == run + 1:
                cpu_ratios["proxy_over_passthrough"].append(
                    cpu_per_call["proxy"][-1] / cpu_per_call["passthrough"][-1]
                )
            cpu_ratios["channel_over_direct"].append(cpu_per_call["channel"][-1] / cpu_per_call["direct"][-1])
        proxy_cpu = statistics.median(cpu_per_call["proxy"]) if cpu_per_call["proxy"] else None
        passthrough_cpu = (
            statistics.median(cpu_per_call["passthrough"]) if cpu_per_call["passthrough"] else None
        )
        throughput = {
            "figure": "routing_throughput",
            "unit": "instances/s (create+activate+complete)",
            "instances_per_run": args.instances,
            "rounds": rounds,
            **{m: round(statistics.median(rates[m]), 1) for m in MODES},
            **{f"ratio_{m}": round(statistics.median(ratios[m]), 3) for m in ratios},
            **{f"ratio_{m}_middle_half": _spread(ratios[m]) for m in ratios},
            **{f"ratios_{m}": [round(r, 3) for r in ratios[m]] for m in ratios},
            "rates": {m: [round(r) for r in rates[m]] for m in MODES},
            "ratio": round(statistics.median(ratios["proxy"]), 3),
            "what": "ratio_X: median over rounds of X / direct in the same round",
            "goal": "channel >= 0.95 of direct; proxy >= 0.9 (never < 0.8)",
        }
        print(json.dumps(throughput), flush=True)
        cpu = {
            "figure": "routing_cpu_per_call",
            "unit": "CPU microseconds per gRPC call the workload made",
            "what": "passthrough/proxy: that process; direct/channel: the client process",
            **{m: round(statistics.median(cpu_per_call[m])) for m in MODES if cpu_per_call[m]},
            **{f"client_{m}": round(statistics.median(client_cpu_per_call[m])) for m in MODES},
            "proxy_over_passthrough": (
                round(proxy_cpu / passthrough_cpu, 3) if proxy_cpu and passthrough_cpu else None
            ),
            **{
                f"{name}_per_round_median": round(statistics.median(values), 3)
                for name, values in cpu_ratios.items()
                if values
            },
            "runs": {m: [round(x) for x in cpu_per_call[m]] for m in MODES},
            "goal": "proxy <= 1.1 x passthrough",
        }
        print(json.dumps(cpu), flush=True)
        unknown_job = (1 << ZEEBE_PARTITION_SHIFT) + 999_999_999  # partition 1
        added_p99, added_p50, p99s, cpu_per_call = [], [], [], []
        for _ in range(args.runs):
            direct_samples = await unary_latencies(direct, args.latency_calls, unknown_job)
            cpu_before = cpu_seconds(proxy.pid)
            proxy_samples = await unary_latencies(via_proxy, args.latency_calls, to_global(1, unknown_job))
            cpu_after = cpu_seconds(proxy.pid)
            if cpu_before is not None and cpu_after is not None:
                cpu_per_call.append((cpu_after - cpu_before) / (args.latency_calls + 50) * 1e6)
            added_p99.append(pct(proxy_samples, 0.99) - pct(direct_samples, 0.99))
            added_p50.append(pct(proxy_samples, 0.5) - pct(direct_samples, 0.5))
            p99s.append((pct(direct_samples, 0.99), pct(proxy_samples, 0.99)))
        latency = {
            "figure": "routing_unary_latency",
            "call": "CompleteJob (unknown job, NOT_FOUND round trip)",
            "calls_per_run": args.latency_calls,
            "p99_direct_ms": round(statistics.median(p[0] for p in p99s), 3),
            "p99_proxy_ms": round(statistics.median(p[1] for p in p99s), 3),
            "added_p50_ms": round(statistics.median(added_p50), 3),
            "added_p99_ms": round(statistics.median(added_p99), 3),
            "proxy_cpu_us_per_call": round(statistics.median(cpu_per_call)) if cpu_per_call else None,
            "goal": "added p99 < 3 ms",
        }
        print(json.dumps(latency), flush=True)
    finally:
        stop(passthrough)
        stop(proxy)
        stop(engine)
    return {
        "throughput_ratio": throughput["ratio"],
        "throughput_ratio_channel": throughput["ratio_channel"],
        "throughput_ratio_passthrough": throughput["ratio_passthrough"],
        "proxy_cpu_over_passthrough": cpu["proxy_over_passthrough"],
        "added_p99_ms": latency["added_p99_ms"],
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--instances", type=int, default=400)
    parser.add_argument("--latency-calls", type=int, default=1000)
    parser.add_argument(
        "--poll-timeout-ms",
        type=int,
        default=1000,
        help="the throughput workers' ActivateJobs requestTimeout (default 1000)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=12,
        help="throughput rounds (each runs every mode once on --instances instances); default 12",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=["throughput", "failover", "handbacks", "hung", "creates"],
        help="run only these figures (repeatable); default all",
    )
    args = parser.parse_args()
    only = set(args.only or ["throughput", "failover", "handbacks", "hung", "creates"])
    work = Path(tempfile.mkdtemp(prefix="fleetflow-bench-routing-"))
    summary: dict[str, Any] = {"figure": "routing_summary"}
    try:
        if "throughput" in only:
            summary.update(await throughput_and_latency(work, args))
        if "failover" in only:
            gaps = [await failover_gap(work) for _ in range(args.runs)]
            failover = {
                "figure": "routing_failover_gap",
                "what": "longest pause between successful creates around kill -9 of one of two clusters",
                "gap_ms": statistics.median(g["gap_ms"] for g in gaps if g["gap_ms"] is not None),
                "runs": gaps,
                "goal": "< 3000 ms",
            }
            print(json.dumps(failover), flush=True)
            summary["failover_gap_ms"] = failover["gap_ms"]
            summary["failover_gap_failed_creates"] = sum(g["failed_creates"] for g in gaps)
        if "handbacks" in only:
            runs = [await handbacks(work, args.instances, run) for run in range(args.runs)]
            figure = {
                "figure": "routing_handbacks",
                "what": "jobs handed back by the proxy per 1,000 jobs (JOB FAILED records in the engines' logs)",
                "trickle_per_1000": statistics.median(r["trickle"]["per_1000_jobs"] for r in runs),
                "loaded_per_1000": statistics.median(r["loaded"]["per_1000_jobs"] for r in runs),
                "runs": runs,
                "goal": "trickle <= 1 of 40 (25 per 1000); soak < 1 % (10 per 1000)",
            }
            print(json.dumps(figure), flush=True)
            summary["handbacks_per_1000_trickle"] = figure["trickle_per_1000"]
            summary["handbacks_per_1000_loaded"] = figure["loaded_per_1000"]
        if "hung" in only:
            runs = [await hung_activation(work, run) for run in range(args.runs)]
            figure = {
                "figure": "routing_hung_cluster_activation",
                "what": "one of two clusters SIGSTOPped: first ActivateJobs after the hang, then create-to-delivery",
                "first_call_ms": statistics.median(r["first_call_ms"] for r in runs),
                "delivery_p50_ms": statistics.median(
                    r["delivery_p50_ms"] for r in runs if r["delivery_p50_ms"] is not None
                ),
                "delivery_max_ms": max(
                    r["delivery_max_ms"] for r in runs if r["delivery_max_ms"] is not None
                ),
                "worker_call_errors": sum(r["worker_call_errors"] for r in runs),
                "runs": runs,
                "goal": "healthy cluster's jobs within 500 ms of asking; no deadline errors",
            }
            print(json.dumps(figure), flush=True)
            summary["hung_first_call_ms"] = figure["first_call_ms"]
            summary["hung_delivery_max_ms"] = figure["delivery_max_ms"]
        if "creates" in only:
            runs = [await failover_creates(work, run) for run in range(args.runs)]
            kills = sum(r["kills"] for r in runs)
            figure = {
                "figure": "routing_failover_creates",
                "what": "6 creators, engines killed -9 and restarted in turn; per failover",
                "failed_creates_per_failover": round(sum(r["failed_creates"] for r in runs) / kills, 2),
                "duplicates_per_failover": round(sum(r["duplicates"] for r in runs) / kills, 2),
                "acknowledged_missing": sum(r["acknowledged_missing"] for r in runs),
                "handbacks_per_1000_jobs": round(
                    sum(r["handed_back"] for r in runs)
                    * 1000
                    / max(1, sum(r["jobs_completed"] for r in runs)),
                    1,
                ),
                "runs": runs,
                "goal": "0 duplicates, 0 acknowledged missing",
            }
            print(json.dumps(figure), flush=True)
            summary["failed_creates_per_failover"] = figure["failed_creates_per_failover"]
            summary["duplicates_per_failover"] = figure["duplicates_per_failover"]
        print(json.dumps(summary), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-passthrough":
        try:
            import uvloop  # the proxy's event loop too (routing/__main__.py)

            uvloop.install()
        except ImportError:
            pass
        asyncio.run(serve_passthrough(int(sys.argv[2]), sys.argv[3]))
    else:
        asyncio.run(main())
