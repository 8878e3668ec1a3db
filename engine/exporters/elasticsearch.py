"""The Zeebe Elasticsearch exporter's output (reference §3.1-3.7): same indices, ids, bulk bodies.

`--export http://HOST:9200[?prefix=zeebe-record]` (https and user:password@ work too).

- Index of a record: `<prefix>_<value-type>_<brokerVersion>_<yyyy-MM-dd of its timestamp, UTC>`,
  value type lower-cased with `-` for `_` (`zeebe-record_process-instance_8.5.0_2024-05-01`).
- Document `_id` = `<partitionId>-<position>`, routing = the partition id; the document is the
  record JSON plus `sequence = (partitionId << 51) + n`, n counting per partition and value type
  from 1 (§3.2), persisted with the exporter's position so a restart continues the count.
- Only EVENT records of the value types the real exporter indexes by default (§3.1: JOB_BATCH,
  PROCESS_INSTANCE_BATCH, MESSAGE_BATCH, CHECKPOINT, PROCESS_EVENT... are off).
- Bulk requests: `POST /_bulk` with an NDJSON body, one `{"index":{"_index","_id","routing"}}`
  line and one document line per record; a batch is acknowledged only when the response says
  `"errors": false`, otherwise the whole batch is sent again (ids are fixed, so documents that
  were already indexed are overwritten, not duplicated).
- Templates, put once on start: the component template `<prefix>` (the shared top-level
  mapping, `dynamic: strict`) and per value type an index template `<prefix>_<value-type>_<version>`
  (`index_patterns` = the versioned search pattern, `composed_of: [<prefix>]`, `priority: 20`,
  the alias `<prefix>-<value-type>`, shards 3 or 1 as §3.1 lists, replicas 0, query cache off,
  `value` mapped `dynamic: strict` with the §3.7 field types).
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from engine.exporters.positions import ExporterPositions
from engine.exporters.runner import ExporterConfigError, dumps_record
from engine.records import BROKER_VERSION, PARTITION_BITS_SHIFT

log = logging.getLogger("engine.exporters.elasticsearch")

DEFAULT_PREFIX = "zeebe-record"
BULK_SIZE = 1000  # ElasticsearchExporterConfiguration bulk.size
REQUEST_TIMEOUT_SECONDS = 30.0  # requestTimeoutMs=30000

# Value types indexed by default (reference §3.1), as ValueType names.
DEFAULT_VALUE_TYPES = frozenset(
    {
        "DEPLOYMENT",
        "PROCESS",
        "ERROR",
        "INCIDENT",
        "JOB",
        "MESSAGE",
        "MESSAGE_SUBSCRIPTION",
        "PROCESS_INSTANCE",
        "PROCESS_INSTANCE_CREATION",
        "PROCESS_INSTANCE_MIGRATION",
        "PROCESS_INSTANCE_MODIFICATION",
        "PROCESS_MESSAGE_SUBSCRIPTION",
        "VARIABLE",
        "VARIABLE_DOCUMENT",
        "DECISION",
        "DECISION_EVALUATION",
        "DECISION_REQUIREMENTS",
        "TIMER",
        "MESSAGE_START_EVENT_SUBSCRIPTION",
        "DEPLOYMENT_DISTRIBUTION",
        "ESCALATION",
        "SIGNAL",
        "SIGNAL_SUBSCRIPTION",
        "RESOURCE_DELETION",
        "COMMAND_DISTRIBUTION",
        "FORM",
        "USER_TASK",
        "COMPENSATION_SUBSCRIPTION",
        "MESSAGE_CORRELATION",
    }
)
# Template settings (reference §3.1): the busy value types get 3 shards.
THREE_SHARDS = frozenset({"PROCESS_INSTANCE", "JOB", "VARIABLE", "MESSAGE", "MESSAGE_SUBSCRIPTION"})

# ------------------------------------------------------------------ mappings (reference §3.7)
LONG: dict[str, Any] = {"type": "long"}
INTEGER: dict[str, Any] = {"type": "integer"}
KEYWORD: dict[str, Any] = {"type": "keyword"}
TEXT: dict[str, Any] = {"type": "text"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
STORED_ONLY: dict[str, Any] = {"enabled": False}  # stored in _source, not indexed

COMPONENT_PROPERTIES: dict[str, Any] = {
    "position": LONG,
    "sourceRecordPosition": LONG,
    "key": LONG,
    "timestamp": {"type": "date"},
    "intent": KEYWORD,
    "partitionId": INTEGER,
    "recordType": KEYWORD,
    "rejectionType": KEYWORD,
    "rejectionReason": TEXT,
    "valueType": KEYWORD,
    "brokerVersion": KEYWORD,
    "recordVersion": INTEGER,
    "sequence": LONG,
    "authorizations": STORED_ONLY,
    "operationReference": LONG,
    "batchOperationReference": LONG,
}

# Field types by name, shared by every value type (keys long; ids and names keyword; the §3.7
# text fields; documents stored only).
_FIELD_TYPES: dict[str, dict[str, Any]] = {
    "errorMessage": TEXT,
    "errorCode": TEXT,
    "correlationKey": TEXT,
    "resourceName": TEXT,
    "variables": STORED_ONLY,
    "customHeaders": STORED_ONLY,
    "resource": STORED_ONLY,
    "checksum": STORED_ONLY,
    "decisionOutput": STORED_ONLY,
    "inputValue": STORED_ONLY,
    "outputValue": STORED_ONLY,
    "elementInstancePath": STORED_ONLY,
    "processDefinitionPath": STORED_ONLY,
    "callingElementPath": STORED_ONLY,
    "version": INTEGER,
    "processDefinitionVersion": INTEGER,
    "decisionVersion": INTEGER,
    "decisionRequirementsVersion": INTEGER,
    "repetitions": INTEGER,
    "ruleIndex": INTEGER,
    "retries": LONG,
    "retryBackoff": LONG,
    "recurringTime": LONG,
    "deadline": LONG,
    "timeout": LONG,
    "timeToLive": LONG,
    "dueDate": LONG,
    "errorEventPosition": LONG,
    "maxJobsToActivate": INTEGER,
    "duplicate": BOOLEAN,
    "interrupting": BOOLEAN,
    "truncated": BOOLEAN,
    "value": {"type": "keyword", "ignore_above": 8191},  # VARIABLE.value (JSON text)
}


def _field(name: str) -> dict[str, Any]:
    if name in _FIELD_TYPES:
        return _FIELD_TYPES[name]
    if name.endswith("Key") or name.endswith("Keys"):
        return LONG
    return KEYWORD


def _object(*fields: str, **nested: dict[str, Any]) -> dict[str, Any]:
    properties = {name: _field(name) for name in fields}
    properties.update(nested)
    return {"properties": properties}


_PROCESS_METADATA = _object(
    "bpmnProcessId", "version", "processDefinitionKey", "resourceName", "checksum", "duplicate",
    "tenantId", "deploymentKey", "versionTag",
)  # fmt: skip
_DECISION_METADATA = _object(
    "decisionId", "decisionName", "version", "decisionKey", "decisionRequirementsId",
    "decisionRequirementsKey", "duplicate", "tenantId", "deploymentKey", "versionTag",
)  # fmt: skip
_DRG_METADATA = _object(
    "decisionRequirementsId", "decisionRequirementsName", "decisionRequirementsVersion",
    "decisionRequirementsKey", "namespace", "resourceName", "checksum", "duplicate", "tenantId",
    "deploymentKey",
)  # fmt: skip
_FORM_METADATA = _object(
    "formId", "version", "formKey", "resourceName", "checksum", "duplicate", "tenantId", "deploymentKey",
    "versionTag",
)  # fmt: skip
_JOB_FIELDS = (
    "type", "worker", "retries", "retryBackoff", "recurringTime", "deadline", "timeout", "errorMessage",
    "errorCode", "customHeaders", "variables", "elementId", "elementInstanceKey", "bpmnProcessId",
    "processDefinitionVersion", "processDefinitionKey", "processInstanceKey", "tenantId", "jobKind",
    "jobListenerEventType",
)  # fmt: skip

# value properties per value type (reference §3.4 plus what engine/records.py writes).
VALUE_MAPPINGS: dict[str, dict[str, Any]] = {
    "PROCESS_INSTANCE": _object(
        "bpmnElementType", "elementId", "bpmnProcessId", "version", "processDefinitionKey",
        "processInstanceKey", "flowScopeKey", "bpmnEventType", "parentProcessInstanceKey",
        "parentElementInstanceKey", "tenantId", "elementInstancePath", "processDefinitionPath",
        "callingElementPath",
    ),
    "JOB": _object(*_JOB_FIELDS),
    "JOB_BATCH": _object(
        "type", "worker", "timeout", "maxJobsToActivate", "jobKeys", "truncated", "tenantIds",
        jobs=_object(*_JOB_FIELDS),
    ),
    "INCIDENT": _object(
        "errorType", "errorMessage", "bpmnProcessId", "processDefinitionKey", "processInstanceKey",
        "elementId", "elementInstanceKey", "jobKey", "variableScopeKey", "tenantId",
        "elementInstancePath", "processDefinitionPath", "callingElementPath",
    ),
    "VARIABLE": _object(
        "name", "value", "scopeKey", "processInstanceKey", "processDefinitionKey", "bpmnProcessId",
        "tenantId",
    ),
    "VARIABLE_DOCUMENT": _object("scopeKey", "updateSemantics", "variables", "tenantId"),
    "PROCESS_INSTANCE_CREATION": _object(
        "bpmnProcessId", "processDefinitionKey", "version", "variables", "fetchVariables",
        "processInstanceKey", "tenantId", startInstructions=_object("elementId"),
    ),
    "PROCESS": _object(
        "bpmnProcessId", "version", "processDefinitionKey", "resourceName", "checksum", "resource",
        "duplicate", "tenantId", "deploymentKey", "versionTag",
    ),
    "DEPLOYMENT": _object(
        "tenantId", "deploymentKey",
        resources=_object("resourceName", "resource"),
        processesMetadata=_PROCESS_METADATA,
        decisionsMetadata=_DECISION_METADATA,
        decisionRequirementsMetadata=_DRG_METADATA,
        formMetadata=_FORM_METADATA,
    ),
    "DECISION": _DECISION_METADATA,
    "DECISION_REQUIREMENTS": _object(
        "decisionRequirementsId", "decisionRequirementsName", "decisionRequirementsVersion",
        "decisionRequirementsKey", "namespace", "resourceName", "checksum", "resource", "duplicate",
        "tenantId", "deploymentKey",
    ),
    "DECISION_EVALUATION": _object(
        "decisionKey", "decisionId", "decisionName", "decisionVersion", "decisionRequirementsKey",
        "decisionRequirementsId", "decisionOutput", "variables", "processDefinitionKey", "bpmnProcessId",
        "processInstanceKey", "elementInstanceKey", "elementId", "evaluationFailureMessage",
        "failedDecisionId", "tenantId",
        evaluatedDecisions=_object(
            "decisionId", "decisionName", "decisionKey", "decisionVersion", "decisionType",
            "decisionOutput", "tenantId",
            evaluatedInputs=_object("inputId", "inputName", "inputValue"),
            matchedRules=_object(
                "ruleId", "ruleIndex", evaluatedOutputs=_object("outputId", "outputName", "outputValue")
            ),
        ),
    ),
    "MESSAGE": _object(
        "name", "correlationKey", "messageId", "timeToLive", "deadline", "variables", "tenantId"
    ),
    "MESSAGE_SUBSCRIPTION": _object(
        "processInstanceKey", "elementInstanceKey", "messageName", "correlationKey", "bpmnProcessId",
        "messageKey", "variables", "interrupting", "tenantId", "processDefinitionKey",
        "processInstancePartitionId",
    ),
    "PROCESS_MESSAGE_SUBSCRIPTION": _object(
        "elementInstanceKey", "messageName", "processInstanceKey", "variables", "bpmnProcessId",
        "messageKey", "correlationKey", "elementId", "interrupting", "tenantId",
    ),
    "MESSAGE_START_EVENT_SUBSCRIPTION": _object(
        "processDefinitionKey", "messageName", "startEventId", "bpmnProcessId", "processInstanceKey",
        "messageKey", "correlationKey", "variables", "tenantId",
    ),
    "TIMER": _object(
        "elementInstanceKey", "processInstanceKey", "processDefinitionKey", "dueDate", "targetElementId",
        "repetitions", "tenantId",
    ),
    "ERROR": _object("exceptionMessage", "stacktrace", "errorEventPosition", "processInstanceKey"),
}  # fmt: skip


def value_type_index_name(value_type: str) -> str:
    """`PROCESS_INSTANCE` -> `process-instance` (RecordIndexRouter)."""
    return value_type.lower().replace("_", "-")


class ElasticsearchExporter:
    def __init__(self, url: str):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ExporterConfigError(f"--export {url}: expected http(s)://HOST:PORT")
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        unknown = set(query) - {"prefix"}
        if unknown:
            raise ExporterConfigError(
                f"--export {url}: unknown option(s) {', '.join(sorted(unknown))} (known: prefix)"
            )
        self.prefix = (query.get("prefix") or [DEFAULT_PREFIX])[-1]
        if not self.prefix or "_" in self.prefix:
            # Reference §3.1: the prefix must not contain `_` (it separates the index name's parts).
            raise ExporterConfigError(f"--export {url}: the index prefix must be non-empty and without '_'")
        port = parsed.port or (443 if parsed.scheme == "https" else 9200)
        netloc = f"{parsed.hostname}:{port}"
        self.base_url = f"{parsed.scheme}://{netloc}{parsed.path.rstrip('/')}"
        self._auth: str | None = None
        if parsed.username is not None:
            credentials = (
                f"{urllib.parse.unquote(parsed.username)}:{urllib.parse.unquote(parsed.password or '')}"
            )
            self._auth = "Basic " + base64.b64encode(credentials.encode()).decode()
        self.exporter_id = f"elasticsearch-{parsed.hostname}-{port}-{self.prefix}"
        self.description = f"{parsed.scheme}://{netloc} ({self.prefix}_*)"
        self.batch_size = BULK_SIZE
        # partition -> value type -> last sequence counter (reference §3.2)
        self._counters: dict[int, dict[str, int]] = {}

    # ------------------------------------------------------------------ naming
    def index_name(self, record: dict[str, Any]) -> str:
        day = datetime.datetime.fromtimestamp(record["timestamp"] / 1000, tz=datetime.UTC).strftime(
            "%Y-%m-%d"
        )
        version = str(record.get("brokerVersion") or BROKER_VERSION).lower()
        return f"{self.prefix}_{value_type_index_name(record['valueType'])}_{version}_{day}"

    def alias_name(self, value_type: str) -> str:
        return f"{self.prefix}-{value_type_index_name(value_type)}"

    def template_name(self, value_type: str) -> str:
        return f"{self.prefix}_{value_type_index_name(value_type)}_{BROKER_VERSION}"

    # ------------------------------------------------------------------ templates
    def component_template(self) -> dict[str, Any]:
        return {
            "template": {
                "settings": {"index": {"queries": {"cache": {"enabled": False}}}},
                "mappings": {"dynamic": "strict", "properties": dict(COMPONENT_PROPERTIES)},
            }
        }

    def index_template(self, value_type: str) -> dict[str, Any]:
        value = {"dynamic": "strict", **VALUE_MAPPINGS.get(value_type, {"properties": {}})}
        return {
            "index_patterns": [f"{self.template_name(value_type)}_*"],
            "composed_of": [self.prefix],
            "priority": 20,
            "template": {
                "settings": {
                    "number_of_shards": 3 if value_type in THREE_SHARDS else 1,
                    "number_of_replicas": 0,
                    "index.queries.cache.enabled": False,
                },
                "aliases": {self.alias_name(value_type): {}},
                "mappings": {"properties": {"value": value}},
            },
        }

    # ------------------------------------------------------------------ bulk
    def bulk_body(self, partition_id: int, records: list[dict[str, Any]]) -> tuple[bytes, dict[str, int]]:
        """(NDJSON body, the counters after it) for `records`; counters change only on success."""
        counters = dict(self._counters.get(partition_id, {}))
        lines: list[str] = []
        for record in records:
            value_type = record["valueType"]
            counters[value_type] = counters.get(value_type, 0) + 1
            document = dict(record)
            document["sequence"] = (partition_id << PARTITION_BITS_SHIFT) + counters[value_type]
            action = {
                "index": {
                    "_index": self.index_name(record),
                    "_id": f"{record['partitionId']}-{record['position']}",
                    "routing": str(record["partitionId"]),
                }
            }
            lines.append(json.dumps(action, separators=(",", ":")))
            lines.append(dumps_record(document))
        return ("\n".join(lines) + "\n").encode(), counters

    def _request(self, method: str, path: str, body: bytes, content_type: str) -> dict[str, Any]:
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        if self._auth is not None:
            headers["Authorization"] = self._auth
        request = urllib.request.Request(  # noqa: S310 - the operator's --export URL, http(s) checked
            self.base_url + path, data=body, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:  # noqa: S310
                text = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read()[:500].decode(errors="replace")
            raise OSError(f"{method} {path}: HTTP {error.code}: {detail}") from None
        answer = json.loads(text) if text else {}
        return answer if isinstance(answer, dict) else {}

    # ------------------------------------------------------------------ Exporter protocol
    def open(self, positions: ExporterPositions, log_ends: dict[int, int]) -> None:
        for partition_id, metadata in positions.metadata.items():
            self._counters[partition_id] = {
                str(k): int(v) for k, v in (metadata.get("sequences") or {}).items()
            }
        self._request(
            "PUT",
            f"/_component_template/{self.prefix}",
            json.dumps(self.component_template()).encode(),
            "application/json",
        )
        for value_type in sorted(DEFAULT_VALUE_TYPES):
            self._request(
                "PUT",
                f"/_index_template/{self.template_name(value_type)}",
                json.dumps(self.index_template(value_type)).encode(),
                "application/json",
            )

    def accepts(self, record: dict[str, Any]) -> bool:
        return record["recordType"] == "EVENT" and record["valueType"] in DEFAULT_VALUE_TYPES

    def export(self, partition_id: int, records: list[dict[str, Any]]) -> None:
        body, counters = self.bulk_body(partition_id, records)
        answer = self._request("POST", "/_bulk", body, "application/x-ndjson")
        if answer.get("errors"):
            failed = [
                item.get("index", {})
                for item in answer.get("items", [])
                if isinstance(item, dict) and item.get("index", {}).get("error")
            ]
            first = failed[0] if failed else {}
            raise OSError(
                f"bulk request: {len(failed)} of {len(records)} documents failed, first "
                f"{first.get('_id')}: {json.dumps(first.get('error'))[:300]}"
            )
        if "items" not in answer:
            raise OSError(f"bulk request: unexpected answer {json.dumps(answer)[:300]}")
        self._counters[partition_id] = counters

    def metadata(self, partition_id: int) -> dict[str, Any] | None:
        return {"sequences": dict(self._counters.get(partition_id, {}))}

    def close(self) -> None:
        pass
