"""Health checking of the clusters behind the proxy (DESIGN §2: health is separate from state).

Every ``interval`` (250 ms) each non-disabled cluster gets a ``Topology`` call with a short
deadline. Topology rather than grpc.health: it exercises the Gateway service itself and its answer
is cached for the proxy's synthesized Topology, so the proxy's own Topology RPC costs no upstream
call. A cluster is ``down`` after ``failures_to_down`` consecutive failures (2: a killed cluster
refuses connections at once, so it is down in ~0.25-0.5 s; a hung one after two 300 ms deadlines,
well under 1 s) and ``up`` again after one success. A forwarded call that fails with UNAVAILABLE
counts as a failure too and triggers an immediate re-check, so placement stops choosing a dead
cluster even between ticks. A probe that merely times out while forwarded calls to the same
cluster keep succeeding is not counted (a busy cluster is not a dead one); so a cluster that hangs
right after serving calls is down after ~1.6 s rather than ~0.8 s.

Traffic vouches for an up cluster: a tick skips the probe of a cluster that is up, has no failure
counted, answered a forwarded call within the last ``interval`` and a probe within the last
``PROBE_MAX_AGE`` seconds. Under load that is three probes in four saved (each cost the proxy
~1.7 ms of CPU: 7 of an idle proxy's 9.5 ms per second per cluster; at ``bench/routing.py``'s rate
an estimated ~15 us per forwarded call), and nothing is detected later: a dead cluster fails
forwarded calls with UNAVAILABLE, which counts and re-checks at once as before; a hung one stops
answering them, so it no longer vouches and is probed from the next tick; and the cached topology
(the proxy's synthesized Topology) is never older than ``PROBE_MAX_AGE``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from pyzeebe.proto import gateway_pb2

from routing.clusters import Cluster, ClusterSet, ClusterState
from routing.security import explain_failure
from routing.upstream import ChannelPool

log = logging.getLogger(__name__)


BUSY_GRACE = 1.0
"""A probe that times out within this many seconds of a successful forwarded call does not count:
under load a cluster may answer Topology late while it is clearly serving."""


PROBE_MAX_AGE = 1.0
"""A cluster is probed at least this often (seconds) even while its traffic vouches for it."""


class Health(enum.StrEnum):
    UNKNOWN = "unknown"  # not checked yet
    UP = "up"
    DOWN = "down"


@dataclass
class ClusterHealth:
    status: Health = Health.UNKNOWN
    since: float = field(default_factory=time.time)
    consecutive_failures: int = 0
    last_error: str = ""
    last_ok: float | None = None
    last_traffic_ok: float = 0.0  # monotonic time of the last forwarded call that succeeded
    last_probe_ok: float = 0.0  # monotonic time of the last probe that succeeded
    topology: gateway_pb2.TopologyResponse | None = None
    checking: bool = False


class HealthMonitor:
    """Tracks up/down per cluster id; calls ``on_up(cluster)`` when a cluster comes (back) up."""

    def __init__(
        self,
        clusters: ClusterSet,
        pool: ChannelPool,
        *,
        interval: float = 0.25,
        deadline: float = 0.3,
        failures_to_down: int = 2,
        on_up: Callable[[Cluster], Awaitable[None] | None] | None = None,
    ) -> None:
        self.clusters = clusters
        self.pool = pool
        self.interval = interval
        self.deadline = deadline
        self.failures_to_down = failures_to_down
        self.on_up = on_up
        self._health: dict[int, ClusterHealth] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def status(self, cluster_id: int) -> ClusterHealth:
        health = self._health.get(cluster_id)
        if health is None:
            health = self._health[cluster_id] = ClusterHealth()
        return health

    def is_up(self, cluster_id: int) -> bool:
        return self.status(cluster_id).status is Health.UP

    def is_down(self, cluster_id: int) -> bool:
        return self.status(cluster_id).status is Health.DOWN

    def report_success(self, cluster_id: int) -> None:
        """A forwarded call to the cluster succeeded (keeps a busy cluster from looking hung)."""
        health = self._health.get(cluster_id)
        if health is not None:
            health.last_traffic_ok = time.monotonic()

    def report_failure(self, cluster: Cluster, error: str) -> None:
        """A forwarded call to ``cluster`` failed with UNAVAILABLE: count it, re-check now."""
        self._failed(cluster, f"forwarded call failed: {error}")
        self._spawn(self.check(cluster))

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _failed(self, cluster: Cluster, error: str) -> None:
        health = self.status(cluster.id)
        health.consecutive_failures += 1
        health.last_error = error
        if health.status is not Health.DOWN and health.consecutive_failures >= self.failures_to_down:
            log.warning("cluster %s is down: %s", cluster.label, error)
            health.status = Health.DOWN
            health.since = time.time()

    def _succeeded(self, cluster: Cluster, topology: gateway_pb2.TopologyResponse) -> None:
        health = self.status(cluster.id)
        health.consecutive_failures = 0
        health.last_ok = time.time()
        health.last_probe_ok = time.monotonic()
        health.topology = topology
        if health.status is not Health.UP:
            previous = health.status
            health.status = Health.UP
            health.since = time.time()
            log.info("cluster %s is up (was %s)", cluster.label, previous.value)
            if self.on_up is not None:
                result = self.on_up(cluster)
                if result is not None:
                    self._spawn(result)

    async def check(self, cluster: Cluster) -> None:
        """One Topology probe of ``cluster`` (skipped if one is already in flight)."""
        health = self.status(cluster.id)
        if health.checking:
            return
        health.checking = True
        try:
            stub = self.pool.get(cluster.address).stub
            topology = await stub.Topology(gateway_pb2.TopologyRequest(), timeout=self.deadline)
        except grpc.aio.AioRpcError as error:
            if (
                error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
                and time.monotonic() - health.last_traffic_ok < BUSY_GRACE
            ):
                # Slow to answer the probe but serving real calls right now: busy, not down.
                return
            self._failed(
                cluster,
                explain_failure(cluster.security, cluster.address, f"{error.code().name}: {error.details()}"),
            )
        except Exception as error:  # any probe failure means "not healthy"
            self._failed(cluster, f"{type(error).__name__}: {error}")
        else:
            self._succeeded(cluster, topology)
        finally:
            health.checking = False

    async def check_all(self) -> None:
        """Probe every non-disabled cluster once, concurrently."""
        targets = [c for c in self.clusters if c.state is not ClusterState.DISABLED]
        if targets:
            await asyncio.gather(*(self.check(c) for c in targets))
        known = {c.id for c in self.clusters}
        for cluster_id in list(self._health):
            if cluster_id not in known:
                del self._health[cluster_id]

    def traffic_vouches(self, cluster_id: int, now: float) -> bool:
        """True if this tick's probe of the cluster would tell nothing new (module docstring)."""
        health = self._health.get(cluster_id)
        return (
            health is not None
            and health.status is Health.UP
            and health.consecutive_failures == 0
            and now - health.last_traffic_ok < self.interval
            and now - health.last_probe_ok < PROBE_MAX_AGE
        )

    async def run(self) -> None:
        """Probe forever at ``interval``; a slow probe never delays the others."""
        while True:
            started = time.monotonic()
            for cluster in self.clusters:
                if cluster.state is not ClusterState.DISABLED and not self.traffic_vouches(
                    cluster.id, started
                ):
                    self._spawn(self.check(cluster))
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
