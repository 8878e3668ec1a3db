"""The projection's fast write paths and the read-ahead source wrapper.

* a large batch's rows the batch did not find are COPied straight into their table; should one
  exist after all (a writer the batch's load did not see), the batch falls back to the upsert and
  still commits the right final state; a small batch's single-statement upsert gets there too;
* ReadAheadSource returns what a plain fetch would: a read-ahead batch read for positions that
  were not committed is thrown away and read again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from processes.choices import InstanceState
from processes.importer import bulk
from processes.importer.projection import Projection
from processes.importer.records import SourceRecord
from processes.importer.sources.readahead import ReadAheadSource, positions_after
from processes.models import ElementInstance, ProcessInstance
from routing.keys import to_global
from tests.importer.records import P1, element, process_element


def apply(cluster: Any, records: list[Any]) -> Any:
    return Projection(cluster=cluster).apply_batch([SourceRecord(payload=item) for item in records])


def global_key(cluster: Any, zeebe_key: int) -> int:
    return to_global(cluster.id, zeebe_key)


@pytest.mark.django_db
def test_new_rows_are_inserted_with_sql_flags_at_their_defaults(cluster: Any) -> None:
    instance, task = P1 + 1, P1 + 2
    apply(
        cluster,
        [
            process_element(1, "ELEMENT_ACTIVATING", instance),
            process_element(2, "ELEMENT_ACTIVATED", instance),
            element(3, "ELEMENT_ACTIVATING", task, instance, "check"),
            element(4, "ELEMENT_ACTIVATED", task, instance, "check"),
            element(5, "ELEMENT_COMPLETING", task, instance, "check"),
            element(6, "ELEMENT_COMPLETED", task, instance, "check"),
        ],
    )
    row = ProcessInstance.objects.get(key=global_key(cluster, instance))
    assert (row.state, row.incident, row.subtree_incident) == (InstanceState.ACTIVE, False, False)
    task_row = ElementInstance.objects.get(key=global_key(cluster, task))
    assert task_row.state == InstanceState.COMPLETED and task_row.end_date is not None
    assert task_row.position == 6


@pytest.mark.django_db
@pytest.mark.parametrize("json_max_rows", [0, 1000], ids=["copy", "one-statement"])
def test_a_row_the_load_missed_falls_back_to_the_upsert(
    cluster: Any, monkeypatch: pytest.MonkeyPatch, json_max_rows: int
) -> None:
    # COPY path: the new rows' COPY fails and rolls back to its savepoint; one-statement path
    # (small batches): its ON CONFLICT merges them. Either way the right final state.
    monkeypatch.setattr(bulk, "JSON_UPSERT_MAX_ROWS", json_max_rows)
    instance, task = P1 + 1, P1 + 2
    apply(
        cluster,
        [
            process_element(1, "ELEMENT_ACTIVATING", instance),
            element(2, "ELEMENT_ACTIVATING", task, instance, "check"),
        ],
    )
    # The next batch's load sees nothing, as if another writer had inserted the rows unseen: the
    # COPY meets the primary key, rolls back to its savepoint and the rows are upserted instead.
    real_load = bulk.load_rows
    monkeypatch.setattr(bulk, "load_rows", lambda model, names, keys: {})
    apply(cluster, [element(3, "ELEMENT_ACTIVATED", task, instance, "check")])
    monkeypatch.setattr(bulk, "load_rows", real_load)
    task_row = ElementInstance.objects.get(key=global_key(cluster, task))
    assert (task_row.state, task_row.position) == (InstanceState.ACTIVE, 3)
    assert ElementInstance.objects.count() == 1
    apply(cluster, [element(4, "ELEMENT_COMPLETED", task, instance, "check")])
    task_row.refresh_from_db()
    assert (task_row.state, task_row.position) == (InstanceState.COMPLETED, 4)


class ListSource:
    """A source reading by position over fixed records of partition 1; counts its fetches."""

    def __init__(self, count: int) -> None:
        self.records = [
            SourceRecord(payload={}, partition_hint=1, position_hint=position, position_trusted=True)
            for position in range(1, count + 1)
        ]
        self.fetches: list[int] = []
        self.closed = False

    def fetch(
        self, positions: Mapping[tuple[int, str], int], max_records: int, wait_seconds: float
    ) -> list[SourceRecord]:
        start = positions.get((1, ""), 0)
        self.fetches.append(start)
        return self.records[start : start + max_records]

    def acknowledge(self, records: Sequence[SourceRecord]) -> None:
        pass

    def rewind(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def hints(records: Sequence[SourceRecord]) -> list[int | None]:
    return [record.position_hint for record in records]


def test_read_ahead_serves_the_next_batch_when_its_positions_were_committed() -> None:
    source = ListSource(10)
    reader = ReadAheadSource(source, reads_by_position=True)
    first = reader.fetch({}, 4, 0.0)
    assert hints(first) == [1, 2, 3, 4]
    second = reader.fetch(positions_after({}, first), 4, 0.0)
    assert hints(second) == [5, 6, 7, 8]
    assert source.fetches[:2] == [0, 4]  # the second batch came from the read-ahead
    reader.close()
    assert source.closed


def test_read_ahead_for_uncommitted_positions_is_read_again() -> None:
    source = ListSource(10)
    reader = ReadAheadSource(source, reads_by_position=True)
    reader.fetch({}, 4, 0.0)
    # The batch failed: the runner asks again from the old positions and gets the same records.
    again = reader.fetch({}, 4, 0.0)
    assert hints(again) == [1, 2, 3, 4]
    # A different batch size is not served from a read-ahead of another size either.
    third = reader.fetch({(1, ""): 4}, 2, 0.0)
    assert hints(third) == [5, 6]
    reader.close()


def test_read_ahead_of_a_delivery_tracking_source_is_never_dropped() -> None:
    source = ListSource(10)
    reader = ReadAheadSource(source, reads_by_position=False)
    reader.fetch({}, 4, 0.0)
    # Positions are not what the source uses: whatever was read ahead comes next, as it would
    # from a consumer group.
    assert hints(reader.fetch({(1, ""): 99}, 4, 0.0)) == [5, 6, 7, 8]
    reader.close()


def test_read_ahead_error_surfaces_on_the_next_fetch_of_a_delivery_tracking_source() -> None:
    class Failing(ListSource):
        def fetch(self, positions: Any, max_records: int, wait_seconds: float) -> list[SourceRecord]:
            if self.fetches:
                raise ConnectionError("redis went away")
            return super().fetch(positions, max_records, wait_seconds)

    reader = ReadAheadSource(Failing(10), reads_by_position=False)
    assert hints(reader.fetch({}, 4, 0.0)) == [1, 2, 3, 4]
    with pytest.raises(ConnectionError, match="redis went away"):
        reader.fetch({}, 4, 0.0)
    reader.close()


@pytest.mark.django_db
def test_the_collector_is_paused_while_busy_and_resumed_when_idle(cluster: Any) -> None:
    import gc

    from processes.importer.runner import GC_PAUSE_BATCHES, Importer

    assert gc.isenabled()
    importer = Importer(cluster=cluster, source=ListSource(GC_PAUSE_BATCHES + 3), batch_size=1)
    try:
        assert importer.run_once() is not None
        assert not gc.isenabled()  # busy: stays paused between batches
        for _ in range(GC_PAUSE_BATCHES - 1):
            importer.run_once()
        assert gc.isenabled()  # bounded: resumed after GC_PAUSE_BATCHES batches in a row
        while importer.run_once() is not None:
            pass
        assert gc.isenabled()  # idle source: resumed
    finally:
        importer.close()
        gc.enable()
    assert importer.positions == {(1, ""): GC_PAUSE_BATCHES + 3}  # every record consumed
