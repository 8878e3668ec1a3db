"""The routing core: every routing decision of the gateway proxy, with no transport attached.

Two thin adapters sit on top of :class:`RoutingCore` and add nothing but their transport:
:class:`routing.proxy.GatewayProxy` (the gRPC ``GatewayServicer`` that ``python -m routing``
serves, for any Zeebe client) and :class:`routing.channel.RoutingChannel` (an in-process
``grpc.aio.Channel`` look-alike for Python clients such as pyzeebe, without a second gRPC hop).
Both call :meth:`RoutingCore.unary` (or the activation entry points) with the request and a
timeout, and turn :class:`RoutingAbort` / ``grpc.aio.AioRpcError`` into their own error form, so
the rules below exist once.

Every RPC of the Zeebe ``Gateway`` service falls in one routing class (:data:`UNARY_ROUTES`):

* key-addressed (CompleteJob, FailJob, ThrowError, UpdateJobRetries, UpdateJobTimeout,
  ResolveIncident, CancelProcessInstance, SetVariables, ModifyProcessInstance,
  MigrateProcessInstance, DeleteResource; and CreateProcessInstance / EvaluateDecision when they
  name a definition key): the key's cluster bits choose the cluster, keys are stripped
  (:mod:`routing.keymap`), the answer's keys rewritten;
* placed (CreateProcessInstance(+WithResult) by bpmnProcessId, EvaluateDecision by id): smooth
  weighted round robin over active, healthy, deployment-complete clusters; a create goes to the
  next cluster only when the first provably did not take it (:func:`provably_not_taken`), an
  EvaluateDecision on UNAVAILABLE or RESOURCE_EXHAUSTED; any other error goes back unchanged;
* fan-out (DeployResource, DeployProcess, PublishMessage, BroadcastSignal): every non-disabled
  cluster that is not down, concurrently; deployments are journaled (:mod:`routing.journal`)
  and replayed to clusters that missed them;
* activation (ActivateJobs, StreamActivatedJobs): :mod:`routing.activation`, which writes to the
  caller through the narrow :class:`routing.activation.ActivationCall` interface;
* Topology: synthesized from the health checker's cached topologies, no upstream call.

Error codes:

* upstream errors pass through unchanged (status code and details text), so clients behave as
  with Zeebe (reference §1.5);
* a key whose cluster id is 0, outside 1..31, or not configured: INVALID_ARGUMENT naming the
  field, the key and the cluster. A client cannot have got such a key from the proxy, so it is
  a bad argument, not a missing entity; NOT_FOUND would make pyzeebe report "job not found" and
  hide the real mistake (often a plain Zeebe key used where a global key belongs);
* a key of a disabled cluster: FAILED_PRECONDITION (the system's state, not the request, is the
  problem; retrying will not help until an operator enables it);
* a key of a down cluster: UNAVAILABLE with the cluster and its last health error (retrying later
  is right, and the entity may well exist);
* no cluster to place a new instance on / no cluster to fan out to: UNAVAILABLE.

The core also owns the cluster list's source (polled every ``poll_interval``), health checking,
the deployment journal and its catch-up loop, and the metrics file, so a channel built from the
same ``--clusters`` file and ``--journal`` as a proxy behaves as that proxy does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from pyzeebe.proto import gateway_pb2, gateway_pb2_grpc

from routing.activation import ActivationCall, JobActivation
from routing.clusters import (
    Cluster,
    ClusterConfigError,
    ClusterSet,
    ClusterSource,
    ClusterState,
    static_source,
)
from routing.health import Health, HealthMonitor
from routing.journal import DeploymentJournal, JournalEntry
from routing.keymap import KeyRewriteError, globalize_response, localize_request
from routing.keys import CLUSTER_SHIFT, ZEEBE_PARTITION_SHIFT, InvalidKeyError
from routing.messages import start_message_names
from routing.metrics import ProxyMetrics, write_json_atomically
from routing.placement import SmoothWeightedRoundRobin
from routing.upstream import ChannelPool

log = logging.getLogger(__name__)

ResponseT = TypeVar("ResponseT", bound=Message)

MAX_POLL_INTERVAL = 1.0
"""The cluster source is read at least this often, so a change takes effect within 2 s."""

NOT_SENT_MARKER = "failed to connect to all addresses"
"""gRPC's text when no connection to the cluster could be picked for a call: the request never
left the proxy. (An UNAVAILABLE from a connection that broke after the call started reads
"Socket closed", "Connection reset by peer"... and says nothing about whether it was executed.)"""


def provably_not_taken(error: grpc.aio.AioRpcError) -> bool:
    """True when ``error`` proves the cluster did not execute the command (issue 21).

    RESOURCE_EXHAUSTED: the cluster refused it before processing (backpressure). UNAVAILABLE
    with :data:`NOT_SENT_MARKER`: it was never sent. Anything else (a connection lost after
    sending, a deadline, the cluster's own UNAVAILABLE) leaves the outcome unknown.
    """
    if error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return True
    return error.code() is grpc.StatusCode.UNAVAILABLE and NOT_SENT_MARKER in (error.details() or "")


RETRY_ON_NEXT_CLUSTER = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
"""Placement errors after which an EvaluateDecision (no lasting effect) is tried on the next
cluster. Creates are retried only when :func:`provably_not_taken`. NOT_FOUND, INVALID_ARGUMENT,
FAILED_PRECONDITION... are the client's to see."""

PERMANENT_DEPLOY_ERRORS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)
"""A deployment refused with one of these will not succeed on replay: stop retrying it there."""

