"""The dashboard counts come from counters PostgreSQL keeps itself (processes.models.InstanceCount,
migration 0008's statement-level triggers): after every import batch of the real two-cluster engine
scenario, through both write paths of the importer (one-statement upsert, COPY + merge), after state
changes, deletes, a cluster's removal, a migration over existing rows and two importers at once, the
counters equal a live count of the instances, and GET /api/v1/stats/ answers the live figures.

Each check compares the counter rows per (cluster, partition, process id, version, state) with the
instances grouped in Python, the partition decoded by routing/keys.py: a missing trigger, a wrong
delta or a partition decoded differently in SQL fails it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count

from processes import selectors
from processes.api.views import GROUP_LIMIT
from processes.choices import INSTANCE_ACTIVE_STATES, InstanceState
from processes.filters import INSTANCE_STATE_API_NAME
from processes.importer import bulk
from processes.importer.runner import Importer
from processes.models import Cluster, ImportPosition, InstanceCount, ProcessInstance
from routing.keys import ZEEBE_PARTITION_SHIFT, from_global, to_global
from tests.importer.conftest import Fleet, fleet  # noqa: F401 - the session fixture, shared
from tests.importer.helpers import import_all, log_cluster

V1 = "/api/v1"
MAX_BATCHES = 100_000
Group = tuple[int, int, str, int, str]


def partition_of(global_key: int) -> int:
    """The partition of a global key as routing/keys.py decodes it."""
    return from_global(global_key)[1] >> ZEEBE_PARTITION_SHIFT


def live_groups() -> dict[Group, int]:
    instances = ProcessInstance.objects.values_list(
        "key", "cluster_id", "bpmn_process_id", "version", "state"
    )
    return dict(
        Counter(
            (cluster_id, partition_of(key), process_id, version, state)
            for key, cluster_id, process_id, version, state in instances
        )
    )


def counter_groups() -> dict[Group, int]:
    rows = InstanceCount.objects.exclude(count=0).values_list(
        "cluster_id", "partition_id", "bpmn_process_id", "version", "state", "count"
    )
    return {(c, p, process_id, version, state): count for c, p, process_id, version, state, count in rows}


def live_by_state() -> dict[str, int]:
    rows = ProcessInstance.objects.order_by().values("state").annotate(count=Count("key"))
    return {row["state"]: row["count"] for row in rows}


def live_active_by_process() -> list[Any]:
    return list(
        ProcessInstance.objects.filter(state__in=INSTANCE_ACTIVE_STATES)
        .order_by()
        .values("bpmn_process_id", "version")
        .annotate(count=Count("key"))
        .order_by("-count", "bpmn_process_id", "version")
    )


def assert_counters_exact(when: str) -> None:
    got, want = counter_groups(), live_groups()
    assert got == want, f"{when}: counters {got} != live {want}"
    negative = list(
        InstanceCount.objects.filter(count__lt=0).values_list("bpmn_process_id", "state", "count")
    )
    assert not negative, f"{when}: negative counters {negative}"
    assert selectors.instance_counts_by_state() == live_by_state(), when
    assert selectors.active_instance_counts_by_process() == live_active_by_process(), when


def fleet_clusters(fleet: Fleet) -> list[Cluster]:  # noqa: F811 - `fleet` is the fixture's value
    return [log_cluster(cluster_id, path) for cluster_id, path in sorted(fleet.data_dirs.items())]


def import_checking_every_batch(cluster: Cluster, batch_size: int) -> int:
    importer = Importer(cluster=cluster, batch_size=batch_size)
    batches = 0
    try:
        while importer.run_once() is not None:
            batches += 1
            assert batches < MAX_BATCHES, "the import does not end"
            assert_counters_exact(f"cluster {cluster.id} batch {batches} (size {batch_size})")
    finally:
        importer.close()
    return batches


@pytest.mark.django_db
def test_sql_partition_decode_agrees_with_routing_keys(fleet: Fleet) -> None:  # noqa: F811
    for cluster in fleet_clusters(fleet):
        import_all(cluster)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT key, processes_key_partition(key), partition_id FROM processes_processinstance"
        )
        rows = cursor.fetchall()
        assert len(rows) > 20 and {partition for _, partition, _ in rows} == {1, 2}
        for key, sql_partition, record_partition in rows:
            assert sql_partition == partition_of(key) == record_partition, key
        # The corners of the layout: highest cluster, highest partition, largest counter.
        for cluster_id, zeebe_key in [
            (1, (1 << 51) + 1),
            (31, (127 << 51) + (1 << 51) - 1),
            (17, (64 << 51) + 5),
        ]:
            global_key = to_global(cluster_id, zeebe_key)
            cursor.execute("SELECT processes_key_partition(%s)", [global_key])
            assert cursor.fetchone()[0] == partition_of(global_key), global_key


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("batch_size", "json_max_rows"),
    [(7, bulk.JSON_UPSERT_MAX_ROWS), (7, 0), (5000, bulk.JSON_UPSERT_MAX_ROWS), (5000, 0)],
    ids=["7-one-statement", "7-copy", "5000-one-statement", "5000-copy"],
)
def test_counters_follow_every_import_batch_on_both_write_paths(
    fleet: Fleet,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    batch_size: int,
    json_max_rows: int,
) -> None:
    # json_max_rows 0: every batch COPies its new rows and merges the rest from a staging table
    # (INSERT ... ON CONFLICT DO UPDATE); otherwise the one-statement upsert (test_write_paths.py).
    monkeypatch.setattr(bulk, "JSON_UPSERT_MAX_ROWS", json_max_rows)
    for cluster in fleet_clusters(fleet):
        assert import_checking_every_batch(cluster, batch_size) > 0
    # Instances were created, and ended both ways, while the counters followed.
    assert set(live_by_state()) == {InstanceState.ACTIVE, InstanceState.COMPLETED, InstanceState.TERMINATED}
    # Replaying every record changes no row, and so no counter.
    ImportPosition.objects.all().delete()
    for cluster in Cluster.objects.order_by("id"):
        import_all(cluster, batch_size=batch_size)
    assert_counters_exact("after a replay")


@pytest.mark.django_db
def test_counters_follow_updates_and_deletes(fleet: Fleet) -> None:  # noqa: F811
    clusters = fleet_clusters(fleet)
    for cluster in clusters:
        import_all(cluster)
    assert_counters_exact("after the import")
    one, two = clusters
    ended = ProcessInstance.objects.filter(cluster=one, state=InstanceState.ACTIVE).update(
        state=InstanceState.TERMINATED
    )
    assert ended > 0
    assert_counters_exact("after terminating cluster 1's active instances")
    ProcessInstance.objects.filter(cluster=two, state=InstanceState.COMPLETED).update(version=99)
    assert_counters_exact("after moving cluster 2's completed instances to version 99")
    ProcessInstance.objects.filter(cluster=two).update(incident=True)  # counted columns unchanged
    assert_counters_exact("after an update of uncounted columns")
    deleted, _ = ProcessInstance.objects.filter(cluster=two, partition_id=1).delete()
    assert deleted > 0
    assert_counters_exact("after deleting cluster 2 partition 1's instances")
    one.delete()  # its instances go with it (on_delete=CASCADE)
    assert_counters_exact("after deleting cluster 1")
    ProcessInstance.objects.filter(cluster=two, partition_id=2, state=InstanceState.ACTIVE).delete()
    assert_counters_exact("after deleting cluster 2 partition 2's active instances")
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred checks may wait on the table
        cursor.execute("TRUNCATE processes_processinstance")
    assert_counters_exact("after a TRUNCATE")
    assert selectors.instance_counts_by_state() == {}
    assert selectors.active_instance_counts_by_process() == []


@pytest.mark.django_db
def test_stats_endpoint_answers_the_live_counts(fleet: Fleet, viewer: Any) -> None:  # noqa: F811
    for cluster in fleet_clusters(fleet):
        import_all(cluster, batch_size=7)
    ProcessInstance.objects.filter(cluster_id=2, state=InstanceState.ACTIVE).update(
        state=InstanceState.COMPLETED
    )
    body = viewer.get(f"{V1}/stats/").json()
    want_states = [
        {"state": INSTANCE_STATE_API_NAME.get(state, state), "count": count}
        for state, count in sorted(live_by_state().items())
    ]
    assert body["instances_by_state"] == want_states
    assert body["active_instances_by_process"] == live_active_by_process()[:GROUP_LIMIT]
    assert sum(row["count"] for row in body["instances_by_state"]) == ProcessInstance.objects.count()


@pytest.mark.django_db(transaction=True)
def test_migration_fills_the_counters_from_existing_rows(fleet: Fleet) -> None:  # noqa: F811
    for cluster in fleet_clusters(fleet):
        import_all(cluster)
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate([("processes", "0007_cluster_record_source_help")])
        # Without the triggers: rows change that no counter follows.
        ProcessInstance.objects.filter(state=InstanceState.ACTIVE, cluster_id=1).update(
            state=InstanceState.TERMINATED
        )
        ProcessInstance.objects.filter(cluster_id=2, partition_id=2).delete()
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(leaves)
    assert ProcessInstance.objects.exists()
    assert_counters_exact("right after migrating an existing database")
    ProcessInstance.objects.filter(cluster_id=2).update(state=InstanceState.COMPLETED)
    assert_counters_exact("after an update on the migrated database")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_counters_are_exact_after_two_importers_split_the_partitions(
    fleet: Fleet,  # noqa: F811
    tmp_path: Path,
) -> None:
    from tests.importer.test_command import _imported_positions, _wait_until
    from tests.importer.test_two_importers import _follow, _reference, _split_and_busy, _stop

    _, _, total = _reference(fleet)  # imports once, then empties the tables (DELETE: counters to 0)
    assert counter_groups() == {}
    logs = [tmp_path / "importer-a.log", tmp_path / "importer-b.log"]
    processes = [_follow(logs[0], batch_size=3), _follow(logs[1], batch_size=3)]
    try:
        _split_and_busy(processes, logs)  # each holds two of the four (cluster, partition) units
        _wait_until(lambda: _imported_positions() == total, "all records", processes[0], logs[0])
    finally:
        for process in processes:
            _stop(process)
    for process, log in zip(processes, logs, strict=True):
        assert process.returncode == 0, log.read_text()[-3000:]
    assert ProcessInstance.objects.exists()
    assert_counters_exact("after two importers")
