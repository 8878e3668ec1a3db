"""Typed in-memory state of one partition, and the appliers that change it.

Event sourcing as in Zeebe: every state change is an EVENT record, and `PartitionState.apply`
(one applier per value type and intent, looked up in `APPLIERS`) is the only code that mutates
state. Processing applies each event the moment it is produced; recovery loads a snapshot and
applies the log's tail through the very same appliers, so both paths cannot drift apart.

State objects are slotted dataclasses (`ElementInstance`, `Job`, `Incident`, `DeployedProcess`,
`Variable`, `Timer`). Derived indexes (children per scope, activatable jobs per type, deadlines,
backoffs, incidents per element, due timers) are rebuilt from the primary maps on snapshot load
instead of being stored.

A new record family adds its appliers with `register_applier` from its own module (see
engine/processing/README.md), and, if it keeps state, a field here plus its snapshot entry.
"""

from __future__ import annotations

import base64
import heapq
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.processing.compensation_state import CompensationState
from engine.processing.decision_state import DecisionState
from engine.processing.message_state import MessageState
from engine.processing.signal_state import SignalState
from engine.records import DEFAULT_TENANT, decode_local_key, decode_partition, encode_key

ACTIVATABLE = "ACTIVATABLE"
ACTIVATED = "ACTIVATED"
FAILED = "FAILED"
ERROR_THROWN = "ERROR_THROWN"

#: Version of the snapshot.json layout. A snapshot of another version is converted when its
#: layout is known (version 1: part 1's dicts) or ignored (the whole log is replayed instead:
#: the log is never compacted, so nothing is lost).
SNAPSHOT_FORMAT_VERSION = 2

_MODEL_CACHE: dict[tuple[str, str], Any] = {}


def load_model(process: DeployedProcess) -> Any:
    """The parsed ProcessModel of a deployed process (cached by resource checksum)."""
    cache_key = (process.checksum, process.bpmn_process_id)
    model = _MODEL_CACHE.get(cache_key)
    if model is None:
        from engine.bpmn.parser import parse_bpmn

        resource = base64.b64decode(process.value["resource"])
        for parsed in parse_bpmn(process.resource_name, resource):
            _MODEL_CACHE[(process.checksum, parsed.bpmn_process_id)] = parsed
        model = _MODEL_CACHE[cache_key]
    return model


def remember_models(checksum_b64: str, models: list[Any]) -> None:
    for model in models:
        _MODEL_CACHE[(checksum_b64, model.bpmn_process_id)] = model


