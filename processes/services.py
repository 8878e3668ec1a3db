"""Writes of the processes app: every state change goes through one function here (CONVENTIONS §2)."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from processes.choices import ClusterState, RecordSource
from processes.models import CLUSTER_ID_MAX, CLUSTER_ID_MIN, CLUSTER_WEIGHT_MAX, Cluster

_ADDRESS = re.compile(r"^(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")

# Allowed routing-state changes. Every state can reach every other; a "change" to the current state is
# refused so that an operator clicking "drain" twice learns the cluster was already draining.
CLUSTER_TRANSITIONS: dict[str, frozenset[str]] = {
    ClusterState.ACTIVE: frozenset({ClusterState.DRAINING, ClusterState.DISABLED}),
    ClusterState.DRAINING: frozenset({ClusterState.ACTIVE, ClusterState.DISABLED}),
    ClusterState.DISABLED: frozenset({ClusterState.ACTIVE, ClusterState.DRAINING}),
}


class InvalidClusterTransition(ValidationError):
    """A cluster state change that is not allowed; the message says why."""


def validate_gateway_address(address: str) -> str:
    match = _ADDRESS.match(address.strip())
    if match is None:
        raise ValidationError(f"Gateway address {address!r} must be host:port, e.g. 127.0.0.1:26500")
    port = int(match.group("port"))
    if not 1 <= port <= 65535:
        raise ValidationError(f"Gateway address {address!r} has port {port} outside 1..65535")
    return address.strip()


@transaction.atomic
def cluster_create(
    *,
    cluster_id: int,
    name: str,
    gateway_address: str,
    weight: int = 1,
    state: str = ClusterState.ACTIVE,
    record_source: str = RecordSource.ENGINE_LOG,
    record_source_config: dict[str, Any] | None = None,
    gateway_security: dict[str, Any] | None = None,
) -> Cluster:
    if not CLUSTER_ID_MIN <= cluster_id <= CLUSTER_ID_MAX:
        raise ValidationError(f"Cluster id {cluster_id} is outside {CLUSTER_ID_MIN}..{CLUSTER_ID_MAX}")
    if Cluster.objects.filter(pk=cluster_id).exists():
        raise ValidationError(f"Cluster id {cluster_id} is already in use")
    cluster = Cluster(
        id=cluster_id,
        name=name,
        gateway_address=validate_gateway_address(gateway_address),
        weight=weight,
        state=state,
        record_source=record_source,
        record_source_config=record_source_config or {},
        gateway_security=gateway_security or {},  # validated by Cluster.clean (routing/security.py)
    )
    cluster.full_clean()
    cluster.save(force_insert=True)
    return cluster


@transaction.atomic
def cluster_set_state(*, cluster: Cluster, state: str, allow_no_placement: bool = False) -> Cluster:
    """Move a cluster to `state`; raises InvalidClusterTransition for a refused change.

    Taking the last active cluster out of placement leaves nowhere for new instances to go, so that
    needs `allow_no_placement=True` (an explicit operator confirmation).
    """
    locked = Cluster.objects.select_for_update().get(pk=cluster.pk)
    if state not in ClusterState.values:
        raise InvalidClusterTransition(
            f"Unknown cluster state {state!r}; expected one of {ClusterState.values}"
        )
    if locked.state == state:
        raise InvalidClusterTransition(f"Cluster {locked.name} is already {state}")
    if state not in CLUSTER_TRANSITIONS[locked.state]:
        raise InvalidClusterTransition(f"Cluster {locked.name} cannot go from {locked.state} to {state}")
    if locked.state == ClusterState.ACTIVE and not allow_no_placement:
        others = Cluster.objects.filter(state=ClusterState.ACTIVE, weight__gt=0).exclude(pk=locked.pk)
        if not others.exists():
            raise InvalidClusterTransition(
                f"Cluster {locked.name} is the last active cluster; new instances would have nowhere to go"
            )
    locked.state = state
    locked.save(update_fields=["state", "updated_at"])
    cluster.state = locked.state
    return locked


def cluster_drain(*, cluster: Cluster, allow_no_placement: bool = False) -> Cluster:
    return cluster_set_state(
        cluster=cluster, state=ClusterState.DRAINING, allow_no_placement=allow_no_placement
    )


def cluster_activate(*, cluster: Cluster) -> Cluster:
    return cluster_set_state(cluster=cluster, state=ClusterState.ACTIVE)


def cluster_disable(*, cluster: Cluster, allow_no_placement: bool = False) -> Cluster:
    return cluster_set_state(
        cluster=cluster, state=ClusterState.DISABLED, allow_no_placement=allow_no_placement
    )


@transaction.atomic
def cluster_update(
    *,
    cluster: Cluster,
    weight: int | None = None,
    gateway_address: str | None = None,
    name: str | None = None,
    record_source: str | None = None,
    record_source_config: dict[str, Any] | None = None,
    gateway_security: dict[str, Any] | None = None,
) -> Cluster:
    locked = Cluster.objects.select_for_update().get(pk=cluster.pk)
    if weight is not None:
        if not 0 <= weight <= CLUSTER_WEIGHT_MAX:
            raise ValidationError(f"Weight {weight} is outside 0..{CLUSTER_WEIGHT_MAX}")
        locked.weight = weight
    if gateway_address is not None:
        locked.gateway_address = validate_gateway_address(gateway_address)
    if name is not None:
        locked.name = name
    if record_source is not None:
        locked.record_source = record_source
    if record_source_config is not None:
        locked.record_source_config = record_source_config
    if gateway_security is not None:
        locked.gateway_security = gateway_security
    locked.full_clean()
    locked.save()
    return locked
