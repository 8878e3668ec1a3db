"""In-memory state of one partition and the appliers that change it.

Event sourcing as in Zeebe: every state change is an EVENT record, and `PartitionState.apply`
(one pure applier per value type and intent) is the only code that mutates state. Processing
applies each event the moment it is produced; recovery loads a snapshot and applies the log's
tail through the very same appliers, so both paths cannot drift apart.

Derived indexes (children per scope, activatable jobs per type, deadlines, backoffs, incidents
per element) are rebuilt from the primary maps on snapshot load instead of being stored.
"""

from __future__ import annotations

import base64
import heapq
import json
from collections.abc import Callable
from typing import Any

from engine.records import decode_local_key, decode_partition, encode_key

ACTIVATABLE = "ACTIVATABLE"
ACTIVATED = "ACTIVATED"
FAILED = "FAILED"
ERROR_THROWN = "ERROR_THROWN"

_MODEL_CACHE: dict[tuple[str, str], Any] = {}


def load_model(process: dict[str, Any]) -> Any:
    """The parsed ProcessModel of a deployed PROCESS value (cached by resource checksum)."""
    cache_key = (process["checksum"], process["bpmnProcessId"])
    model = _MODEL_CACHE.get(cache_key)
    if model is None:
        from engine.bpmn.parser import parse_bpmn

        resource = base64.b64decode(process["resource"])
        for parsed in parse_bpmn(process["resourceName"], resource):
            _MODEL_CACHE[(process["checksum"], parsed.bpmn_process_id)] = parsed
        model = _MODEL_CACHE[cache_key]
    return model


def remember_models(checksum_b64: str, models: list[Any]) -> None:
    for model in models:
        _MODEL_CACHE[(checksum_b64, model.bpmn_process_id)] = model


