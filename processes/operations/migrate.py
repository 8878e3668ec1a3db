"""Process instance migration plans: match a source version's elements to a target version's and
check a plan before it is sent (issue 19). No database access: the service passes the two
definitions' BPMN XML and what it has imported of the instance.

Refused before sending, in the order and with the texts Zeebe 8.5's engine uses
(ProcessInstanceMigrationPreconditionChecker; the embedded engine writes the same texts,
engine/processing/processors/migration.py): a child instance; duplicate source ids; a mapping naming an
element that is not in the source or the target; an event subprocess in either process; then per
active element instance, from the process down: an unsupported element type (only service and
user tasks move, so a multi-instance body, a subprocess or a call activity refuses the plan), an
unmapped active element, an incident on it, a type change, a flow scope change, a boundary event
on the active element or on its target. What the imported data cannot show (a command racing the
migration in the engine) is left to the engine, which refuses with its own reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from defusedxml import ElementTree as SafeElementTree

from processes.operations.modify import Diagram, PlanRefused, read_diagram

MAX_MAPPINGS = 500

# Zeebe 8.5 migrates the process and these; any other active element refuses the plan.
SUPPORTED_TYPES = frozenset({"PROCESS", "SERVICE_TASK", "USER_TASK"})
# What the editor lists as a source or target of a mapping: flow nodes, not flows or the process.
_NOT_MAPPABLE = frozenset({"PROCESS", "SEQUENCE_FLOW"})


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@dataclass(frozen=True)
class MigrationDiagram:
    """A definition's elements plus what migration checks beyond the modification reader:
    boundary events per attached activity, event subprocesses, Zeebe user tasks."""

    diagram: Diagram
    boundary_events: Mapping[str, tuple[str, ...]]
    event_subprocesses: tuple[str, ...]
    zeebe_user_tasks: frozenset[str]

    @property
    def process_id(self) -> str:
        return self.diagram.process_id

    def mappable(self) -> list[tuple[str, str, str]]:
        """(element id, type, name) of every element a mapping may name, in document order."""
        return [
            (element.element_id, element.element_type, element.name)
            for element in self.diagram.elements.values()
            if element.element_type not in _NOT_MAPPABLE
        ]

    def element_type(self, element_id: str) -> str | None:
        element = self.diagram.elements.get(element_id)
        return element.element_type if element is not None else None

    def flow_scope_id(self, element_id: str) -> str:
        """The id of the element's flow scope: its innermost subprocess, else the process."""
        scopes = self.diagram.elements[element_id].scopes
        return scopes[0] if scopes else self.process_id


def read_migration_diagram(bpmn_xml: str, *, process_id: str) -> MigrationDiagram:
    """Raises PlanRefused when the XML cannot be read (as read_diagram does)."""
    diagram = read_diagram(bpmn_xml, process_id=process_id)
    root = SafeElementTree.fromstring(bpmn_xml)  # read_diagram parsed it already: it is sound
    process = next(
        node for node in root.iter() if _local(node.tag) == "process" and node.get("id") == process_id
    )
    boundary: dict[str, list[str]] = {}
    user_tasks: set[str] = set()
    for node in process.iter():
        tag = _local(node.tag)
        if tag == "boundaryEvent" and node.get("attachedToRef"):
            boundary.setdefault(str(node.get("attachedToRef")), []).append(str(node.get("id") or ""))
        if tag == "userTask" and any(
            _local(child.tag) == "userTask" for child in node.iter() if child is not node
        ):
            user_tasks.add(str(node.get("id") or ""))  # <zeebe:userTask/>: a Zeebe user task, no job
    return MigrationDiagram(
        diagram=diagram,
        boundary_events={key: tuple(value) for key, value in boundary.items()},
        event_subprocesses=tuple(
            element.element_id
            for element in diagram.elements.values()
            # The process's own, as the engine looks at them.
            if element.element_type == "EVENT_SUB_PROCESS" and not element.scopes
        ),
        zeebe_user_tasks=frozenset(user_tasks),
    )


def auto_mapping(source: MigrationDiagram, target: MigrationDiagram) -> dict[str, str]:
    """Source element -> target element with the same id and the same type (Operate's default)."""
    mapping = {}
    for element_id, element_type, _ in source.mappable():
        if target.element_type(element_id) == element_type:
            mapping[element_id] = element_id
    return mapping


