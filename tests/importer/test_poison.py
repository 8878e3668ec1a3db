"""Records PostgreSQL cannot hold as they are cost one error row (or are stored faithfully), never
the cluster's import; one cluster's trouble never stalls another's (issue 20).

The NUL / long-name records come from a real `python -m engine`; the out-of-range envelope fields
are Redis stream entries, as a hostile or broken exporter could write them.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from pyzeebe.proto import gateway_pb2 as pb

from processes.importer import bulk
from processes.importer.runner import Importer, run_importers
from processes.models import (
    Cluster,
    ImportPosition,
    Job,
    ProcessDefinition,
    ProcessInstance,
    RecordImportError,
    Variable,
    VariableValue,
)
from routing.keys import CLUSTER_SHIFT
from tests.engine.conftest import EngineProcess
from tests.engine.helpers import activate, create, deploy, gateway, one_task_process
from tests.importer.helpers import import_all, log_cluster, wipe_query_models
from tests.importer.redis_writer import export_to_streams, in_log_order
from tests.importer.scenario import log_records
from tests.importer.test_sources import redis_cluster

pytestmark = pytest.mark.slow

LONG_NAME = "v" * 300


class PoisonLog:
    def __init__(self, data_dir: Path, instance_key: int, job_key: int) -> None:
        self.data_dir = data_dir
        self.instance_key = instance_key
        self.job_key = job_key
        self.records = log_records(data_dir)


@pytest.fixture(scope="module")
def poison_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PoisonLog]:
    """A real engine's log holding a NUL in a variable value, a 300-character variable name and a
    FailJob error message with a NUL, the records issue 20 found stopping the import."""
    data_dir = tmp_path_factory.mktemp("poison") / "data"
    engine = EngineProcess(data_dir, partitions=1).start()
    try:
        with gateway(engine.address) as stub:
            deploy(stub, "poison.bpmn", one_task_process("poison", "poison-task", retries="1"))
            instance_key = create(stub, "poison", {"blob": "a\u0000b", LONG_NAME: 1, "plain": {"ok": True}})
            (job,) = activate(stub, "poison-task", max_jobs=1)
            stub.FailJob(
                pb.FailJobRequest(jobKey=job.key, retries=0, errorMessage="boom\u0000tail"), timeout=10
            )
    finally:
        engine.stop()
    found = PoisonLog(data_dir, instance_key, job.key)
    assert any(r["valueType"] == "VARIABLE" and r["value"]["name"] == LONG_NAME for r in found.records)
    yield found


def _check_poison_imported(cluster: Cluster, poison: PoisonLog) -> None:
    g = cluster.id << CLUSTER_SHIFT
    instance = ProcessInstance.objects.get(pk=g | poison.instance_key)
    assert instance.incident, "the failed job's incident was imported"
    blob = Variable.objects.get(process_instance=instance, name="blob")
    # jsonb cannot hold \u0000: the exact JSON text is kept in VariableValue.
    assert blob.value is None and blob.truncated
    assert VariableValue.objects.get(variable=blob).json_text == json.dumps("a\u0000b")
    assert json.loads(VariableValue.objects.get(variable=blob).json_text) == "a\u0000b"
    assert Variable.objects.get(process_instance=instance, name="plain").value == {"ok": True}
    long_variable = Variable.objects.get(process_instance=instance, name__startswith="vvvv")
    assert len(long_variable.name) == 255 and long_variable.name.endswith("…")
    job = Job.objects.get(pk=g | poison.job_key)
    assert job.state == "failed"
    assert job.error_message == "boom\\u0000tail"
    notes = list(RecordImportError.objects.filter(cluster=cluster).values_list("message", flat=True))
    assert any("name: 300 characters cut to 255" in note for note in notes), notes
    assert any("error_message: NUL characters" in note for note in notes), notes


@pytest.mark.django_db
@pytest.mark.parametrize("batch_size", [1, 5000])
@pytest.mark.parametrize("json_max_rows", [0, 1000], ids=["copy", "one-statement"])
def test_nul_and_long_names_from_a_real_engine_are_stored_not_fatal(
    poison_log: PoisonLog, batch_size: int, json_max_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through both write paths (bulk.upsert_rows): PostgreSQL refuses the same values either way.
    monkeypatch.setattr(bulk, "JSON_UPSERT_MAX_ROWS", json_max_rows)
    cluster = log_cluster(1, poison_log.data_dir)
    import_all(cluster, batch_size=batch_size)
    _check_poison_imported(cluster, poison_log)
    last = max(record["position"] for record in poison_log.records)
    assert ImportPosition.objects.get(cluster=cluster, partition_id=1).position == last
    # Running again changes nothing and adds no error rows.
    errors = RecordImportError.objects.count()
    import_all(cluster, batch_size=batch_size)
    assert RecordImportError.objects.count() == errors


@pytest.mark.django_db
def test_nul_and_long_names_through_redis(poison_log: PoisonLog, redis_url: str) -> None:
    prefix = f"zeebe-{uuid.uuid4().hex[:8]}"
    export_to_streams(redis.Redis.from_url(redis_url), prefix, in_log_order(poison_log.records))
    cluster = redis_cluster(1, redis_url, prefix)
    import_all(cluster, batch_size=3)
    _check_poison_imported(cluster, poison_log)


GOOD = {
    "partitionId": 1,
    "position": 10,
    "key": 2251799813685249,
    "timestamp": 1_700_000_000_000,
    "recordType": "EVENT",
    "valueType": "PROCESS",
    "intent": "CREATED",
    "value": {"bpmnProcessId": "p", "version": 1, "processDefinitionKey": 2251799813685249, "resource": ""},
}

# (stream suffix, raw entry, what the error row must say)
BAD_ENTRIES: list[tuple[str, str | bytes, str]] = [
    ("PROCESS", json.dumps({**GOOD, "timestamp": 10**17}), "timestamp"),
    ("PROCESS", json.dumps({**GOOD, "position": 2**63 + 7}), "position"),
    ("PROCESS", json.dumps({**GOOD, "partitionId": -1}), "partitionId -1"),
    ("PROCESS", json.dumps({**GOOD, "partitionId": 40000}), "partitionId 40000"),
    ("PROCESS", b"\x00not json\x00", "not valid JSON"),
    # zeebe-redis-exporter's default protobuf format (reference §3.9): the error says the fix.
    ("JOB", b"\n\x1dtype.googleapis.com/record", "set ZEEBE_REDIS_FORMAT=json"),
    ("X" * 80, json.dumps({**GOOD, "valueType": "X" * 80}), "stream name"),
]


def _write_bad_then_good(client: redis.Redis, prefix: str) -> None:
    for stream, raw, _ in BAD_ENTRIES:
        client.xadd(f"{prefix}:{stream}", {"1700000000000": raw})
    client.xadd(f"{prefix}:PROCESS", {"1700000000001": json.dumps(GOOD)})


@pytest.mark.django_db
def test_out_of_range_stream_entries_become_error_rows(redis_url: str) -> None:
    prefix = f"zeebe-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    _write_bad_then_good(client, prefix)
    cluster = redis_cluster(3, redis_url, prefix)
    import_all(cluster, batch_size=100)
    errors = list(RecordImportError.objects.filter(cluster=cluster).order_by("id"))
    assert len(errors) == len(BAD_ENTRIES), [error.message for error in errors]
    messages = " | ".join(error.message for error in errors)
    for _, _, expected in BAD_ENTRIES:
        assert expected in messages, messages
    assert all("\x00" not in error.raw_excerpt for error in errors)
    assert any("\\u0000not json" in error.raw_excerpt for error in errors)
    assert cluster.process_definitions.get().bpmn_process_id == "p"
    # An invalid record moves no position: only the good record's.
    assert dict(
        ImportPosition.objects.filter(cluster=cluster, position__gt=0).values_list("stream", "position")
    ) == {"PROCESS": 10}
    # Nothing is pending in the group: every entry was acknowledged.
    for stream, _, _ in BAD_ENTRIES:
        assert client.xpending(f"{prefix}:{stream}", "fleetflow-importer")["pending"] == 0


class _BrokenSource:
    """A cluster whose source fails on every read (its Redis is gone): a real Redis client on a
    port nothing listens on."""

    def __init__(self) -> None:
        from tests.services import free_port

        self.client = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)

    def fetch(self, positions: Any, max_records: int, wait_seconds: float) -> list[Any]:
        self.client.ping()
        return []

    def acknowledge(self, records: Any) -> None:
        pass

    def rewind(self) -> None:
        pass

    def close(self) -> None:
        self.client.close()


@pytest.mark.django_db(transaction=True)
def test_a_cluster_in_trouble_does_not_stall_the_next_one(redis_url: str, tmp_path: Path) -> None:
    from processes.services import cluster_create

    poisoned_prefix = f"zeebe-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    _write_bad_then_good(client, poisoned_prefix)
    healthy_prefix = f"zeebe-{uuid.uuid4().hex[:8]}"
    healthy_records = [
        {**GOOD, "position": position, "key": GOOD["key"] + position} for position in range(1, 41)
    ]
    for record in healthy_records:
        record["value"] = {
            **record["value"],
            "processDefinitionKey": record["key"],
            "bpmnProcessId": f"p{record['key']}",
        }
    export_to_streams(client, healthy_prefix, healthy_records)
    broken = cluster_create(cluster_id=5, name="broken", gateway_address="127.0.0.1:1")
    poisoned = redis_cluster(6, redis_url, poisoned_prefix)
    healthy = redis_cluster(7, redis_url, healthy_prefix)
    importers = [
        Importer(cluster=broken, source=_BrokenSource(), batch_size=10),
        Importer(cluster=poisoned, batch_size=2),
        Importer(cluster=healthy, batch_size=10),
    ]
    stop = threading.Event()

    def on_batch(importer: Importer, result: Any) -> None:
        if ProcessDefinition.objects.filter(cluster=healthy).count() == len(healthy_records) and (
            ProcessDefinition.objects.filter(cluster=poisoned).exists()
        ):
            stop.set()

    watchdog = threading.Timer(60, stop.set)
    watchdog.start()
    try:
        run_importers(importers, follow=True, stop=stop, idle_wait_seconds=0.1, on_batch=on_batch)
    finally:
        watchdog.cancel()
        for importer in importers:
            importer.close()
    assert ProcessDefinition.objects.filter(cluster=healthy).count() == len(healthy_records)
    assert ProcessDefinition.objects.filter(cluster=poisoned).count() == 1
    assert RecordImportError.objects.filter(cluster=poisoned).count() == len(BAD_ENTRIES)
    wipe_query_models()
