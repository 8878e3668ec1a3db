"""Synchronous routing client for the Django side (Celery tasks): global key in, owning cluster out.

Celery tasks are synchronous, so this uses plain (sync) gRPC stubs, one channel per gateway
address, cached for the process (module level: a task that builds a ``Router`` per run still
reuses the connection). It talks to the clusters directly, not through the proxy, and applies the
same key table (:mod:`routing.keymap`), so the keys it takes and returns are the global keys the
proxy and the importer use::

    router = Router(clusters)               # list of Cluster/dicts, a ClusterSet or a callable
    router.complete_job(job_key, {"ok": True})
    stub, local_key = router.gateway_for(job_key)

Errors are typed:

* :class:`routing.keys.UnknownClusterError` - the key's cluster id is 0, out of range or not in
  the list; :class:`routing.keys.InvalidKeyError` - not a key at all (0, -1, negative);
* :class:`ClusterUnavailableError` - the cluster is disabled, reported down by ``health``, or the
  call failed with UNAVAILABLE (``reason`` says which);
* :class:`GatewayError` - the cluster answered with an error: ``code`` (grpc.StatusCode) and
  ``details`` exactly as Zeebe sent them (e.g. NOT_FOUND for a job that no longer exists).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc

from routing.clusters import Cluster, ClusterSet, ClusterState, validate_cluster_list
from routing.keymap import KeyRewriteError, globalize_response, localize_request
from routing.keys import InvalidKeyError, UnknownClusterError, from_global, to_global
from routing.security import UpstreamSecurity
from routing.upstream import CHANNEL_OPTIONS

__all__ = [
    "ActivateInstruction",
    "ClusterUnavailableError",
    "GatewayError",
    "InvalidKeyError",
    "Router",
    "RoutingError",
    "UnknownClusterError",
    "health_from_metrics_file",
]


class RoutingError(Exception):
    """Base class of the routing client's own errors."""


class ClusterUnavailableError(RoutingError):
    """The owning cluster cannot be reached now: ``reason`` is disabled, down or unreachable."""

    def __init__(self, message: str, *, cluster_id: int, reason: str) -> None:
        super().__init__(message)
        self.cluster_id = cluster_id
        self.reason = reason


class GatewayError(RoutingError):
    """The cluster answered with a gRPC error; ``code`` and ``details`` are Zeebe's own."""

    def __init__(self, code: grpc.StatusCode, details: str, *, cluster_id: int) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.cluster_id = cluster_id


@dataclass(frozen=True)
class ActivateInstruction:
    """One ``activateInstructions`` entry of ModifyProcessInstance (global keys)."""

    element_id: str
    ancestor_element_instance_key: int = -1  # -1: use the existing flow scope (passes through)
    variables: Mapping[str, Any] | None = None
    variables_scope_id: str = ""  # element id of the scope; "" = the process instance


_channels: dict[
    tuple[int, str, UpstreamSecurity | None], tuple[grpc.Channel, gateway_pb2_grpc.GatewayStub]
] = {}
_channels_lock = threading.Lock()


def _stub_for(address: str, security: UpstreamSecurity | None = None) -> gateway_pb2_grpc.GatewayStub:
    # Keyed by pid too: a gRPC channel must not cross a fork (Celery's prefork pool), so each
    # worker process opens its own on first use. Keyed by the security settings as well, so a
    # cluster switched to TLS gets a new channel (the proxy's way: routing/upstream.py).
    key = (os.getpid(), address, security)
    with _channels_lock:
        cached = _channels.get(key)
        if cached is None:
            if security is not None and security.tls:
                channel = grpc.secure_channel(
                    address,
                    security.channel_credentials(),
                    options=CHANNEL_OPTIONS + security.channel_options(),
                )
            else:
                channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
            cached = (channel, gateway_pb2_grpc.GatewayStub(channel))
            _channels[key] = cached
        return cached[1]


