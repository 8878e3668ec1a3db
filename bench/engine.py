"""Benchmark of the embedded engine over its gateway (prints JSON lines).

1. throughput: instances of a one-task process completed per second, with several
   pyzeebe-style workers (grpc.aio ActivateJobs long polls + CompleteJob) and creators;
2. delivery latency: from CreateProcessInstance to the job arriving at an already parked
   long poll (p50/p99);
3. decisions: EvaluateDecision calls answered per second by parallel clients on a two-decision
   DRG (a vendor table required by a rules table, the "rules match" step of hardware
   diagnosis), and the decisions they evaluated per second (Zeebe counts each evaluated
   decision of a DRG: two per call here). Measured after the figures above, on the same engine.

With `--hostile N`, N clients meanwhile create instances of a process whose input mapping is a
hostile expression (`--hostile-kind loop`: a 150,000-iteration loop; `regex`: a catastrophic
backtracking regex on 22 characters), so the latency figure shows how much one bad instance
delays the others (issue 8: the FEEL budget and RE2 bound it).

Each figure is measured over several runs against a fresh `python -m engine` subprocess and
the median is printed. Usage:
`python bench/engine.py [--runs 3] [--seconds 10] [--partitions 1] [--event-loop auto|asyncio|uvloop]
[--hostile N --hostile-kind loop|regex] [--timers 2000]`.

3. timers fired per second: `--timers N` instances (on a fresh engine) wait on an intermediate
   timer catch event whose FEEL date is the same for all; the figure is N over the engine time
   from that date until the last instance completed (from the engine's log).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc as pb_grpc

REPO_ROOT = Path(__file__).resolve().parents[1]
PROCESS = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="http://fleetflow.bench">
  <bpmn:process id="bench" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
    <bpmn:serviceTask id="task"><bpmn:extensionElements><zeebe:taskDefinition type="bench-work"/></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""


DECISIONS = b"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="bench_rules" name="Bench rules" namespace="http://fleetflow.bench">
  <decision id="vendor" name="Vendor">
    <variable name="management"/>
    <decisionTable id="vendor_table" hitPolicy="FIRST">
      <input id="vendor_in" label="Vendor"><inputExpression typeRef="string"><text>vendor</text></inputExpression></input>
      <output id="management_out" name="management" typeRef="string"/>
      <rule id="v1"><inputEntry><text>"dell"</text></inputEntry><outputEntry><text>"idrac"</text></outputEntry></rule>
      <rule id="v2"><inputEntry><text>"hp"</text></inputEntry><outputEntry><text>"ilo"</text></outputEntry></rule>
      <rule id="v3"><inputEntry><text>"lenovo"</text></inputEntry><outputEntry><text>"xcc"</text></outputEntry></rule>
      <rule id="v4"><inputEntry><text>-</text></inputEntry><outputEntry><text>"ipmi"</text></outputEntry></rule>
    </decisionTable>
  </decision>
  <decision id="action" name="Action">
    <informationRequirement id="needs_vendor"><requiredDecision href="#vendor"/></informationRequirement>
    <decisionTable id="action_table" hitPolicy="UNIQUE">
      <input id="management_in" label="Management"><inputExpression typeRef="string"><text>management</text></inputExpression></input>
      <input id="temperature_in" label="Temperature"><inputExpression typeRef="number"><text>temperature</text></inputExpression></input>
      <output id="action_out" name="action" typeRef="string"/>
      <output id="priority_out" name="priority" typeRef="number"/>
      <rule id="a1"><inputEntry><text>"idrac"</text></inputEntry><inputEntry><text>&gt; 80</text></inputEntry><outputEntry><text>"powercycle"</text></outputEntry><outputEntry><text>1</text></outputEntry></rule>
      <rule id="a2"><inputEntry><text>not("idrac")</text></inputEntry><inputEntry><text>&gt; 80</text></inputEntry><outputEntry><text>"ticket"</text></outputEntry><outputEntry><text>2</text></outputEntry></rule>
      <rule id="a3"><inputEntry><text>-</text></inputEntry><inputEntry><text>[60..80]</text></inputEntry><outputEntry><text>"watch"</text></outputEntry><outputEntry><text>3</text></outputEntry></rule>
      <rule id="a4"><inputEntry><text>-</text></inputEntry><inputEntry><text>&lt; 60</text></inputEntry><outputEntry><text>"none"</text></outputEntry><outputEntry><text>4</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Engine:
    def __init__(self, partitions: int, event_loop: str = "auto"):
        self.tmp = tempfile.TemporaryDirectory(prefix="engine-bench-")
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine",
                "--port",
                str(self.port),
                "--partitions",
                str(partitions),
                "--data-dir",
                str(Path(self.tmp.name) / "data"),
                "--log-level",
                "WARNING",
                "--event-loop",
                event_loop,
            ],
            cwd=REPO_ROOT,
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                async with grpc.aio.insecure_channel(self.address) as channel:
                    await pb_grpc.GatewayStub(channel).Topology(pb.TopologyRequest(), timeout=1)
                    return
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.1)
        raise TimeoutError("engine did not start")

    def close(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        self.tmp.cleanup()


async def throughput(address: str, seconds: float, workers: int, creators: int) -> dict[str, float]:
    channel = grpc.aio.insecure_channel(address)
    stub = pb_grpc.GatewayStub(channel)
    await stub.DeployResource(
        pb.DeployResourceRequest(resources=[pb.Resource(name="bench.bpmn", content=PROCESS)])
    )
    stop = asyncio.Event()
    completed = 0
    created = 0

    async def creator() -> None:
        nonlocal created
        while not stop.is_set():
            await stub.CreateProcessInstance(
                pb.CreateProcessInstanceRequest(bpmnProcessId="bench", version=-1, variables='{"n": 1}')
            )
            created += 1

    async def worker(index: int) -> None:
        nonlocal completed
        request = pb.ActivateJobsRequest(
            type="bench-work", worker=f"w{index}", timeout=30_000, maxJobsToActivate=32, requestTimeout=1000
        )
        while not stop.is_set():
            async for response in stub.ActivateJobs(request):
                # like pyzeebe: run the handlers concurrently, complete each job
                async def done(job: pb.ActivatedJob) -> None:
                    nonlocal completed
                    await stub.CompleteJob(pb.CompleteJobRequest(jobKey=job.key, variables='{"ok": true}'))
                    completed += 1

                await asyncio.gather(*(done(job) for job in response.jobs))

    tasks = [asyncio.create_task(worker(i)) for i in range(workers)] + [
        asyncio.create_task(creator()) for _ in range(creators)
    ]
    await asyncio.sleep(1.0)  # warm-up
    start_completed, start = completed, time.perf_counter()
    await asyncio.sleep(seconds)
    rate = (completed - start_completed) / (time.perf_counter() - start)
    stop.set()
    await asyncio.sleep(1.2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await channel.close()
    return {"instances_per_second": rate, "created": created, "completed": completed}


HOSTILE_EXPRESSIONS = {
    # within the step budget, so it runs until its CPU time is used up (about 1 s unbounded)
    "loop": "=count(for x in 1..150000 return x + 1)",
    "regex": '=matches(s, "(a+)+$")',
}


def hostile_process(kind: str) -> bytes:
    mapping = (
        f'<zeebe:ioMapping><zeebe:input source="{HOSTILE_EXPRESSIONS[kind].replace(chr(34), "&quot;")}" '
        'target="r"/></zeebe:ioMapping>'
    )
    return (
        PROCESS.replace(b"bench-work", b"hostile-work")
        .replace(b'"bench"', b'"hostile"')
        .replace(b'type="hostile-work"/>', b'type="hostile-work"/>' + mapping.encode())
    )


async def hostile_load(address: str, clients: int, kind: str, stop: asyncio.Event) -> int:
    """Instances whose input mapping is hostile, created back to back until `stop`."""
    channel = grpc.aio.insecure_channel(address)
    stub = pb_grpc.GatewayStub(channel)
    await stub.DeployResource(
        pb.DeployResourceRequest(resources=[pb.Resource(name="hostile.bpmn", content=hostile_process(kind))])
    )
    created = 0

    async def client() -> None:
        nonlocal created
        while not stop.is_set():
            await stub.CreateProcessInstance(
                pb.CreateProcessInstanceRequest(
                    bpmnProcessId="hostile", version=-1, variables=json.dumps({"s": "a" * 22 + "!"})
                ),
                timeout=120,
            )
            created += 1

    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await channel.close()
    return created


async def delivery_latency(address: str, samples: int) -> dict[str, float]:
    channel = grpc.aio.insecure_channel(address)
    stub = pb_grpc.GatewayStub(channel)
    await stub.DeployResource(
        pb.DeployResourceRequest(
            resources=[
                pb.Resource(
                    name="bench.bpmn",
                    content=PROCESS.replace(b"bench-work", b"latency-work").replace(b'"bench"', b'"latency"'),
                )
            ]
        )
    )
    latencies = []
    for _ in range(samples):
        received = asyncio.get_running_loop().create_future()

        async def poll(fut: asyncio.Future[float] = received) -> None:
            request = pb.ActivateJobsRequest(
                type="latency-work", worker="lat", timeout=30_000, maxJobsToActivate=1, requestTimeout=10_000
            )
            async for response in stub.ActivateJobs(request):
                if response.jobs and not fut.done():
                    fut.set_result(time.perf_counter())
                    await stub.CompleteJob(pb.CompleteJobRequest(jobKey=response.jobs[0].key))

        poller = asyncio.create_task(poll())
        await asyncio.sleep(0.02)  # let the request park
        start = time.perf_counter()
        await stub.CreateProcessInstance(pb.CreateProcessInstanceRequest(bpmnProcessId="latency", version=-1))
        delivered = await asyncio.wait_for(received, 10)
        latencies.append((delivered - start) * 1000)
        await poller
    await channel.close()
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "samples": len(latencies),
    }


TIMER_PROCESS = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="t" targetNamespace="http://fleetflow.bench">
  <bpmn:process id="timer-bench" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <bpmn:intermediateCatchEvent id="wait"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDate xsi:type="bpmn:tFormalExpression">=due</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="end"/>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""


async def timers_fired(engine: Engine, count: int, creators: int) -> dict[str, float]:
    """`count` instances wait on a timer that comes due for all of them at the same moment;
    timers fired per second = count / (engine time from the due date until the last of them
    completed), read from the engine's own log (TIMER TRIGGERED, PROCESS ELEMENT_COMPLETED)."""
    # bench/ (first on sys.path) holds this engine.py: put the repository first to reach the package
    sys.path.insert(0, str(REPO_ROOT))
    from engine.log import LogReader, partition_ids

    channel = grpc.aio.insecure_channel(engine.address)
    stub = pb_grpc.GatewayStub(channel)
    await stub.DeployResource(
        pb.DeployResourceRequest(resources=[pb.Resource(name="timer-bench.bpmn", content=TIMER_PROCESS)])
    )
    # Room to create every instance before the date (at a pessimistic 150 creations/s).
    lead = 1.0 + count / 150
    due_ms = int((time.time() + lead) * 1000)
    due_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(due_ms // 1000)) + f".{due_ms % 1000:03d}Z"
    variables = json.dumps({"due": due_text})
    remaining = count

    async def creator() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await stub.CreateProcessInstance(
                pb.CreateProcessInstanceRequest(bpmnProcessId="timer-bench", version=-1, variables=variables),
                timeout=30,
            )

    await asyncio.gather(*(creator() for _ in range(creators)))
    created_by = int(time.time() * 1000)
    await channel.close()
    data_dir = Path(engine.tmp.name) / "data"
    deadline = time.monotonic() + lead + 120
    while True:
        completed, triggered = [], []
        for partition_id in partition_ids(data_dir):
            for record in LogReader(data_dir, partition_id).read(1, 10_000_000):
                if record["recordType"] != "EVENT":
                    continue
                if record["valueType"] == "TIMER" and record["intent"] == "TRIGGERED":
                    triggered.append(record)
                elif (
                    record["valueType"] == "PROCESS_INSTANCE"
                    and record["intent"] == "ELEMENT_COMPLETED"
                    and record["value"]["bpmnElementType"] == "PROCESS"
                ):
                    completed.append(record["timestamp"])
        if len(completed) >= count or time.monotonic() > deadline:
            break
        await asyncio.sleep(max(0.5, (due_ms - time.time() * 1000) / 1000))
    span_ms = max(1, max(completed, default=due_ms) - due_ms)
    return {
        "timers_per_second": len(completed) / (span_ms / 1000),
        "timers": count,
        "timers_completed": len(completed),
        "fired_before_due": sum(
            1 for record in triggered if record["timestamp"] < record["value"]["dueDate"]
        ),
        "created_before_due": created_by <= due_ms,
    }


MESSAGE_PROCESS = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:message id="m" name="paid">
    <bpmn:extensionElements><zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements>
  </bpmn:message>
  <bpmn:process id="message-bench" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <bpmn:intermediateCatchEvent id="wait">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:messageEventDefinition messageRef="m"/>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="end"/>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""


async def messages_correlated(engine: Engine, count: int, creators: int) -> dict[str, float]:
    """`count` instances wait on a message catch event, each with its own correlation key
    (spread over the partitions by the key hash); then all `count` messages are published by
    `creators` clients at once. Messages correlated per second = count / (time from the first
    publish until the last instance completed, from the engine's log timestamps)."""
    sys.path.insert(0, str(REPO_ROOT))
    from engine.log import LogReader, partition_ids

    channel = grpc.aio.insecure_channel(engine.address)
    stub = pb_grpc.GatewayStub(channel)
    await stub.DeployResource(
        pb.DeployResourceRequest(resources=[pb.Resource(name="message-bench.bpmn", content=MESSAGE_PROCESS)])
    )
    data_dir = Path(engine.tmp.name) / "data"

    def log_events(value_type: str, intent: str) -> list[dict]:
        found = []
        for partition_id in partition_ids(data_dir):
            for record in LogReader(data_dir, partition_id).read(1, 10_000_000):
                if (
                    record["recordType"] == "EVENT"
                    and record["valueType"] == value_type
                    and record["intent"] == intent
                ):
                    found.append(record)
        return found

    pending = list(range(count))

    async def creator() -> None:
        while pending:
            number = pending.pop()
            await stub.CreateProcessInstance(
                pb.CreateProcessInstanceRequest(
                    bpmnProcessId="message-bench",
                    version=-1,
                    variables=json.dumps({"orderId": f"order-{number}"}),
                ),
                timeout=30,
            )

    await asyncio.gather(*(creator() for _ in range(creators)))
    deadline = time.monotonic() + 120
    while len(log_events("PROCESS_MESSAGE_SUBSCRIPTION", "CREATED")) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    started_ms = int(time.time() * 1000)
    pending = list(range(count))

    async def publisher() -> None:
        while pending:
            number = pending.pop()
            await stub.PublishMessage(
                pb.PublishMessageRequest(
                    name="paid", correlationKey=f"order-{number}", variables='{"paid": true}'
                ),
                timeout=30,
            )

    await asyncio.gather(*(publisher() for _ in range(creators)))
    await channel.close()
    deadline = time.monotonic() + 120
    while True:
        completed = [
            r["timestamp"]
            for r in log_events("PROCESS_INSTANCE", "ELEMENT_COMPLETED")
            if r["value"]["bpmnElementType"] == "PROCESS"
        ]
        if len(completed) >= count or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    span_ms = max(1, max(completed, default=started_ms) - started_ms)
    return {
        "messages_per_second": len(completed) / (span_ms / 1000),
        "messages": count,
        "messages_correlated": len(completed),
    }


async def decision_rate(address: str, seconds: float, clients: int) -> dict[str, float]:
    """EvaluateDecision calls answered per second, and the decisions they evaluated per second."""
    vendors = ("dell", "hp", "lenovo", "supermicro")
    answered = evaluated = failed = 0
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.GatewayStub(channel)
        await stub.DeployResource(
            pb.DeployResourceRequest(resources=[pb.Resource(name="bench.dmn", content=DECISIONS)]), timeout=30
        )
        deadline = time.monotonic() + seconds

        async def client(index: int) -> None:
            nonlocal answered, evaluated, failed
            call = index
            while time.monotonic() < deadline:
                call += clients
                variables = {"vendor": vendors[call % len(vendors)], "temperature": 40 + (call * 7) % 60}
                response = await stub.EvaluateDecision(
                    pb.EvaluateDecisionRequest(decisionId="action", variables=json.dumps(variables)),
                    timeout=30,
                )
                if response.failedDecisionId:
                    failed += 1
                answered += 1
                evaluated += len(response.evaluatedDecisions)

        started = time.monotonic()
        await asyncio.gather(*(client(index) for index in range(clients)))
        elapsed = time.monotonic() - started
    return {
        "decision_calls_per_second": answered / elapsed,
        "decisions_evaluated_per_second": evaluated / elapsed,
        "decision_failures": failed,
    }


async def one_run(args: argparse.Namespace) -> tuple[dict[str, float], dict[str, float]]:
    engine = Engine(args.partitions, args.event_loop)
    try:
        await engine.ready()
        rate = await throughput(engine.address, args.seconds, args.workers, args.creators)
        stop = asyncio.Event()
        hostile = None
        if args.hostile:
            hostile = asyncio.create_task(hostile_load(engine.address, args.hostile, args.hostile_kind, stop))
            await asyncio.sleep(0.5)
        latency = await delivery_latency(engine.address, args.samples)
        if hostile is not None:
            stop.set()
            latency["hostile_created"] = await hostile
        # last on this engine, so that the figures above are measured exactly as before
        rate.update(await decision_rate(engine.address, args.seconds, args.decision_clients))
    finally:
        engine.close()
    if args.timers:
        # on a fresh engine: only these instances in its log
        timer_engine = Engine(args.partitions, args.event_loop)
        try:
            await timer_engine.ready()
            latency.update(await timers_fired(timer_engine, args.timers, args.creators))
        finally:
            timer_engine.close()
    if args.messages:
        # on a fresh engine too: only these instances in its log
        message_engine = Engine(args.partitions, args.event_loop)
        try:
            await message_engine.ready()
            latency.update(await messages_correlated(message_engine, args.messages, args.creators))
        finally:
            message_engine.close()
    return rate, latency


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--creators", type=int, default=16)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--decision-clients", type=int, default=8, help="parallel EvaluateDecision callers")
    parser.add_argument("--event-loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    parser.add_argument("--hostile", type=int, default=0, help="clients creating hostile instances")
    parser.add_argument("--hostile-kind", choices=sorted(HOSTILE_EXPRESSIONS), default="loop")
    parser.add_argument(
        "--timers", type=int, default=2000, help="instances waiting on one due date (0: skip)"
    )
    parser.add_argument(
        "--messages", type=int, default=2000, help="instances waiting for one message each (0: skip)"
    )
    args = parser.parse_args()
    rates, p50s, p99s, timer_rates, decision_rates, message_rates = [], [], [], [], [], []
    for run in range(args.runs):
        rate, latency = asyncio.run(one_run(args))
        rates.append(rate["instances_per_second"])
        decision_rates.append(rate["decisions_evaluated_per_second"])
        p50s.append(latency["p50_ms"])
        p99s.append(latency["p99_ms"])
        if args.timers:
            timer_rates.append(latency["timers_per_second"])
        if args.messages:
            message_rates.append(latency["messages_per_second"])
        print(json.dumps({"bench": "engine", "run": run + 1, **rate, **latency}), flush=True)
    common = {
        "bench": "engine",
        "runs": args.runs,
        "partitions": args.partitions,
        "workers": args.workers,
        "creators": args.creators,
        "event_loop": args.event_loop,
        **({"hostile": args.hostile, "hostile_kind": args.hostile_kind} if args.hostile else {}),
    }
    print(
        json.dumps(
            {
                **common,
                "metric": "instances_completed_per_second",
                "median": statistics.median(rates),
                "goal": 300,
            }
        )
    )
    print(json.dumps({**common, "metric": "job_delivery_p50_ms", "median": statistics.median(p50s)}))
    print(
        json.dumps({**common, "metric": "job_delivery_p99_ms", "median": statistics.median(p99s), "goal": 20})
    )
    print(
        json.dumps(
            {
                **common,
                "metric": "decisions_evaluated_per_second",
                "decision_clients": args.decision_clients,
                "median": statistics.median(decision_rates),
            }
        )
    )
    if timer_rates:
        print(
            json.dumps(
                {
                    **common,
                    "metric": "timers_fired_per_second",
                    "timers": args.timers,
                    "median": statistics.median(timer_rates),
                }
            )
        )
    if message_rates:
        print(
            json.dumps(
                {
                    **common,
                    "metric": "messages_correlated_per_second",
                    "messages": args.messages,
                    "median": statistics.median(message_rates),
                }
            )
        )


if __name__ == "__main__":
    main()