# ---------------------------------------------------------------------- state objects
@dataclass(slots=True)
class ElementInstance:
    """A live element instance (Zeebe's ElementInstance + its PROCESS_INSTANCE record value)."""

    key: int
    state: str
    element_type: str
    element_id: str
    bpmn_process_id: str
    version: int
    process_definition_key: int
    process_instance_key: int
    flow_scope_key: int
    event_type: str
    parent_process_instance_key: int
    parent_element_instance_key: int
    tenant_id: str = DEFAULT_TENANT
    job_key: int = -1
    #: For a call activity: the key of the process instance it called.
    child_instance_key: int = -1
    #: Sequence-flow tokens inside this scope not yet consumed, by flow id.
    taken: dict[str, int] = field(default_factory=dict)
    #: For a MULTI_INSTANCE_BODY: inner instances activated, completed and terminated so far.
    mi_created: int = 0
    mi_completed: int = 0
    mi_terminated: int = 0
    #: For a MULTI_INSTANCE_BODY: its evaluated `inputCollection` and the Variable objects the
    #: expression read (elements/multi_instance.py). A cache, not state: never in a snapshot,
    #: empty after a restart or rollback, and used only while those very Variable objects are
    #: still the visible ones (an applier replaces a Variable on every write), so it always
    #: equals what evaluating again would give.
    mi_items: Any = field(default=None, repr=False, compare=False)
    #: An interrupting event sub-process of this scope has been triggered (Zeebe's
    #: ElementInstance.isInterrupted): an error thrown inside it is no longer caught here or
    #: further up this process (triggers/errors.py). Derived from the EVENT_SUB_PROCESS
    #: activation, so rebuilt from a snapshot's instances too; it never goes back.
    interrupted: bool = False

    def record_value(self) -> dict[str, Any]:
        """The PROCESS_INSTANCE value (reference §3.4), field order as Zeebe writes it."""
        return {
            "bpmnElementType": self.element_type,
            "elementId": self.element_id,
            "bpmnProcessId": self.bpmn_process_id,
            "version": self.version,
            "processDefinitionKey": self.process_definition_key,
            "processInstanceKey": self.process_instance_key,
            "flowScopeKey": self.flow_scope_key,
            "bpmnEventType": self.event_type,
            "parentProcessInstanceKey": self.parent_process_instance_key,
            "parentElementInstanceKey": self.parent_element_instance_key,
            "tenantId": self.tenant_id,
        }

    @property
    def is_active(self) -> bool:
        return self.state in ("ELEMENT_ACTIVATED", "ELEMENT_ACTIVATING")

    @classmethod
    def from_record(cls, key: int, value: dict[str, Any]) -> ElementInstance:
        return cls(
            key=key,
            state="ELEMENT_ACTIVATING",
            element_type=value["bpmnElementType"],
            element_id=value["elementId"],
            bpmn_process_id=value["bpmnProcessId"],
            version=value["version"],
            process_definition_key=value["processDefinitionKey"],
            process_instance_key=value["processInstanceKey"],
            flow_scope_key=value["flowScopeKey"],
            event_type=value["bpmnEventType"],
            parent_process_instance_key=value["parentProcessInstanceKey"],
            parent_element_instance_key=value["parentElementInstanceKey"],
            tenant_id=value.get("tenantId", DEFAULT_TENANT),
        )

    def to_snapshot(self) -> list[Any]:
        return [
            self.key,
            self.state,
            self.record_value(),
            self.job_key,
            self.child_instance_key,
            self.taken,
            [self.mi_created, self.mi_completed, self.mi_terminated],
        ]

    @classmethod
    def from_snapshot(cls, entry: list[Any]) -> ElementInstance:
        key, state, value, job_key, child_instance_key, taken, *rest = entry
        instance = cls.from_record(key, value)
        instance.state = state
        instance.job_key = job_key
        instance.child_instance_key = child_instance_key
        instance.taken = dict(taken)
        if rest:  # multi-instance counters (absent in snapshots written before them)
            instance.mi_created, instance.mi_completed, instance.mi_terminated = rest[0]
        return instance


@dataclass(slots=True)
class ProcessInfo:
    """What every record of one process instance repeats (the `proc` of the transitions)."""

    bpmn_process_id: str
    version: int
    process_definition_key: int
    process_instance_key: int
    parent_process_instance_key: int = -1
    parent_element_instance_key: int = -1

    @classmethod
    def of(cls, instance: ElementInstance) -> ProcessInfo:
        return cls(
            instance.bpmn_process_id,
            instance.version,
            instance.process_definition_key,
            instance.process_instance_key,
            instance.parent_process_instance_key,
            instance.parent_element_instance_key,
        )


@dataclass(slots=True)
class Job:
    """A job; `value` is its JOB record value as last written (Zeebe's JobRecord)."""

    key: int
    state: str
    value: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.value["type"])

    @property
    def element_instance_key(self) -> int:
        return int(self.value["elementInstanceKey"])

    @property
    def retries(self) -> int:
        return int(self.value["retries"])