def health_from_metrics_file(path: str | Path, max_age: float = 5.0) -> Callable[[int], bool]:
    """A ``health`` callable for :class:`Router` reading the proxy's ``metrics.json``.

    Returns True ("down") for a cluster the proxy reports down; a missing or stale file (older
    than ``max_age`` seconds) says nothing, so calls are attempted.
    """
    metrics_path = Path(path)
    cache: dict[str, Any] = {"read": 0.0, "down": set()}

    def is_down(cluster_id: int) -> bool:
        now = time.time()
        if now - cache["read"] > 0.5:
            cache["read"] = now
            try:
                data = json.loads(metrics_path.read_text(encoding="utf-8"))
                fresh = now - float(data.get("generatedAt", 0)) <= max_age
                cache["down"] = (
                    {int(k) for k, v in data["clusters"].items() if v.get("health") == "down"}
                    if fresh
                    else set()
                )
            except (OSError, ValueError, KeyError, TypeError):
                cache["down"] = set()
        return cluster_id in cache["down"]

    return is_down


ClustersArg = (
    ClusterSet | Iterable[Cluster | Mapping[str, Any]] | Callable[[], Iterable[Cluster | Mapping[str, Any]]]
)


class Router:
    """Routes calls addressed by global keys to the owning cluster; see the module docstring."""

    def __init__(
        self,
        clusters: ClustersArg,
        *,
        timeout: float = 10.0,
        health: Callable[[int], bool] | None = None,
    ) -> None:
        self._clusters = clusters
        self.timeout = timeout
        self.health = health

    def clusters(self) -> tuple[Cluster, ...]:
        source = self._clusters
        if isinstance(source, ClusterSet):
            return source.clusters
        if callable(source):
            return validate_cluster_list(source())
        return validate_cluster_list(source)

    def cluster(self, cluster_id: int) -> Cluster:
        """The configured, routable cluster ``cluster_id``, or a typed error."""
        for cluster in self.clusters():
            if cluster.id == cluster_id:
                break
        else:
            configured = ", ".join(str(c.id) for c in self.clusters()) or "none"
            raise UnknownClusterError(
                f"cluster {cluster_id} is not configured (configured clusters: {configured})",
                cluster_id=cluster_id,
            )
        if cluster.state is ClusterState.DISABLED:
            raise ClusterUnavailableError(
                f"cluster {cluster.label} is disabled: nothing is routed to it",
                cluster_id=cluster_id,
                reason="disabled",
            )
        if self.health is not None and self.health(cluster_id):
            raise ClusterUnavailableError(
                f"cluster {cluster.label} is down (failing health checks)",
                cluster_id=cluster_id,
                reason="down",
            )
        return cluster

    def gateway_for(self, global_key: int) -> tuple[gateway_pb2_grpc.GatewayStub, int]:
        """The owning cluster's stub and the key as that cluster knows it."""
        cluster_id, local_key = from_global(global_key)
        cluster = self.cluster(cluster_id)
        return _stub_for(cluster.address, cluster.security), local_key

    # ------------------------------------------------------------------ calls

    def call(self, method: str, request: Message) -> Any:
        """Send a request that holds global keys to the cluster its keys name; rewrite the answer."""
        try:
            route = localize_request(request)
        except KeyRewriteError as error:
            if error.reason == "unknown-cluster":
                raise UnknownClusterError(str(error)) from None
            raise InvalidKeyError(str(error)) from None
        if route.cluster_id is None:
            raise InvalidKeyError(f"{method}: the request names no key to route by")
        cluster = self.cluster(route.cluster_id)
        stub = _stub_for(cluster.address, cluster.security)
        try:
            response = getattr(stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as error:
            code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
            details = error.details() if hasattr(error, "details") else str(error)
            if code is grpc.StatusCode.UNAVAILABLE:
                raise ClusterUnavailableError(
                    f"cluster {cluster.label} is unreachable: {details}",
                    cluster_id=cluster.id,
                    reason="unreachable",
                ) from None
            raise GatewayError(code, details or "", cluster_id=cluster.id) from None
        return globalize_response(cluster.id, response)

    @staticmethod
    def _json(variables: Mapping[str, Any] | None) -> str:
        return json.dumps(dict(variables)) if variables else ""

    def complete_job(self, job_key: int, variables: Mapping[str, Any] | None = None) -> None:
        self.call("CompleteJob", pb.CompleteJobRequest(jobKey=job_key, variables=self._json(variables)))

    def fail_job(
        self,
        job_key: int,
        *,
        retries: int,
        error_message: str = "",
        retry_backoff_ms: int = 0,
        variables: Mapping[str, Any] | None = None,
    ) -> None:
        self.call(
            "FailJob",
            pb.FailJobRequest(
                jobKey=job_key,
                retries=retries,
                errorMessage=error_message,
                retryBackOff=retry_backoff_ms,
                variables=self._json(variables),
            ),
        )

    def throw_error(
        self,
        job_key: int,
        *,
        error_code: str,
        error_message: str = "",
        variables: Mapping[str, Any] | None = None,
    ) -> None:
        self.call(
            "ThrowError",
            pb.ThrowErrorRequest(
                jobKey=job_key,
                errorCode=error_code,
                errorMessage=error_message,
                variables=self._json(variables),
            ),
        )

    def update_job_retries(
        self, job_key: int, retries: int, *, operation_reference: int | None = None
    ) -> None:
        request = pb.UpdateJobRetriesRequest(jobKey=job_key, retries=retries)
        if operation_reference is not None:
            request.operationReference = operation_reference
        self.call("UpdateJobRetries", request)

    def update_job_timeout(self, job_key: int, timeout_ms: int) -> None:
        self.call("UpdateJobTimeout", pb.UpdateJobTimeoutRequest(jobKey=job_key, timeout=timeout_ms))

    def resolve_incident(self, incident_key: int, *, operation_reference: int | None = None) -> None:
        request = pb.ResolveIncidentRequest(incidentKey=incident_key)
        if operation_reference is not None:
            request.operationReference = operation_reference
        self.call("ResolveIncident", request)

    def cancel_process_instance(
        self, process_instance_key: int, *, operation_reference: int | None = None
    ) -> None:
        request = pb.CancelProcessInstanceRequest(processInstanceKey=process_instance_key)
        if operation_reference is not None:
            request.operationReference = operation_reference
        self.call("CancelProcessInstance", request)

    def set_variables(
        self,
        element_instance_key: int,
        variables: Mapping[str, Any],
        *,
        local: bool = False,
        operation_reference: int | None = None,
    ) -> int:
        """Set variables on a scope; returns the (global) key of the VARIABLE_DOCUMENT record."""
        request = pb.SetVariablesRequest(
            elementInstanceKey=element_instance_key, variables=json.dumps(dict(variables)), local=local
        )
        if operation_reference is not None:
            request.operationReference = operation_reference
        response = self.call("SetVariables", request)
        return int(response.key)

    def modify_process_instance(
        self,
        process_instance_key: int,
        *,
        activate: Sequence[ActivateInstruction] = (),
        terminate: Sequence[int] = (),
        operation_reference: int | None = None,
    ) -> None:
        """Activate elements and/or terminate element instances (all keys global)."""
        request = pb.ModifyProcessInstanceRequest(processInstanceKey=process_instance_key)
        for instruction in activate:
            item = request.activateInstructions.add(
                elementId=instruction.element_id,
                ancestorElementInstanceKey=instruction.ancestor_element_instance_key,
            )
            if instruction.variables:
                item.variableInstructions.add(
                    variables=json.dumps(dict(instruction.variables)),
                    scopeId=instruction.variables_scope_id,
                )
        for element_instance_key in terminate:
            request.terminateInstructions.add(elementInstanceKey=element_instance_key)
        if operation_reference is not None:
            request.operationReference = operation_reference
        self.call("ModifyProcessInstance", request)

    def publish_message(
        self,
        name: str,
        correlation_key: str,
        *,
        variables: Mapping[str, Any] | None = None,
        time_to_live_ms: int = 0,
        message_id: str = "",
    ) -> int:
        """Publish to every non-disabled cluster (a subscription may be on any); the first
        success's (global) message key is returned, else the first error is raised."""
        request = pb.PublishMessageRequest(
            name=name,
            correlationKey=correlation_key,
            timeToLive=time_to_live_ms,
            messageId=message_id,
            variables=self._json(variables),
        )
        first_error: RoutingError | None = None
        result: int | None = None
        for cluster in self.clusters():
            if cluster.state is ClusterState.DISABLED:
                continue
            try:
                response = _stub_for(cluster.address, cluster.security).PublishMessage(
                    request, timeout=self.timeout
                )
            except grpc.RpcError as error:
                if first_error is None:
                    first_error = GatewayError(error.code(), error.details() or "", cluster_id=cluster.id)
                continue
            if result is None:
                result = to_global(cluster.id, response.key) if response.key > 0 else response.key
        if result is not None:
            return result
        if first_error is not None:
            raise first_error
        raise ClusterUnavailableError("no routable cluster to publish to", cluster_id=0, reason="down")
