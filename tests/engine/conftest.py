"""Fixtures: a real `python -m engine` subprocess on a free loopback port, and log helpers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import free_port  # re-exported: engine and other tests import it from here
from tests.support.processes import ServiceProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "bpmn"
SHARED_DATA = REPO_ROOT / ".." / "shared" / "data"


class EngineProcess(ServiceProcess):
    """`python -m engine` as a child process (tests.support's launcher); stopped with SIGTERM or
    killed with SIGKILL. `start()` raises RuntimeError with the log when the engine exits early."""

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
        port = port or free_port()
        args = ["--port", str(port), "--partitions", str(partitions), "--data-dir", str(data_dir)]
        args += ["--log-level", log_level, "--event-loop", event_loop]
        # One log file per instance: a restart on the same data dir gets its own (stderr() reads one life).
        name = f"engine-{port}-{time.monotonic_ns()}"
        super().__init__(name, "engine", args, port=port, work_dir=data_dir.parent)
        self.stderr_path = self.log_path

    def start(self, *, timeout: float = 30.0) -> EngineProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        super().start(timeout=timeout)
        return self

    def stderr(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 15.0) -> int:
        assert self.process is not None
        code = super().stop(timeout)
        assert code is not None
        return code

    def kill(self) -> None:
        assert self.process is not None
        self.kill9()


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