@dataclass(frozen=True)
class ActiveInstance:
    """An active element instance of the instance to migrate, as imported."""

    key: int
    element_id: str
    element_type: str
    flow_scope_key: int | None
    has_incident: bool = False


@dataclass
class MigrationCheck:
    """The outcome of checking one instance against one plan: ``refusal`` is Zeebe's reason (None
    when the plan would be accepted), ``about`` the field it is about, ``lines`` what would happen."""

    refusal: str | None = None
    about: str = "mapping"
    lines: list[str] = field(default_factory=list)
    # Per source element id of an active element: Zeebe's reason for that element (the editor's
    # per-row refusal); only the first one refuses the plan, as the engine stops there.
    by_element: dict[str, str] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.refusal is None


def _normalize(mapping: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(str(source), str(target)) for source, target in mapping]


def check_migration(
    *,
    process_instance_key: int,
    is_child: bool,
    source: MigrationDiagram,
    target: MigrationDiagram,
    active: Sequence[ActiveInstance],
    mapping: Iterable[tuple[str, str]],
) -> MigrationCheck:
    """What Zeebe would answer to MigrateProcessInstance with this plan for this instance."""
    key = process_instance_key
    pairs = _normalize(mapping)
    check = MigrationCheck()
    if is_child:
        check.refusal = (
            f"Expected to migrate process instance '{key}' but process instance is a child process instance. "
            "Child process instances cannot be migrated."
        )
        check.about = "process_instance"
        return check
    seen: dict[str, int] = {}
    for source_id, _ in pairs:
        seen[source_id] = seen.get(source_id, 0) + 1
    duplicates = [source_id for source_id, count in seen.items() if count > 1]
    if duplicates:
        check.refusal = (
            f"Expected to migrate process instance '{key}' but the mapping instructions contain duplicate "
            f"source element ids '[{', '.join(duplicates)}]'."
        )
        return check
    for source_id, target_id in pairs:
        if source.element_type(source_id) is None:
            check.refusal = (
                f"Expected to migrate process instance '{key}' but mapping instructions contain a non-existing "
                f"source element id '{source_id}'. Elements provided in mapping instructions must exist in the "
                "source process definition."
            )
            return check
        if target.element_type(target_id) is None:
            check.refusal = (
                f"Expected to migrate process instance '{key}' but mapping instructions contain a non-existing "
                f"target element id '{target_id}'. Elements provided in mapping instructions must exist in the "
                "target process definition."
            )
            return check
    if source.event_subprocesses:
        check.refusal = (
            "Expected to migrate process instance but process instance has an event subprocess. "
            "Process instances with event subprocesses cannot be migrated yet."
        )
        check.about = "process_instance"
        return check
    if target.event_subprocesses:
        check.refusal = (
            "Expected to migrate process instance but target process has an event subprocess. "
            "Target processes with event subprocesses cannot be migrated yet."
        )
        check.about = "target"
        return check
    targets = dict(pairs)
    by_key = {instance.key: instance for instance in active}
    # The engine walks from the process instance down (breadth first); scopes before their children.
    for instance in sorted(active, key=lambda item: (_depth(item, by_key), item.key)):
        reason = _element_refusal(key, instance, source, target, targets, by_key)
        if reason is not None:
            check.by_element.setdefault(instance.element_id, reason)
            if check.refusal is None:
                check.refusal = reason
            continue
        target_id = targets[instance.element_id]
        moved = "stays" if target_id == instance.element_id else f"moves to '{target_id}'"
        check.lines.append(
            f"The token at '{instance.element_id}' ({instance.element_type}, {instance.key}) {moved}"
            + (", keeping its job." if instance.element_type in ("SERVICE_TASK", "USER_TASK") else ".")
        )
    return check


def _depth(instance: ActiveInstance, by_key: Mapping[int, ActiveInstance]) -> int:
    depth, scope = 0, instance.flow_scope_key
    while scope in by_key and depth < 1000:
        depth += 1
        scope = by_key[scope].flow_scope_key  # type: ignore[index]
    return depth


