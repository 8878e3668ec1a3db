"""Real processes for the operations end-to-end tests and bench/actions.py.

Two ``python -m engine`` clusters behind ``python -m routing``, ``manage.py import_records
--follow`` and a Celery worker (``celery -A console worker``) on the test PostgreSQL and Redis.
Nothing is faked: the test process requests operations through the services, the worker runs them
through the routing client, the importer confirms them. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc

from routing.keys import cluster_of
from tests.routing.harness import EngineProcess, ProxyProcess, cluster_entry
from tests.support import bpmn, python_env, wait_for
from tests.support.processes import REPO_ROOT

# Used by tests/operations/test_part2_end_to_end.py for its hand-written documents.
ZEEBE = 'xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"'
BPMN = 'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'


def service_task(task_id: str, job_type: str) -> str:
    """A service task without incoming/outgoing children (the flows name it), for hand-written documents."""
    return (
        f'<bpmn:serviceTask id="{task_id}"><bpmn:extensionElements>'
        f'<zeebe:taskDefinition type="{job_type}" retries="3"/></bpmn:extensionElements></bpmn:serviceTask>'
    )


def linear_process(process_id: str, *steps: str) -> bytes:
    """start -> service task per step (element id = step, job type = "<process>-<step>") -> end."""
    nodes = ['<bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>']
    flows = []
    previous = "start"
    for index, step in enumerate(steps):
        nodes.append(bpmn.service_task(step, f"{process_id}-{step}", f"f{index}", f"f{index + 1}"))
        flows.append(bpmn.flow(f"f{index}", previous, step))
        previous = step
    last = len(steps)
    nodes.append(f'<bpmn:endEvent id="end"><bpmn:incoming>f{last}</bpmn:incoming></bpmn:endEvent>')
    flows.append(bpmn.flow(f"f{last}", previous, "end"))
    return bpmn.process_xml(process_id, "".join(nodes + flows))


def manual_process(process_id: str, assignee: str) -> bytes:
    """start -> user task assigned to ``assignee`` (job based) -> end."""
    return bpmn.process_xml(
        process_id,
        '<bpmn:startEvent id="start"/>'
        '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="analyse"/>'
        '<bpmn:userTask id="analyse"><bpmn:extensionElements>'
        f'<zeebe:assignmentDefinition assignee="{assignee}"/></bpmn:extensionElements></bpmn:userTask>'
        '<bpmn:sequenceFlow id="f2" sourceRef="analyse" targetRef="end"/><bpmn:endEvent id="end"/>',
    )


def calling_process(process_id: str, called: str) -> bytes:
    return bpmn.process_xml(
        process_id,
        '<bpmn:startEvent id="start"/>'
        '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="call"/>'
        '<bpmn:callActivity id="call"><bpmn:extensionElements>'
        f'<zeebe:calledElement processId="{called}" propagateAllChildVariables="false"/>'
        "</bpmn:extensionElements></bpmn:callActivity>"
        '<bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="end"/><bpmn:endEvent id="end"/>',
    )


class Gateway:
    """A plain Zeebe client over the proxy (global keys), for setting up and driving instances."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = gateway_pb2_grpc.GatewayStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def deploy(self, name: str, content: bytes) -> None:
        self.stub.DeployResource(
            pb.DeployResourceRequest(resources=[pb.Resource(name=name, content=content)]), timeout=20
        )

    def create(self, process_id: str, variables: dict[str, Any] | None = None) -> int:
        response = self.stub.CreateProcessInstance(
            pb.CreateProcessInstanceRequest(
                bpmnProcessId=process_id, version=-1, variables=json.dumps(variables or {})
            ),
            timeout=10,
        )
        return int(response.processInstanceKey)

    def create_on(self, cluster_id: int, process_id: str, variables: dict[str, Any] | None = None) -> int:
        """Create instances until one lands on ``cluster_id`` (placement is the proxy's choice);
        the others are cancelled again."""
        for _ in range(40):
            key = self.create(process_id, variables)
            if cluster_of(key) == cluster_id:
                return key
            self.stub.CancelProcessInstance(
                pb.CancelProcessInstanceRequest(processInstanceKey=key), timeout=10
            )
        raise AssertionError(f"no instance was placed on cluster {cluster_id} in 40 tries")

    def activate(
        self, job_type: str, *, count: int = 1, worker: str = "test", timeout_ms: int = 60_000
    ) -> list[pb.ActivatedJob]:
        jobs: list[pb.ActivatedJob] = []
        request = pb.ActivateJobsRequest(
            type=job_type, worker=worker, timeout=timeout_ms, maxJobsToActivate=count, requestTimeout=2000
        )
        for response in self.stub.ActivateJobs(request, timeout=15):
            jobs.extend(response.jobs)
        return jobs

    def activate_all(self, job_type: str, count: int, *, deadline_s: float = 60.0) -> list[pb.ActivatedJob]:
        jobs: list[pb.ActivatedJob] = []
        deadline = time.monotonic() + deadline_s
        while len(jobs) < count and time.monotonic() < deadline:
            jobs.extend(self.activate(job_type, count=min(100, count - len(jobs))))
        assert len(jobs) == count, f"activated {len(jobs)} of {count} {job_type} jobs"
        return jobs

    def fail(self, job_key: int, *, retries: int = 0, message: str = "boom") -> None:
        self.stub.FailJob(
            pb.FailJobRequest(jobKey=job_key, retries=retries, errorMessage=message), timeout=10
        )

    def complete(self, job_key: int, variables: dict[str, Any] | None = None) -> None:
        self.stub.CompleteJob(
            pb.CompleteJobRequest(jobKey=job_key, variables=json.dumps(variables or {})), timeout=10
        )