@dataclass(slots=True)
class Incident:
    """An open incident; `value` is its INCIDENT record value."""

    key: int
    value: dict[str, Any]

    @property
    def error_type(self) -> str:
        return str(self.value["errorType"])

    @property
    def element_instance_key(self) -> int:
        return int(self.value["elementInstanceKey"])

    @property
    def job_key(self) -> int:
        return int(self.value["jobKey"])


@dataclass(slots=True)
class DeployedProcess:
    """A deployed process definition; `value` is its PROCESS record value."""

    key: int
    value: dict[str, Any]

    @property
    def bpmn_process_id(self) -> str:
        return str(self.value["bpmnProcessId"])

    @property
    def version(self) -> int:
        return int(self.value["version"])

    @property
    def checksum(self) -> str:
        return str(self.value["checksum"])

    @property
    def resource_name(self) -> str:
        return str(self.value["resourceName"])


@dataclass(slots=True)
class Variable:
    """One variable of a scope: its (stable) variable key and its JSON value."""

    key: int
    value: Any


@dataclass(slots=True)
class Timer:
    """A TIMER: `value` is its TIMER record value (reference §3.4)."""

    key: int
    value: dict[str, Any]

    @property
    def due_date(self) -> int:
        return int(self.value["dueDate"])

    @property
    def element_instance_key(self) -> int:
        return int(self.value["elementInstanceKey"])


Applier = Callable[["PartitionState", dict[str, Any]], None]

#: (value type, intent) -> applier. Modules of new record families add theirs with
#: `register_applier`; only EVENT records are applied.
APPLIERS: dict[tuple[str, str], Applier] = {}


def register_applier(value_type: str, *intents: str) -> Callable[[Applier], Applier]:
    def decorate(applier: Applier) -> Applier:
        for intent in intents:
            APPLIERS[(value_type, intent)] = applier
        return applier

    return decorate


