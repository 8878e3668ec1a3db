"""Fixtures: a real `python -m engine` subprocess on a free loopback port, and log helpers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.services import free_port  # re-exported: engine and other tests import it from here

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "bpmn"
SHARED_DATA = REPO_ROOT / ".." / "shared" / "data"


class EngineProcess:
    """`python -m engine` as a child process; stopped with SIGTERM or killed with SIGKILL."""

    def __init__(
        self,
        data_dir: Path,
        partitions: int = 2,
        port: int | None = None,
        log_level: str = "INFO",
        event_loop: str = "auto",
    ):
        self.data_dir = data_dir
        self.log_level = log_level
        self.event_loop = event_loop
        self.partitions = partitions
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.stderr_path = data_dir.parent / f"engine-{self.port}-{time.monotonic_ns()}.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> EngineProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "engine",
                    "--port",
                    str(self.port),
                    "--partitions",
                    str(self.partitions),
                    "--data-dir",
                    str(self.data_dir),
                    "--log-level",
                    self.log_level,
                    "--event-loop",
                    self.event_loop,
                ],
                cwd=REPO_ROOT,
                env=env,
                stderr=stderr,
                stdout=subprocess.DEVNULL,
            )
        self.wait_serving()
        return self

    def wait_serving(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"engine exited early:\n{self.stderr()}")
                try:
                    response = stub.Check(
                        health_pb2.HealthCheckRequest(service="gateway_protocol.Gateway"), timeout=1
                    )
                    if response.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.05)
        raise TimeoutError(f"engine not serving after {timeout}s:\n{self.stderr()}")

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 15.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return int(self.process.returncode)

    def kill(self) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(15)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    """One engine (2 partitions) shared by the tests of a module."""
    data_dir = tmp_path_factory.mktemp("engine") / "data"
    process = EngineProcess(data_dir, partitions=2).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def fresh_engine(tmp_path: Path) -> Iterator[EngineProcess]:
    process = EngineProcess(tmp_path / "data", partitions=2).start()
    try:
        yield process
    finally:
        process.stop()
