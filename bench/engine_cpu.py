"""In-process CPU cost of the embedded engine's processing, without gRPC (prints JSON lines).

The gateway benchmark (bench/engine.py) measures throughput through gRPC, where on a shared
2-core machine the figure moves with whatever else runs. This one drives a `Broker` in this
process and reads CPU time (`time.process_time`), which load on the other core barely moves, so
before/after comparisons of processing changes stay readable:

1. one-task instance: CPU per instance to create it, activate its job and complete it (the
   processing, the appliers, the log encoding and the group commit), with the records and log
   bytes each instance writes;
2. parallel multi-instance: CPU per inner instance to run a parallel multi-instance service
   task over `--items` items to completion (create, activate and complete every job), the body's
   slicing included (bodies beyond 1,000 items are activated in slices);
3. sequential multi-instance: CPU per inner instance to run a sequential multi-instance
   service task over `--items` items (one job at a time, each completed before the next is
   created). Without an output collection, and the worker fetches only `item`, so the figure
   shows the body's own per-item work: an output collection rewrites the whole list at every
   completion, and a job that fetches every variable carries the whole input collection (both
   as in Zeebe), which makes a per-item cost that grows with the collection whatever the body
   does. `--fetch-all` measures that worker instead.

Each figure is the median of `--runs` runs on a fresh data directory. To compare two builds,
run it from each (`git archive` of each commit into its own directory, then
`python bench/engine_cpu.py` there); `--tree` names the directory whose `engine` is imported.

Usage: `python bench/engine_cpu.py [--runs 5] [--instances 3000] [--items 2000] [--tree DIR]
[--only one|parallel|sequential] [--fetch-all]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ONE_TASK = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="bench">
  <bpmn:process id="{pid}" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:serviceTask id="task">
      <bpmn:extensionElements><zeebe:taskDefinition type="{job_type}"/></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>{loop}
    </bpmn:serviceTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
    <bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""

PARALLEL_LOOP = """
      <bpmn:multiInstanceLoopCharacteristics>
        <bpmn:extensionElements>
          <zeebe:loopCharacteristics inputCollection="= items" inputElement="item"
            outputCollection="results" outputElement="= item"/>
        </bpmn:extensionElements>
      </bpmn:multiInstanceLoopCharacteristics>"""

SEQUENTIAL_LOOP = """
      <bpmn:multiInstanceLoopCharacteristics isSequential="true">
        <bpmn:extensionElements>
          <zeebe:loopCharacteristics inputCollection="= items" inputElement="item"/>
        </bpmn:extensionElements>
      </bpmn:multiInstanceLoopCharacteristics>"""


def _process(pid: str, job_type: str, loop: str = "") -> bytes:
    return ONE_TASK.format(pid=pid, job_type=job_type, loop=loop).encode()


async def _complete_all(broker: Any, command: Any, job_type: str, limit: int) -> int:
    """Activate and complete jobs of `job_type` until none is left (at most `limit`)."""
    done = 0
    for _ in range(limit):
        batches = broker.activate_jobs(job_type, "bench", 60_000, 500, [])
        if not batches:
            break
        for partition, jobs in batches:
            for job in jobs:
                partition.execute(command("JOB", "COMPLETE", {"variables": {}}, key=job["key"]))
                done += 1
            await partition.durable()
    return done


async def one_task_run(instances: int) -> dict[str, float]:
    from engine.broker import Broker
    from engine.processing.command import Command

    with tempfile.TemporaryDirectory(prefix="bench-engine-cpu-") as tmp:
        broker = Broker(Path(tmp) / "data", 1)
        await broker.start()
        try:
            await broker.deploy([("one.bpmn", _process("one", "one-work"))])
            partition = broker.partitions[1]
            first_position = partition._next_position
            started = time.process_time()
            for i in range(instances):
                broker.create_instance("one", -1, -1, {"i": i}, [])
                for owner, jobs in broker.activate_jobs("one-work", "bench", 60_000, 1, []):
                    for job in jobs:
                        owner.execute(Command("JOB", "COMPLETE", {"variables": {}}, key=job["key"]))
                if i % 50 == 49:
                    await partition.durable()
            await partition.durable()
            cpu = time.process_time() - started
            records = partition._next_position - first_position
        finally:
            await broker.stop()
        log_bytes = sum(path.stat().st_size for path in (Path(tmp) / "data").rglob("segment-*"))
    return {
        "cpu_ms_per_instance": cpu * 1000 / instances,
        "records_per_instance": records / instances,
        "log_bytes_per_instance": log_bytes / instances,
    }


async def multi_instance_run(items: int) -> dict[str, float]:
    from engine.broker import Broker
    from engine.processing.command import Command

    with tempfile.TemporaryDirectory(prefix="bench-engine-cpu-") as tmp:
        broker = Broker(Path(tmp) / "data", 1)
        await broker.start()
        try:
            await broker.deploy([("mi.bpmn", _process("mi", "mi-work", PARALLEL_LOOP))])
            partition = broker.partitions[1]
            started = time.process_time()
            broker.create_instance("mi", -1, -1, {"items": list(range(items))}, [])
            await partition.durable()
            completed = 0
            # Slices of a large body are activated by the broker loop: give it turns while
            # completing (bounded in count and time).
            deadline = time.monotonic() + 300
            while completed < items and time.monotonic() < deadline:
                completed += await _complete_all(broker, Command, "mi-work", items)
                await asyncio.sleep(0)
            cpu = time.process_time() - started
        finally:
            await broker.stop()
    if completed != items:
        raise SystemExit(f"multi-instance run completed {completed} of {items} inner jobs")
    return {"cpu_us_per_item": cpu * 1_000_000 / items}


async def sequential_multi_instance_run(items: int, fetch: list[str]) -> dict[str, float]:
    from engine.broker import Broker
    from engine.processing.command import Command

    with tempfile.TemporaryDirectory(prefix="bench-engine-cpu-") as tmp:
        broker = Broker(Path(tmp) / "data", 1)
        await broker.start()
        try:
            await broker.deploy([("seq.bpmn", _process("seq", "seq-work", SEQUENTIAL_LOOP))])
            partition = broker.partitions[1]
            started = time.process_time()
            broker.create_instance("seq", -1, -1, {"items": list(range(items))}, [])
            completed = 0
            # One job exists at a time: each completion creates the next (bounded in count).
            for _ in range(items):
                batches = broker.activate_jobs("seq-work", "bench", 60_000, 1, fetch)
                if not batches:
                    break
                for owner, jobs in batches:
                    for job in jobs:
                        owner.execute(Command("JOB", "COMPLETE", {"variables": {}}, key=job["key"]))
                        completed += 1
                if completed % 50 == 0:
                    await partition.durable()
            await partition.durable()
            cpu = time.process_time() - started
        finally:
            await broker.stop()
    if completed != items:
        raise SystemExit(f"sequential multi-instance run completed {completed} of {items} inner jobs")
    return {"cpu_us_per_item": cpu * 1_000_000 / items}


def _print_per_item(bench: str, tree: Path, items: int, runs: list[dict[str, float]]) -> None:
    print(
        json.dumps(
            {
                "bench": bench,
                "tree": str(tree),
                "items": items,
                "cpu_us_per_item_median": round(statistics.median(r["cpu_us_per_item"] for r in runs), 1),
                "cpu_us_per_item_runs": [round(r["cpu_us_per_item"], 1) for r in runs],
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--instances", type=int, default=3000)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--only", choices=("one", "parallel", "sequential"), default=None)
    parser.add_argument(
        "--fetch-all", action="store_true", help="sequential: the worker fetches every variable"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree.resolve()))

    if args.only in (None, "one"):
        _one_task(args)
    if args.only in (None, "parallel"):
        multi = [asyncio.run(multi_instance_run(args.items)) for _ in range(args.runs)]
        _print_per_item("engine.cpu_parallel_multi_instance", args.tree, args.items, multi)
    if args.only in (None, "sequential"):
        fetch = [] if args.fetch_all else ["item"]
        sequential = [asyncio.run(sequential_multi_instance_run(args.items, fetch)) for _ in range(args.runs)]
        name = "engine.cpu_sequential_multi_instance" + ("_fetch_all" if args.fetch_all else "")
        _print_per_item(name, args.tree, args.items, sequential)


def _one_task(args: argparse.Namespace) -> None:
    one = [asyncio.run(one_task_run(args.instances)) for _ in range(args.runs)]
    print(
        json.dumps(
            {
                "bench": "engine.cpu_one_task_instance",
                "tree": str(args.tree),
                "instances": args.instances,
                "cpu_ms_per_instance_median": round(
                    statistics.median(r["cpu_ms_per_instance"] for r in one), 3
                ),
                "cpu_ms_per_instance_runs": [round(r["cpu_ms_per_instance"], 3) for r in one],
                "records_per_instance": one[0]["records_per_instance"],
                "log_bytes_per_instance": round(one[0]["log_bytes_per_instance"]),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
