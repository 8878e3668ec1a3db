"""`run_stack` without --demo on PostgreSQL: an empty system that other tools drive. Deploy and create
through its proxy port with pyzeebe, read the instance back through its REST API; SIGKILL the importer
child and see the supervisor restart it with nothing lost; SIGTERM stops everything with exit code 0.

No `from __future__ import annotations`: pyzeebe finds the `job: Job` parameter by comparing annotations
with the Job class."""

import asyncio
import os
import re
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
from pyzeebe import Job, ZeebeClient, ZeebeWorker

from tests.services import free_port
from tests.stack.helpers import REPO, Browser, StackProcess, alive, python
from tests.support import wait_for

pytestmark = pytest.mark.slow

PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="stack-test-definitions"
    targetNamespace="http://fleetflow.example/tests">
  <bpmn:process id="stack-test" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:serviceTask id="work" name="Work">
      <bpmn:extensionElements><zeebe:taskDefinition type="stack-test-work" /></bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:endEvent id="end" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work" />
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.fixture
def database_url() -> Iterator[str]:
    """A database of its own in the test PostgreSQL (run_stack migrates it like a fresh install)."""
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
def redis_url_own_db() -> str:
    base = os.environ.get("REDIS_URL", "")
    if not base.startswith("redis://"):
        pytest.fail("REDIS_URL is not set: run with `python -m tests.services -- ...` (make test)")
    # A database number of its own: the stack's Celery worker must not take other tests' tasks.
    return re.sub(r"/\d+$", "", base) + "/13"


async def deploy_and_create(gateway: str, bpmn: Path, count: int) -> list[int]:
    async with grpc.aio.insecure_channel(gateway) as channel:
        client = ZeebeClient(channel)
        await client.deploy_resource(str(bpmn))
        keys = []
        for index in range(count):
            created = await client.run_process("stack-test", variables={"serverSn": f"STACK-{index}"})
            keys.append(created.process_instance_key)
        return keys


async def create(gateway: str, count: int, first: int) -> list[int]:
    async with grpc.aio.insecure_channel(gateway) as channel:
        client = ZeebeClient(channel)
        return [
            (
                await client.run_process("stack-test", variables={"serverSn": f"STACK-{first + index}"})
            ).process_instance_key
            for index in range(count)
        ]


async def complete_jobs(gateway: str, count: int, timeout: float) -> int:
    done: list[int] = []
    finished = asyncio.Event()
    async with grpc.aio.insecure_channel(gateway) as channel:
        worker = ZeebeWorker(channel, name="stack-test", request_timeout=1000, poll_retry_delay=1)

        @worker.task(task_type="stack-test-work")
        async def work(job: Job) -> dict[str, object]:
            done.append(job.process_instance_key)
            if len(done) >= count:
                finished.set()
            return {"worked": True}

        runner = asyncio.create_task(worker.work())
        try:
            await asyncio.wait_for(finished.wait(), timeout)
        finally:
            await worker.stop()
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
    return len(done)


def issue_token(env: dict[str, str]) -> str:
    result = subprocess.run(
        [python(), "manage.py", "issue_token", "--user", "stack-test", "--role", "viewer"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def importer_pids(stack: StackProcess) -> list[int]:
    return [pid for pid, command in stack.children().items() if "import_records" in command]


def test_run_stack_on_postgres_proxy_api_and_importer_restart(
    tmp_path: Path, database_url: str, redis_url_own_db: str
) -> None:
    web_port, proxy_port = free_port(), free_port()
    env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=redis_url_own_db, DEBUG="0", SECRET_KEY="t")
    gateway = f"127.0.0.1:{proxy_port}"
    bpmn = tmp_path / "stack-test.bpmn"
    bpmn.write_text(PROCESS)
    stack = StackProcess(
        [
            python(),
            "manage.py",
            "run_stack",
            "--clusters",
            "2",
            "--partitions",
            "2",
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
        assert "Demo:" not in banner  # without --demo the system is empty
        assert "redis-server" not in banner  # REDIS_URL is honoured: no local Redis
        children = stack.children()
        token = issue_token(env)
        api = Browser(f"http://127.0.0.1:{web_port}")
        auth = {"Authorization": f"Token {token}"}
        assert api.get_json("/api/v1/process-instances/", auth)["results"] == []
        assert {cluster["name"] for cluster in api.get_json("/api/v1/clusters/", auth)["results"]} == {
            "embedded-1",
            "embedded-2",
        }

        first = asyncio.run(deploy_and_create(gateway, bpmn, 1))[0]
        instance = wait_for(
            what="the first instance through the API",
            probe=lambda: api.get_json(f"/api/v1/process-instances/{first}/", auth),
            timeout=60,
            interval=0.5,
        )
        assert instance["key"] == str(first)
        assert instance["bpmn_process_id"] == "stack-test"
        assert instance["state"] == "active"

        (importer,) = importer_pids(stack)
        os.kill(importer, signal.SIGKILL)
        # Created while the importer is down (or restarting): its next run must import them all.
        keys = [first, *asyncio.run(create(gateway, 20, first=1))]
        restarted = wait_for(
            what="a new importer child",
            probe=lambda: [pid for pid in importer_pids(stack) if pid != importer],
            timeout=30,
            interval=0.5,
        )
        assert len(restarted) == 1
        assert not alive(importer)
        assert f"importer (pid {importer}) exited with code -9; restarting" in stack.output()

        assert asyncio.run(complete_jobs(gateway, len(keys), timeout=60)) == len(keys)

        def all_completed() -> bool:
            states = [api.get_json(f"/api/v1/process-instances/{key}/", auth)["state"] for key in keys]
            return all(state == "completed" for state in states)

        wait_for(what="every instance imported as completed", probe=all_completed, timeout=60, interval=0.5)
        rows = api.get_json("/api/v1/process-instances/?bpmn_process_id=stack-test&page_size=100", auth)
        assert sorted(int(row["key"]) for row in rows["results"]) == sorted(keys)
    except BaseException:
        stack.kill_all()
        print(stack.output())
        raise

    code = stack.stop(signal.SIGTERM)
    assert code == 0, stack.output()
    survivors = [pid for pid in [*children, *restarted] if alive(pid)]
    assert not survivors, survivors