class PartitionState:
    """Everything a partition knows; mutated only by `apply`."""

    def __init__(self, partition_id: int):
        self.partition_id = partition_id
        self.next_local_key = 1
        self.last_position = 0
        self.processes: dict[int, DeployedProcess] = {}
        self.process_versions: dict[str, dict[int, int]] = {}
        self.deployments: dict[int, dict[str, Any]] = {}
        self.element_instances: dict[int, ElementInstance] = {}
        self.variables: dict[int, dict[str, Variable]] = {}
        self.jobs: dict[int, Job] = {}
        self.incidents: dict[int, Incident] = {}
        self.timers: dict[int, Timer] = {}
        # deployed DRGs and decisions (engine/processing/decision_state.py)
        self.decision_state = DecisionState()
        # compensation subscriptions (engine/processing/compensation_state.py)
        self.compensation_state = CompensationState()
        # signal subscriptions (engine/processing/signal_state.py)
        self.signal_state = SignalState()
        # messages and message subscriptions (engine/processing/message_state.py)
        self.message_state = MessageState()
        # derived
        self.children: dict[int, dict[int, None]] = {}
        self.activatable: dict[str, dict[int, None]] = {}
        self.deadlines: dict[int, int] = {}
        self.backoffs: dict[int, int] = {}
        # Min-heaps of (due time, key) over `deadlines`/`backoffs`/timers; entries that no
        # longer match are stale and skipped, so a timer check is O(expired · log n).
        self.deadline_heap: list[tuple[int, int]] = []
        self.backoff_heap: list[tuple[int, int]] = []
        self.timer_heap: list[tuple[int, int]] = []
        self.element_incidents: dict[int, int] = {}
        self.job_incidents: dict[int, int] = {}
        # timer keys per element instance (the subscriptions it opened)
        self.element_timers: dict[int, dict[int, None]] = {}
        # Multi-instance bodies to look at once more from the broker loop: a parallel body
        # activates its inner instances in slices, one command each (elements/multi_instance.py).
        # Derived (rebuilt from the element instances on load); entries are dropped once checked.
        self.mi_bodies_to_check: dict[int, None] = {}
        # Called with a job type whenever a job of that type becomes activatable (long polling).
        self.on_jobs_available: Callable[[str], None] = lambda job_type: None

    # ------------------------------------------------------------------ entry point
    def apply(self, record: dict[str, Any]) -> None:
        """Apply one record (events change state; every record advances key and position)."""
        key = record["key"]
        # Only events and follow-up commands (the engine's own: they have a source position)
        # carry keys this partition generated; a client command's key must not move the key
        # generator (a crafted key could push it into other bits).
        record_type = record["recordType"]
        if (
            key > 0
            and (record_type == "EVENT" or (record_type == "COMMAND" and record["sourceRecordPosition"] >= 0))
            and decode_partition(key) == self.partition_id
        ):
            local = decode_local_key(key)
            if local >= self.next_local_key:
                self.next_local_key = local + 1
        if record["position"] > self.last_position:
            self.last_position = record["position"]
        if record_type != "EVENT":
            return
        applier = APPLIERS.get((record["valueType"], record["intent"]))
        if applier is not None:
            applier(self, record)

    def new_key(self) -> int:
        key = encode_key(self.partition_id, self.next_local_key)
        self.next_local_key += 1
        return key

    # ------------------------------------------------------------------ queries
    def model(self, process_definition_key: int) -> Any:
        return load_model(self.processes[process_definition_key])

    def latest_process(self, bpmn_process_id: str) -> DeployedProcess | None:
        versions = self.process_versions.get(bpmn_process_id)
        if not versions:
            return None
        return self.processes[versions[max(versions)]]

    def process_by_version(self, bpmn_process_id: str, version: int) -> DeployedProcess | None:
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
            current = instance.flow_scope_key
        return chain

    def visible_variables(self, scope_key: int) -> dict[str, Any]:
        """All variables visible in a scope: the innermost definition wins."""
        result: dict[str, Any] = {}
        for scope in reversed(self.scope_chain(scope_key)):
            for name, variable in self.variables.get(scope, {}).items():
                result[name] = variable.value
        return result

    def local_variables(self, scope_key: int) -> dict[str, Any]:
        return {name: variable.value for name, variable in self.variables.get(scope_key, {}).items()}

    # ------------------------------------------------------------------ index helpers
    def make_activatable(self, job_key: int, job_type: str) -> None:
        self.activatable.setdefault(job_type, {})[job_key] = None
        self.on_jobs_available(job_type)

    def unindex_job(self, job: Job) -> None:
        queue = self.activatable.get(job.type)
        if queue is not None:
            queue.pop(job.key, None)
        self.deadlines.pop(job.key, None)
        self.backoffs.pop(job.key, None)

    def set_deadline(self, job_key: int, deadline: int) -> None:
        self.deadlines[job_key] = deadline
        heapq.heappush(self.deadline_heap, (deadline, job_key))

    def set_backoff(self, job_key: int, due: int) -> None:
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

    def index_timer(self, timer: Timer) -> None:
        heapq.heappush(self.timer_heap, (timer.due_date, timer.key))
        if timer.element_instance_key > 0:
            self.element_timers.setdefault(timer.element_instance_key, {})[timer.key] = None

    def due_timers(self, now: int, limit: int = 1_000_000) -> list[int]:
        """Up to `limit` timer keys whose due date has passed, popping them from the heap."""
        due: list[int] = []
        while self.timer_heap and self.timer_heap[0][0] <= now and len(due) < limit:
            when, timer_key = heapq.heappop(self.timer_heap)
            timer = self.timers.get(timer_key)
            if timer is not None and timer.due_date == when:
                due.append(timer_key)
        return due

    def remove_job(self, job_key: int) -> None:
        job = self.jobs.pop(job_key, None)
        if job is None:
            return
        self.unindex_job(job)
        instance = self.element_instances.get(job.element_instance_key)
        if instance is not None and instance.job_key == job_key:
            instance.job_key = -1

    # ------------------------------------------------------------------ snapshots
    def to_snapshot(self) -> dict[str, Any]:
        return {
            "formatVersion": SNAPSHOT_FORMAT_VERSION,
            "partitionId": self.partition_id,
            "nextLocalKey": self.next_local_key,
            "lastPosition": self.last_position,
            "processes": [process.value for process in self.processes.values()],
            "deployments": [[key, value] for key, value in self.deployments.items()],
            "elementInstances": [instance.to_snapshot() for instance in self.element_instances.values()],
            "variables": [
                [scope, {name: [variable.key, variable.value] for name, variable in variables.items()}]
                for scope, variables in self.variables.items()
            ],
            "jobs": [[job.key, job.state, job.value] for job in self.jobs.values()],
            "incidents": [[incident.key, incident.value] for incident in self.incidents.values()],
            "timers": [[timer.key, timer.value] for timer in self.timers.values()],
            **self.decision_state.to_snapshot(),
            **self.compensation_state.to_snapshot(),
            **self.signal_state.to_snapshot(),
            **self.message_state.to_snapshot(self.element_instances),
        }

    def load_snapshot(self, snapshot: dict[str, Any]) -> None:
        """Load a snapshot of this version or of version 1 (part 1's layout); ValueError for
        any other version (the caller then replays the log)."""
        version = snapshot.get("formatVersion", 1)
        if version not in (1, SNAPSHOT_FORMAT_VERSION):
            raise ValueError(f"snapshot format version {version} is not known to this engine")
        self.next_local_key = snapshot["nextLocalKey"]
        self.last_position = snapshot["lastPosition"]
        for process in snapshot["processes"]:
            self._add_process(process)
        self.deployments = {key: value for key, value in snapshot["deployments"]}
        for entry in snapshot["elementInstances"]:
            instance = _instance_v1(entry) if version == 1 else ElementInstance.from_snapshot(entry)
            self.element_instances[instance.key] = instance
        for instance in self.element_instances.values():
            if instance.flow_scope_key > 0:
                self.children.setdefault(instance.flow_scope_key, {})[instance.key] = None
            if instance.element_type == "EVENT_SUB_PROCESS":
                _mark_interrupted_scope(self, instance)
            if instance.element_type == "MULTI_INSTANCE_BODY" and instance.state == "ELEMENT_ACTIVATED":
                self.mi_bodies_to_check[instance.key] = None
        self.variables = {
            scope: {name: Variable(key, value) for name, (key, value) in variables.items()}
            for scope, variables in snapshot["variables"]
        }
        if version == 1:
            jobs = [(key, job["state"], job["value"]) for key, job in snapshot["jobs"]]
        else:
            jobs = [(key, state, value) for key, state, value in snapshot["jobs"]]
        for key, state, value in sorted(jobs, key=lambda item: item[0]):
            job = Job(key, state, value)
            self.jobs[key] = job
            if state == ACTIVATABLE:
                self.activatable.setdefault(job.type, {})[key] = None
            elif state == ACTIVATED:
                self.set_deadline(key, value["deadline"])
            elif state == FAILED and value["recurringTime"] > 0 and value["retries"] > 0:
                self.set_backoff(key, value["recurringTime"])
        for key, incident in snapshot["incidents"]:
            self._add_incident(Incident(key, incident))
        self.decision_state.load_snapshot(snapshot)
        self.compensation_state.load_snapshot(snapshot)
        self.signal_state.load_snapshot(snapshot)
        self.message_state.load_snapshot(snapshot)
        for key, value in snapshot.get("timers", []):
            timer = Timer(key, value)
            self.timers[key] = timer
            self.index_timer(timer)

    def _add_process(self, value: dict[str, Any]) -> None:
        key = value["processDefinitionKey"]
        self.processes[key] = DeployedProcess(key, dict(value))
        self.process_versions.setdefault(value["bpmnProcessId"], {})[value["version"]] = key

    def _add_incident(self, incident: Incident) -> None:
        self.incidents[incident.key] = incident
        self.element_incidents[incident.element_instance_key] = incident.key
        if incident.job_key > 0:
            self.job_incidents[incident.job_key] = incident.key


