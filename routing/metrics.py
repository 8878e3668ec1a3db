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

Prometheus: ``python -m routing ... --metrics-port N`` serves the same figures on
http://127.0.0.1:N/metrics (:class:`ProxyCollector`, read at scrape time on the proxy's event loop):

  fleetflow_proxy_requests_total{cluster,method}            calls sent to a cluster (answered or not)
  fleetflow_proxy_errors_total{cluster,code}                 of those, failed ones by gRPC status code
  fleetflow_proxy_request_duration_seconds{cluster}          histogram of unary upstream calls
  fleetflow_proxy_jobs_activated_total{cluster}              jobs passed from a cluster to workers
  fleetflow_proxy_jobs_handed_back_total{cluster}            jobs handed back to a cluster (a worker left)
  fleetflow_proxy_instances_created_total{cluster}
  fleetflow_proxy_deployments_replayed_total{cluster}
  fleetflow_proxy_pending_deployments{cluster}               deployments the cluster still lacks
  fleetflow_proxy_cluster_up{cluster}                        1 when its health check passes
  fleetflow_proxy_cluster_health{cluster,health}             1 for the current of up/down/unknown
  fleetflow_proxy_cluster_info{cluster,name,address,state}   1; weight in fleetflow_proxy_cluster_weight

Per-partition figures (commands, log position) are the engine's own (engine/metrics.py): the proxy
does not see partitions.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import os
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from gatewaykit.metrics_http import serve_registry

log = logging.getLogger(__name__)

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
    latency_sum_ms: float = 0.0
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
            "sumMs": round(self.latency_sum_ms, 3),
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
            counters.latency_sum_ms += millis
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


class ProxyCollector(Collector):
    """Prometheus view of ``GatewayProxy.metrics()`` (the metrics.json content), read per scrape."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Any]:
        clusters = self.snapshot()["clusters"]
        labels = ["cluster"]
        requests = CounterMetricFamily(
            "fleetflow_proxy_requests", "Calls sent to a cluster.", labels=["cluster", "method"]
        )
        errors = CounterMetricFamily(
            "fleetflow_proxy_errors", "Failed calls by gRPC status code.", labels=["cluster", "code"]
        )
        latency = HistogramMetricFamily(
            "fleetflow_proxy_request_duration_seconds",
            "Upstream time of unary calls (long polls and streams are not timed).",
            labels=labels,
        )
        totals = {
            "jobsActivated": CounterMetricFamily(
                "fleetflow_proxy_jobs_activated", "Jobs passed from a cluster to workers.", labels=labels
            ),
            "jobsGivenBack": CounterMetricFamily(
                "fleetflow_proxy_jobs_handed_back",
                "Activated jobs handed back to their cluster because the worker had left.",
                labels=labels,
            ),
            "instancesCreated": CounterMetricFamily(
                "fleetflow_proxy_instances_created", "Process instances created.", labels=labels
            ),
            "deploymentsReplayed": CounterMetricFamily(
                "fleetflow_proxy_deployments_replayed",
                "Deployments replayed to a cluster that had missed them.",
                labels=labels,
            ),
        }
        pending = GaugeMetricFamily(
            "fleetflow_proxy_pending_deployments", "Deployments the cluster still lacks.", labels=labels
        )
        up = GaugeMetricFamily(
            "fleetflow_proxy_cluster_up", "1 when the cluster's health check passes.", labels=labels
        )
        health = GaugeMetricFamily(
            "fleetflow_proxy_cluster_health",
            "1 for the cluster's current health.",
            labels=["cluster", "health"],
        )
        info = GaugeMetricFamily(
            "fleetflow_proxy_cluster_info",
            "The cluster's name, address and routing state.",
            labels=["cluster", "name", "address", "state"],
        )
        weight = GaugeMetricFamily("fleetflow_proxy_cluster_weight", "Placement weight.", labels=labels)
        for cluster_id, figures in sorted(clusters.items(), key=lambda item: int(item[0])):
            cluster = str(cluster_id)
            for method, count in sorted(figures["byMethod"].items()):
                requests.add_metric([cluster, method], count)
            for code, count in sorted(figures["errors"].items()):
                errors.add_metric([cluster, code], count)
            timing = figures["latencyMs"]
            buckets = [
                (bound if bound == "+Inf" else repr(float(bound) / 1000.0), float(count))
                for bound, count in timing["buckets"].items()
            ]
            latency.add_metric([cluster], buckets, timing["sumMs"] / 1000.0)
            for key, family in totals.items():
                family.add_metric([cluster], figures[key])
            pending.add_metric([cluster], figures["pendingDeployments"])
            up.add_metric([cluster], 1 if figures["health"] == "up" else 0)
            for value in ("up", "down", "unknown"):
                health.add_metric([cluster, value], 1 if figures["health"] == value else 0)
            info.add_metric([cluster, figures["name"], figures["address"], figures["state"]], 1)
            weight.add_metric([cluster], figures["weight"])
        yield from (requests, errors, latency, *totals.values(), pending, up, health, info, weight)


async def serve_metrics(
    snapshot: Callable[[], dict[str, Any]], *, port: int, host: str = "127.0.0.1"
) -> asyncio.Server:
    """Serve GET /metrics (:class:`ProxyCollector` over ``snapshot``) from the running event loop."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProxyCollector(snapshot))
    server = await serve_registry(registry, host=host, port=port)
    log.info("metrics on http://%s:%d/metrics", host, server.sockets[0].getsockname()[1])
    return server
