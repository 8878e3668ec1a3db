"""`run_stack --record-source redis`: each engine exports to Redis streams (`--export redis://...`)
and the importer reads its cluster from them; records flow end to end into the Django tables.

No `from __future__ import annotations`: pyzeebe finds the `job: Job` parameter by comparing
annotations with the Job class."""

import asyncio
import os
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
import redis
from pyzeebe import Job, ZeebeClient, ZeebeWorker

from tests.services import free_port
from tests.stack.helpers import StackProcess, python
from tests.support import sequence_process, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def database_url() -> Iterator[str]:
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        pytest.fail("DATABASE_URL is not PostgreSQL: run with `python -m tests.services -- ...` (make test)")
    name = f"stack_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield re.sub(r"/[^/]*$", f"/{name}", base)
    finally:
        with psycopg.connect(base, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def own_redis_db(redis_url: str) -> Iterator[str]:
    """A Redis database of its own (the stack's Celery worker and streams stay apart from other tests)."""
    url = re.sub(r"/\d+$", "", redis_url.split("?", 1)[0]) + "/12"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


async def deploy_create_complete(gateway: str, bpmn: Path, count: int) -> list[int]:
    async with grpc.aio.insecure_channel(gateway) as channel:
        client = ZeebeClient(channel)
        await client.deploy_resource(str(bpmn))
        keys = [
            (
                await client.run_process("redis-flow", variables={"serverSn": f"REDIS-{n}"})
            ).process_instance_key
            for n in range(count)
        ]
        done: list[int] = []
        finished = asyncio.Event()
        worker = ZeebeWorker(channel, name="redis-flow", request_timeout=1000, poll_retry_delay=1)

        @worker.task(task_type="redis-flow-work")
        async def work(job: Job) -> dict[str, object]:
            done.append(job.process_instance_key)
            if len(done) >= count:
                finished.set()
            return {"worked": True}

        runner = asyncio.create_task(worker.work())
        try:
            await asyncio.wait_for(finished.wait(), 60)
        finally:
            await worker.stop()
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        return keys


def test_run_stack_feeds_the_importer_from_redis_streams(
    tmp_path: Path, database_url: str, own_redis_db: str
) -> None:
    web_port, proxy_port = free_port(), free_port()
    env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=own_redis_db, DEBUG="0", SECRET_KEY="t")
    bpmn = tmp_path / "redis-flow.bpmn"
    bpmn.write_bytes(sequence_process("redis-flow", "redis-flow-work"))
    stack = StackProcess(
        [
            python(),
            "manage.py",
            "run_stack",
            "--clusters",
            "1",
            "--partitions",
            "2",
            "--record-source",
            "redis",
            "--proxy-port",
            str(proxy_port),
            "--web-port",
            str(web_port),
            "--data-dir",
            str(tmp_path / "stack"),
        ],
        env=env,
        log_dir=tmp_path,
    )
    try:
        banner = stack.wait_started(timeout=120)
        assert "Redis streams" in banner
        keys = asyncio.run(deploy_create_complete(f"127.0.0.1:{proxy_port}", bpmn, 6))
        with psycopg.connect(database_url, autocommit=True) as connection:
            source, config = connection.execute(
                "SELECT record_source, record_source_config FROM processes_cluster WHERE name = 'embedded-1'"
            ).fetchone()
            assert source == "redis"
            assert config["stream_prefix"] == "zeebe-embedded-1"

            def completed() -> list[int]:
                rows = connection.execute(
                    "SELECT key FROM processes_processinstance WHERE bpmn_process_id = 'redis-flow' "
                    "AND state = 'completed'"
                ).fetchall()
                return [row[0] for row in rows] if len(rows) == len(keys) else []

            imported = wait_for(
                completed, timeout=90, interval=0.5, what="every instance imported as completed"
            )
            assert sorted(imported) == sorted(keys)
            # The jobs came through the same streams.
            jobs = connection.execute(
                "SELECT count(*) FROM processes_job WHERE process_instance_key = ANY(%s)", (keys,)
            ).fetchone()
            assert jobs == (len(keys),)
        # The records really travelled through Redis: the exporter's streams exist and the importer's
        # consumer group has read them.
        client = redis.Redis.from_url(own_redis_db)
        streams = {key.decode() for key in client.scan_iter(match="zeebe-embedded-1:*", _type="STREAM")}
        assert {
            "zeebe-embedded-1:PROCESS_INSTANCE",
            "zeebe-embedded-1:JOB",
            "zeebe-embedded-1:DEPLOYMENT",
        } <= streams
        groups = client.xinfo_groups("zeebe-embedded-1:PROCESS_INSTANCE")
        assert [group["name"] for group in groups] == [b"fleetflow-importer"]
        assert groups[0]["pending"] == 0
        client.close()
    except BaseException:
        stack.kill_all()
        print(stack.output())
        raise
    assert stack.stop(signal.SIGTERM) == 0, stack.output()