def _instance_v1(entry: dict[str, Any]) -> ElementInstance:
    """An element instance of a version-1 snapshot (a dict of the record value + state)."""
    instance = ElementInstance.from_record(entry["key"], entry)
    instance.state = entry["state"]
    instance.job_key = entry["jobKey"]
    instance.child_instance_key = entry["childInstanceKey"]
    instance.taken = dict(entry["taken"])
    return instance


# ---------------------------------------------------------------------- appliers
@register_applier("PROCESS_INSTANCE", "ELEMENT_ACTIVATING")
def _element_activating(state: PartitionState, record: dict[str, Any]) -> None:
    value = record["value"]
    instance = ElementInstance.from_record(record["key"], value)
    state.element_instances[instance.key] = instance
    flow_scope_key = instance.flow_scope_key
    if flow_scope_key > 0:
        state.children.setdefault(flow_scope_key, {})[instance.key] = None
        scope = state.element_instances.get(flow_scope_key)
        if scope is not None and scope.taken:
            _consume_tokens(state, scope, instance)
        if scope is not None and scope.element_type == "MULTI_INSTANCE_BODY":
            scope.mi_created += 1
    parent_key = instance.parent_element_instance_key
    if instance.element_type == "PROCESS" and parent_key > 0:
        parent = state.element_instances.get(parent_key)
        if parent is not None:
            parent.child_instance_key = instance.key
    if instance.element_type == "EVENT_SUB_PROCESS":
        scope = _mark_interrupted_scope(state, instance)
        if scope is not None:
            # An interrupting event sub-process ends every path of its scope, tokens waiting
            # at a join included: the scope completes when the event sub-process does.
            scope.taken.clear()


