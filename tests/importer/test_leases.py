"""Leases in one process, step by step (processes/importer/leases.py): the fair share, a takeover
from an expired holder, and the fences that stop a stale holder's batch from committing.

Two `Leases` with their own holder ids stand for two importer processes; they share this test's
database session, which is alive, so only expiry (what a paused process shows) hands over here.
The subprocess tests (test_two_importers.py) cover kill -9 and SIGSTOP/SIGCONT."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from processes.importer.leases import LeaseLost, Leases
from processes.importer.positions import PositionsMoved
from processes.importer.runner import Importer, run_importers
from processes.models import ImporterProcess, ImportLease, ImportPosition
from tests.importer.conftest import Fleet
from tests.importer.helpers import import_all, log_cluster, snapshot, snapshot_diff, wipe_query_models

pytestmark = pytest.mark.django_db(transaction=True)


def _expire(holder: str) -> None:
    """What a paused holder looks like once its ttl passed: its heartbeat and leases expired."""
    past = timezone.now() - timedelta(seconds=1)
    ImporterProcess.objects.filter(holder=holder).update(expires_at=past)
    ImportLease.objects.filter(holder=holder).update(expires_at=past)


def _holders() -> dict[tuple[int, int], str]:
    return {(lease.cluster_id, lease.partition_id): lease.holder for lease in ImportLease.objects.all()}


def _counters() -> list[tuple[Any, ...]]:
    return list(
        ImportPosition.objects.order_by("cluster", "partition_id", "stream").values_list(
            "cluster", "partition_id", "stream", "position", "imported_count", "skipped_count", "error_count"
        )
    )


def test_two_holders_split_the_partitions_and_a_stale_batch_cannot_commit(fleet: Fleet) -> None:
    clusters = [log_cluster(cluster_id, path) for cluster_id, path in fleet.data_dirs.items()]
    for cluster in clusters:
        import_all(cluster)
    reference, reference_counters = snapshot(), _counters()
    wipe_query_models()

    a, b = Leases(holder="importer-a", ttl_seconds=5), Leases(holder="importer-b", ttl_seconds=5)
    importers_a = [Importer(cluster=cluster, batch_size=40, leases=a) for cluster in clusters]
    importers_b = [Importer(cluster=cluster, batch_size=40, leases=b) for cluster in clusters]
    units = set().union(*(importer.units() for importer in importers_a))
    assert units == {(1, 1), (1, 2), (2, 1), (2, 2)}
    try:
        # Alone, A takes every unit; once B is there, A gives one back per round down to its share.
        a.round(units)
        assert set(a.held) == units
        b.round(units)
        assert b.held == {}
        for _ in range(2):
            a.round(units)
            b.round(units)
        assert len(a.held) == len(b.held) == 2
        assert set(a.held) | set(b.held) == units

        for importer in importers_a:
            importer.run_once()
        # A reads its next batch, then is paused (its heartbeat and leases expire) before it
        # applies it; B takes A's partitions over and imports them further.
        stale = importers_a[0]
        assert stale.leases is a
        assert stale._follow_assignment()
        stale_positions = dict(stale.positions)
        stale_records = stale.source.fetch(stale_positions, stale.batch_size, 0.0)
        assert stale_records
        _expire("importer-a")
        b.round(units)
        assert set(b.held) == units
        assert ImporterProcess.objects.filter(holder="importer-a").count() == 0
        for importer in importers_b:
            importer.run_once()
        before = snapshot()
        counters_before = _counters()
        # A wakes up and applies what it read: the lease fence refuses the whole batch.
        with pytest.raises(LeaseLost, match="moved to another importer"):
            stale.projection.apply_batch(stale_records, expected_positions=stale_positions)
        assert snapshot() == before
        assert _counters() == counters_before

        # The position fence alone: a batch read after positions another writer has moved on.
        mover = importers_b[0]
        assert mover._follow_assignment()
        records = mover.source.fetch(mover.positions, mover.batch_size, 0.0)
        assert records
        older = {stream_key: 0 for stream_key in mover.positions}
        with pytest.raises(PositionsMoved, match="committed by another importer"):
            mover.projection.apply_batch(records, expected_positions=older)
        assert snapshot() == before

        # A's importer notices through the runner too: it holds nothing, and imports nothing.
        assert stale.run_once() is None
        # A comes back: the two balance again and finish the import together.
        for _ in range(3):
            a.round(units)
            b.round(units)
        assert len(a.held) == len(b.held) == 2
        for _ in range(10_000):
            results = [importer.run_once() for importer in (*importers_a, *importers_b)]
            if all(result is None for result in results):
                break
        assert set(_holders().values()) == {"importer-a", "importer-b"}
    finally:
        for importer in (*importers_a, *importers_b):
            importer.close()
        a.close()
        b.close()
    got = snapshot()
    assert got == reference, snapshot_diff(got, reference)
    # Nothing applied twice: every record counted once, as in the single uninterrupted import.
    assert _counters() == reference_counters
    assert set(_holders().values()) == {""}  # a clean stop hands every lease back


def test_a_killed_holders_session_frees_its_leases_at_once(fleet: Fleet) -> None:
    """A holder whose database session is gone (its process was killed) is dead before its ttl."""
    cluster = log_cluster(1, fleet.data_dirs[1])
    importer = Importer(cluster=cluster, leases=None)
    units = importer.units()
    importer.close()
    a, b = Leases(holder="importer-a", ttl_seconds=60), Leases(holder="importer-b", ttl_seconds=60)
    try:
        a.round(units)
        assert set(a.held) == units
        # A session that no longer exists (pid 0 is never a backend).
        ImporterProcess.objects.filter(holder="importer-a").update(backend_pid=0)
        b.round(units)
        assert set(b.held) == units
        assert set(_holders().values()) == {"importer-b"}
        tokens = {(lease.cluster_id, lease.partition_id): lease.token for lease in ImportLease.objects.all()}
        assert set(tokens.values()) == {2}  # taken twice: A, then B
        with pytest.raises(LeaseLost), transaction.atomic():
            a.fence(1, [1])
    finally:
        a.close()
        b.close()


def test_a_source_that_cannot_list_its_partitions_costs_only_its_own_cluster(fleet: Fleet) -> None:
    """An Elasticsearch that does not answer (a real client, a port nothing listens on) fails its
    own cluster's run; the lease round goes on and the other cluster is imported in full."""
    from processes.services import cluster_create
    from tests.support import free_port

    good = log_cluster(1, fleet.data_dirs[1])
    down = cluster_create(
        cluster_id=2,
        name="es-down",
        gateway_address="127.0.0.1:26502",
        record_source="elasticsearch",
        record_source_config={"url": f"http://127.0.0.1:{free_port()}"},
    )
    leases = Leases(holder="importer-a")
    importers = [Importer(cluster=cluster, batch_size=500, leases=leases) for cluster in (good, down)]
    try:
        failed = run_importers(importers, follow=False, stop=threading.Event(), leases=leases)
    finally:
        for importer in importers:
            importer.close()
        leases.close()
    assert [importer.cluster.id for importer, _ in failed] == [2]
    last: dict[int, int] = {}
    for record in fleet.records[1]:
        last[record["partitionId"]] = max(last.get(record["partitionId"], 0), record["position"])
    assert dict(ImportPosition.objects.filter(cluster=good).values_list("partition_id", "position")) == last
