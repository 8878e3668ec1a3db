"""The whole system as real processes for the browser tests and bench/console.py.

An embedded engine (``python -m engine``), the gateway proxy (``python -m routing`` with a state dir,
so the console reads its metrics.json), the importer (``manage.py import_records --follow``), a Celery
worker (operator actions) and the console itself under daphne (HTTP and websockets), all on
127.0.0.1, all against the same PostgreSQL database and Redis (the Channels layer and the Celery
broker). Workers are driven from the test through the proxy with the raw gateway stubs, so each
test decides exactly when a job fails or completes. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc as pb_grpc

from tests.services import free_port, wait_for_port
from tests.support import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "bpmn"
LIVE_APPLICATION_NAME = "fleetflow-live"


def database_url(settings_dict: dict[str, Any]) -> str:
    """The URL of the database Django uses right now (the test database under pytest-django)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    # The live processes name themselves, so a test can tell their sessions from its own.
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}?application_name={LIVE_APPLICATION_NAME}"


@dataclass
class LiveStack:
    work_dir: Path
    database_url: str
    redis_url: str
    engine_port: int = field(default_factory=free_port)
    proxy_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def engine_dir(self) -> Path:
        return self.work_dir / "engine"

    @property
    def proxy_state_dir(self) -> Path:
        return self.work_dir / "proxy"

    @property
    def proxy_address(self) -> str:
        return f"127.0.0.1:{self.proxy_port}"

    @property
    def engine_address(self) -> str:
        return f"127.0.0.1:{self.engine_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PYTEST", "DJANGO_ALLOW_ASYNC"))
        }
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "DEBUG": "0",
                "SECRET_KEY": "browser-test-secret-key",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "FLEETFLOW_PROXY_STATE_DIR": str(self.proxy_state_dir),
                "DJANGO_SETTINGS_MODULE": "console.settings",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.work_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        process = subprocess.Popen(
            args, cwd=REPO_ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.processes[name] = process
        return process

    def log_tail(self, name: str, size: int = 3000) -> str:
        path = self.work_dir / f"{name}.log"
        return path.read_text(errors="replace")[-size:] if path.exists() else ""

    def start_engine_and_proxy(self) -> None:
        self.engine_dir.mkdir(parents=True, exist_ok=True)
        python = sys.executable
        engine = self._start(
            "engine",
            [python, "-m", "engine", "--port", str(self.engine_port), "--partitions", "1",
             "--data-dir", str(self.engine_dir)],
        )  # fmt: skip
        wait_for_port(self.engine_port, "engine", engine)
        proxy = self._start(
            "proxy",
            [python, "-m", "routing", "--port", str(self.proxy_port), "--cluster",
             f"1={self.engine_address},name=c1", "--state-dir", str(self.proxy_state_dir), "--poll-interval", "0.5"],
        )  # fmt: skip
        wait_for_port(self.proxy_port, "proxy", proxy)
        wait_for(
            lambda: self.proxy_health(1) == "up",
            timeout=30,
            interval=0.1,
            what="the proxy to see cluster 1 up",
        )

    def proxy_health(self, cluster_id: int) -> str | None:
        metrics = json.loads((self.proxy_state_dir / "metrics.json").read_text())
        return metrics["clusters"][str(cluster_id)].get("health")

    def start_console_side(self) -> None:
        """Importer, Celery worker and daphne: they need the Cluster row to exist first."""
        self.start_importer()
        self.start_celery()
        self.start_web()

    def start_importer(self) -> None:
        self._start(
            "importer", [sys.executable, "manage.py", "import_records", "--follow", "--idle-wait", "0.1"]
        )

    def start_celery(self) -> None:
        self._start(
            "celery",
            [sys.executable, "-m", "celery", "-A", "console", "worker", "--pool", "solo", "--concurrency", "1",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        )  # fmt: skip

    def start_web(self) -> None:
        web = self._start(
            "web",
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.web_port),
                "console.asgi:application",
            ],
        )
        wait_for_port(self.web_port, "daphne", web)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    # -- a Zeebe client through the proxy ------------------------------------------------------------

    def gateway(self) -> tuple[grpc.Channel, pb_grpc.GatewayStub]:
        channel = grpc.insecure_channel(self.proxy_address)
        return channel, pb_grpc.GatewayStub(channel)

    def deploy(self, name: str, content: bytes) -> None:
        def deployed() -> bool:
            channel, stub = self.gateway()
            with channel:
                try:
                    stub.DeployResource(
                        pb.DeployResourceRequest(resources=[pb.Resource(name=name, content=content)]),
                        timeout=30,
                    )
                except grpc.RpcError as error:
                    # A loaded machine can miss a health check; the proxy says UNAVAILABLE until the next.
                    if error.code() == grpc.StatusCode.UNAVAILABLE:  # type: ignore[attr-defined]
                        return False
                    raise
            return True

        wait_for(deployed, timeout=60, interval=0.5, what=f"the deployment of {name}")

    def create(self, process_id: str, variables: dict[str, Any] | None = None) -> int:
        channel, stub = self.gateway()
        with channel:
            response = stub.CreateProcessInstance(
                pb.CreateProcessInstanceRequest(
                    bpmnProcessId=process_id, version=-1, variables=json.dumps(variables or {})
                ),
                timeout=30,
            )
        return int(response.processInstanceKey)

    def activate(self, job_type: str, *, worker: str, max_jobs: int = 10, wait_ms: int = 2000) -> list[Any]:
        channel, stub = self.gateway()
        jobs: list[Any] = []
        with channel:
            request = pb.ActivateJobsRequest(
                type=job_type,
                worker=worker,
                timeout=60_000,
                maxJobsToActivate=max_jobs,
                requestTimeout=wait_ms,
            )
            for response in stub.ActivateJobs(request, timeout=wait_ms / 1000 + 20):
                jobs.extend(response.jobs)
        return jobs

    def activate_until(self, job_type: str, *, worker: str, count: int, timeout: float = 30.0) -> list[Any]:
        found: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            found.extend(self.activate(job_type, worker=worker, max_jobs=count - len(found)))
        assert len(found) >= count, f"only {len(found)} of {count} {job_type} jobs activated"
        return found

    def complete(self, job_key: int, variables: dict[str, Any] | None = None) -> None:
        channel, stub = self.gateway()
        with channel:
            stub.CompleteJob(
                pb.CompleteJobRequest(jobKey=job_key, variables=json.dumps(variables or {})), timeout=30
            )

    def fail(self, job_key: int, message: str, retries: int = 0) -> None:
        channel, stub = self.gateway()
        with channel:
            stub.FailJob(pb.FailJobRequest(jobKey=job_key, retries=retries, errorMessage=message), timeout=30)


BPMN_HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="defs" targetNamespace="http://fleetflow.test">'
)


def one_step_model(process_id: str, step: str) -> bytes:
    """start -> step -> end without diagram data (the console lays it out with bpmn-auto-layout).
    ``step`` is the task element with incoming f1 and outgoing f2."""
    return (
        BPMN_HEADER + f'<bpmn:process id="{process_id}" isExecutable="true">'
        '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
        + step
        + '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
        '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="step"/>'
        '<bpmn:sequenceFlow id="f2" sourceRef="step" targetRef="end"/>'
        "</bpmn:process></bpmn:definitions>"
    ).encode()


def service_step(job_type: str) -> str:
    return (
        f'<bpmn:serviceTask id="step" name="{job_type}"><bpmn:extensionElements>'
        f'<zeebe:taskDefinition type="{job_type}" retries="1"/></bpmn:extensionElements>'
        "<bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>"
    )


def user_step(assignee: str) -> str:
    return (
        '<bpmn:userTask id="step" name="Manual analysis"><bpmn:extensionElements>'
        f'<zeebe:assignmentDefinition assignee="{assignee}" candidateGroups="hardware-technicians"/>'
        "</bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>"
    )
