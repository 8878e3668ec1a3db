"""The projection on hand-written records and on real broker records (shared/data/records):
older field names, duplicate keys, malformed and unknown records, large variables, incidents that
arrive before their instance, server links and the Channels events after commit."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from processes.consumers import instance_group_name
from processes.importer.projection import Projection
from processes.importer.records import SourceRecord
from processes.models import (
    ElementInstance,
    ImportPosition,
    Incident,
    ProcessDefinition,
    ProcessInstance,
    RecordImportError,
    Variable,
    VariableValue,
)
from processes.selectors import import_lag, instance_ancestors, instance_subtree, variable_full_value
from servers.models import Server
from tests.importer.conftest import load_jsonl, shared_records_dir
from tests.importer.records import P1, element, incident, process_element, record, variable
from tests.importer.truth import engine_truth, g


def apply(cluster: Any, records: list[Any], stream: str = "", **kwargs: Any) -> Any:
    return Projection(cluster=cluster, **kwargs).apply_batch(
        [SourceRecord(payload=item, stream=stream) for item in records]
    )


@pytest.mark.django_db
def test_zeebe_1_2_log_with_duplicate_keys_imports_like_its_truth(cluster: Any) -> None:
    records = load_jsonl(shared_records_dir() / "zeebe-chaos__2021-11-11_zdb-log-print_entries.jsonl")
    for start in range(0, len(records), 7):
        apply(cluster, records[start : start + 7])
    truth = engine_truth({1: records})
    instances = {row.key: row for row in ProcessInstance.objects.all()}
    assert {key: row.state for key, row in instances.items()} == {
        key: row["state"] for key, row in truth.instances.items()
    }
    assert len(instances) == 5 and all(row.tenant_id == "" for row in instances.values())
    assert {row.key: row.state for row in ElementInstance.objects.all()} == {
        key: row["state"] for key, row in truth.elements.items()
    }
    definition = ProcessDefinition.objects.get()
    assert definition.bpmn_process_id == "simpleProcess" and "<bpmn:process" in definition.bpmn_xml
    position = ImportPosition.objects.get(cluster=cluster)
    assert (position.position, position.imported_count, position.error_count) == (104, 104, 0)


@pytest.mark.django_db
def test_zdb_records_without_value_or_timestamp_are_import_errors(cluster: Any) -> None:
    lines = load_jsonl(shared_records_dir() / "zdb__version-tests_expected-records.jsonl")
    result = apply(cluster, [line["record"] for line in lines])
    assert result.errors == len(lines) and result.imported == 0
    errors = list(RecordImportError.objects.filter(cluster=cluster))
    assert len(errors) == len(lines)
    assert all("is missing" in error.message and error.raw_excerpt for error in errors)
    assert ImportPosition.objects.get(cluster=cluster, partition_id=0).error_count == len(lines)
    assert ProcessInstance.objects.count() == 0


@pytest.mark.django_db
def test_zeebe_8_3_exporter_record_creates_its_instance(cluster: Any) -> None:
    path = shared_records_dir() / "zeebe-kafka-exporter-issue386__pi-element-activating_8.3.4.json"
    data = json.loads(path.read_text())
    apply(cluster, [data])
    instance = ProcessInstance.objects.get()
    assert instance.key == g(1, data["key"]) and instance.partition_id == 2
    assert instance.process_definition_id == g(1, data["value"]["processDefinitionKey"])
    assert (instance.tenant_id, instance.version, instance.state) == ("<default>", 7, "active")
    assert instance.tree_path == f"{instance.key}/" and instance.root_id == instance.key


@pytest.mark.django_db
def test_unknown_types_intents_and_commands_are_counted_not_projected(cluster: Any) -> None:
    root = P1 + 10
    result = apply(
        cluster,
        [
            process_element(1, "ELEMENT_ACTIVATING", root),
            record(2, "SOMETHING_NEW", "CREATED", P1 + 11, {}),
            record(3, "PROCESS_INSTANCE", "ELEMENT_SUSPENDED", root, process_element(3, "X", root)["value"]),
            record(
                4, "PROCESS_INSTANCE", "CANCEL", root, {"processInstanceKey": root}, record_type="COMMAND"
            ),
            record(5, "MESSAGE", "PUBLISHED", P1 + 12, {"name": "m"}),
        ],
    )
    assert (result.imported, result.skipped, result.errors) == (3, 2, 0)
    position = ImportPosition.objects.get(cluster=cluster)
    assert (position.imported_count, position.skipped_count, position.position) == (3, 2, 5)
    assert ProcessInstance.objects.get().state == "active"


@pytest.mark.django_db
def test_malformed_values_are_errors_and_the_rest_of_the_batch_is_applied(cluster: Any) -> None:
    root = P1 + 10
    bad_variable = variable(2, "CREATED", P1 + 20, "x", 1, root, root)
    bad_variable["value"]["value"] = "{not json"
    huge_key = process_element(
        3, "ELEMENT_ACTIVATING", (200 << 51) + 1
    )  # partition 200: no room for a cluster id
    result = apply(
        cluster,
        [process_element(1, "ELEMENT_ACTIVATING", root), bad_variable, huge_key, "][", {"position": 9}],
    )
    assert (result.imported, result.errors) == (1, 4)
    messages = sorted(RecordImportError.objects.values_list("message", flat=True))
    assert any("not JSON text" in message for message in messages)
    assert any("partition id 200" in message for message in messages)
    assert any("not valid JSON" in message for message in messages)
    assert ProcessInstance.objects.get().key == g(1, root)
    # The next batch goes on from there.
    apply(cluster, [process_element(4, "ELEMENT_COMPLETED", root)])
    assert ProcessInstance.objects.get().state == "completed"


@pytest.mark.django_db
def test_large_variables_keep_a_preview_and_the_full_value_on_demand(cluster: Any) -> None:
    root = P1 + 10
    big = {"log": "é" * 300}
    apply(
        cluster,
        [
            process_element(1, "ELEMENT_ACTIVATING", root),
            variable(2, "CREATED", P1 + 20, "dump", big, root, root),
        ],
        preview_bytes=256,
    )
    row = Variable.objects.get()
    assert row.truncated and row.value is None and row.size == len(json.dumps(big).encode())
    assert len(row.preview.encode()) <= 256 and json.dumps(big).startswith(row.preview)
    assert variable_full_value(variable=row) == big
    apply(cluster, [variable(3, "UPDATED", P1 + 20, "dump", {"log": "short"}, root, root)], preview_bytes=256)
    row.refresh_from_db()
    assert (row.truncated, row.value) == (False, {"log": "short"})
    assert not VariableValue.objects.exists()
    assert variable_full_value(variable=row) == {"log": "short"}


@pytest.mark.django_db
def test_incident_before_its_instance_gets_its_tree_and_flags(cluster: Any) -> None:
    root, child, task = P1 + 10, P1 + 30, P1 + 31
    # The incident's stream is ahead: it arrives before the instances (another value-type stream).
    apply(cluster, [incident(40, "CREATED", P1 + 50, child, task)], stream="INCIDENT")
    assert Incident.objects.get().tree_path == ""
    apply(
        cluster,
        [
            process_element(1, "ELEMENT_ACTIVATING", root),
            element(2, "ELEMENT_ACTIVATING", P1 + 11, root, "call", "CALL_ACTIVITY"),
            process_element(
                3, "ELEMENT_ACTIVATING", child, parent_instance_key=root, parent_element_key=P1 + 11
            ),
            element(4, "ELEMENT_ACTIVATING", task, child, "task"),
        ],
        stream="PROCESS_INSTANCE",
    )
    found = Incident.objects.get()
    child_row = ProcessInstance.objects.get(pk=g(1, child))
    assert (found.root_key, found.tree_path) == (g(1, root), child_row.tree_path)
    assert child_row.incident and child_row.subtree_incident
    root_row = ProcessInstance.objects.get(pk=g(1, root))
    assert root_row.subtree_incident and not root_row.incident
    assert [row.key for row in instance_subtree(instance=root_row)] == [g(1, root), g(1, child)]
    assert [row.key for row in instance_ancestors(instance=child_row)] == [g(1, root)]
    apply(cluster, [incident(41, "RESOLVED", P1 + 50, child, task)], stream="INCIDENT")
    root_row.refresh_from_db()
    assert not root_row.subtree_incident


@pytest.mark.django_db
def test_server_variable_before_the_instance_links_it_and_children_inherit(cluster: Any) -> None:
    root, child = P1 + 10, P1 + 30
    # Zeebe writes the creation variables before the PROCESS element's ACTIVATING (reference §3.8),
    # here in an earlier batch.
    apply(cluster, [variable(1, "CREATED", P1 + 5, "serverSn", "SN-42", root, root)])
    apply(
        cluster,
        [
            process_element(2, "ELEMENT_ACTIVATING", root),
            process_element(3, "ELEMENT_ACTIVATING", child, parent_instance_key=root),
        ],
    )
    assert ProcessInstance.objects.get(pk=g(1, root)).server_id == "SN-42"
    assert ProcessInstance.objects.get(pk=g(1, child)).server_id == "SN-42"
    assert Server.objects.get().is_stub
    # Changing the root's variable later moves the inheriting child along.
    apply(cluster, [variable(4, "UPDATED", P1 + 5, "serverSn", "SN-43", root, root)])
    assert set(ProcessInstance.objects.values_list("server_id", flat=True)) == {"SN-43"}


@pytest.mark.django_db
def test_lag_per_partition_comes_from_the_newest_record(cluster: Any) -> None:
    from datetime import UTC, datetime

    apply(cluster, [process_element(7, "ELEMENT_ACTIVATING", P1 + 10)])
    now = datetime.fromtimestamp((1_700_000_000_000 + 7 + 2500) / 1000, tz=UTC)
    (lag,) = import_lag(cluster=cluster, now=now)
    assert (lag.partition_id, lag.position, lag.lag_seconds, lag.imported_count) == (1, 7, 2.5, 1)


@pytest.mark.django_db(transaction=True)
def test_events_go_to_the_instance_and_its_root_after_commit(cluster: Any, redis_url: str) -> None:
    root, child = P1 + 10, P1 + 30
    layer = get_channel_layer()

    async def subscribe_import_receive() -> list[dict[str, Any]]:
        # One event loop for the whole exchange: the Redis layer's connections belong to it.
        channel = await layer.new_channel()
        for key in (root, child):
            await layer.group_add(instance_group_name(g(1, key)), channel)
        await sync_to_async(apply)(
            cluster,
            [
                process_element(1, "ELEMENT_ACTIVATING", root),
                process_element(2, "ELEMENT_ACTIVATING", child, parent_instance_key=root),
            ],
        )
        return [await asyncio.wait_for(layer.receive(channel), timeout=10) for _ in range(3)]

    received = async_to_sync(subscribe_import_receive)()
    # Root group: the root and its child changed; child group: the child changed.
    assert sorted((message["type"], message["global_key"]) for message in received) == [
        ("instance.changed", g(1, root)),
        ("instance.changed", g(1, child)),
        ("instance.changed", g(1, child)),
    ]


@pytest.mark.django_db
def test_values_beyond_64_bits_and_unicode_survive_whichever_json_decoder_runs(cluster: Any) -> None:
    root = P1 + 10
    value = {"big": 2**70, "text": "Prüfung ✓", "neg": -(2**65)}
    apply(
        cluster,
        [
            process_element(1, "ELEMENT_ACTIVATING", root),
            variable(2, "CREATED", P1 + 20, "v", value, root, root),
        ],
    )
    assert Variable.objects.get().value == value
