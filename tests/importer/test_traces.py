"""Nothing is dropped without a trace (issue 20): a bad entry before a good one is an error row,
an invalid record moves no position, a gap in the engine log stops the partition loudly, and
records of an unknown kind leave a sample."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from processes.models import ImportPosition, RecordImportError
from tests.importer.conftest import Fleet
from tests.importer.helpers import import_all, log_cluster, snapshot, snapshot_diff, wipe_query_models
from tests.importer.logtools import flip_bit, segment_first, segments, write_log
from tests.importer.redis_writer import export_to_streams, in_log_order
from tests.importer.test_sources import redis_cluster

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def _last(records: list[dict[str, Any]], partition_id: int) -> int:
    return max(record["position"] for record in records if record["partitionId"] == partition_id)


def _positions(cluster: Any) -> dict[tuple[int, str], int]:
    return {
        (row.partition_id, row.stream): row.position for row in ImportPosition.objects.filter(cluster=cluster)
    }


def test_a_bad_log_entry_followed_by_good_ones_in_one_batch_is_an_error_row(
    fleet: Fleet, tmp_path: Path
) -> None:
    records = fleet.records[1]
    data_dir = tmp_path / "data"
    write_log(
        data_dir,
        records,
        replace=lambda record: (
            b"{not json" if (record["partitionId"], record["position"]) == (1, 5) else None
        ),
    )
    cluster = log_cluster(1, data_dir)
    import_all(cluster, batch_size=100)
    errors = list(RecordImportError.objects.filter(cluster=cluster))
    assert [(error.partition_id, error.position) for error in errors] == [(1, 5)]
    assert "not valid JSON" in errors[0].message
    assert _positions(cluster) == {(1, ""): _last(records, 1), (2, ""): _last(records, 2)}


GOOD = {
    "partitionId": 1,
    "key": 2251799813685249,
    "timestamp": 1_700_000_000_000,
    "recordType": "EVENT",
    "valueType": "PROCESS",
    "intent": "CREATED",
    "value": {"bpmnProcessId": "p", "version": 1, "processDefinitionKey": 2251799813685249, "resource": ""},
}


def test_bad_redis_entries_between_good_ones_are_all_error_rows(redis_url: str) -> None:
    prefix = f"zeebe-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    entries = [
        {**GOOD, "position": 10},
        {**GOOD, "position": 0},
        {**GOOD, "position": -5},
        {**GOOD, "position": 11, "key": "not a key"},
        "{not json",
        {**GOOD, "position": 12, "key": GOOD["key"] + 1},
    ]
    for number, entry in enumerate(entries):
        client.xadd(
            f"{prefix}:PROCESS",
            {str(1_700_000_000_000 + number): entry if isinstance(entry, str) else json.dumps(entry)},
        )
    cluster = redis_cluster(3, redis_url, prefix)
    import_all(cluster, batch_size=100)
    errors = RecordImportError.objects.filter(cluster=cluster)
    assert errors.count() == 4, [error.message for error in errors]
    assert cluster.process_definitions.count() == 2
    assert _positions(cluster)[(1, "PROCESS")] == 12


def test_an_invalid_record_with_a_huge_position_moves_no_position(fleet: Fleet, redis_url: str) -> None:
    import_all(log_cluster(1, fleet.data_dirs[1]))
    expected = snapshot()
    wipe_query_models()
    from processes.models import Cluster

    Cluster.objects.all().delete()
    prefix = f"zeebe-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    bad = {**GOOD, "valueType": "JOB", "intent": "COMPLETED", "position": 999_999_999, "key": "x"}
    client.xadd(f"{prefix}:JOB", {"1700000000000": json.dumps(bad)})
    export_to_streams(client, prefix, in_log_order(fleet.records[1]))
    cluster = redis_cluster(1, redis_url, prefix)
    import_all(cluster, batch_size=50)
    got = snapshot()
    assert got == expected, snapshot_diff(got, expected)
    (error,) = RecordImportError.objects.filter(cluster=cluster)
    assert error.position == 999_999_999
    job_events = [r for r in fleet.records[1] if r["valueType"] == "JOB" and r["recordType"] == "EVENT"]
    for partition_id in {r["partitionId"] for r in job_events}:
        assert _positions(cluster)[(partition_id, "JOB")] == max(
            r["position"] for r in job_events if r["partitionId"] == partition_id
        )


# -- gaps in the engine log ------------------------------------------------------------------------


def _small_segments(fleet: Fleet, data_dir: Path) -> list[Path]:
    write_log(data_dir, fleet.records[1], segment_max_bytes=4096)
    found = segments(data_dir, 1)
    assert len(found) >= 4, "the test needs several segments"
    return found


def _assert_stopped_loudly(cluster: Any, fleet: Fleet, position: int) -> None:
    """Partition 1 stops right before `position` with one error row; partition 2 is complete."""
    errors = list(RecordImportError.objects.filter(cluster=cluster))
    assert len(errors) == 1, [error.message for error in errors]
    assert errors[0].partition_id == 1
    assert f"import stopped at position {position}" in errors[0].message
    positions = _positions(cluster)
    assert positions.get((1, ""), 0) == position - 1
    assert positions[(2, "")] == _last(fleet.records[1], 2)
    # Running again: still stopped there, no second error row, nothing skipped.
    import_all(cluster, batch_size=37)
    assert RecordImportError.objects.filter(cluster=cluster).count() == 1
    assert _positions(cluster).get((1, ""), 0) == position - 1


def test_a_missing_segment_stops_the_partition_loudly(fleet: Fleet, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    found = _small_segments(fleet, data_dir)
    found[2].unlink()
    cluster = log_cluster(1, data_dir)
    import_all(cluster, batch_size=100)
    _assert_stopped_loudly(cluster, fleet, segment_first(found[2]))


def test_a_missing_first_segment_is_not_skipped_silently(fleet: Fleet, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    found = _small_segments(fleet, data_dir)
    found[0].unlink()
    cluster = log_cluster(1, data_dir)
    import_all(cluster, batch_size=100)
    _assert_stopped_loudly(cluster, fleet, 1)


def test_a_flipped_bit_mid_log_stops_the_partition_loudly(fleet: Fleet, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    found = _small_segments(fleet, data_dir)
    # The payload of the first record of the second segment.
    flip_bit(found[1], 8 + 20)
    cluster = log_cluster(1, data_dir)
    import_all(cluster, batch_size=100)
    _assert_stopped_loudly(cluster, fleet, segment_first(found[1]))


def test_a_flipped_bit_in_the_newest_segment_stops_the_partition_loudly(fleet: Fleet, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    found = _small_segments(fleet, data_dir)
    flip_bit(found[-1], 8 + 20)  # valid records follow it: damage, not a torn tail
    cluster = log_cluster(1, data_dir)
    import_all(cluster, batch_size=100)
    _assert_stopped_loudly(cluster, fleet, segment_first(found[-1]))


# -- unknown kinds ---------------------------------------------------------------------------------


def test_records_of_an_unknown_kind_keep_a_sample(redis_url: str) -> None:
    from processes.models import SkippedRecordSample

    prefix = f"zeebe-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)

    def write(value_type: str, intent: str, position: int) -> None:
        record = {**GOOD, "valueType": value_type, "intent": intent, "position": position}
        record["value"] = {"marker": position}
        client.xadd(f"{prefix}:{value_type}", {"1700000000000": json.dumps(record)})

    for position in (1, 2, 3):
        write("TELEPORT", "BEAMED", position)
    write("PROCESS_INSTANCE", "ELEMENT_TELEPORTED", 4)
    write("PROCESS_INSTANCE", "ELEMENT_TELEPORTED", 5)
    cluster = redis_cluster(3, redis_url, prefix)
    import_all(cluster, batch_size=2)
    samples = {
        (sample.value_type, sample.intent): sample
        for sample in SkippedRecordSample.objects.filter(cluster=cluster)
    }
    assert {kind: sample.count for kind, sample in samples.items()} == {
        ("TELEPORT", "BEAMED"): 3,
        ("PROCESS_INSTANCE", "ELEMENT_TELEPORTED"): 2,
    }
    assert '"marker": 1' in samples[("TELEPORT", "BEAMED")].raw_excerpt
    assert samples[("PROCESS_INSTANCE", "ELEMENT_TELEPORTED")].position == 4
    write("TELEPORT", "BEAMED", 6)
    import_all(cluster)
    sample = SkippedRecordSample.objects.get(cluster=cluster, value_type="TELEPORT")
    assert sample.count == 4 and '"marker": 1' in sample.raw_excerpt
    assert sum(row.skipped_count for row in ImportPosition.objects.filter(cluster=cluster)) == 6
