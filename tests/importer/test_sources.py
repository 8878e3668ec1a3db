"""The same projection fed from Redis streams (zeebe-redis-exporter JSON) and from the engine log
yields the same tables; Redis redelivery after a crash before XACK changes nothing; bad entries
become import errors without stopping the import. Elasticsearch runs only with ELASTICSEARCH_URL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence

import pytest
import redis

from processes.importer.records import SourceRecord
from processes.importer.runner import Importer
from processes.importer.sources.redis_streams import RedisStreamSource
from processes.models import Cluster, ImportPosition, RecordImportError
from processes.services import cluster_create
from tests.importer.conftest import Fleet
from tests.importer.helpers import import_all, log_cluster, snapshot, snapshot_diff, wipe_query_models
from tests.importer.redis_writer import export_to_streams, in_log_order

pytestmark = pytest.mark.slow


def redis_cluster(cluster_id: int, url: str, prefix: str) -> Cluster:
    return cluster_create(
        cluster_id=cluster_id,
        name=f"redis-{cluster_id}",
        gateway_address="127.0.0.1:26500",
        record_source="redis",
        record_source_config={"url": url, "stream_prefix": prefix},
    )


class NoAckRedisSource(RedisStreamSource):
    """Commits but 'crashes' before XACK: nothing is acknowledged."""

    def acknowledge(self, records: Sequence[SourceRecord]) -> None:
        return None


@pytest.mark.django_db
def test_redis_source_yields_the_same_tables_as_the_log(fleet: Fleet, redis_url: str) -> None:
    import_all(log_cluster(1, fleet.data_dirs[1]))
    from_log = snapshot()
    assert from_log["ProcessInstance"], "the log import produced rows"

    wipe_query_models()
    Cluster.objects.all().delete()
    prefix = f"zeebe-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    export_to_streams(client, prefix, in_log_order(fleet.records[1]))
    cluster = redis_cluster(1, redis_url, prefix)
    # Small batches: every value-type stream is read on its own, so records of one partition
    # arrive in another order than the log's (incidents before their instance's events, ...).
    import_all(cluster, batch_size=17)
    got = snapshot()
    assert got == from_log, snapshot_diff(got, from_log)
    streams = {row.stream for row in ImportPosition.objects.filter(cluster=cluster)}
    assert {"PROCESS_INSTANCE", "JOB", "VARIABLE", "INCIDENT"} <= streams


@pytest.mark.django_db
def test_redis_redelivery_after_a_crash_before_xack_changes_nothing(fleet: Fleet, redis_url: str) -> None:
    prefix = f"zeebe-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    export_to_streams(client, prefix, in_log_order(fleet.records[1]))
    cluster = redis_cluster(1, redis_url, prefix)
    config = {"url": redis_url, "stream_prefix": prefix, "group": "fleetflow-importer", "consumer": "c1"}
    crashed = NoAckRedisSource(**config)
    Importer(cluster=cluster, source=crashed, batch_size=50).drain()
    before = snapshot()
    pending = sum(
        client.xpending(stream, "fleetflow-importer")["pending"] for stream in client.keys(f"{prefix}:*")
    )
    assert pending > 0, "the 'crashed' importer left its entries unacknowledged"

    restarted = RedisStreamSource(**config)
    importer = Importer(cluster=cluster, source=restarted, batch_size=50)
    importer.drain()
    got = snapshot()
    assert got == before, snapshot_diff(got, before)
    pending = sum(
        client.xpending(stream, "fleetflow-importer")["pending"] for stream in client.keys(f"{prefix}:*")
    )
    assert pending == 0


@pytest.mark.django_db
def test_bad_redis_entries_become_import_errors_and_the_rest_is_imported(redis_url: str) -> None:
    prefix = f"zeebe-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    good = {
        "partitionId": 1,
        "position": 10,
        "key": 2251799813685249,
        "timestamp": 1_700_000_000_000,
        "recordType": "EVENT",
        "valueType": "PROCESS",
        "intent": "CREATED",
        "value": {
            "bpmnProcessId": "p",
            "version": 1,
            "processDefinitionKey": 2251799813685249,
            "resource": "",
        },
    }
    import json

    client.xadd(f"{prefix}:PROCESS", {"1700000000000": "{not json"})
    client.xadd(f"{prefix}:PROCESS", {"1700000000001": json.dumps({**good, "position": None})})
    client.xadd(f"{prefix}:PROCESS", {"1700000000002": json.dumps(good)})
    cluster = redis_cluster(3, redis_url, prefix)
    import_all(cluster)
    errors = list(RecordImportError.objects.filter(cluster=cluster).order_by("id"))
    assert [error.stream for error in errors] == ["PROCESS", "PROCESS"]
    assert "not valid JSON" in errors[0].message and "{not json" in errors[0].raw_excerpt
    assert "'position' is missing" in errors[1].message
    assert all(error.source_ref for error in errors)
    assert cluster.process_definitions.get().bpmn_process_id == "p"
    counters = {
        (row.partition_id, row.stream): (row.imported_count, row.error_count)
        for row in ImportPosition.objects.filter(cluster=cluster)
    }
    assert counters == {(0, "PROCESS"): (0, 2), (1, "PROCESS"): (1, 0)}


@pytest.mark.skipif(
    not os.environ.get("ELASTICSEARCH_URL"),
    reason="ELASTICSEARCH_URL is not set: no Elasticsearch to read zeebe-record_* indices from",
)
@pytest.mark.elasticsearch
@pytest.mark.django_db
def test_elasticsearch_source_yields_the_same_tables_as_the_log(fleet: Fleet) -> None:
    from elasticsearch import Elasticsearch, helpers

    url = os.environ["ELASTICSEARCH_URL"]
    import_all(log_cluster(1, fleet.data_dirs[1]))
    from_log = snapshot()
    wipe_query_models()
    Cluster.objects.all().delete()
    prefix = f"zeebe-record-{uuid.uuid4().hex[:8]}"
    client = Elasticsearch(url)
    actions = [
        {
            "_index": f"{prefix}_{record['valueType'].lower().replace('_', '-')}_8.5.0_2026-01-01",
            "_id": f"{record['partitionId']}-{record['position']}",
            "_routing": str(record["partitionId"]),
            "_source": record,
        }
        for record in fleet.records[1]
        if record["recordType"] == "EVENT"
    ]
    helpers.bulk(client, actions, refresh=True)
    cluster = cluster_create(
        cluster_id=1,
        name="es",
        gateway_address="127.0.0.1:26500",
        record_source="elasticsearch",
        record_source_config={"url": url, "index_prefix": prefix},
    )
    import_all(cluster, batch_size=37)
    got = snapshot()
    assert got == from_log, snapshot_diff(got, from_log)