def database_url() -> str:
    """The URL of the database the test process uses (pytest-django's test database)."""
    from django.db import connection

    settings = connection.settings_dict
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"


@dataclass
class ManagedProcess:
    """A child process started in its own session, so the whole group can be signalled."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """SIGKILL the process and every child (a Celery worker's pool processes too)."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
        except ProcessLookupError:
            pass

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""


@dataclass
class Stack:
    """Two engines and the proxy (started once), plus per-test importer and Celery worker."""

    root: Path
    engines: dict[int, EngineProcess] = field(default_factory=dict)
    proxy: ProxyProcess | None = None
    worker: ManagedProcess | None = None
    importer: ManagedProcess | None = None
    worker_starts: int = 0
    worker_concurrency: int = 2
    lease_seconds: int = 4

    def start_clusters(self) -> Stack:
        self.root.mkdir(parents=True, exist_ok=True)
        for cluster_id in (1, 2):
            self.engines[cluster_id] = EngineProcess(self.root / f"cluster{cluster_id}", partitions=2).start()
        self.proxy = ProxyProcess(self.root / "proxy")
        self.proxy.start([cluster_entry(cluster_id, engine) for cluster_id, engine in self.engines.items()])
        wait_for(
            lambda: all(self.proxy.metrics()["clusters"][str(i)]["health"] == "up" for i in self.engines),
            30,
            what="both clusters healthy behind the proxy",
        )
        return self

    def stop(self) -> None:
        for child in (self.worker, self.importer):
            if child is not None:
                child.stop()
        if self.proxy is not None:
            self.proxy.stop()
        for engine in self.engines.values():
            engine.stop()

    def gateway(self) -> Gateway:
        assert self.proxy is not None
        return Gateway(self.proxy.address)

    def register_clusters(self) -> None:
        """Cluster rows for this test's database (a transactional test starts empty)."""
        from processes.models import Cluster
        from processes.services import cluster_create

        for cluster_id, engine in self.engines.items():
            if not Cluster.objects.filter(pk=cluster_id).exists():
                cluster_create(
                    cluster_id=cluster_id,
                    name=f"cluster-{cluster_id}",
                    gateway_address=engine.address,
                    record_source="engine_log",
                    record_source_config={"data_dir": str(engine.data_dir)},
                )

    def _env(self) -> dict[str, str]:
        env = python_env()
        env.update(
            DATABASE_URL=database_url(),
            DEBUG="0",
            SECRET_KEY=env.get("SECRET_KEY") or "e2e",
            FLEETFLOW_OPERATION_LEASE_SECONDS=str(self.lease_seconds),
            FLEETFLOW_OPERATION_RETRY_MAX_SECONDS="3",
            CELERY_VISIBILITY_TIMEOUT="10",
            FLEETFLOW_OPERATION_SWEEP_SECONDS="3",
            LOG_LEVEL="INFO",
        )
        return env

    def start_importer(self) -> ManagedProcess:
        self.importer = ManagedProcess(
            "importer",
            [sys.executable, "manage.py", "import_records", "--follow", "--idle-wait", "0.2"],
            self._env(),
            self.root / "importer.log",
        ).start()
        return self.importer

    def start_worker(self) -> ManagedProcess:
        self.worker_starts += 1
        self.worker = ManagedProcess(
            "celery",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "console",
                "worker",
                "--loglevel",
                "INFO",
                "--pool",
                "prefork",
                "--concurrency",
                str(self.worker_concurrency),
                "--hostname",
                f"ops{self.worker_starts}@%h",
                "--beat",  # the operations sweeper (settings.CELERY_BEAT_SCHEDULE)
                "--schedule",
                str(self.root / f"beat-{self.worker_starts}"),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            self._env(),
            self.root / f"celery-{self.worker_starts}.log",
        ).start()
        wait_for(
            lambda: "ready." in self.worker.log(200_000) or (not self.worker.alive() and _raise(self.worker)),
            60,
            what="celery worker ready",
        )
        return self.worker

    def records(self, cluster_id: int) -> list[dict[str, Any]]:
        return self.engines[cluster_id].records()

    def all_records(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for cluster_id in self.engines:
            for record in self.records(cluster_id):
                yield cluster_id, record


def _raise(process: ManagedProcess) -> bool:
    raise AssertionError(f"{process.name} exited: {process.log()}")


def count_records(
    records: Iterable[dict[str, Any]],
    value_type: str,
    intent: str,
    *,
    record_type: str = "EVENT",
    key: int | None = None,
    **match: Any,
) -> int:
    """How many records of a type and intent the engine wrote (with record ``key`` if given)
    whose value matches ``match``. Keys are the cluster's own (local) keys."""
    total = 0
    for record in records:
        if (
            record.get("valueType") == value_type
            and record.get("intent") == intent
            and record.get("recordType") == record_type
            and (key is None or record.get("key") == key)
            and all(record.get("value", {}).get(name) == value for name, value in match.items())
        ):
            total += 1
    return total


class WorkerThread:
    """A pyzeebe ZeebeWorker on its own event loop in a thread (``setup`` registers its tasks)."""

    def __init__(self, address: str, name: str, setup: Any) -> None:
        import threading

        self.address, self.name, self.setup = address, name, setup
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"zeebe-worker-{name}", daemon=True)
        self.loop: Any = None
        self.worker: Any = None
        self.error: BaseException | None = None

    def start(self) -> WorkerThread:
        self.thread.start()
        assert self.started.wait(10), f"worker {self.name} did not start"
        return self

    def _run(self) -> None:
        import asyncio

        try:
            asyncio.run(self._main())
        except BaseException as error:  # reported by stop()
            self.error = error

    async def _main(self) -> None:
        import asyncio

        from pyzeebe import ZeebeWorker, create_insecure_channel

        channel = create_insecure_channel(grpc_address=self.address)
        self.worker = ZeebeWorker(channel, name=self.name, poll_retry_delay=1)
        self.setup(self.worker)
        self.loop = asyncio.get_running_loop()
        self.started.set()
        await self.worker.work()

    def stop(self) -> None:
        import asyncio

        if self.loop is not None and self.worker is not None:
            asyncio.run_coroutine_threadsafe(self.worker.stop(), self.loop)
        self.thread.join(20)
