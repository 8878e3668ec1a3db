"""Real processes for the routing tests: embedded engine clusters, the proxy, zbctl.

Nothing here fakes a peer: ``EngineProcess`` runs ``python -m engine``, ``ProxyProcess`` runs
``python -m routing``, and both are driven over gRPC by real clients (pyzeebe, zbctl, stubs).
Every wait is bounded in time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc

from tests.services import free_port  # re-exported for the routing tests

REPO_ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition") -> Any:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception as error:  # a probe failing is "not yet"
            last_error = error
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_error!r})")


def python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class EngineProcess:
    """One ``python -m engine`` cluster on 127.0.0.1."""

    data_dir: Path
    partitions: int = 2
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    log_level: str = "INFO"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.stderr.log"

    def start(self, timeout: float = 30.0) -> EngineProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        stderr = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
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
            ],
            cwd=REPO_ROOT,
            env=python_env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        stderr.close()
        channel = grpc.insecure_channel(self.address)
        try:
            stub = gateway_pb2_grpc.GatewayStub(channel)

            def ready() -> bool:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"engine exited with {self.process.returncode}: {self.log_path.read_text()[-2000:]}"
                    )
                stub.Topology(pb.TopologyRequest(), timeout=1.0)
                return True

            wait_for(ready, timeout, interval=0.1, what=f"engine on {self.address}")
        finally:
            channel.close()
        return self

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def records(self) -> list[dict[str, Any]]:
        """Every record of every partition, from the engine's own log (its truth)."""
        from engine.log import LogReader, partition_ids

        found: list[dict[str, Any]] = []
        for partition_id in partition_ids(self.data_dir):
            found.extend(LogReader(self.data_dir, partition_id).iter_records(1))
        return found


@dataclass
class ProxyProcess:
    """One ``python -m routing --clusters FILE --state-dir DIR`` process on 127.0.0.1."""

    work_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_level: str = "INFO"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def clusters_file(self) -> Path:
        return self.work_dir / "clusters.json"

    @property
    def state_dir(self) -> Path:
        return self.work_dir / "state"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "proxy.stderr.log"

    def write_clusters(self, clusters: list[dict[str, Any]]) -> None:
        """Atomic rewrite, as an operator's tooling would do it."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.clusters_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(clusters), encoding="utf-8")
        os.replace(tmp, self.clusters_file)

    def start(self, clusters: list[dict[str, Any]] | None = None, timeout: float = 20.0) -> ProxyProcess:
        if clusters is not None:
            self.write_clusters(clusters)
        stderr = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "routing",
                "--port",
                str(self.port),
                "--clusters",
                str(self.clusters_file),
                "--state-dir",
                str(self.state_dir),
                "--log-level",
                self.log_level,
            ],
            cwd=REPO_ROOT,
            env=python_env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        stderr.close()
        wait_for(self.serving, timeout, interval=0.1, what=f"proxy on {self.address}")
        return self

    def serving(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"proxy exited: {self.log_path.read_text()[-3000:]}")
        with grpc.insecure_channel(self.address) as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="gateway_protocol.Gateway"), timeout=1.0
            )
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

    def metrics(self, *, fresh: bool = True) -> dict[str, Any]:
        """The proxy's metrics.json; by default one written after this call began (<= ~1 s)."""
        asked = time.time()

        def read() -> dict[str, Any] | None:
            data = dict(json.loads((self.state_dir / "metrics.json").read_text(encoding="utf-8")))
            return data if not fresh or data["generatedAt"] >= asked else None

        return dict(wait_for(read, 5.0, interval=0.05, what="a fresh metrics.json"))

    def parked_polls(self, job_type: str) -> dict[int, int]:
        """Long-poll legs of ``job_type`` the proxy has parked per cluster (its metrics.json)."""
        clusters = self.metrics()["activation"]["clusters"]
        return {
            int(cluster_id): entry["jobTypes"][job_type].get("parkedPolls", 0)
            for cluster_id, entry in clusters.items()
            if job_type in entry["jobTypes"]
        }

    def wait_parked(self, job_type: str, cluster_ids: set[int], timeout: float = 10.0) -> None:
        """Until a long poll of ``job_type`` is parked on every cluster of ``cluster_ids``."""
        wait_for(
            lambda: {c for c, n in self.parked_polls(job_type).items() if n > 0} >= cluster_ids,
            timeout,
            interval=0.0,
            what=f"a long poll of {job_type} parked on clusters {sorted(cluster_ids)}",
        )

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def cluster_entry(cluster_id: int, engine: EngineProcess, **extra: Any) -> dict[str, Any]:
    return {
        "id": cluster_id,
        "name": f"c{cluster_id}",
        "address": engine.address,
        "weight": 1,
        "state": "active",
        **extra,
    }


def iter_values(
    records: list[dict[str, Any]], value_type: str, intent: str | None = None
) -> Iterator[dict[str, Any]]:
    for record in records:
        if record.get("valueType") == value_type and (intent is None or record.get("intent") == intent):
            yield record
