"""Real processes for the routing tests: embedded engine clusters, the proxy, zbctl.

Nothing here fakes a peer: ``EngineProcess`` runs ``python -m engine``, ``ProxyProcess`` runs
``python -m routing``, and both are driven over gRPC by real clients (pyzeebe, zbctl, stubs).
Every wait is bounded in time.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.services import free_port  # re-exported for the routing tests
from tests.support import ServiceProcess, python_env, wait_for  # re-exported for the routing tests
from tests.support.processes import REPO_ROOT

__all__ = [
    "REPO_ROOT",
    "EngineProcess",
    "ProxyProcess",
    "cluster_entry",
    "free_port",
    "iter_values",
    "python_env",
    "wait_for",
]


class EngineProcess(ServiceProcess):
    """One ``python -m engine`` cluster on 127.0.0.1 (tests.support's launcher), restartable on the
    same port and data directory, with its log next to the data directory."""

    def __init__(
        self, data_dir: Path, partitions: int = 2, port: int | None = None, log_level: str = "INFO"
    ) -> None:
        self.data_dir = data_dir
        self.partitions = partitions
        self.log_level = log_level
        self.starts = 0
        port = port or free_port()
        args = ["--port", str(port), "--partitions", str(partitions), "--data-dir", str(data_dir)]
        super().__init__(
            "engine", "engine", [*args, "--log-level", log_level], port=port, work_dir=data_dir.parent
        )

    @property
    def log_path(self) -> Path:
        # Two engines may share a parent directory (cluster1/, cluster2/ under one root).
        return self.data_dir.parent / f"{self.data_dir.name}.stderr.log"

    def start(self, timeout: float = 30.0) -> EngineProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        super().start(timeout=timeout)
        return self

    def records(self) -> list[dict[str, Any]]:
        """Every record of every partition, from the engine's own log (its truth)."""
        from engine.log import LogReader, partition_ids

        found: list[dict[str, Any]] = []
        for partition_id in partition_ids(self.data_dir):
            found.extend(LogReader(self.data_dir, partition_id).iter_records(1))
        return found


class ProxyProcess(ServiceProcess):
    """One ``python -m routing --clusters FILE --state-dir DIR`` process on 127.0.0.1 (tests.support's
    launcher) whose cluster file the test rewrites, plus readers of its metrics.json."""

    def __init__(
        self,
        work_dir: Path,
        port: int | None = None,
        process: subprocess.Popen[bytes] | None = None,
        log_level: str = "INFO",
        clusters_file: Path | None = None,
        journal: Path | None = None,
    ) -> None:
        port = port or free_port()
        self.log_level = log_level
        self._clusters_file = clusters_file or work_dir / "clusters.json"
        args = ["--port", str(port), "--clusters", str(self._clusters_file)]
        args += ["--state-dir", str(work_dir / "state"), "--log-level", log_level]
        if journal is not None:  # shared with other proxies in front of the same clusters
            args += ["--journal", str(journal)]
        super().__init__("proxy", "routing", args, port=port, work_dir=work_dir)
        self.process = process  # one the test started itself, to stop and probe like ours

    @property
    def clusters_file(self) -> Path:
        return self._clusters_file

    @property
    def state_dir(self) -> Path:
        return self.work_dir / "state"

    def write_clusters(self, clusters: list[dict[str, Any]]) -> None:
        """Atomic rewrite, as an operator's tooling would do it."""
        self.clusters_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.clusters_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(clusters), encoding="utf-8")
        os.replace(tmp, self.clusters_file)

    def start(self, clusters: list[dict[str, Any]] | None = None, timeout: float = 20.0) -> ProxyProcess:
        if clusters is not None:
            self.write_clusters(clusters)
        super().start(timeout=timeout)
        return self

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