def _mark_interrupted_scope(state: PartitionState, sub_process: ElementInstance) -> ElementInstance | None:
    """The scope an interrupting event sub-process instance interrupts, marked so; None for a
    non-interrupting one (or a scope already gone)."""
    scope = state.element_instances.get(sub_process.flow_scope_key)
    element = state.model(sub_process.process_definition_key).elements_by_id.get(sub_process.element_id)
    starts = getattr(element, "start_events", ())
    if scope is None or not starts or not starts[0].interrupting:
        return None
    scope.interrupted = True
    return scope


def _consume_tokens(state: PartitionState, scope: ElementInstance, instance: ElementInstance) -> None:
    """An activated element consumes the sequence-flow tokens that led to it.

    A joining parallel gateway consumes one token per incoming flow; anything else one token
    of the first incoming flow that has one (Zeebe's active-sequence-flow counting).
    """
    element = state.model(instance.process_definition_key).elements_by_id.get(instance.element_id)
    if element is None:
        return
    taken = scope.taken
    incoming = [flow.id for flow in element.incoming if taken.get(flow.id)]
    if instance.element_type not in ("PARALLEL_GATEWAY", "INCLUSIVE_GATEWAY"):
        incoming = incoming[:1]
    for flow_id in incoming:
        taken[flow_id] -= 1
        if taken[flow_id] <= 0:
            del taken[flow_id]


@register_applier("PROCESS_INSTANCE", "ELEMENT_ACTIVATED", "ELEMENT_COMPLETING", "ELEMENT_TERMINATING")
def _element_state(state: PartitionState, record: dict[str, Any]) -> None:
    instance = state.element_instances.get(record["key"])
    if instance is not None:
        instance.state = record["intent"]
        if instance.element_type == "MULTI_INSTANCE_BODY" and record["intent"] == "ELEMENT_ACTIVATED":
            state.mi_bodies_to_check[instance.key] = None