def _element_refusal(
    key: int,
    instance: ActiveInstance,
    source: MigrationDiagram,
    target: MigrationDiagram,
    targets: Mapping[str, str],
    by_key: Mapping[int, ActiveInstance],
) -> str | None:
    element_id, element_type = instance.element_id, instance.element_type
    if element_type not in SUPPORTED_TYPES:
        return (
            f"Expected to migrate process instance '{key}' but active element with id '{element_id}' has an "
            f"unsupported type. The migration of a {element_type} is not supported."
        )
    target_id = targets.get(element_id)
    if target_id is None:
        return (
            f"Expected to migrate process instance '{key}' but no mapping instruction defined for active element "
            f"with id '{element_id}'. Elements cannot be migrated without a mapping."
        )
    if instance.has_incident:
        return (
            f"Expected to migrate process instance '{key}' but active element with id '{element_id}' has an "
            "incident. Elements cannot be migrated with an incident yet. Please retry migration after resolving "
            "the incident."
        )
    target_type = target.element_type(target_id)
    if target_type != element_type:
        return _type_changed(key, element_id, element_type, target_id, str(target_type))
    if element_type == "USER_TASK":
        source_kind = "ZEEBE_USER_TASK" if element_id in source.zeebe_user_tasks else "USER_TASK"
        target_kind = "ZEEBE_USER_TASK" if target_id in target.zeebe_user_tasks else "USER_TASK"
        if source_kind != target_kind:
            return _type_changed(key, element_id, source_kind, target_id, target_kind)
    # The engine migrates scopes first, so the flow scope it compares is already the target's: the
    # target process for the process, the mapped element for a subprocess.
    scope = by_key.get(instance.flow_scope_key) if instance.flow_scope_key is not None else None
    expected_scope = target.process_id if scope is None else targets.get(scope.element_id, scope.element_id)
    actual_scope = target.flow_scope_id(target_id)
    if expected_scope != actual_scope:
        return (
            f"Expected to migrate process instance '{key}' but the flow scope of active element with id "
            f"'{element_id}' is changed. The flow scope of the active element is expected to be "
            f"'{expected_scope}' but was '{actual_scope}'. The flow scope of an element cannot be changed during "
            "migration yet."
        )
    if source.boundary_events.get(element_id):
        return (
            f"Expected to migrate process instance '{key}' but active element with id '{element_id}' has a "
            "boundary event. Migrating active elements with boundary events is not possible yet."
        )
    if target.boundary_events.get(target_id):
        return (
            f"Expected to migrate process instance '{key}' but target element with id '{element_id}' has a "
            "boundary event. Migrating target elements with boundary events is not possible yet."
        )
    return None


def _type_changed(key: int, element_id: str, element_type: str, target_id: str, target_type: str) -> str:
    return (
        f"Expected to migrate process instance '{key}' but active element with id '{element_id}' and type "
        f"'{element_type}' is mapped to an element with id '{target_id}' and different type '{target_type}'. "
        "Elements must be mapped to elements of the same type."
    )


def parse_mapping(raw: object) -> list[tuple[str, str]]:
    """Mapping instructions from API/console input: a list of {source_element_id, target_element_id}
    or of [source, target] pairs, or an object source -> target. Raises PlanRefused naming the problem."""
    pairs: list[tuple[str, str]] = []
    if isinstance(raw, Mapping):
        items: list[object] = [{"source_element_id": s, "target_element_id": t} for s, t in raw.items()]
    elif isinstance(raw, list | tuple):
        items = list(raw)
    else:
        raise PlanRefused(
            "mapping_instructions must be a list of {source_element_id, target_element_id}.", "mapping"
        )
    if len(items) > MAX_MAPPINGS:
        raise PlanRefused(f"At most {MAX_MAPPINGS} mapping instructions.", "mapping")
    for item in items:
        if isinstance(item, list | tuple) and len(item) == 2:  # [source, target], as batches store them
            item = {"source_element_id": item[0], "target_element_id": item[1]}
        if not isinstance(item, Mapping):
            raise PlanRefused(
                "Each mapping instruction is an object with source_element_id and target_element_id.",
                "mapping",
            )
        extra = sorted(set(item) - {"source_element_id", "target_element_id"})
        if extra:
            raise PlanRefused(
                f"Unknown field(s) in a mapping instruction: {', '.join(map(str, extra))}.", "mapping"
            )
        source_id, target_id = item.get("source_element_id"), item.get("target_element_id")
        if not isinstance(source_id, str) or not source_id.strip():
            raise PlanRefused("source_element_id must be a non-empty element id.", "mapping")
        if not isinstance(target_id, str) or not target_id.strip():
            raise PlanRefused(
                f"target_element_id of '{source_id}' must be a non-empty element id.", "mapping"
            )
        if len(source_id) > 255 or len(target_id) > 255:
            raise PlanRefused("Element ids are at most 255 characters.", "mapping")
        pairs.append((source_id.strip(), target_id.strip()))
    return pairs