class PartitionState:
    """Everything a partition knows; mutated only by `apply`."""

    def __init__(self, partition_id: int):
        self.partition_id = partition_id
        self.next_local_key = 1
        self.last_position = 0
        self.processes: dict[int, dict[str, Any]] = {}
        self.process_versions: dict[str, dict[int, int]] = {}
        self.deployments: dict[int, dict[str, Any]] = {}
        self.element_instances: dict[int, dict[str, Any]] = {}
        self.variables: dict[int, dict[str, list[Any]]] = {}
        self.jobs: dict[int, dict[str, Any]] = {}
        self.incidents: dict[int, dict[str, Any]] = {}
        # derived
        self.children: dict[int, dict[int, None]] = {}
        self.activatable: dict[str, dict[int, None]] = {}
        self.deadlines: dict[int, int] = {}
        self.backoffs: dict[int, int] = {}
        # Min-heaps of (due time, job key) over `deadlines`/`backoffs`; entries that no longer
        # match the dict are stale and skipped, so the timer check is O(expired · log n).
        self.deadline_heap: list[tuple[int, int]] = []
        self.backoff_heap: list[tuple[int, int]] = []
        self.element_incidents: dict[int, int] = {}
        self.job_incidents: dict[int, int] = {}
        # Called with a job type whenever a job of that type becomes activatable (long polling).
        self.on_jobs_available: Callable[[str], None] = lambda job_type: None
        self._appliers: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
            ("PROCESS_INSTANCE", "ELEMENT_ACTIVATING"): self._element_activating,
            ("PROCESS_INSTANCE", "ELEMENT_ACTIVATED"): self._element_state,
            ("PROCESS_INSTANCE", "ELEMENT_COMPLETING"): self._element_state,
            ("PROCESS_INSTANCE", "ELEMENT_TERMINATING"): self._element_state,
            ("PROCESS_INSTANCE", "ELEMENT_COMPLETED"): self._element_ended,
            ("PROCESS_INSTANCE", "ELEMENT_TERMINATED"): self._element_ended,
            ("PROCESS_INSTANCE", "SEQUENCE_FLOW_TAKEN"): self._sequence_flow_taken,
            ("VARIABLE", "CREATED"): self._variable_set,
            ("VARIABLE", "UPDATED"): self._variable_set,
            ("JOB", "CREATED"): self._job_created,
            ("JOB_BATCH", "ACTIVATED"): self._jobs_activated,
            ("JOB", "COMPLETED"): self._job_removed,
            ("JOB", "CANCELED"): self._job_removed,
            ("JOB", "FAILED"): self._job_failed,
            ("JOB", "TIMED_OUT"): self._job_activatable_again,
            ("JOB", "RECURRED_AFTER_BACKOFF"): self._job_activatable_again,
            ("JOB", "YIELDED"): self._job_activatable_again,
            ("JOB", "RETRIES_UPDATED"): self._job_retries_updated,
            ("JOB", "TIMEOUT_UPDATED"): self._job_timeout_updated,
            ("JOB", "ERROR_THROWN"): self._job_error_thrown,
            ("INCIDENT", "CREATED"): self._incident_created,
            ("INCIDENT", "RESOLVED"): self._incident_resolved,
            ("PROCESS", "CREATED"): self._process_created,
            ("DEPLOYMENT", "CREATED"): self._deployment_created,
        }

    # ------------------------------------------------------------------ entry point
    def apply(self, record: dict[str, Any]) -> None:
        """Apply one record (events change state; every record advances key and position)."""
        key = record["key"]
        # Only events carry keys this partition generated; a command's key comes from a client
        # and must not move the key generator (a crafted key could push it into other bits).
        if key > 0 and record["recordType"] == "EVENT" and decode_partition(key) == self.partition_id:
            local = decode_local_key(key)
            if local >= self.next_local_key:
                self.next_local_key = local + 1
        if record["position"] > self.last_position:
            self.last_position = record["position"]
        if record["recordType"] != "EVENT":
            return
        applier = self._appliers.get((record["valueType"], record["intent"]))
        if applier is not None:
            applier(record)

    def new_key(self) -> int:
        key = encode_key(self.partition_id, self.next_local_key)
        self.next_local_key += 1
        return key

    # ------------------------------------------------------------------ queries
    def model(self, process_definition_key: int) -> Any:
        return load_model(self.processes[process_definition_key])

    def latest_process(self, bpmn_process_id: str) -> dict[str, Any] | None:
        versions = self.process_versions.get(bpmn_process_id)
        if not versions:
            return None
        return self.processes[versions[max(versions)]]

    def process_by_version(self, bpmn_process_id: str, version: int) -> dict[str, Any] | None:
        key = self.process_versions.get(bpmn_process_id, {}).get(version)
        return None if key is None else self.processes[key]

    def scope_chain(self, scope_key: int) -> list[int]:
        """The scope and its ancestors up to the process instance (variable visibility)."""
        chain = []
        current = scope_key
        while current > 0:
            chain.append(current)
            instance = self.element_instances.get(current)
            if instance is None:
                break
            current = instance["flowScopeKey"]
        return chain

    def visible_variables(self, scope_key: int) -> dict[str, Any]:
        """All variables visible in a scope: the innermost definition wins."""
        result: dict[str, Any] = {}
        for scope in reversed(self.scope_chain(scope_key)):
            for name, (_, value) in self.variables.get(scope, {}).items():
                result[name] = value
        return result

    # ------------------------------------------------------------------ appliers
    def _element_activating(self, record: dict[str, Any]) -> None:
        value = record["value"]
        instance = dict(value)
        instance["key"] = record["key"]
        instance["state"] = "ELEMENT_ACTIVATING"
        instance["jobKey"] = -1
        instance["childInstanceKey"] = -1
        instance["taken"] = {}
        self.element_instances[record["key"]] = instance
        flow_scope_key = value["flowScopeKey"]
        if flow_scope_key > 0:
            self.children.setdefault(flow_scope_key, {})[record["key"]] = None
            scope = self.element_instances.get(flow_scope_key)
            if scope is not None and scope["taken"]:
                self._consume_tokens(scope, value)
        parent_key = value["parentElementInstanceKey"]
        if value["bpmnElementType"] == "PROCESS" and parent_key > 0:
            parent = self.element_instances.get(parent_key)
            if parent is not None:
                parent["childInstanceKey"] = record["key"]

    def _consume_tokens(self, scope: dict[str, Any], value: dict[str, Any]) -> None:
        """An activated element consumes the sequence-flow tokens that led to it.

        A joining parallel gateway consumes one token per incoming flow; anything else one token
        of the first incoming flow that has one (Zeebe's active-sequence-flow counting).
        """
        element = self.model(value["processDefinitionKey"]).elements_by_id.get(value["elementId"])
        if element is None:
            return
        taken = scope["taken"]
        incoming = [flow.id for flow in element.incoming if taken.get(flow.id)]
        if value["bpmnElementType"] != "PARALLEL_GATEWAY":
            incoming = incoming[:1]
        for flow_id in incoming:
            taken[flow_id] -= 1
            if taken[flow_id] <= 0:
                del taken[flow_id]

    def _element_state(self, record: dict[str, Any]) -> None:
        instance = self.element_instances.get(record["key"])
        if instance is not None:
            instance["state"] = record["intent"]

    def _element_ended(self, record: dict[str, Any]) -> None:
        key = record["key"]
        instance = self.element_instances.pop(key, None)
        self.variables.pop(key, None)
        self.children.pop(key, None)
        if instance is None:
            return
        flow_scope_key = instance["flowScopeKey"]
        siblings = self.children.get(flow_scope_key)
        if siblings is not None:
            siblings.pop(key, None)
        job_key = instance["jobKey"]
        if job_key > 0 and job_key in self.jobs:
            self._job_removed({"key": job_key})
        parent_key = instance["parentElementInstanceKey"]
        if instance["bpmnElementType"] == "PROCESS" and parent_key > 0:
            parent = self.element_instances.get(parent_key)
            if parent is not None and parent["childInstanceKey"] == key:
                parent["childInstanceKey"] = -1

    def _sequence_flow_taken(self, record: dict[str, Any]) -> None:
        scope = self.element_instances.get(record["value"]["flowScopeKey"])
        if scope is not None:
            flow_id = record["value"]["elementId"]
            scope["taken"][flow_id] = scope["taken"].get(flow_id, 0) + 1

    def _variable_set(self, record: dict[str, Any]) -> None:
        value = record["value"]
        self.variables.setdefault(value["scopeKey"], {})[value["name"]] = [
            record["key"],
            json.loads(value["value"]),
        ]

    def _job_created(self, record: dict[str, Any]) -> None:
        value = dict(record["value"])
        self.jobs[record["key"]] = {"state": ACTIVATABLE, "value": value}
        instance = self.element_instances.get(value["elementInstanceKey"])
        if instance is not None:
            instance["jobKey"] = record["key"]
        self._make_activatable(record["key"], value["type"])

    def _make_activatable(self, job_key: int, job_type: str) -> None:
        self.activatable.setdefault(job_type, {})[job_key] = None
        self.on_jobs_available(job_type)

    def _unindex(self, job_key: int, job: dict[str, Any]) -> None:
        queue = self.activatable.get(job["value"]["type"])
        if queue is not None:
            queue.pop(job_key, None)
        self.deadlines.pop(job_key, None)
        self.backoffs.pop(job_key, None)

    def _jobs_activated(self, record: dict[str, Any]) -> None:
        for job_key, job_value in zip(record["value"]["jobKeys"], record["value"]["jobs"], strict=True):
            job = self.jobs.get(job_key)
            if job is None:
                continue
            self._unindex(job_key, job)
            job["state"] = ACTIVATED
            job["value"]["deadline"] = job_value["deadline"]
            job["value"]["worker"] = job_value["worker"]
            job["value"]["timeout"] = job_value.get("timeout", -1)
            self._set_deadline(job_key, job_value["deadline"])

    def _set_deadline(self, job_key: int, deadline: int) -> None:
        self.deadlines[job_key] = deadline
        heapq.heappush(self.deadline_heap, (deadline, job_key))

    def _set_backoff(self, job_key: int, due: int) -> None:
        self.backoffs[job_key] = due
        heapq.heappush(self.backoff_heap, (due, job_key))

    def due_jobs(self, now: int, backoff: bool = False) -> list[int]:
        """Job keys whose deadline (or backoff) has passed, popping them from the heap."""
        heap, current = (
            (self.backoff_heap, self.backoffs) if backoff else (self.deadline_heap, self.deadlines)
        )
        due = []
        while heap and heap[0][0] <= now:
            when, job_key = heapq.heappop(heap)
            if current.get(job_key) == when:
                due.append(job_key)
        return due

    def _job_removed(self, record: dict[str, Any]) -> None:
        job = self.jobs.pop(record["key"], None)
        if job is None:
            return
        self._unindex(record["key"], job)
        instance = self.element_instances.get(job["value"]["elementInstanceKey"])
        if instance is not None and instance["jobKey"] == record["key"]:
            instance["jobKey"] = -1

    def _job_failed(self, record: dict[str, Any]) -> None:
        job = self.jobs.get(record["key"])
        if job is None:
            return
        self._unindex(record["key"], job)
        value = record["value"]
        job["value"].update(
            retries=value["retries"],
            errorMessage=value["errorMessage"],
            retryBackoff=value["retryBackoff"],
            recurringTime=value["recurringTime"],
            deadline=-1,
            worker=value["worker"],
        )
        if value["retries"] > 0 and value["retryBackoff"] > 0:
            job["state"] = FAILED
            self._set_backoff(record["key"], value["recurringTime"])
        elif value["retries"] > 0:
            job["state"] = ACTIVATABLE
            self._make_activatable(record["key"], job["value"]["type"])
        else:
            job["state"] = FAILED

    def _job_activatable_again(self, record: dict[str, Any]) -> None:
        job = self.jobs.get(record["key"])
        if job is None:
            return
        self._unindex(record["key"], job)
        job["state"] = ACTIVATABLE
        job["value"]["deadline"] = -1
        job["value"]["worker"] = ""
        job["value"]["recurringTime"] = -1
        self._make_activatable(record["key"], job["value"]["type"])

    def _job_retries_updated(self, record: dict[str, Any]) -> None:
        job = self.jobs.get(record["key"])
        if job is not None:
            job["value"]["retries"] = record["value"]["retries"]

    def _job_timeout_updated(self, record: dict[str, Any]) -> None:
        job = self.jobs.get(record["key"])
        if job is not None:
            job["value"]["deadline"] = record["value"]["deadline"]
            job["value"]["timeout"] = record["value"]["timeout"]
            if job["state"] == ACTIVATED:
                self._set_deadline(record["key"], record["value"]["deadline"])

    def _job_error_thrown(self, record: dict[str, Any]) -> None:
        job = self.jobs.get(record["key"])
        if job is None:
            return
        self._unindex(record["key"], job)
        job["state"] = ERROR_THROWN
        job["value"]["errorCode"] = record["value"]["errorCode"]
        job["value"]["errorMessage"] = record["value"]["errorMessage"]

    def _incident_created(self, record: dict[str, Any]) -> None:
        value = record["value"]
        self.incidents[record["key"]] = dict(value)
        self.element_incidents[value["elementInstanceKey"]] = record["key"]
        if value["jobKey"] > 0:
            self.job_incidents[value["jobKey"]] = record["key"]

    def _incident_resolved(self, record: dict[str, Any]) -> None:
        incident = self.incidents.pop(record["key"], None)
        if incident is None:
            return
        if self.element_incidents.get(incident["elementInstanceKey"]) == record["key"]:
            del self.element_incidents[incident["elementInstanceKey"]]
        job_key = incident["jobKey"]
        if job_key > 0:
            self.job_incidents.pop(job_key, None)
            job = self.jobs.get(job_key)
            # Resolving a job incident makes the job activatable again (reference §1.3).
            if job is not None and job["state"] in (FAILED, ERROR_THROWN) and job["value"]["retries"] > 0:
                job["state"] = ACTIVATABLE
                self._make_activatable(job_key, job["value"]["type"])

    def _process_created(self, record: dict[str, Any]) -> None:
        value = record["value"]
        self.processes[value["processDefinitionKey"]] = dict(value)
        self.process_versions.setdefault(value["bpmnProcessId"], {})[value["version"]] = value[
            "processDefinitionKey"
        ]

    def _deployment_created(self, record: dict[str, Any]) -> None:
        value = record["value"]
        self.deployments[record["key"]] = {
            "processesMetadata": value["processesMetadata"],
            "resources": [resource["resourceName"] for resource in value["resources"]],
        }

    # ------------------------------------------------------------------ snapshots
    def to_snapshot(self) -> dict[str, Any]:
        return {
            "partitionId": self.partition_id,
            "nextLocalKey": self.next_local_key,
            "lastPosition": self.last_position,
            "processes": list(self.processes.values()),
            "deployments": [[key, value] for key, value in self.deployments.items()],
            "elementInstances": list(self.element_instances.values()),
            "variables": [[scope, variables] for scope, variables in self.variables.items()],
            "jobs": [[key, job] for key, job in self.jobs.items()],
            "incidents": [[key, incident] for key, incident in self.incidents.items()],
        }

    def load_snapshot(self, snapshot: dict[str, Any]) -> None:
        self.next_local_key = snapshot["nextLocalKey"]
        self.last_position = snapshot["lastPosition"]
        for process in snapshot["processes"]:
            self._process_created({"value": process})
        self.deployments = {key: value for key, value in snapshot["deployments"]}
        for instance in snapshot["elementInstances"]:
            self.element_instances[instance["key"]] = instance
        for instance in snapshot["elementInstances"]:
            if instance["flowScopeKey"] > 0:
                self.children.setdefault(instance["flowScopeKey"], {})[instance["key"]] = None
        self.variables = {scope: variables for scope, variables in snapshot["variables"]}
        for key, job in sorted(snapshot["jobs"], key=lambda item: item[0]):
            self.jobs[key] = job
            if job["state"] == ACTIVATABLE:
                self.activatable.setdefault(job["value"]["type"], {})[key] = None
            elif job["state"] == ACTIVATED:
                self._set_deadline(key, job["value"]["deadline"])
            elif job["state"] == FAILED and job["value"]["recurringTime"] > 0 and job["value"]["retries"] > 0:
                self._set_backoff(key, job["value"]["recurringTime"])
        for key, incident in snapshot["incidents"]:
            self._incident_created({"key": key, "value": incident})
