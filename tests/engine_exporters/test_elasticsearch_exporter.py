"""The Elasticsearch exporter (engine/exporters/elasticsearch.py): request bodies against reference
§3.1-3.7, a loopback HTTP server recording the bulk requests of a real engine process (retries,
positions across kill -9), and a real Elasticsearch only where ELASTICSEARCH_URL is set."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pyzeebe.proto import gateway_pb2 as pb

from engine.exporters.elasticsearch import (
    COMPONENT_PROPERTIES,
    DEFAULT_VALUE_TYPES,
    ElasticsearchExporter,
)
from engine.exporters.positions import ExporterPositions
from tests.engine.helpers import activate, complete, create, deploy, gateway, one_task_process
from tests.engine_exporters.helpers import log_records
from tests.support import engine_process, wait_for


def _record(
    partition_id: int, position: int, value_type: str, timestamp: int = 1714564800000
) -> dict[str, Any]:
    return {
        "partitionId": partition_id,
        "position": position,
        "sourceRecordPosition": -1,
        "key": 2251799813685252,
        "timestamp": timestamp,  # 2024-05-01T12:00:00Z
        "recordType": "EVENT",
        "valueType": value_type,
        "intent": "ELEMENT_ACTIVATED",
        "rejectionType": "NULL_VAL",
        "rejectionReason": "",
        "brokerVersion": "8.5.0",
        "recordVersion": 1,
        "authorizations": {},
        "value": {"bpmnProcessId": "order"},
    }


def test_bulk_body_is_zeebes_index_layout() -> None:
    exporter = ElasticsearchExporter("http://127.0.0.1:9200")
    records = [
        _record(1, 4321, "PROCESS_INSTANCE"),
        _record(1, 4322, "JOB"),
        _record(1, 4323, "PROCESS_INSTANCE", timestamp=1714608000000 - 1),  # 23:59:59.999 UTC
        _record(1, 4324, "MESSAGE_START_EVENT_SUBSCRIPTION", timestamp=1714608000000),  # next day
    ]
    body, counters = exporter.bulk_body(1, records)
    assert body.endswith(b"\n")
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert len(lines) == 8
    actions, documents = lines[0::2], lines[1::2]
    assert actions[0] == {
        "index": {"_index": "zeebe-record_process-instance_8.5.0_2024-05-01", "_id": "1-4321", "routing": "1"}
    }
    assert actions[1]["index"]["_index"] == "zeebe-record_job_8.5.0_2024-05-01"
    assert actions[2]["index"]["_index"] == "zeebe-record_process-instance_8.5.0_2024-05-01"
    assert actions[3]["index"] == {
        "_index": "zeebe-record_message-start-event-subscription_8.5.0_2024-05-02",
        "_id": "1-4324",
        "routing": "1",
    }
    # The document is the record plus `sequence` = (partitionId << 51) + counter per value type (§3.2).
    assert documents[0] == {**records[0], "sequence": (1 << 51) + 1}
    assert documents[1]["sequence"] == (1 << 51) + 1
    assert documents[2]["sequence"] == (1 << 51) + 2
    assert counters == {"PROCESS_INSTANCE": 2, "JOB": 1, "MESSAGE_START_EVENT_SUBSCRIPTION": 1}
    # Counters move only when the bulk succeeded: building the body again numbers the same.
    assert exporter.bulk_body(1, records)[0] == body
    assert exporter.metadata(1) == {"sequences": {}}
    # Partition 2 counts on its own, in its own sequence range.
    body2, _ = exporter.bulk_body(2, [_record(2, 7, "JOB")])
    assert json.loads(body2.decode().splitlines()[1])["sequence"] == (2 << 51) + 1


def test_templates_follow_the_reference() -> None:
    exporter = ElasticsearchExporter("http://127.0.0.1:9200")
    component = exporter.component_template()
    mappings = component["template"]["mappings"]
    assert mappings["dynamic"] == "strict"
    assert mappings["properties"]["timestamp"] == {"type": "date"}
    assert mappings["properties"]["sequence"] == {"type": "long"}
    assert mappings["properties"]["authorizations"] == {"enabled": False}
    template = exporter.index_template("PROCESS_INSTANCE")
    assert exporter.template_name("PROCESS_INSTANCE") == "zeebe-record_process-instance_8.5.0"
    assert template["index_patterns"] == ["zeebe-record_process-instance_8.5.0_*"]
    assert template["composed_of"] == ["zeebe-record"]
    assert template["priority"] == 20
    assert template["template"]["aliases"] == {"zeebe-record-process-instance": {}}
    assert template["template"]["settings"]["number_of_shards"] == 3
    assert template["template"]["settings"]["number_of_replicas"] == 0
    assert exporter.index_template("INCIDENT")["template"]["settings"]["number_of_shards"] == 1
    value = template["template"]["mappings"]["properties"]["value"]
    assert value["dynamic"] == "strict"
    assert value["properties"]["processInstanceKey"] == {"type": "long"}
    assert value["properties"]["bpmnProcessId"] == {"type": "keyword"}
    assert value["properties"]["version"] == {"type": "integer"}
    variable = exporter.index_template("VARIABLE")["template"]["mappings"]["properties"]["value"]
    assert variable["properties"]["value"] == {"type": "keyword", "ignore_above": 8191}
    job = exporter.index_template("JOB")["template"]["mappings"]["properties"]["value"]["properties"]
    assert job["customHeaders"] == {"enabled": False} and job["variables"] == {"enabled": False}
    assert job["retries"] == {"type": "long"} and job["errorMessage"] == {"type": "text"}
    # Events of the default value types only (§3.1: commands, rejections and JOB_BATCH are off).
    assert exporter.accepts(_record(1, 1, "JOB"))
    assert not exporter.accepts(_record(1, 1, "JOB_BATCH"))
    assert not exporter.accepts({**_record(1, 1, "JOB"), "recordType": "COMMAND"})
    assert not exporter.accepts({**_record(1, 1, "JOB"), "recordType": "COMMAND_REJECTION"})
    # A prefix with '_' would break the index name's parts (§3.1).
    from engine.exporters import ExporterConfigError

    with pytest.raises(ExporterConfigError):
        ElasticsearchExporter("http://127.0.0.1:9200?prefix=my_records")


def _uncovered(document: Any, mapping: dict[str, Any], path: str) -> list[str]:
    """Fields of `document` a `dynamic: strict` mapping would refuse."""
    if mapping.get("enabled") is False:
        return []
    if isinstance(document, list):
        return [miss for item in document for miss in _uncovered(item, mapping, path)]
    if not isinstance(document, dict):
        return [] if "type" in mapping else [f"{path} (a value where the mapping has an object)"]
    properties = mapping.get("properties")
    if properties is None:
        return [f"{path} (an object where the mapping has {mapping})"]
    missing = []
    for name, value in document.items():
        if name not in properties:
            missing.append(f"{path}.{name}")
        else:
            missing += _uncovered(value, properties[name], f"{path}.{name}")
    return missing


def _scenario(address: str) -> None:
    """Deploy, create, complete, fail to an incident, resolve: most value types the engine writes."""
    with gateway(address) as stub:
        deploy(stub, "order.bpmn", one_task_process("order", "pack", retries="1"))
        for n in range(4):
            create(stub, "order", {"n": n, "nested": {"a": [1, 2]}})
        jobs = activate(stub, "pack", max_jobs=4)
        assert len(jobs) == 4
        complete(stub, jobs[0].key, {"packed": True})
        stub.FailJob(pb.FailJobRequest(jobKey=jobs[1].key, retries=0, errorMessage="disk"), timeout=10)
        stub.ThrowError(pb.ThrowErrorRequest(jobKey=jobs[2].key, errorCode="E1"), timeout=10)
        stub.SetVariables(
            pb.SetVariablesRequest(elementInstanceKey=jobs[3].processInstanceKey, variables='{"x":1}'),
            timeout=10,
        )
        stub.CancelProcessInstance(
            pb.CancelProcessInstanceRequest(processInstanceKey=jobs[3].processInstanceKey), timeout=10
        )


def test_strict_mappings_cover_every_record_the_engine_exports(tmp_path: Path) -> None:
    engine = engine_process(tmp_path, partitions=2)
    try:
        _scenario(engine.address)
    finally:
        engine.stop()
    exporter = ElasticsearchExporter("http://127.0.0.1:9200")
    component = exporter.component_template()["template"]["mappings"]
    exported = [record for record in log_records(tmp_path / "data") if exporter.accepts(record)]
    value_types = {record["valueType"] for record in exported}
    assert {"DEPLOYMENT", "PROCESS", "PROCESS_INSTANCE", "JOB", "VARIABLE", "INCIDENT"} <= value_types
    missing: set[str] = set()
    for record in exported:
        body, _ = exporter.bulk_body(record["partitionId"], [record])
        document = json.loads(body.decode().splitlines()[1])
        top = {name: value for name, value in document.items() if name != "value"}
        missing.update(_uncovered(top, component, record["valueType"]))
        value_mapping = exporter.index_template(record["valueType"])["template"]["mappings"]["properties"][
            "value"
        ]
        missing.update(_uncovered(document["value"], value_mapping, f"{record['valueType']}.value"))
    assert not missing, sorted(missing)
    assert set(COMPONENT_PROPERTIES) >= {"position", "key", "timestamp", "sequence"}


class _FakeElasticsearch:
    """A loopback HTTP server that answers like Elasticsearch and records every request.

    `fail_bulks` bulk requests are answered 503 first, then one with `errors: true`; after that
    bulks succeed (their documents are kept by _id, as an index would)."""

    def __init__(self, fail_bulks: int = 2) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        self.documents: dict[tuple[str, str], dict[str, Any]] = {}
        self.fail_bulks = fail_bulks
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with fake.lock:
                    fake.requests.append(("PUT", self.path, body))
                self._answer(200, {"acknowledged": True})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with fake.lock:
                    fake.requests.append(("POST", self.path, body))
                    assert self.path == "/_bulk", self.path
                    assert self.headers["Content-Type"] == "application/x-ndjson"
                    lines = [json.loads(line) for line in body.decode().splitlines()]
                    if fake.fail_bulks > 0:
                        fake.fail_bulks -= 1
                        return self._answer(503, {"error": "unavailable"})
                    if fake.fail_bulks == 0:
                        fake.fail_bulks = -1
                        items = [
                            {
                                "index": {
                                    "_id": a["index"]["_id"],
                                    "status": 429,
                                    "error": {"type": "es_rejected"},
                                }
                            }
                            for a in lines[0::2]
                        ]
                        return self._answer(200, {"errors": True, "items": items})
                    items = []
                    for action, document in zip(lines[0::2], lines[1::2], strict=True):
                        meta = action["index"]
                        fake.documents[(meta["_index"], meta["_id"])] = document
                        items.append({"index": {"_id": meta["_id"], "status": 201}})
                    self._answer(200, {"errors": False, "items": items})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _FakeElasticsearch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bulks(self) -> list[bytes]:
        with self.lock:
            return [body for method, _, body in self.requests if method == "POST"]

    def ids(self) -> set[str]:
        with self.lock:
            return {doc_id for _, doc_id in self.documents}


@pytest.fixture
def fake_es() -> Iterator[_FakeElasticsearch]:
    with _FakeElasticsearch() as server:
        yield server


def test_engine_exports_to_elasticsearch_with_retries_and_across_kill9(
    tmp_path: Path, fake_es: _FakeElasticsearch
) -> None:
    url = f"http://127.0.0.1:{fake_es.port}"
    data_dir = tmp_path / "data"
    exporter = ElasticsearchExporter(url)
    engine = engine_process(tmp_path, partitions=2, extra_args=["--export", url])

    def expected_ids() -> set[str]:
        return {f"{r['partitionId']}-{r['position']}" for r in log_records(data_dir) if exporter.accepts(r)}

    try:
        _scenario(engine.address)
        wait_for(lambda: fake_es.ids() == expected_ids(), timeout=60, what="every event indexed")
        engine.kill9()
        engine.start()
        with gateway(engine.address) as stub:
            for n in range(3):
                create(stub, "order", {"after": n})
        wait_for(
            lambda: fake_es.ids() == expected_ids(), timeout=60, what="every event indexed after kill -9"
        )
    finally:
        engine.stop()
    # Templates were put first: the component template, then one index template per value type.
    puts = [path for method, path, _ in fake_es.requests if method == "PUT"]
    assert puts[0] == "/_component_template/zeebe-record"
    assert "/_index_template/zeebe-record_process-instance_8.5.0" in puts
    assert len([p for p in puts if p.startswith("/_index_template/")]) >= len(DEFAULT_VALUE_TYPES)
    # The 503 and the `errors: true` answer were retried with the same body (nothing skipped).
    bulks = fake_es.bulks()
    assert bulks[0] == bulks[1] == bulks[2]
    assert "retry" in engine.log_tail(50_000)
    # Documents: ids partition-position, routing by partition, sequences dense per (partition,
    # value type) from 1 across the restart (the counters are saved with the position).
    sequences: dict[tuple[int, str], list[int]] = {}
    for (index, doc_id), document in fake_es.documents.items():
        assert doc_id == f"{document['partitionId']}-{document['position']}"
        assert index.startswith(f"zeebe-record_{document['valueType'].lower().replace('_', '-')}_8.5.0_")
        assert document["recordType"] == "EVENT"
        sequences.setdefault((document["partitionId"], document["valueType"]), []).append(
            document["sequence"]
        )
    for (partition_id, _), values in sequences.items():
        counters = sorted(value - (partition_id << 51) for value in values)
        assert counters == list(range(1, len(counters) + 1))
    saved = ExporterPositions(data_dir, exporter.exporter_id)
    assert set(saved.positions) == {1, 2}
    assert saved.metadata[1]["sequences"]["PROCESS_INSTANCE"] >= 1


@pytest.mark.elasticsearch
@pytest.mark.skipif(
    not os.environ.get("ELASTICSEARCH_URL"),
    reason="ELASTICSEARCH_URL is not set: no Elasticsearch can run here (the request bodies are checked above)",
)
def test_real_elasticsearch(tmp_path: Path) -> None:
    base = os.environ["ELASTICSEARCH_URL"].rstrip("/")
    prefix = f"ffexp{int(time.time())}"
    url = f"{base}?prefix={prefix}"
    engine = engine_process(tmp_path, extra_args=["--export", url])
    try:
        _scenario(engine.address)
        exporter = ElasticsearchExporter(url)
        expected = {
            f"{r['partitionId']}-{r['position']}"
            for r in log_records(tmp_path / "data")
            if exporter.accepts(r)
        }

        def indexed() -> set[str]:
            urllib.request.urlopen(f"{base}/{prefix}_*/_refresh", data=b"", timeout=10).close()  # noqa: S310
            request = urllib.request.Request(  # noqa: S310
                f"{base}/{prefix}_*/_search?size=10000&_source=false",
                data=json.dumps({"query": {"match_all": {}}}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return {hit["_id"] for hit in json.loads(response.read())["hits"]["hits"]}

        wait_for(lambda: indexed() == expected, timeout=120, what="every event in Elasticsearch")
        with urllib.request.urlopen(f"{base}/{prefix}-process-instance/_count", timeout=10) as response:  # noqa: S310
            assert json.loads(response.read())["count"] > 0
    finally:
        engine.stop()