@register_applier("PROCESS_INSTANCE", "ELEMENT_COMPLETED", "ELEMENT_TERMINATED")
def _element_ended(state: PartitionState, record: dict[str, Any]) -> None:
    key = record["key"]
    instance = state.element_instances.pop(key, None)
    state.variables.pop(key, None)
    state.children.pop(key, None)
    state.element_timers.pop(key, None)
    state.mi_bodies_to_check.pop(key, None)
    if instance is None:
        return
    siblings = state.children.get(instance.flow_scope_key)
    if siblings is not None:
        siblings.pop(key, None)
    scope = state.element_instances.get(instance.flow_scope_key)
    if scope is not None and scope.element_type == "MULTI_INSTANCE_BODY":
        if record["intent"] == "ELEMENT_COMPLETED":
            scope.mi_completed += 1
        else:
            scope.mi_terminated += 1
    if instance.job_key > 0 and instance.job_key in state.jobs:
        state.remove_job(instance.job_key)
    parent_key = instance.parent_element_instance_key
    if instance.element_type == "PROCESS" and parent_key > 0:
        parent = state.element_instances.get(parent_key)
        if parent is not None and parent.child_instance_key == key:
            parent.child_instance_key = -1


@register_applier("PROCESS_INSTANCE", "SEQUENCE_FLOW_TAKEN")
def _sequence_flow_taken(state: PartitionState, record: dict[str, Any]) -> None:
    scope = state.element_instances.get(record["value"]["flowScopeKey"])
    if scope is not None:
        flow_id = record["value"]["elementId"]
        scope.taken[flow_id] = scope.taken.get(flow_id, 0) + 1


@register_applier("VARIABLE", "CREATED", "UPDATED")
def _variable_set(state: PartitionState, record: dict[str, Any]) -> None:
    value = record["value"]
    state.variables.setdefault(value["scopeKey"], {})[value["name"]] = Variable(
        record["key"], json.loads(value["value"])
    )


@register_applier("JOB", "CREATED")
def _job_created(state: PartitionState, record: dict[str, Any]) -> None:
    job = Job(record["key"], ACTIVATABLE, dict(record["value"]))
    state.jobs[job.key] = job
    instance = state.element_instances.get(job.element_instance_key)
    if instance is not None:
        instance.job_key = job.key
    state.make_activatable(job.key, job.type)


@register_applier("JOB_BATCH", "ACTIVATED")
def _jobs_activated(state: PartitionState, record: dict[str, Any]) -> None:
    for job_key, job_value in zip(record["value"]["jobKeys"], record["value"]["jobs"], strict=True):
        job = state.jobs.get(job_key)
        if job is None:
            continue
        state.unindex_job(job)
        job.state = ACTIVATED
        job.value["deadline"] = job_value["deadline"]
        job.value["worker"] = job_value["worker"]
        job.value["timeout"] = job_value.get("timeout", -1)
        state.set_deadline(job_key, job_value["deadline"])


@register_applier("JOB", "COMPLETED", "CANCELED")
def _job_removed(state: PartitionState, record: dict[str, Any]) -> None:
    state.remove_job(record["key"])


@register_applier("JOB", "FAILED")
def _job_failed(state: PartitionState, record: dict[str, Any]) -> None:
    job = state.jobs.get(record["key"])
    if job is None:
        return
    state.unindex_job(job)
    value = record["value"]
    job.value.update(
        retries=value["retries"],
        errorMessage=value["errorMessage"],
        retryBackoff=value["retryBackoff"],
        recurringTime=value["recurringTime"],
        deadline=-1,
        worker=value["worker"],
    )
    if value["retries"] > 0 and value["retryBackoff"] > 0:
        job.state = FAILED
        state.set_backoff(job.key, value["recurringTime"])
    elif value["retries"] > 0:
        job.state = ACTIVATABLE
        state.make_activatable(job.key, job.type)
    else:
        job.state = FAILED


