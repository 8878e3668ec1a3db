"""Folding a batch of records into the final state of every entity it touches (in memory).

`BatchFold` starts from the rows the database already holds for the batch's keys (loaded in one
query per model by the projection), then applies each record in (partition, position) order:

* a row remembers the position of the last record applied to it, and a record at or below that
  position is ignored, so applying a record twice, or an older one after a newer one (Redis
  streams per value type interleave, reference §3.9), changes nothing;
* parents, roots and tree paths of new instances are resolved from the rows in memory: the batch's
  own instances first, the rows loaded from the database second (a called instance lives on its
  parent's partition and comes after it in the log).

The result is one dict per row (attribute names of the models, the field lists below derived from
the models themselves) plus the sets of rows to write. Nothing here touches the database.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.db import models

from processes.choices import IncidentState, InstanceState, JobState
from processes.importer.records import MalformedRecord, Record, global_key
from processes.importer.vocabulary import EVENT, PROJECTED_INTENTS
from processes.models import ElementInstance, Incident, Job, ProcessDefinition, ProcessInstance, Variable

Row = dict[str, Any]

# Columns of ProcessInstance that SQL keeps, not the fold (derived.write_derived): never written
# from a row, left at their default when a row is inserted.
INSTANCE_SQL_FLAGS = frozenset({"incident", "subtree_incident"})


def written_fields(
    model: type[models.Model], *, kept_by_sql: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """The attribute names the importer writes for `model`: all of its columns but `kept_by_sql`,
    in the model's order. The fold builds every row with exactly these (a field added to a model
    must be given a value here), and bulk.py loads and writes them."""
    return tuple(field.attname for field in model._meta.concrete_fields if field.attname not in kept_by_sql)


DEFINITION_FIELDS = written_fields(ProcessDefinition)
INSTANCE_FIELDS = written_fields(ProcessInstance, kept_by_sql=INSTANCE_SQL_FLAGS)
ELEMENT_FIELDS = written_fields(ElementInstance)
JOB_FIELDS = written_fields(Job)
INCIDENT_FIELDS = written_fields(Incident)
VARIABLE_FIELDS = written_fields(Variable)

_ACTIVE_INTENTS = frozenset(
    {"ELEMENT_ACTIVATING", "ELEMENT_ACTIVATED", "ELEMENT_COMPLETING", "ELEMENT_TERMINATING"}
)
_NO_ROW_ELEMENT_TYPES = frozenset({"SEQUENCE_FLOW"})


def _text(value: dict[str, Any], name: str, default: str = "") -> str:
    found = value.get(name)
    if found is None:
        return default
    if isinstance(found, str):
        return found
    raise MalformedRecord(f"value field {name!r} is not a text: {found!r}")


def _integer(value: dict[str, Any], name: str, default: int = 0) -> int:
    found = value.get(name)
    if found is None:
        return default
    if type(found) is int:
        return found
    raise MalformedRecord(f"value field {name!r} is not an integer: {found!r}")


def _required_text(value: dict[str, Any], name: str) -> str:
    found = value.get(name)
    if not isinstance(found, str):
        raise MalformedRecord(
            f"value field {name!r} is missing" if found is None else f"value field {name!r} is not a text"
        )
    return found


class BatchFold:
    """The in-memory state of one batch; see the module docstring."""

    def __init__(
        self,
        *,
        cluster_id: int,
        server_variable: str,
        preview_bytes: int,
        definitions: dict[int, Row],
        instances: dict[int, Row],
        elements: dict[int, Row],
        jobs: dict[int, Row],
        incidents: dict[int, Row],
        variables: dict[int, Row],
    ) -> None:
        self.cluster_id = cluster_id
        self.server_variable = server_variable
        self.preview_bytes = preview_bytes
        self.definitions = definitions
        self.instances = instances
        self.elements = elements
        self.jobs = jobs
        self.incidents = incidents
        self.variables = variables
        self.dirty_definitions: set[int] = set()
        self.dirty_instances: set[int] = set()
        self.dirty_elements: set[int] = set()
        self.dirty_jobs: set[int] = set()
        self.dirty_incidents: set[int] = set()
        self.dirty_variables: set[int] = set()
        # Instances created by this batch, in creation order (parents before children).
        self.new_instances: list[int] = []
        # Full JSON text of variables too large to keep inline, by variable key.
        self.large_values: dict[int, str] = {}
        # Variables that were large before this batch and are small now (their full text goes).
        self.shrunk_variables: set[int] = set()
        # Process instances whose own server variable the batch set: instance key -> serial text.
        self.server_values: dict[int, Any] = {}
        # Instances any row of which changed (for the Channels events).
        self.changed_instances: set[int] = set()
        self._datetimes: dict[int, datetime] = {}
        self._handlers: dict[str, Callable[[Record], None]] = {
            "PROCESS_INSTANCE": self._process_instance,
            "JOB": self._job,
            "JOB_BATCH": self._job_batch,
            "INCIDENT": self._incident,
            "VARIABLE": self._variable,
            "PROCESS": self._process,
        }

    # -- helpers ---------------------------------------------------------------------------------

    def _key(self, zeebe_key: Any, field_name: str) -> int | None:
        return global_key(self.cluster_id, zeebe_key, field_name)

    def _record_key(self, record: Record) -> int:
        found = global_key(self.cluster_id, record.key, "key")
        if found is None:
            raise MalformedRecord(f"{record.value_type} {record.intent} record has no key ({record.key})")
        return found

    def _datetime(self, epoch_ms: int) -> datetime:
        found = self._datetimes.get(epoch_ms)
        if found is None:
            try:
                found = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
            except (OverflowError, OSError, ValueError):
                raise MalformedRecord(f"timestamp {epoch_ms} is not a valid epoch time in ms") from None
            self._datetimes[epoch_ms] = found
        return found

    # -- dispatch --------------------------------------------------------------------------------

    def wants(self, record: Record) -> bool:
        """True when the record changes query models (an event of a projected value type and intent)."""
        return record.record_type == EVENT and record.value_type in self._handlers

    def apply(self, record: Record) -> None:
        """Apply one event record of a projected value type (check `wants` and the intent first)."""
        self._handlers[record.value_type](record)

    @staticmethod
    def intent_known(record: Record) -> bool:
        intents = PROJECTED_INTENTS.get(record.value_type)
        return intents is None or record.intent in intents

    # -- PROCESS ---------------------------------------------------------------------------------

    def _process(self, record: Record) -> None:
        key = self._record_key(record)
        value = record.value
        row = self.definitions.get(key)
        if row is not None and row["position"] >= record.position:
            return
        if row is None:
            resource = value.get("resource")
            bpmn_xml = ""
            if isinstance(resource, str) and resource:
                try:
                    bpmn_xml = base64.b64decode(resource, validate=False).decode("utf-8", errors="replace")
                except (binascii.Error, ValueError):
                    raise MalformedRecord("PROCESS value field 'resource' is not base64") from None
            checksum = value.get("checksum")
            row = {
                "key": key,
                "cluster_id": self.cluster_id,
                "bpmn_process_id": _required_text(value, "bpmnProcessId"),
                "version": _integer(value, "version"),
                "version_tag": _text(value, "versionTag"),
                "resource_name": _text(value, "resourceName"),
                "bpmn_xml": bpmn_xml,
                "checksum": checksum[:64] if isinstance(checksum, str) else "",
                "tenant_id": _text(value, "tenantId"),
                "deployment_key": self._key(value.get("deploymentKey"), "deploymentKey"),
                "deployed_at": self._datetime(record.timestamp_ms),
                "deleted": False,
                "position": 0,
            }
            self.definitions[key] = row
        if record.intent == "DELETED":
            row["deleted"] = True
        row["position"] = record.position
        self.dirty_definitions.add(key)

    # -- PROCESS_INSTANCE ------------------------------------------------------------------------

    def _process_instance(self, record: Record) -> None:
        value = record.value
        element_type = _required_text(value, "bpmnElementType")
        if element_type in _NO_ROW_ELEMENT_TYPES or record.intent.startswith("SEQUENCE_FLOW"):
            return
        if element_type == "PROCESS":
            self._process_element(record)
        else:
            self._element(record, element_type)

    def _lifecycle(self, row: Row, record: Record) -> None:
        intent = record.intent
        if intent == "ELEMENT_ACTIVATING":
            row["state"] = InstanceState.ACTIVE
            row["start_date"] = self._datetime(record.timestamp_ms)
        elif intent in _ACTIVE_INTENTS:
            if row["state"] != InstanceState.ACTIVE:
                row["state"] = InstanceState.ACTIVE
        elif intent == "ELEMENT_COMPLETED":
            row["state"] = InstanceState.COMPLETED
            row["end_date"] = self._datetime(record.timestamp_ms)
        elif intent == "ELEMENT_TERMINATED":
            row["state"] = InstanceState.TERMINATED
            row["end_date"] = self._datetime(record.timestamp_ms)

    def _process_element(self, record: Record) -> None:
        key = self._record_key(record)
        value = record.value
        row = self.instances.get(key)
        if row is not None and row["position"] >= record.position:
            return
        if row is None:
            row = self._new_instance(key, record)
        elif record.intent in ("ELEMENT_MIGRATED", "ANCESTOR_MIGRATED"):
            row["process_definition_id"] = self._key(
                value.get("processDefinitionKey"), "processDefinitionKey"
            )
            row["bpmn_process_id"] = _text(value, "bpmnProcessId", row["bpmn_process_id"])
            row["version"] = _integer(value, "version", row["version"])
        self._lifecycle(row, record)
        row["position"] = record.position
        self.dirty_instances.add(key)
        self.changed_instances.add(key)

    def _new_instance(self, key: int, record: Record) -> Row:
        value = record.value
        parent_key = self._key(value.get("parentProcessInstanceKey"), "parentProcessInstanceKey")
        row: Row = {
            "key": key,
            "cluster_id": self.cluster_id,
            "partition_id": record.partition_id,
            "process_definition_id": self._key(value.get("processDefinitionKey"), "processDefinitionKey"),
            "bpmn_process_id": _required_text(value, "bpmnProcessId"),
            "version": _integer(value, "version"),
            "tenant_id": _text(value, "tenantId"),
            "state": InstanceState.ACTIVE,
            "start_date": None,
            "end_date": None,
            "parent_id": parent_key,
            "parent_element_instance_key": self._key(
                value.get("parentElementInstanceKey"), "parentElementInstanceKey"
            ),
            "root_id": key,
            "depth": 0,
            "tree_path": f"{key}/",
            "server_id": None,
            "server_from_variable": False,
            "position": 0,
        }
        if parent_key is not None:
            parent = self.instances.get(parent_key)
            if parent is not None:
                row["root_id"] = parent["root_id"] or parent["key"]
                row["depth"] = parent["depth"] + 1
                row["tree_path"] = f"{parent['tree_path']}{key}/"
            else:
                # The parent was never imported (the log was cut, or the import started late).
                # Newer brokers name the root (reference §3.4 [newer]); otherwise the known part
                # of the tree starts at the parent.
                root_key = self._key(value.get("rootProcessInstanceKey"), "rootProcessInstanceKey")
                prefix = f"{root_key}/" if root_key is not None and root_key != parent_key else ""
                row["root_id"] = root_key or parent_key
                row["tree_path"] = f"{prefix}{parent_key}/{key}/"
                row["depth"] = row["tree_path"].count("/") - 1
        self.instances[key] = row
        self.new_instances.append(key)
        return row

    def _element(self, record: Record, element_type: str) -> None:
        key = self._record_key(record)
        value = record.value
        row = self.elements.get(key)
        if row is not None and row["position"] >= record.position:
            return
        process_instance_key = self._key(value.get("processInstanceKey"), "processInstanceKey")
        if row is None:
            row = {
                "key": key,
                "cluster_id": self.cluster_id,
                "partition_id": record.partition_id,
                "process_instance_id": process_instance_key,
                "process_definition_key": self._key(
                    value.get("processDefinitionKey"), "processDefinitionKey"
                ),
                "bpmn_process_id": _text(value, "bpmnProcessId"),
                "flow_scope_key": self._key(value.get("flowScopeKey"), "flowScopeKey"),
                "element_id": _required_text(value, "elementId"),
                "element_type": element_type,
                "event_type": _text(value, "bpmnEventType"),
                "state": InstanceState.ACTIVE,
                "start_date": None,
                "end_date": None,
                "position": 0,
            }
            self.elements[key] = row
        elif record.intent in ("ELEMENT_MIGRATED", "ANCESTOR_MIGRATED"):
            row["process_definition_key"] = self._key(
                value.get("processDefinitionKey"), "processDefinitionKey"
            )
            row["bpmn_process_id"] = _text(value, "bpmnProcessId", row["bpmn_process_id"])
            row["element_id"] = _text(value, "elementId", row["element_id"])
        self._lifecycle(row, record)
        row["position"] = record.position
        self.dirty_elements.add(key)
        if process_instance_key is not None:
            self.changed_instances.add(process_instance_key)

    # -- JOB -------------------------------------------------------------------------------------

    def _job_row(self, key: int, record: Record, value: dict[str, Any]) -> Row | None:
        row = self.jobs.get(key)
        if row is not None and row["position"] >= record.position:
            return None
        headers = value.get("customHeaders")
        if row is None:
            row = {
                "key": key,
                "cluster_id": self.cluster_id,
                "partition_id": record.partition_id,
                "process_instance_id": self._key(value.get("processInstanceKey"), "processInstanceKey"),
                "element_instance_id": self._key(value.get("elementInstanceKey"), "elementInstanceKey"),
                "process_definition_key": self._key(
                    value.get("processDefinitionKey"), "processDefinitionKey"
                ),
                "bpmn_process_id": _text(value, "bpmnProcessId"),
                "element_id": _text(value, "elementId"),
                "job_type": _required_text(value, "type"),
                "worker": "",
                "retries": 0,
                "retry_backoff_ms": 0,
                "deadline": None,
                "state": JobState.CREATED,
                "error_message": "",
                "error_code": "",
                "custom_headers": {},
                "tenant_id": _text(value, "tenantId"),
                "created_at": self._datetime(record.timestamp_ms),
                "updated_at": None,
                "position": 0,
            }
            self.jobs[key] = row
        # Every JOB value carries the job's current attributes (reference §3.4).
        if "retries" in value:
            row["retries"] = _integer(value, "retries")
        if "retryBackoff" in value:
            row["retry_backoff_ms"] = _integer(value, "retryBackoff")
        worker = _text(value, "worker")
        if worker:
            row["worker"] = worker
        deadline = _integer(value, "deadline", -1)
        if deadline > 0:
            row["deadline"] = self._datetime(deadline)
        if isinstance(headers, dict) and headers:
            row["custom_headers"] = headers
        row["updated_at"] = self._datetime(record.timestamp_ms)
        row["position"] = record.position
        self.dirty_jobs.add(key)
        if row["process_instance_id"] is not None:
            self.changed_instances.add(row["process_instance_id"])
        return row

    def _job(self, record: Record) -> None:
        key = self._record_key(record)
        row = self._job_row(key, record, record.value)
        if row is None:
            return
        intent = record.intent
        value = record.value
        if intent in ("CREATED", "TIMED_OUT", "RECURRED_AFTER_BACKOFF", "YIELDED"):
            row["state"] = JobState.CREATED
        elif intent == "COMPLETED":
            row["state"] = JobState.COMPLETED
        elif intent == "FAILED":
            row["state"] = JobState.FAILED if row["retries"] <= 0 else JobState.CREATED
            row["error_message"] = _text(value, "errorMessage")
        elif intent == "ERROR_THROWN":
            row["state"] = JobState.ERROR_THROWN
            row["error_message"] = _text(value, "errorMessage")
            row["error_code"] = _text(value, "errorCode")
        elif intent == "CANCELED":
            row["state"] = JobState.CANCELED
        elif intent == "MIGRATED":
            row["process_definition_key"] = self._key(
                value.get("processDefinitionKey"), "processDefinitionKey"
            )
            row["bpmn_process_id"] = _text(value, "bpmnProcessId", row["bpmn_process_id"])
            row["element_id"] = _text(value, "elementId", row["element_id"])
        # RETRIES_UPDATED, TIMEOUT_UPDATED, UPDATED: attributes only (above). A failed job stays
        # failed until its incident is resolved (reference §3.8).

    def _job_batch(self, record: Record) -> None:
        value = record.value
        job_keys = value.get("jobKeys")
        jobs = value.get("jobs")
        if not isinstance(job_keys, list) or not isinstance(jobs, list) or len(job_keys) != len(jobs):
            raise MalformedRecord("JOB_BATCH value needs lists 'jobKeys' and 'jobs' of the same length")
        for job_key, job_value in zip(job_keys, jobs, strict=True):
            if not isinstance(job_value, dict):
                raise MalformedRecord("JOB_BATCH value 'jobs' holds a non-object")
            key = self._key(job_key, "jobKeys")
            if key is None:
                continue
            row = self._job_row(key, record, job_value)
            if row is not None:
                row["state"] = JobState.ACTIVATED

    # -- INCIDENT --------------------------------------------------------------------------------

    def _incident(self, record: Record) -> None:
        key = self._record_key(record)
        value = record.value
        row = self.incidents.get(key)
        if row is not None and row["position"] >= record.position:
            return
        if row is None:
            row = {
                "key": key,
                "cluster_id": self.cluster_id,
                "partition_id": record.partition_id,
                "process_instance_id": self._key(value.get("processInstanceKey"), "processInstanceKey"),
                "element_instance_id": self._key(value.get("elementInstanceKey"), "elementInstanceKey"),
                "job_id": self._key(value.get("jobKey"), "jobKey"),
                "process_definition_key": self._key(
                    value.get("processDefinitionKey"), "processDefinitionKey"
                ),
                "bpmn_process_id": _text(value, "bpmnProcessId"),
                "element_id": _text(value, "elementId"),
                "variable_scope_key": self._key(value.get("variableScopeKey"), "variableScopeKey"),
                "error_type": _text(value, "errorType", "UNKNOWN")[:64],
                "error_message": _text(value, "errorMessage"),
                "state": IncidentState.ACTIVE,
                "created_at": self._datetime(record.timestamp_ms),
                "resolved_at": None,
                "root_key": None,
                "tree_path": "",
                "tenant_id": _text(value, "tenantId"),
                "position": 0,
            }
            self.incidents[key] = row
        if record.intent == "RESOLVED":
            row["state"] = IncidentState.RESOLVED
            row["resolved_at"] = self._datetime(record.timestamp_ms)
            # Resolving a job incident makes the job activatable again (reference §3.8).
            job = self.jobs.get(row["job_id"]) if row["job_id"] is not None else None
            if job is not None and job["state"] == JobState.FAILED and job["position"] < record.position:
                job["state"] = JobState.CREATED
                job["position"] = record.position
                self.dirty_jobs.add(job["key"])
        elif record.intent == "MIGRATED":
            row["process_definition_key"] = self._key(
                value.get("processDefinitionKey"), "processDefinitionKey"
            )
            row["bpmn_process_id"] = _text(value, "bpmnProcessId", row["bpmn_process_id"])
            row["element_id"] = _text(value, "elementId", row["element_id"])
        row["position"] = record.position
        self.dirty_incidents.add(key)
        if row["process_instance_id"] is not None:
            self.changed_instances.add(row["process_instance_id"])

    # -- VARIABLE --------------------------------------------------------------------------------

    def _variable(self, record: Record) -> None:
        key = self._record_key(record)
        value = record.value
        row = self.variables.get(key)
        if row is not None and row["position"] >= record.position:
            return
        json_text = value.get("value")
        if not isinstance(json_text, str):
            raise MalformedRecord(
                "VARIABLE value field 'value' (the JSON text of the value) is missing or not a text"
            )
        # Cheap size check first: a UTF-8 character takes at most 4 bytes.
        size = len(json_text) if json_text.isascii() else len(json_text.encode("utf-8"))
        if size <= self.preview_bytes:
            try:
                # Always `json`: a value may hold integers beyond 64 bits (see jsontext.py).
                parsed = json.loads(json_text)
            except ValueError as error:
                raise MalformedRecord(f"VARIABLE value is not JSON text: {error}") from None
            truncated, preview = False, ""
            self.large_values.pop(key, None)
            if "\\u0000" in json_text:
                # PostgreSQL's jsonb cannot hold a NUL character: the value is kept exactly, as its
                # JSON text in VariableValue (like a large one), with `value` NULL.
                parsed, truncated, preview = None, True, json_text
                self.large_values[key] = json_text
        else:
            parsed, truncated = None, True
            preview = json_text.encode("utf-8")[: self.preview_bytes].decode("utf-8", errors="ignore")
            self.large_values[key] = json_text
        scope_key = self._key(value.get("scopeKey"), "scopeKey")
        if scope_key is None:
            raise MalformedRecord("VARIABLE value field 'scopeKey' is missing")
        if row is None:
            row = {
                "key": key,
                "cluster_id": self.cluster_id,
                "partition_id": record.partition_id,
                "name": _required_text(value, "name"),
                "scope_key": scope_key,
                "process_instance_id": self._key(value.get("processInstanceKey"), "processInstanceKey"),
                "process_definition_key": self._key(
                    value.get("processDefinitionKey"), "processDefinitionKey"
                ),
                "bpmn_process_id": _text(value, "bpmnProcessId"),
                "tenant_id": _text(value, "tenantId"),
                "position": 0,
            }
            self.variables[key] = row
        if row.get("truncated") and not truncated:
            self.shrunk_variables.add(key)
        row["value"] = parsed
        row["truncated"] = truncated
        row["preview"] = preview
        row["size"] = size
        row["updated_at"] = self._datetime(record.timestamp_ms)
        row["position"] = record.position
        self.dirty_variables.add(key)
        instance_key = row["process_instance_id"]
        if instance_key is not None:
            self.changed_instances.add(instance_key)
            # The server link comes from the variable on the process scope itself (DESIGN §5).
            if row["name"] == self.server_variable and row["scope_key"] == instance_key and not truncated:
                self.server_values[instance_key] = parsed
