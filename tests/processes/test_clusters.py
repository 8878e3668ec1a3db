"""Cluster model and its state services, on PostgreSQL, including the refused cases."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from processes import services
from processes.choices import ClusterState
from processes.models import Cluster
from processes.selectors import cluster_placement_candidates

pytestmark = pytest.mark.django_db


def make(cluster_id: int, **kwargs) -> Cluster:
    defaults = {"name": f"c{cluster_id}", "gateway_address": f"127.0.0.1:{26500 + cluster_id}"}
    defaults.update(kwargs)
    return services.cluster_create(cluster_id=cluster_id, **defaults)


def test_create_and_read_back():
    cluster = make(3, weight=5)
    stored = Cluster.objects.get(pk=3)
    assert (stored.name, stored.gateway_address, stored.weight, stored.state) == (
        "c3",
        "127.0.0.1:26503",
        5,
        "active",
    )
    assert cluster == stored


@pytest.mark.parametrize("cluster_id", [0, 32, -1, 100])
def test_cluster_id_outside_key_range_is_refused(cluster_id):
    with pytest.raises(ValidationError, match=r"outside 1\.\.31"):
        make(cluster_id)
    assert not Cluster.objects.exists()


def test_database_refuses_cluster_id_zero_even_without_the_service():
    with pytest.raises(IntegrityError), transaction.atomic():
        Cluster.objects.create(id=0, name="zero", gateway_address="127.0.0.1:1")


def test_duplicate_id_is_refused():
    make(1)
    with pytest.raises(ValidationError, match="already in use"):
        make(1, name="other")


@pytest.mark.parametrize("address", ["localhost", "127.0.0.1:", "127.0.0.1:99999", "http://x:1", "a b:1"])
def test_bad_gateway_address_is_refused(address):
    with pytest.raises(ValidationError, match="Gateway address"):
        make(2, gateway_address=address)


def test_drain_then_activate_then_disable():
    first, second = make(1), make(2)
    services.cluster_drain(cluster=first)
    first.refresh_from_db()
    assert first.state == ClusterState.DRAINING
    assert list(cluster_placement_candidates()) == [second]
    services.cluster_activate(cluster=first)
    services.cluster_disable(cluster=first)
    first.refresh_from_db()
    assert first.state == ClusterState.DISABLED


def test_change_to_the_same_state_is_refused():
    cluster = make(1)
    make(2)
    services.cluster_drain(cluster=cluster)
    with pytest.raises(services.InvalidClusterTransition, match="already draining"):
        services.cluster_drain(cluster=cluster)
    cluster.refresh_from_db()
    assert cluster.state == ClusterState.DRAINING


def test_unknown_state_is_refused():
    cluster = make(1)
    with pytest.raises(services.InvalidClusterTransition, match="Unknown cluster state"):
        services.cluster_set_state(cluster=cluster, state="paused")


def test_last_active_cluster_needs_explicit_confirmation():
    only = make(1)
    with pytest.raises(services.InvalidClusterTransition, match="last active cluster"):
        services.cluster_drain(cluster=only)
    only.refresh_from_db()
    assert only.state == ClusterState.ACTIVE
    services.cluster_drain(cluster=only, allow_no_placement=True)
    only.refresh_from_db()
    assert only.state == ClusterState.DRAINING


def test_zero_weight_cluster_does_not_count_as_a_placement_target():
    first = make(1)
    make(2, weight=0)
    with pytest.raises(services.InvalidClusterTransition, match="last active cluster"):
        services.cluster_disable(cluster=first)


def test_update_weight_bounds():
    cluster = make(1)
    services.cluster_update(cluster=cluster, weight=7)
    cluster.refresh_from_db()
    assert cluster.weight == 7
    with pytest.raises(ValidationError, match=r"outside 0\.\.10000"):
        services.cluster_update(cluster=cluster, weight=10_001)
    cluster.refresh_from_db()
    assert cluster.weight == 7