@register_applier("JOB", "TIMED_OUT", "RECURRED_AFTER_BACKOFF", "YIELDED")
def _job_activatable_again(state: PartitionState, record: dict[str, Any]) -> None:
    job = state.jobs.get(record["key"])
    if job is None:
        return
    state.unindex_job(job)
    job.state = ACTIVATABLE
    job.value["deadline"] = -1
    job.value["worker"] = ""
    job.value["recurringTime"] = -1
    state.make_activatable(job.key, job.type)


@register_applier("JOB", "RETRIES_UPDATED")
def _job_retries_updated(state: PartitionState, record: dict[str, Any]) -> None:
    job = state.jobs.get(record["key"])
    if job is not None:
        job.value["retries"] = record["value"]["retries"]


@register_applier("JOB", "TIMEOUT_UPDATED")
def _job_timeout_updated(state: PartitionState, record: dict[str, Any]) -> None:
    job = state.jobs.get(record["key"])
    if job is not None:
        job.value["deadline"] = record["value"]["deadline"]
        job.value["timeout"] = record["value"]["timeout"]
        if job.state == ACTIVATED:
            state.set_deadline(job.key, record["value"]["deadline"])


@register_applier("JOB", "ERROR_THROWN")
def _job_error_thrown(state: PartitionState, record: dict[str, Any]) -> None:
    job = state.jobs.get(record["key"])
    if job is None:
        return
    state.unindex_job(job)
    job.state = ERROR_THROWN
    job.value["errorCode"] = record["value"]["errorCode"]
    job.value["errorMessage"] = record["value"]["errorMessage"]


@register_applier("INCIDENT", "CREATED")
def _incident_created(state: PartitionState, record: dict[str, Any]) -> None:
    state._add_incident(Incident(record["key"], dict(record["value"])))


@register_applier("INCIDENT", "RESOLVED")
def _incident_resolved(state: PartitionState, record: dict[str, Any]) -> None:
    incident = state.incidents.pop(record["key"], None)
    if incident is None:
        return
    if state.element_incidents.get(incident.element_instance_key) == incident.key:
        del state.element_incidents[incident.element_instance_key]
    job_key = incident.job_key
    if job_key > 0:
        state.job_incidents.pop(job_key, None)
        job = state.jobs.get(job_key)
        # Resolving a job incident makes the job activatable again (reference §1.3).
        if job is not None and job.state in (FAILED, ERROR_THROWN) and job.retries > 0:
            job.state = ACTIVATABLE
            state.make_activatable(job_key, job.type)


@register_applier("PROCESS", "CREATED")
def _process_created(state: PartitionState, record: dict[str, Any]) -> None:
    state._add_process(record["value"])


@register_applier("DEPLOYMENT", "CREATED")
def _deployment_created(state: PartitionState, record: dict[str, Any]) -> None:
    value = record["value"]
    state.deployments[record["key"]] = {
        "processesMetadata": value["processesMetadata"],
        "resources": [resource["resourceName"] for resource in value["resources"]],
        # what a distribution to the other partitions needs (engine/processing/decisions.py)
        "decisionsMetadata": value.get("decisionsMetadata", []),
        "decisionRequirementsMetadata": value.get("decisionRequirementsMetadata", []),
    }


@register_applier("TIMER", "CREATED")
def _timer_created(state: PartitionState, record: dict[str, Any]) -> None:
    timer = Timer(record["key"], dict(record["value"]))
    state.timers[timer.key] = timer
    state.index_timer(timer)


@register_applier("TIMER", "TRIGGERED", "CANCELED")
def _timer_removed(state: PartitionState, record: dict[str, Any]) -> None:
    timer = state.timers.pop(record["key"], None)
    if timer is not None:
        owned = state.element_timers.get(timer.element_instance_key)
        if owned is not None:
            owned.pop(timer.key, None)
