"""The gateway proxy: one Zeebe ``Gateway`` gRPC service in front of many clusters (DESIGN §3).

Every RPC of pyzeebe's ``GatewayServicer`` is implemented; each falls in one routing class:

* key-addressed (CompleteJob, FailJob, ThrowError, UpdateJobRetries, UpdateJobTimeout,
  ResolveIncident, CancelProcessInstance, SetVariables, ModifyProcessInstance,
  MigrateProcessInstance, DeleteResource; and CreateProcessInstance / EvaluateDecision when they
  name a definition key): the key's cluster bits choose the cluster, keys are stripped
  (:mod:`routing.keymap`), the answer's keys rewritten;
* placed (CreateProcessInstance(+WithResult) by bpmnProcessId, EvaluateDecision by id): smooth
  weighted round robin over active, healthy, deployment-complete clusters; on UNAVAILABLE or
  RESOURCE_EXHAUSTED (the command was not accepted there) the next cluster is tried; any other
  error goes back to the client unchanged;
* fan-out (DeployResource, DeployProcess, PublishMessage, BroadcastSignal): every non-disabled
  cluster that is not down, concurrently, answer from the first success in cluster-id order;
* activation (ActivateJobs, StreamActivatedJobs): see :mod:`routing.activation`;
* Topology: synthesized from the health checker's cached topologies, no upstream call.

Error codes (the decision the issue asks for):

* upstream errors pass through unchanged (status code and details text), so clients behave as
  with Zeebe (reference §1.5);
* a key whose cluster id is 0, outside 1..31, or not configured: INVALID_ARGUMENT naming the
  field, the key and the cluster. A client cannot have got such a key from this proxy, so it is
  a bad argument, not a missing entity; NOT_FOUND would make pyzeebe report "job not found" and
  hide the real mistake (often a plain Zeebe key used where a global key belongs);
* a key of a disabled cluster: FAILED_PRECONDITION (the system's state, not the request, is the
  problem; retrying will not help until an operator enables it);
* a key of a down cluster: UNAVAILABLE with the cluster and its last health error (retrying later
  is right, and the entity may well exist);
* no cluster to place a new instance on / no cluster to fan out to: UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from pyzeebe.proto import gateway_pb2, gateway_pb2_grpc

from routing.activation import JobActivation
from routing.clusters import Cluster, ClusterSet, ClusterState
from routing.health import Health, HealthMonitor
from routing.journal import DeploymentJournal, JournalEntry
from routing.keymap import KeyRewriteError, globalize_response, localize_request
from routing.keys import CLUSTER_SHIFT, ZEEBE_PARTITION_SHIFT, InvalidKeyError
from routing.metrics import ProxyMetrics
from routing.placement import SmoothWeightedRoundRobin
from routing.upstream import ChannelPool

log = logging.getLogger(__name__)

ResponseT = TypeVar("ResponseT", bound=Message)

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


class GatewayProxy(gateway_pb2_grpc.GatewayServicer):
    """The routing core and the gRPC servicer in one; see the module docstring."""

    def __init__(
        self,
        clusters: ClusterSet,
        *,
        state_dir: str | Path | None = None,
        health_interval: float = 0.25,
        health_deadline: float = 0.3,
        long_poll_default_ms: int = 10_000,
    ) -> None:
        self.clusters = clusters
        self.pool = ChannelPool()
        self.metrics_store = ProxyMetrics()
        self.placement = SmoothWeightedRoundRobin()
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.journal = DeploymentJournal(
            self.state_dir / "deployments.json" if self.state_dir is not None else None
        )
        self.health = HealthMonitor(
            clusters,
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
        self._started = time.time()

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

    def on_clusters_changed(self, old: Sequence[Cluster], new: Sequence[Cluster]) -> None:
        """ClusterSet listener: drop channels of removed addresses, re-check changed clusters."""
        self.pool.configure({c.address: c.security for c in new})
        self.pool.retain({c.address for c in new})
        old_by_id = {c.id: c for c in old}
        for cluster in new:
            before = old_by_id.get(cluster.id)
            if before is None or before.address != cluster.address or before.security != cluster.security:
                # A new address says nothing about the old one's health: check it now.
                self.health.status(cluster.id).status = Health.UNKNOWN
                self.health.status(cluster.id).consecutive_failures = 0
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

    @staticmethod
    def _remaining(context: grpc.aio.ServicerContext) -> float | None:
        remaining = context.time_remaining()
        if remaining is None:
            return None
        return max(0.0, remaining)

    def _globalize(self, cluster: Cluster, response: ResponseT) -> ResponseT:
        try:
            return globalize_response(cluster.id, response)
        except InvalidKeyError as error:
            raise RoutingAbort(
                grpc.StatusCode.INTERNAL,
                f"cluster {cluster.label} answered with a key the proxy cannot translate: {error}",
            ) from None

    async def _run(
        self, context: grpc.aio.ServicerContext, handler: Callable[[], Awaitable[ResponseT]]
    ) -> Any:
        """RPC boundary (unary calls): turn RoutingAbort and upstream errors into this call's status.

        Returns the response, or None after setting a non-OK status (grpc sends no message then)."""
        try:
            return await handler()
        except RoutingAbort as abort:
            return self._fail(context, abort.code, abort.details)
        except grpc.aio.AioRpcError as error:
            # Pass the cluster's status and text through unchanged (reference §1.5).
            return self._fail(context, error.code(), error.details() or "")

    @staticmethod
    def _fail(context: grpc.aio.ServicerContext, code: grpc.StatusCode, details: str) -> None:
        """End a unary call with ``code``: setting the status and returning no message is what
        ``context.abort`` does, without raising through grpc (cheaper on the error path)."""
        context.set_code(code)
        context.set_details(details)

    # ----------------------------------------------------------------- routing classes

    def _localize(self, request: Message) -> tuple[int | None, str | None, int | None]:
        try:
            route = localize_request(request)
        except KeyRewriteError as error:
            raise RoutingAbort(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from None
        return route.cluster_id, route.field, route.global_key

    async def key_addressed(self, method: str, request: Message, context: grpc.aio.ServicerContext) -> Any:
        # The hot path (CompleteJob, FailJob...): written out flat, no closure per call.
        try:
            route = localize_request(request)
            assert route.cluster_id is not None  # ROUTES fields are required by localize_request
            cluster = self.cluster_for_key(route.cluster_id, route.field, route.global_key)
            response = await self.call(cluster, method, request, context.time_remaining())
            return self._globalize(cluster, response)
        except KeyRewriteError as error:
            return self._fail(context, grpc.StatusCode.INVALID_ARGUMENT, str(error))
        except RoutingAbort as abort:
            return self._fail(context, abort.code, abort.details)
        except grpc.aio.AioRpcError as error:
            # Pass the cluster's status and text through unchanged (reference §1.5).
            return self._fail(context, error.code(), error.details() or "")

    async def placed(
        self,
        method: str,
        request: Message,
        context: grpc.aio.ServicerContext,
        *,
        counts_instance: bool,
    ) -> Any:
        async def handle() -> Any:
            cluster_id, field, global_key = self._localize(request)
            if cluster_id is not None:
                # By definition key: the definition exists on that cluster only.
                cluster = self.cluster_for_key(cluster_id, field, global_key)
                response = await self.call(cluster, method, request, self._remaining(context))
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
                remaining = self._remaining(context)
                if remaining is not None and remaining <= 0:
                    break
                try:
                    response = await self.call(cluster, method, request, remaining)
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

        return await self._run(context, handle)

    async def fan_out(self, method: str, request: Message, context: grpc.aio.ServicerContext) -> Any:
        """Send to every reachable non-disabled cluster; first success in cluster-id order."""

        async def handle() -> Any:
            targets = self.fan_out_targets()
            if not targets:
                raise RoutingAbort(
                    grpc.StatusCode.UNAVAILABLE,
                    f"no reachable cluster for {method} ({self.describe_clusters()})",
                )
            timeout = self._remaining(context)
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

        return await self._run(context, handle)

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
        async with self._deploy_lock(cluster.id):
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
                self.journal.mark_delivered(entry, cluster.id)
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

    # ================================================================= Gateway RPCs

    # The activation handlers are coroutines writing with ``context.write``, not async
    # generators: a write to a caller that left raises (or a cancellation arrives) right where
    # the jobs are held, so they are handed back at once. A generator parked at ``yield`` would
    # only run its hand-back when it is closed or garbage-collected.

    async def ActivateJobs(  # type: ignore[override]  # grpc.aio accepts a writing coroutine
        self, request: gateway_pb2.ActivateJobsRequest, context: grpc.aio.ServicerContext
    ) -> None:
        await self.activation.activate_jobs(request, context)

    async def StreamActivatedJobs(  # type: ignore[override]  # grpc.aio accepts a writing coroutine
        self, request: gateway_pb2.StreamActivatedJobsRequest, context: grpc.aio.ServicerContext
    ) -> None:
        await self.activation.stream_activated_jobs(request, context)

    async def CompleteJob(
        self, request: gateway_pb2.CompleteJobRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.CompleteJobResponse:
        return await self.key_addressed("CompleteJob", request, context)

    async def FailJob(
        self, request: gateway_pb2.FailJobRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.FailJobResponse:
        return await self.key_addressed("FailJob", request, context)

    async def ThrowError(
        self, request: gateway_pb2.ThrowErrorRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ThrowErrorResponse:
        return await self.key_addressed("ThrowError", request, context)

    async def UpdateJobRetries(
        self, request: gateway_pb2.UpdateJobRetriesRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.UpdateJobRetriesResponse:
        return await self.key_addressed("UpdateJobRetries", request, context)

    async def UpdateJobTimeout(
        self, request: gateway_pb2.UpdateJobTimeoutRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.UpdateJobTimeoutResponse:
        return await self.key_addressed("UpdateJobTimeout", request, context)

    async def ResolveIncident(
        self, request: gateway_pb2.ResolveIncidentRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ResolveIncidentResponse:
        return await self.key_addressed("ResolveIncident", request, context)

    async def CancelProcessInstance(
        self, request: gateway_pb2.CancelProcessInstanceRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.CancelProcessInstanceResponse:
        return await self.key_addressed("CancelProcessInstance", request, context)

    async def SetVariables(
        self, request: gateway_pb2.SetVariablesRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.SetVariablesResponse:
        return await self.key_addressed("SetVariables", request, context)

    async def ModifyProcessInstance(
        self, request: gateway_pb2.ModifyProcessInstanceRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ModifyProcessInstanceResponse:
        return await self.key_addressed("ModifyProcessInstance", request, context)

    async def MigrateProcessInstance(
        self, request: gateway_pb2.MigrateProcessInstanceRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.MigrateProcessInstanceResponse:
        return await self.key_addressed("MigrateProcessInstance", request, context)

    async def DeleteResource(
        self, request: gateway_pb2.DeleteResourceRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.DeleteResourceResponse:
        # Deleting removes the definition from its own cluster only: other clusters hold their
        # own copies under their own keys (documented limitation; see routing/README.md).
        return await self.key_addressed("DeleteResource", request, context)

    async def CreateProcessInstance(
        self, request: gateway_pb2.CreateProcessInstanceRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.CreateProcessInstanceResponse:
        return await self.placed("CreateProcessInstance", request, context, counts_instance=True)

    async def CreateProcessInstanceWithResult(
        self, request: gateway_pb2.CreateProcessInstanceWithResultRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.CreateProcessInstanceWithResultResponse:
        return await self.placed("CreateProcessInstanceWithResult", request, context, counts_instance=True)

    async def EvaluateDecision(
        self, request: gateway_pb2.EvaluateDecisionRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.EvaluateDecisionResponse:
        return await self.placed("EvaluateDecision", request, context, counts_instance=False)

    async def PublishMessage(
        self, request: gateway_pb2.PublishMessageRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.PublishMessageResponse:
        return await self.fan_out("PublishMessage", request, context)

    async def BroadcastSignal(
        self, request: gateway_pb2.BroadcastSignalRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.BroadcastSignalResponse:
        return await self.fan_out("BroadcastSignal", request, context)

    async def DeployResource(
        self, request: gateway_pb2.DeployResourceRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.DeployResourceResponse:
        async def handle() -> Any:
            resources = [(r.name, bytes(r.content)) for r in request.resources]
            cluster, response = await self.deploy(resources, request.tenantId, self._remaining(context))
            return self._globalize(cluster, response)

        return await self._run(context, handle)

    async def DeployProcess(
        self, request: gateway_pb2.DeployProcessRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.DeployProcessResponse:
        # Deprecated RPC: journaled and sent as DeployResource (same effect), answered in the
        # old shape.
        async def handle() -> Any:
            resources = [(p.name, bytes(p.definition)) for p in request.processes]
            cluster, response = await self.deploy(resources, "", self._remaining(context))
            response = self._globalize(cluster, response)
            return gateway_pb2.DeployProcessResponse(
                key=response.key,
                processes=[d.process for d in response.deployments if d.HasField("process")],
            )

        return await self._run(context, handle)

    async def Topology(
        self, request: gateway_pb2.TopologyRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.TopologyResponse:
        return self.synthesized_topology()
