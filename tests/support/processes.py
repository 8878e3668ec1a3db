"""`python -m engine` and `python -m routing` as child processes on 127.0.0.1.

    engine = engine_process(tmp_path / "engine", partitions=2)         # started, gRPC health SERVING
    proxy = proxy_process(tmp_path / "proxy", [{"id": 1, "address": engine.address}])
    ...
    proxy.stop(); engine.stop()          # SIGTERM, then SIGKILL after `timeout`; engine.kill9() for crashes

Each writes its stderr to `<work_dir>/<name>.log`; `log_tail()` is for assertion messages.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.services import free_port
from tests.support.waiting import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
GATEWAY_SERVICE = "gateway_protocol.Gateway"


def python_env() -> dict[str, str]:
    """The environment for a child Python process that imports this checkout, output unbuffered."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"  # a log line is in the file when a test reads it
    return env


class ProcessExited(RuntimeError):
    """The child exited while a test waited for it to serve."""


class ServiceProcess:
    """One `python -m MODULE ARGS...` child process (`env` added to this one's environment) that
    serves gRPC with the health service on 127.0.0.1:port."""

    def __init__(
        self,
        name: str,
        module: str,
        args: Sequence[str],
        *,
        port: int,
        work_dir: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.module = module
        self.args = list(args)
        self.port = port
        self.work_dir = work_dir
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.work_dir / f"{self.name}.log"

    def start(self, *, timeout: float = 30.0) -> ServiceProcess:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                cwd=REPO_ROOT,
                env={**python_env(), **self.env},
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.wait_serving(timeout)
        return self

    def wait_serving(self, timeout: float = 30.0) -> None:
        """Until gRPC health says SERVING; a child that exits meanwhile fails the wait at once with
        ProcessExited (a RuntimeError carrying the exit code and the log tail)."""
        wait_for(
            self.serving,
            timeout=timeout,
            interval=0.05,
            what=f"{self.name} serving on {self.address}",
            stop_on=(ProcessExited,),
        )

    def serving(self) -> bool:
        """gRPC health says SERVING; raises (and so stops a wait) once the process has exited."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise ProcessExited(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
        with grpc.insecure_channel(self.address) as channel:
            try:
                response = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=GATEWAY_SERVICE), timeout=1
                )
            except grpc.RpcError:
                return False
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout)

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(15)

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except FileNotFoundError:
            return ""


def engine_process(
    work_dir: Path,
    *,
    partitions: int = 1,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
) -> ServiceProcess:
    """A started embedded engine; its data directory is `work_dir / "data"`."""
    port = port or free_port()
    args = ["--port", str(port), "--partitions", str(partitions), "--data-dir", str(work_dir / "data")]
    return ServiceProcess("engine", "engine", [*args, *extra_args], port=port, work_dir=work_dir).start(
        timeout=timeout
    )


def proxy_process(
    work_dir: Path,
    clusters: list[dict[str, Any]],
    *,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
) -> ServiceProcess:
    """A started gateway proxy over `clusters` (`{"id", "address", ...}` as `--clusters` reads them),
    its state in `work_dir / "state"`."""
    port = port or free_port()
    work_dir.mkdir(parents=True, exist_ok=True)
    clusters_file = work_dir / "clusters.json"
    clusters_file.write_text(json.dumps(clusters), encoding="utf-8")
    args = ["--port", str(port), "--clusters", str(clusters_file), "--state-dir", str(work_dir / "state")]
    return ServiceProcess("proxy", "routing", [*args, *extra_args], port=port, work_dir=work_dir).start(
        timeout=timeout
    )
