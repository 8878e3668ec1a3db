"""Per-cluster counters of the proxy: requests, errors by gRPC code, latency percentiles.

Read them with ``GatewayProxy.metrics()`` (a dict) or, when the proxy runs with ``--state-dir``,
from ``<state-dir>/metrics.json``, rewritten atomically every second (the console reads this
file; no HTTP endpoint). Shape::

    {"generatedAt": 1732662000.1, "clusters": {"1": {"id": 1, "name": ..., "address": ...,
      "state": "active", "health": "up", "healthSince": ..., "lastError": "...",
      "pendingDeployments": 0, "requests": 120, "errors": {"NOT_FOUND": 2},
      "byMethod": {"CompleteJob": 100, ...}, "instancesCreated": 40, "jobsActivated": 50,
      "jobsGivenBack": 0, "latencyMs": {"count": 120, "p50": 0.8, "p90": 1.2, "p99": 3.0,
      "max": 9.1, "buckets": {"0.5": 10, "1": 80, ..., "+Inf": 120}}}}}

Latency is measured around the upstream call of unary RPCs only (long polls and streams would
swamp it); percentiles come from the last 4096 samples, buckets are cumulative since start.
"""

from __future__ import annotations

import bisect
import json
import os
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUCKETS_MS = (0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
RESERVOIR = 4096


@dataclass
class ClusterCounters:
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    by_method: Counter[str] = field(default_factory=Counter)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=RESERVOIR))
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_MS) + 1))
    latency_count: int = 0
    instances_created: int = 0
    jobs_activated: int = 0
    jobs_given_back: int = 0
    deployments_replayed: int = 0

    def latency_summary(self) -> dict[str, Any]:
        samples = sorted(self.latencies_ms)

        def pct(q: float) -> float | None:
            if not samples:
                return None
            return round(samples[min(len(samples) - 1, int(q * len(samples)))], 3)

        cumulative: dict[str, int] = {}
        running = 0
        for bound, count in zip((*map(str, BUCKETS_MS), "+Inf"), self.buckets, strict=True):
            running += count
            cumulative[bound] = running
        return {
            "count": self.latency_count,
            "p50": pct(0.50),
            "p90": pct(0.90),
            "p99": pct(0.99),
            "max": round(samples[-1], 3) if samples else None,
            "buckets": cumulative,
        }


class ProxyMetrics:
    def __init__(self) -> None:
        self._clusters: dict[int, ClusterCounters] = {}

    def counters(self, cluster_id: int) -> ClusterCounters:
        counters = self._clusters.get(cluster_id)
        if counters is None:
            counters = self._clusters[cluster_id] = ClusterCounters()
        return counters

    def record(self, cluster_id: int, method: str, seconds: float | None, error_code: str | None) -> None:
        counters = self.counters(cluster_id)
        counters.requests += 1
        counters.by_method[method] += 1
        if error_code is not None:
            counters.errors[error_code] += 1
        if seconds is not None:
            millis = seconds * 1000.0
            counters.latencies_ms.append(millis)
            counters.latency_count += 1
            counters.buckets[bisect.bisect_left(BUCKETS_MS, millis)] += 1

    def cluster_snapshot(self, cluster_id: int) -> dict[str, Any]:
        counters = self.counters(cluster_id)
        return {
            "requests": counters.requests,
            "errors": dict(counters.errors),
            "byMethod": dict(counters.by_method),
            "instancesCreated": counters.instances_created,
            "jobsActivated": counters.jobs_activated,
            "jobsGivenBack": counters.jobs_given_back,
            "deploymentsReplayed": counters.deployments_replayed,
            "latencyMs": counters.latency_summary(),
        }


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write so a reader never sees half a file: tmp file in the same directory, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def now() -> float:
    return time.time()