NODE_ID_STRIDE = 1000
"""Synthesized Topology: broker node id = cluster_id * 1000 + the cluster's own node id."""

DEFAULT_UNARY_TIMEOUT = 30.0
"""Upstream deadline when the client sent none (Zeebe's gateway has its own 15 s request timeout)."""


class RoutingAbort(Exception):
    """Raised inside the proxy to end the RPC with this status (converted at the RPC boundary)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def _ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S.%f")[:-3] + "Z"


KEY_ADDRESSED = (
    "CompleteJob",
    "FailJob",
    "ThrowError",
    "UpdateJobRetries",
    "UpdateJobTimeout",
    "ResolveIncident",
    "CancelProcessInstance",
    "SetVariables",
    "ModifyProcessInstance",
    "MigrateProcessInstance",
    # Deleting removes the definition from its own cluster only: other clusters hold their
    # own copies under their own keys (documented limitation; see routing/README.md).
    "DeleteResource",
)
PLACED = {"CreateProcessInstance": True, "CreateProcessInstanceWithResult": True, "EvaluateDecision": False}
"""Placed methods and whether each starts an instance (counted; never retried after sending)."""
FAN_OUT = ("BroadcastSignal",)
"""Fanned out as is. PublishMessage is fanned out too, unless its name starts instances
(:meth:`RoutingCore.publish_message`)."""
STREAMING = ("ActivateJobs", "StreamActivatedJobs")
"""Server-streaming methods: routed by :mod:`routing.activation` through an ActivationCall."""
BOUNDED_BY_DEADLINE = frozenset((*KEY_ADDRESSED, *PLACED, *FAN_OUT, "PublishMessage", "Topology"))
"""Unary methods that end by the caller's deadline on their own: every wait in them is an upstream
call given the time the caller has left (Topology waits for nothing). Deployments are not: they
also wait for the journal's and the clusters' delivery locks, so an adapter that has no gRPC
server to enforce the deadline (the channel) bounds them itself."""


class RoutingCore:
    """Routing over a cluster source; see the module docstring. Start it with :meth:`start`
    inside the event loop that will use it, stop it with :meth:`close`."""

    def __init__(
        self,
        source: ClusterSource | Iterable[Cluster] | ClusterSet,
        *,
        state_dir: str | Path | None = None,
        journal_path: str | Path | None = None,
        poll_interval: float = 0.5,
        metrics_interval: float = 1.0,
        health_interval: float = 0.25,
        health_deadline: float = 0.3,
        long_poll_default_ms: int = 10_000,
    ) -> None:
        if isinstance(source, ClusterSet):  # a fixed, caller-managed set (no polling)
            self.clusters = source
            self.source: ClusterSource | None = None
        else:
            self.clusters = ClusterSet()
            self.source = source if callable(source) else static_source(source)
        self._source_is_static = not callable(source)
        """A list given as such: read once at start, never polled (it cannot change; a thread
        hop every poll interval for nothing cost every channel process ~1 ms CPU per second)."""
        self.clusters.on_change(self.on_clusters_changed)
        self.poll_interval = min(poll_interval, MAX_POLL_INTERVAL)
        self.metrics_interval = metrics_interval
        self.pool = ChannelPool()
        self.metrics_store = ProxyMetrics()
        self.placement = SmoothWeightedRoundRobin()
        self.state_dir = Path(state_dir) if state_dir is not None else None
        # The journal is shared by every proxy and channel in front of the same clusters when they
        # are given the same file (routing/journal.py explains the locking); by default it lives
        # in the state directory, one per process.
        if journal_path is None and self.state_dir is not None:
            journal_path = self.state_dir / "deployments.json"
        self.journal = DeploymentJournal(journal_path)
        self.health = HealthMonitor(
            self.clusters,
            self.pool,
            interval=health_interval,
            deadline=health_deadline,
            on_up=self._on_cluster_up,
        )
        self.activation = JobActivation(self)
        self.activation.long_poll_default_ms = long_poll_default_ms
        self._deploy_locks: dict[int, asyncio.Lock] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._sync_wakeup: asyncio.Event | None = None
        self._last_source_error: str | None = None
        self._started = time.time()
        self._start_messages: tuple[int, frozenset[str]] = (-1, frozenset())
        self.unary_routes: dict[str, Callable[[Any, float | None], Awaitable[Any]]] = {
            # functools.partial, not a wrapping coroutine: one coroutine frame less per call on
            # the hot path (CompleteJob, creates), for the proxy and the channel alike.
            **{method: functools.partial(self.key_addressed, method) for method in KEY_ADDRESSED},
            **{
                method: functools.partial(self.placed, method, counts_instance=counts)
                for method, counts in PLACED.items()
            },
            **{method: functools.partial(self.fan_out, method) for method in FAN_OUT},
            "PublishMessage": self.publish_message,
            "DeployResource": self.deploy_resource,
            "DeployProcess": self.deploy_process,
            "Topology": self.topology,
        }
        """Method name -> ``handler(request, timeout)`` for every unary RPC: the one dispatch
        table both adapters use."""

    # ----------------------------------------------------------------- cluster source

    async def refresh_clusters(self) -> bool:
        """Poll the source once (in a thread: it may do blocking I/O or ORM queries)."""
        if self.source is None:
            return False
        source = self.source
        try:
            clusters = await asyncio.to_thread(lambda: list(source()))
            changed = self.clusters.replace(clusters)
        except (ClusterConfigError, ValueError, TypeError) as error:
            message = str(error)
            if message != self._last_source_error:
                log.error("cluster list rejected, keeping the previous one: %s", message)
            self._last_source_error = message
            return False
        except Exception as error:  # a failing source must not stop the proxy
            message = f"{type(error).__name__}: {error}"
            if message != self._last_source_error:
                log.exception("cluster source failed, keeping the previous list")
            self._last_source_error = message
            return False
        self._last_source_error = None
        if changed:
            log.info(
                "cluster list: %s",
                "; ".join(f"{c.label} weight={c.weight} state={c.state.value}" for c in self.clusters)
                or "empty",
            )
        return changed

    async def _poll_source(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            await self.refresh_clusters()

    async def _write_metrics(self) -> None:
        assert self.state_dir is not None
        path = self.state_dir / "metrics.json"
        while True:
            try:
                await asyncio.to_thread(write_json_atomically, path, self.metrics())
            except OSError as error:
                log.warning("cannot write %s: %s", path, error)
            await asyncio.sleep(self.metrics_interval)

    async def start(self) -> None:
        """Load the cluster list (a source that fails with no list yet raises
        ClusterConfigError), check every cluster once, then run the background loops: source
        polling, health checks, deployment catch-up and, with a state directory, metrics.json."""
        await self.refresh_clusters()
        if self._last_source_error is not None and not len(self.clusters):
            raise ClusterConfigError(self._last_source_error)
        await self.start_background()
        if self.source is not None and not self._source_is_static:
            self.spawn(self._poll_source())
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self.spawn(self._write_metrics())

    # ----------------------------------------------------------------- lifecycle helpers

    def spawn(self, coroutine: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run a background task, keeping a strong reference until it ends."""
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def start_background(self) -> None:
        """Check every cluster once (so the first request sees real health), then keep going."""
        self._sync_wakeup = asyncio.Event()
        await self.health.check_all()
        self.spawn(self.health.run())
        self.spawn(self._deployment_sync_loop())

    async def close(self, hand_back_grace: float = 5.0) -> None:
        """Stop background work. Jobs held for callers are handed back, and leftover long-poll
        slices get ``hand_back_grace`` seconds to end, so a shutdown leaves no job locked."""
        await self.activation.close(hand_back_grace)
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.health.close()
        await self.pool.close()
        if self.state_dir is not None:
            try:
                write_json_atomically(self.state_dir / "metrics.json", self.metrics())
            except OSError as error:
                log.warning("cannot write the final metrics.json: %s", error)

    def on_clusters_changed(self, old: Sequence[Cluster], new: Sequence[Cluster]) -> None:
        """ClusterSet listener: drop channels of removed addresses, re-check changed clusters."""
        self.pool.configure({c.address: c.security for c in new})
        self.pool.retain({c.address for c in new})
        old_by_id = {c.id: c for c in old}
        for cluster in new:
            before = old_by_id.get(cluster.id)
            if before is None or before.address != cluster.address or before.security != cluster.security:
                # A new address says nothing about the old one's health: check it now. (Before
                # start, check_all does; a check spawned here would make it skip the cluster as
                # "in flight" and return before the first answer, leaving the first calls with
                # no healthy cluster.)
                self.health.status(cluster.id).status = Health.UNKNOWN
                self.health.status(cluster.id).consecutive_failures = 0
                if self._sync_wakeup is not None:
                    self.spawn(self.health.check(cluster))
            if before is not None and before.state is not cluster.state:
                log.info("cluster %s: state %s -> %s", cluster.label, before.state.value, cluster.state.value)
        if self._sync_wakeup is not None:
            self._sync_wakeup.set()

    # ----------------------------------------------------------------- metrics

    def metrics(self) -> dict[str, Any]:
        """Per-cluster counters, health and deployment backlog (the metrics.json content)."""
        clusters: dict[str, Any] = {}
        for cluster in self.clusters:
            health = self.health.status(cluster.id)
            clusters[str(cluster.id)] = {
                **cluster.to_mapping(),
                "health": health.status.value,
                "healthSince": health.since,
                "lastHealthyAt": health.last_ok,
                "lastError": health.last_error,
                "pendingDeployments": len(self.journal.pending_for(cluster.id)),
                **self.metrics_store.cluster_snapshot(cluster.id),
            }
        return {
            "generatedAt": time.time(),
            "startedAt": self._started,
            "clusters": clusters,
            "deployments": len(self.journal.entries),
            "activation": self.activation.metrics(),
        }

    # ----------------------------------------------------------------- cluster choice

    def cluster_label(self, cluster_id: int) -> str:
        cluster = self.clusters.get(cluster_id)
        return cluster.label if cluster is not None else str(cluster_id)

    def cluster_for_key(self, cluster_id: int, field: str | None, global_key: int | None) -> Cluster:
        """The cluster a key routes to, or RoutingAbort with the documented status."""
        cluster = self.clusters.get(cluster_id)
        if cluster is None:
            configured = ", ".join(str(c.id) for c in self.clusters) or "none"
            raise RoutingAbort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{field} {global_key} belongs to cluster {cluster_id}, which is not configured "
                f"in the routing proxy (configured clusters: {configured})",
            )
        if cluster.state is ClusterState.DISABLED:
            raise RoutingAbort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{field} {global_key} belongs to cluster {cluster.label}, which is disabled: "
                "nothing is routed to it until an operator enables it",
            )
        health = self.health.status(cluster.id)
        if health.status is Health.DOWN:
            raise RoutingAbort(
                grpc.StatusCode.UNAVAILABLE,
                f"{field} {global_key} belongs to cluster {cluster.label}, which is down "
                f"(failing health checks since {_ts(health.since)}: {health.last_error}); "
                "retry when it is back",
            )
        return cluster

    def fan_out_targets(self) -> list[Cluster]:
        """Non-disabled clusters that are not known to be down."""
        return [c for c in self.clusters.routable() if not self.health.is_down(c.id)]

    # The narrow interface job activation uses (routing.activation.ActivationHost).

    def activation_targets(self) -> list[Cluster]:
        return self.fan_out_targets()

    def cluster(self, cluster_id: int) -> Cluster | None:
        return self.clusters.get(cluster_id)

    def gateway_stub(self, cluster: Cluster) -> gateway_pb2_grpc.GatewayStub:
        return self.pool.get(cluster.address).stub

    def report_unavailable(self, cluster: Cluster, details: str) -> None:
        self.health.report_failure(cluster, details)

    def placement_candidates(self) -> list[Cluster]:
        """Active, weighted, healthy clusters, preferring those that have every deployment."""
        healthy = [c for c in self.clusters.active() if self.health.is_up(c.id)]
        in_sync = [c for c in healthy if self.journal.in_sync(c.id)]
        return in_sync or healthy

    def describe_clusters(self) -> str:
        parts = []
        for cluster in self.clusters:
            parts.append(
                f"{cluster.label}: {cluster.state.value}, {self.health.status(cluster.id).status.value}"
            )
        return "; ".join(parts) or "no clusters configured"

    # ----------------------------------------------------------------- upstream calls

    async def call(
        self,
        cluster: Cluster,
        method: str,
        request: Message,
        timeout: float | None,
    ) -> Any:
        """Call one unary RPC on ``cluster``, recording metrics; raises AioRpcError as is."""
        stub = self.pool.get(cluster.address).stub
        if timeout is None:
            timeout = DEFAULT_UNARY_TIMEOUT
        elif timeout < 0:
            timeout = 0.0
        started = time.perf_counter()
        try:
            response = await getattr(stub, method)(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            self.metrics_store.record(cluster.id, method, time.perf_counter() - started, error.code().name)
            if error.code() is grpc.StatusCode.UNAVAILABLE:
                self.health.report_failure(cluster, error.details() or "")
            raise
        self.metrics_store.record(cluster.id, method, time.perf_counter() - started, None)
        self.health.report_success(cluster.id)
        return response

    def _globalize(self, cluster: Cluster, response: ResponseT) -> ResponseT:
        try:
            return globalize_response(cluster.id, response)
        except InvalidKeyError as error:
            raise RoutingAbort(
                grpc.StatusCode.INTERNAL,
                f"cluster {cluster.label} answered with a key the proxy cannot translate: {error}",
            ) from None

    # ----------------------------------------------------------------- routing classes

    async def unary(self, method: str, request: Any, timeout: float | None) -> Any:
        """Route one unary RPC; raises RoutingAbort or the cluster's AioRpcError."""
        handler = self.unary_routes.get(method)
        if handler is None:
            raise RoutingAbort(grpc.StatusCode.UNIMPLEMENTED, f"Method not found: {method}")
        return await handler(request, timeout)

    def _localize(self, request: Message) -> tuple[int | None, str | None, int | None]:
        try:
            route = localize_request(request)
        except KeyRewriteError as error:
            raise RoutingAbort(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from None
        return route.cluster_id, route.field, route.global_key

    async def key_addressed(self, method: str, request: Message, timeout: float | None) -> Any:
        # The hot path (CompleteJob, FailJob...): written out flat.
        try:
            route = localize_request(request)
        except KeyRewriteError as error:
            raise RoutingAbort(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from None
        assert route.cluster_id is not None  # ROUTES fields are required by localize_request
        cluster = self.cluster_for_key(route.cluster_id, route.field, route.global_key)
        response = await self.call(cluster, method, request, timeout)
        return self._globalize(cluster, response)

    async def placed(
        self,
        method: str,
        request: Message,
        timeout: float | None,
        *,
        counts_instance: bool,
    ) -> Any:
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        if method == "EvaluateDecision" and request.decisionId:
            # Zeebe evaluates by id when one is given and ignores the key; so does routing
            # (the key may even be a plain, cluster-less one).
            request.decisionKey = 0
        cluster_id, field, global_key = self._localize(request)
        if cluster_id is not None:
            # By definition key: the definition exists on that cluster only.
            cluster = self.cluster_for_key(cluster_id, field, global_key)
            response = await self.call(cluster, method, request, remaining())
            if counts_instance:
                self.metrics_store.counters(cluster.id).instances_created += 1
            return self._globalize(cluster, response)
        order = self.placement.order(self.placement_candidates())
        if not order:
            raise RoutingAbort(
                grpc.StatusCode.UNAVAILABLE,
                f"no active healthy cluster to place the request on ({self.describe_clusters()})",
            )
        last_error: grpc.aio.AioRpcError | None = None
        for cluster in order:
            left = remaining()
            if left is not None and left <= 0:
                break
            try:
                response = await self.call(cluster, method, request, left)
            except grpc.aio.AioRpcError as error:
                if error.code() not in RETRY_ON_NEXT_CLUSTER:
                    raise
                if counts_instance and not provably_not_taken(error):
                    # The request reached the cluster and its answer was lost: it may have
                    # started the instance. Another cluster would start a second one, so
                    # the client hears that the outcome is unknown (as from Zeebe's gateway).
                    log.warning(
                        "%s on cluster %s failed after it was sent (%s: %s); not retried elsewhere",
                        method,
                        cluster.label,
                        error.code().name,
                        error.details(),
                    )
                    raise RoutingAbort(
                        grpc.StatusCode.UNAVAILABLE,
                        f"cluster {cluster.label} failed after the create was sent "
                        f"({error.code().name}: {error.details()}); it may or may not have created "
                        "the instance, so the proxy did not retry it on another cluster (that could "
                        "start it twice)",
                    ) from None
                log.info(
                    "%s on cluster %s failed with %s, trying the next cluster",
                    method,
                    cluster.label,
                    error.code().name,
                )
                last_error = error
                continue
            if counts_instance:
                self.metrics_store.counters(cluster.id).instances_created += 1
            return self._globalize(cluster, response)
        if last_error is not None:
            raise last_error
        raise RoutingAbort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded in proxy")

    def start_message_names(self) -> frozenset[str]:
        """Literal names of the process-level message start events of the latest deployed
        version of every process in the journal (routing/messages.py), cached per journal
        version."""
        entries = self.journal.entries
        version = self.journal.version
        if self._start_messages[0] != version:
            names = start_message_names(r for entry in entries for r in entry.resources)
            self._start_messages = (version, names)
        return self._start_messages[1]

    def start_message_target(self, correlation_key: str, message_id: str = "") -> list[Cluster]:
        """The cluster(s), in order of preference, for a message that starts instances.

        A non-empty correlation key always maps to the same cluster while the candidates stay
        the same (stable hash over the candidates sorted by id; the same in every proxy and
        channel), so Zeebe's "one active instance per correlation key" holds fleet-wide. Without
        a key but with a ``messageId``: the same by the id, so a retried publish meets the first
        one's ``messageId`` (Zeebe's ALREADY_EXISTS) instead of starting a second instance on
        another cluster. Without either: placement (weights, draining respected) like a create."""
        candidates = self.placement_candidates()
        if not candidates:
            return []
        stable = correlation_key or message_id
        if stable:
            ordered = sorted(candidates, key=lambda c: c.id)
            prefix = b"k:" if correlation_key else b"i:"
            digest = hashlib.blake2b(prefix + stable.encode("utf-8"), digest_size=8).digest()
            return [ordered[int.from_bytes(digest, "big") % len(ordered)]]
        return self.placement.order(candidates)

    async def publish_message(self, request: gateway_pb2.PublishMessageRequest, timeout: float | None) -> Any:
        """Fan-out, except for a message that starts instances: to exactly one cluster.

        Trade-off (routing/README.md "Messages"): a name that is both a start message and the
        name of catch events reaches only that one cluster, so a catch event of the same name
        waiting on another cluster does not get it. Fanning it out instead would start one
        instance per cluster, which is the worse surprise for a start message."""
        if request.name not in self.start_message_names():
            return await self.fan_out("PublishMessage", request, timeout)
        order = self.start_message_target(request.correlationKey, request.messageId)
        if not order:
            raise RoutingAbort(
                grpc.StatusCode.UNAVAILABLE,
                f"no active healthy cluster for start message {request.name!r} ({self.describe_clusters()})",
            )
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        last_error: grpc.aio.AioRpcError | None = None
        for cluster in order:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                response = await self.call(cluster, "PublishMessage", request, left)
            except grpc.aio.AioRpcError as error:
                # Without a correlation key another cluster is as good, if this one provably did
                # not take it (else the message could start two instances).
                if not provably_not_taken(error):
                    raise
                last_error = error
                continue
            return self._globalize(cluster, response)
        assert last_error is not None
        raise last_error

    async def fan_out(self, method: str, request: Message, timeout: float | None) -> Any:
        """Send to every reachable non-disabled cluster; first success in cluster-id order."""
        targets = self.fan_out_targets()
        if not targets:
            raise RoutingAbort(
                grpc.StatusCode.UNAVAILABLE,
                f"no reachable cluster for {method} ({self.describe_clusters()})",
            )
        results = await asyncio.gather(
            *(self.call(c, method, request, timeout) for c in targets),
            return_exceptions=True,
        )
        first_error: BaseException | None = None
        for cluster, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                if first_error is None:
                    first_error = result
                log.info("%s on cluster %s failed: %s", method, cluster.label, result)
                continue
            return self._globalize(cluster, result)
        assert first_error is not None
        raise first_error

    async def deploy_resource(
        self, request: gateway_pb2.DeployResourceRequest, timeout: float | None
    ) -> gateway_pb2.DeployResourceResponse:
        resources = [(r.name, bytes(r.content)) for r in request.resources]
        cluster, response = await self.deploy(resources, request.tenantId, timeout)
        return self._globalize(cluster, response)

    async def deploy_process(
        self, request: gateway_pb2.DeployProcessRequest, timeout: float | None
    ) -> gateway_pb2.DeployProcessResponse:
        # Deprecated RPC: journaled and sent as DeployResource (same effect), answered in the
        # old shape.
        resources = [(p.name, bytes(p.definition)) for p in request.processes]
        cluster, response = await self.deploy(resources, "", timeout)
        response = self._globalize(cluster, response)
        return gateway_pb2.DeployProcessResponse(
            key=response.key,
            processes=[d.process for d in response.deployments if d.HasField("process")],
        )

    async def topology(
        self, request: Any = None, timeout: float | None = None
    ) -> gateway_pb2.TopologyResponse:
        return self.synthesized_topology()

    # ----------------------------------------------------------------- activation

    async def activate_jobs(self, request: gateway_pb2.ActivateJobsRequest, call: ActivationCall) -> None:
        await self.activation.activate_jobs(request, call)

    async def stream_activated_jobs(
        self, request: gateway_pb2.StreamActivatedJobsRequest, call: ActivationCall
    ) -> None:
        await self.activation.stream_activated_jobs(request, call)

    # ----------------------------------------------------------------- deployments

    def _deploy_lock(self, cluster_id: int) -> asyncio.Lock:
        lock = self._deploy_locks.get(cluster_id)
        if lock is None:
            lock = self._deploy_locks[cluster_id] = asyncio.Lock()
        return lock

    @staticmethod
    def _deploy_request(entry: JournalEntry) -> gateway_pb2.DeployResourceRequest:
        return gateway_pb2.DeployResourceRequest(
            resources=[gateway_pb2.Resource(name=n, content=c) for n, c in entry.resources],
            tenantId=entry.tenant_id,
        )

    async def deliver_pending(
        self, cluster: Cluster, up_to_seq: int | None, timeout: float | None
    ) -> dict[int, Any]:
        """Deploy, in order, what ``cluster`` has not got yet (up to ``up_to_seq``).

        Returns ``{seq: response or AioRpcError}`` for the entries tried; stops at the first
        transient failure so later entries never overtake an earlier one (versions line up).
        """
        outcomes: dict[int, Any] = {}
        async with self._deploy_lock(cluster.id), self.journal.delivery_lock(cluster.id, timeout):
            # Read after taking the lock: another process sharing the journal may have just
            # delivered some of these (its answers are in the journal).
            for entry in self.journal.pending_for(cluster.id, up_to_seq):
                try:
                    response = await self.call(
                        cluster, "DeployResource", self._deploy_request(entry), timeout
                    )
                except grpc.aio.AioRpcError as error:
                    outcomes[entry.seq] = error
                    if error.code() in PERMANENT_DEPLOY_ERRORS and entry.delivered:
                        # Others took it, this cluster refuses it: retrying cannot help.
                        self.journal.mark_rejected(
                            entry, cluster.id, f"{error.code().name}: {error.details()}"
                        )
                        log.error(
                            "deployment %s (%s) refused by cluster %s: %s",
                            entry.seq,
                            ", ".join(entry.resource_names),
                            cluster.label,
                            error.details(),
                        )
                        continue
                    if error.code() in PERMANENT_DEPLOY_ERRORS:
                        continue  # decided by the caller (live deploy) or rejected above
                    break
                outcomes[entry.seq] = response
                if up_to_seq is None or entry.seq != up_to_seq:
                    self.metrics_store.counters(cluster.id).deployments_replayed += 1
                    log.info(
                        "delivered missed deployment %s (%s) to cluster %s",
                        entry.seq,
                        ", ".join(entry.resource_names),
                        cluster.label,
                    )
                self.journal.mark_delivered(entry, cluster.id, response.SerializeToString())
        return outcomes

    async def deploy(
        self, resources: list[tuple[str, bytes]], tenant_id: str, timeout: float | None
    ) -> tuple[Cluster, gateway_pb2.DeployResourceResponse]:
        """Journal, deploy to every non-disabled cluster, answer from the lowest-id success.

        Waits for every leg (bounded by the deadline) before answering, so an instance created
        right after the deployment finds the definition wherever it is placed.
        """
        entry = self.journal.append(resources, tenant_id)
        routable = list(self.clusters.routable())
        targets = [c for c in routable if not self.health.is_down(c.id)]
        for cluster in routable:
            if cluster not in targets:
                log.warning(
                    "deployment %s not sent to cluster %s (down); it gets it when it is back",
                    entry.seq,
                    cluster.label,
                )
        outcomes = await asyncio.gather(
            *(self.deliver_pending(c, entry.seq, timeout) for c in targets),
            return_exceptions=True,
        )
        first_error: BaseException | None = None
        answer: tuple[Cluster, gateway_pb2.DeployResourceResponse] | None = None
        for cluster, outcome in zip(targets, outcomes, strict=True):
            result = outcome.get(entry.seq, None) if isinstance(outcome, dict) else outcome
            if isinstance(outcome, TimeoutError):
                result = grpc.aio.AioRpcError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.aio.Metadata(),
                    grpc.aio.Metadata(),
                    details=f"cluster {cluster.label}: {outcome}",
                )
            if result is None:
                # Delivered before this leg got to it, by the catch-up loop of this or another
                # process sharing the journal: that cluster's answer was stored with the entry.
                stored = self.journal.response_for(entry, cluster.id)
                if stored is not None:
                    result = gateway_pb2.DeployResourceResponse.FromString(stored)
            if result is None:
                result = grpc.aio.AioRpcError(  # an earlier missed entry failed first
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.aio.Metadata(),
                    grpc.aio.Metadata(),
                    details=f"cluster {cluster.label} could not catch up on earlier deployments",
                )
            if isinstance(result, BaseException):
                if first_error is None:
                    first_error = result
                continue
            if answer is None:
                answer = (cluster, result)
        if answer is None:
            self.journal.drop(entry)
            if first_error is None:
                raise RoutingAbort(
                    grpc.StatusCode.UNAVAILABLE,
                    f"no reachable cluster to deploy to ({self.describe_clusters()})",
                )
            raise first_error
        # Clusters that refused what another accepted: recorded so they are not retried forever.
        for cluster, outcome in zip(targets, outcomes, strict=True):
            result = outcome.get(entry.seq) if isinstance(outcome, dict) else outcome
            if (
                isinstance(result, grpc.aio.AioRpcError)
                and result.code() in PERMANENT_DEPLOY_ERRORS
                and cluster.id not in entry.rejected
            ):
                self.journal.mark_rejected(entry, cluster.id, f"{result.code().name}: {result.details()}")
                log.error(
                    "deployment %s refused by cluster %s while others accepted it: %s",
                    entry.seq,
                    cluster.label,
                    result.details(),
                )
        return answer

    async def _on_cluster_up(self, cluster: Cluster) -> None:
        if self._sync_wakeup is not None:
            self._sync_wakeup.set()

    async def _deployment_sync_loop(self) -> None:
        """Deliver missed deployments to clusters that are up; wakes on up/changes, else 1 s."""
        assert self._sync_wakeup is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sync_wakeup.wait(), timeout=1.0)
            self._sync_wakeup.clear()
            for cluster in self.clusters.routable():
                if self.health.is_up(cluster.id) and self.journal.pending_for(cluster.id):
                    try:
                        await self.deliver_pending(cluster, None, timeout=10.0)
                    except Exception:  # keep syncing the others; logged
                        log.exception("deployment catch-up for cluster %s failed", cluster.label)

    # ----------------------------------------------------------------- topology

    def synthesized_topology(self) -> gateway_pb2.TopologyResponse:
        """Brokers of every non-disabled cluster (last known topology; DEAD when down).

        Node ids become ``cluster_id * 1000 + nodeId`` and partition ids
        ``(cluster_id << 7) | partitionId``, which is exactly what ``key >> 51`` (Zeebe's
        decodePartitionId) gives for the global keys clients hold. clusterSize counts the brokers
        listed, partitionsCount the partitions, replicationFactor is the smallest of the clusters,
        gatewayVersion the first healthy cluster's.
        """
        response = gateway_pb2.TopologyResponse()
        partitions = 0
        replication: list[int] = []
        version = ""
        for cluster in self.clusters.routable():
            health = self.health.status(cluster.id)
            topology = health.topology
            if topology is None:
                continue
            dead = health.status is not Health.UP
            if not dead and not version:
                version = topology.gatewayVersion
            replication.append(topology.replicationFactor)
            for broker in topology.brokers:
                synthesized = response.brokers.add(
                    nodeId=cluster.id * NODE_ID_STRIDE + broker.nodeId,
                    host=broker.host,
                    port=broker.port,
                    version=broker.version,
                )
                for partition in broker.partitions:
                    synthesized.partitions.add(
                        partitionId=(cluster.id << (CLUSTER_SHIFT - ZEEBE_PARTITION_SHIFT))
                        | partition.partitionId,
                        role=partition.role,
                        health=gateway_pb2.Partition.PartitionBrokerHealth.DEAD if dead else partition.health,
                    )
            partitions += topology.partitionsCount
        response.clusterSize = len(response.brokers)
        response.partitionsCount = partitions
        response.replicationFactor = min(replication) if replication else 1
        response.gatewayVersion = version or "8.5.0"
        return response
