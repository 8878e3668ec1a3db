"""Exporter benchmark: what `--export redis://...` costs the engine and how fast records reach Redis.

Prints JSON lines: instance creations/s of a `python -m engine` (2 partitions) without and with the
Redis exporter (64 concurrent creates of a start->end process through gRPC), and the Redis
exporter's throughput (log records/s written to the streams, from an engine log it has not exported
yet) and its lag at the end of the create run (seconds from the last create's answer until every
record of the log is in Redis).

    .venv/bin/python -m tests.services -- .venv/bin/python bench/exporters.py [--instances 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import redis
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc as pb_grpc

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from engine.log import LogReader, partition_ids  # noqa: E402
from tests.support import engine_process  # noqa: E402

QUICK = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
<bpmn:process id="quick" isExecutable="true"><bpmn:startEvent id="s"/><bpmn:endEvent id="e"/>
<bpmn:sequenceFlow id="f" sourceRef="s" targetRef="e"/></bpmn:process></bpmn:definitions>"""


async def create_all(address: str, count: int, concurrency: int = 64) -> float:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.GatewayStub(channel)
        await stub.DeployResource(
            pb.DeployResourceRequest(resources=[pb.Resource(name="q.bpmn", content=QUICK)])
        )
        gate = asyncio.Semaphore(concurrency)

        async def one(n: int) -> None:
            async with gate:
                await stub.CreateProcessInstance(
                    pb.CreateProcessInstanceRequest(
                        bpmnProcessId="quick", version=-1, variables=json.dumps({"n": n})
                    ),
                    timeout=60,
                )

        started = time.monotonic()
        await asyncio.gather(*(one(n) for n in range(count)))
        return time.monotonic() - started


def log_size(data_dir: Path) -> int:
    return sum(LogReader(data_dir, p).last_position() for p in partition_ids(data_dir))


def exported(client: redis.Redis, name: str) -> int:
    return sum(int(client.xlen(key)) for key in client.scan_iter(match=f"{name}:*", _type="STREAM"))


def wait_exported(client: redis.Redis, name: str, total: int, timeout: float = 600) -> float:
    started = time.monotonic()
    while exported(client, name) < total:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"exporter did not catch up within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=3000)
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        raise SystemExit("REDIS_URL is not set: run under `python -m tests.services -- ...`")
    client = redis.Redis.from_url(redis_url)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plain = engine_process(root / "plain", partitions=2)
        try:
            seconds = asyncio.run(create_all(plain.address, args.instances))
        finally:
            plain.stop()
        print(
            json.dumps(
                {"figure": "creates_per_second_without_exporter", "value": round(args.instances / seconds)}
            )
        )

        name = f"bench{uuid.uuid4().hex[:8]}"
        url = f"{redis_url.split('?', 1)[0]}?name={name}"
        exporting = engine_process(root / "redis", partitions=2, extra_args=["--export", url])
        try:
            seconds = asyncio.run(create_all(exporting.address, args.instances))
            total = log_size(root / "redis" / "data")
            lag = wait_exported(client, name, total)
        finally:
            exporting.stop()
        print(
            json.dumps(
                {"figure": "creates_per_second_with_redis_exporter", "value": round(args.instances / seconds)}
            )
        )
        print(json.dumps({"figure": "redis_export_lag_after_last_create_seconds", "value": round(lag, 3)}))

        # Throughput: the same log exported again from the start to fresh streams.
        name2 = f"bench{uuid.uuid4().hex[:8]}"
        again = engine_process(
            root / "redis",
            partitions=2,
            extra_args=["--export", f"{redis_url.split('?', 1)[0]}?name={name2}"],
        )
        try:
            catch_up = wait_exported(client, name2, total)
        finally:
            again.stop()
        print(
            json.dumps(
                {
                    "figure": "redis_export_records_per_second",
                    "value": round(total / catch_up),
                    "records": total,
                }
            )
        )
        for stream_name in (name, name2):
            keys = list(client.scan_iter(match=f"{stream_name}:*"))
            if keys:
                client.delete(*keys)
    client.close()


if __name__ == "__main__":
    main()
