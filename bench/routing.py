"""Routing proxy benchmark: what the proxy costs, and how long failover leaves placement idle.

Prints one JSON object per figure (JSON lines), then a summary line:

* ``throughput``: instances/s for the same workload (create N instances, activate their jobs
  in batches, complete each job), direct to one engine and through the proxy in front of that
  same engine, alternating order, median of ``--runs`` runs; ``ratio = proxy / direct``
  (goal >= 0.9, never below 0.8);
* ``unary_latency``: sequential CompleteJob calls for an unknown job (answered NOT_FOUND by the
  engine, a full round trip with no log write), p50/p99 direct and through the proxy; the proxy's
  added p99 is ``p99_proxy - p99_direct`` (goal < 3 ms), median over runs;
* ``failover_gap``: two engines behind the proxy, a client creating instances in a loop, kill -9
  of one engine: the longest pause between two successful creates around the kill (no create may
  fail), median over runs.

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
from pathlib import Path
from typing import Any

import grpc

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from pyzeebe.proto import gateway_pb2 as pb  # noqa: E402
from pyzeebe.proto import gateway_pb2_grpc  # noqa: E402

from tests.services import free_port  # noqa: E402

PROCESS_ID = "bench-routing"
JOB_TYPE = "bench-routing-work"
BPMN = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="defs" targetNamespace="http://fleetflow.example/bench">
  <bpmn:process id="{PROCESS_ID}" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:serviceTask id="work">
      <bpmn:extensionElements><zeebe:taskDefinition type="{JOB_TYPE}" /></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work" />
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
""".encode()


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


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def deploy(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        await stub.DeployResource(
            pb.DeployResourceRequest(resources=[pb.Resource(name="bench.bpmn", content=BPMN)]), timeout=30
        )


async def workload(
    address: str, instances: int, concurrency: int = 16, batch: int = 32, workers: int = 4
) -> float:
    """Create ``instances`` and complete all their jobs; return instances per second."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        completed = 0
        done = asyncio.Event()
        started = time.perf_counter()

        async def creator(count: int) -> None:
            for _ in range(count):
                await stub.CreateProcessInstance(
                    pb.CreateProcessInstanceRequest(bpmnProcessId=PROCESS_ID, version=-1), timeout=30
                )

        async def worker() -> None:
            nonlocal completed
            while not done.is_set():
                request = pb.ActivateJobsRequest(
                    type=JOB_TYPE,
                    worker="bench",
                    timeout=60_000,
                    maxJobsToActivate=batch,
                    requestTimeout=1000,
                )
                jobs = []
                async for response in stub.ActivateJobs(request, timeout=10):
                    jobs.extend(response.jobs)
                await asyncio.gather(
                    *(stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key), timeout=30) for job in jobs)
                )
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
        for task in worker_tasks:
            task.cancel()
        await asyncio.gather(*worker_tasks, return_exceptions=True)
        return instances / elapsed


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
                    successes.append((time.perf_counter(), response.processInstanceKey >> 58))
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


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--instances", type=int, default=400)
    parser.add_argument("--latency-calls", type=int, default=1000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fleetflow-bench-routing-"))
    try:
        engine_port, proxy_port = free_port(), free_port()
        engine = start_engine(work / "engine", engine_port, work / "engine.log")
        proxy = start_proxy(proxy_port, [f"1=127.0.0.1:{engine_port}"], work / "proxy.log")
        direct, via_proxy = f"127.0.0.1:{engine_port}", f"127.0.0.1:{proxy_port}"
        try:
            await deploy(via_proxy)
            await workload(direct, 50)  # warm-up of both paths
            await workload(via_proxy, 50)
            ratios, direct_rates, proxy_rates = [], [], []
            for run in range(args.runs):
                order = [(direct, direct_rates), (via_proxy, proxy_rates)]
                if run % 2:
                    order.reverse()
                results = {}
                for address, sink in order:
                    rate = await workload(address, args.instances)
                    sink.append(rate)
                    results[address] = rate
                ratios.append(results[via_proxy] / results[direct])
            throughput = {
                "figure": "routing_throughput",
                "unit": "instances/s (create+activate+complete)",
                "instances_per_run": args.instances,
                "runs": args.runs,
                "direct": round(statistics.median(direct_rates), 1),
                "proxy": round(statistics.median(proxy_rates), 1),
                "ratio": round(statistics.median(ratios), 3),
                "ratios": [round(r, 3) for r in ratios],
                "goal": ">= 0.9 (never < 0.8)",
            }
            print(json.dumps(throughput), flush=True)
            unknown_job = (1 << 51) + 999_999_999
            added_p99, added_p50, p99s, cpu_per_call = [], [], [], []
            for _ in range(args.runs):
                direct_samples = await unary_latencies(direct, args.latency_calls, unknown_job)
                cpu_before = cpu_seconds(proxy.pid)
                proxy_samples = await unary_latencies(via_proxy, args.latency_calls, (1 << 58) | unknown_job)
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
            stop(proxy)
            stop(engine)
        gaps = []
        for _ in range(args.runs):
            gaps.append(await failover_gap(work))
        failover = {
            "figure": "routing_failover_gap",
            "what": "longest pause between successful creates around kill -9 of one of two clusters",
            "gap_ms": statistics.median(g["gap_ms"] for g in gaps if g["gap_ms"] is not None),
            "runs": gaps,
            "goal": "< 3000 ms, no failed create",
        }
        print(json.dumps(failover), flush=True)
        print(
            json.dumps(
                {
                    "figure": "routing_summary",
                    "throughput_ratio": throughput["ratio"],
                    "added_p99_ms": latency["added_p99_ms"],
                    "failover_gap_ms": failover["gap_ms"],
                    "failed_creates": sum(g["failed_creates"] for g in gaps),
                }
            ),
            flush=True,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
