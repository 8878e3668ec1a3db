"""Process instance modification plans: read the diagram's elements and check a plan before it is
sent (issue 19). No database access: the service passes the BPMN XML and the active element
instances it has imported.

Refused before sending, with the reason Zeebe gives (its message texts, as the embedded engine
writes them, engine/commands.py ``cmd_modify``): an unknown element; the activation of a start
event, a boundary event, a sequence flow or a process/subprocess itself ("The activation of
elements with type '...' is not supported"); a terminate key that is not an active element
instance of this instance; an ancestor key that is not an active ancestor of the element; a flow
scope with several active instances and no ancestor chosen. An activation inside a multi-instance
subprocess is refused too (Zeebe answers FAILED_PRECONDITION; the reference gives no text, so the
message is ours in Zeebe's form).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from defusedxml import ElementTree as SafeElementTree

MAX_INSTRUCTIONS = 100

# BPMN tag -> Zeebe's bpmnElementType (reference §3.6), for the elements one may see on a diagram.
_TYPES = {
    "process": "PROCESS",
    "subProcess": "SUB_PROCESS",
    "adHocSubProcess": "AD_HOC_SUB_PROCESS",
    "startEvent": "START_EVENT",
    "endEvent": "END_EVENT",
    "boundaryEvent": "BOUNDARY_EVENT",
    "intermediateCatchEvent": "INTERMEDIATE_CATCH_EVENT",
    "intermediateThrowEvent": "INTERMEDIATE_THROW_EVENT",
    "serviceTask": "SERVICE_TASK",
    "userTask": "USER_TASK",
    "scriptTask": "SCRIPT_TASK",
    "sendTask": "SEND_TASK",
    "receiveTask": "RECEIVE_TASK",
    "businessRuleTask": "BUSINESS_RULE_TASK",
    "manualTask": "MANUAL_TASK",
    "task": "TASK",
    "callActivity": "CALL_ACTIVITY",
    "exclusiveGateway": "EXCLUSIVE_GATEWAY",
    "parallelGateway": "PARALLEL_GATEWAY",
    "inclusiveGateway": "INCLUSIVE_GATEWAY",
    "eventBasedGateway": "EVENT_BASED_GATEWAY",
    "sequenceFlow": "SEQUENCE_FLOW",
}
# What Zeebe will not activate (engine UNSUPPORTED_MODIFICATION_TYPES, plus the process itself);
# SUB_PROCESS: the operator activates an element inside it (its scope is created on the way).
UNSUPPORTED_TYPES = frozenset(
    {
        "PROCESS",
        "START_EVENT",
        "SEQUENCE_FLOW",
        "BOUNDARY_EVENT",
        "SUB_PROCESS",
        "EVENT_SUB_PROCESS",
        "UNSPECIFIED",
    }
)


class PlanRefused(ValueError):
    """The plan would be refused; ``field`` is activate or terminate, the message Zeebe's."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class DiagramElement:
    element_id: str
    element_type: str
    name: str
    scopes: tuple[str, ...]  # enclosing subprocess ids, innermost first (the process excluded)
    multi_instance: bool  # has multiInstanceLoopCharacteristics itself


@dataclass(frozen=True)
class Diagram:
    process_id: str
    elements: dict[str, DiagramElement] = field(default_factory=dict)

    def activatable(self) -> list[DiagramElement]:
        """What a plan may activate, in document order (the console's picker)."""
        return [
            element
            for element in self.elements.values()
            if element.element_type not in UNSUPPORTED_TYPES and not self._inside_multi_instance(element)
        ]

    def _inside_multi_instance(self, element: DiagramElement) -> str | None:
        for scope_id in element.scopes:
            scope = self.elements.get(scope_id)
            if scope is not None and scope.multi_instance:
                return scope_id
        return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_diagram(bpmn_xml: str, *, process_id: str) -> Diagram:
    """The elements of process ``process_id`` in the definition's XML (defusedxml: the XML came
    from the clusters' records and is untrusted). Raises PlanRefused if it cannot be read."""
    if not bpmn_xml.strip():
        raise PlanRefused("The process definition's BPMN XML has not been imported yet.", "process_instance")
    try:
        root = SafeElementTree.fromstring(bpmn_xml)
    except (SafeElementTree.ParseError, ValueError) as error:
        raise PlanRefused(
            f"The process definition's BPMN XML cannot be read: {error}", "process_instance"
        ) from None
    process = next(
        (node for node in root.iter() if _local(node.tag) == "process" and node.get("id") == process_id), None
    )
    if process is None:
        raise PlanRefused(f"Process '{process_id}' is not in its definition's BPMN XML.", "process_instance")
    diagram = Diagram(process_id=process_id)

    def walk(node: Any, scopes: tuple[str, ...]) -> None:
        for child in node:
            tag = _local(child.tag)
            child_id = child.get("id")
            if tag in _TYPES and child_id:
                element_type = _TYPES[tag]
                if tag == "subProcess" and child.get("triggeredByEvent") == "true":
                    element_type = "EVENT_SUB_PROCESS"
                diagram.elements[child_id] = DiagramElement(
                    element_id=child_id,
                    element_type=element_type,
                    name=child.get("name") or "",
                    scopes=scopes,
                    multi_instance=any(_local(c.tag) == "multiInstanceLoopCharacteristics" for c in child),
                )
                if tag in ("subProcess", "adHocSubProcess"):
                    walk(child, (child_id, *scopes))

    walk(process, ())
    return diagram


@dataclass(frozen=True)
class ActiveElement:
    """An active element instance of the instance, as imported."""

    key: int
    element_id: str
    element_type: str
    flow_scope_key: int | None


def _join(items: Iterable[str]) -> str:
    return "', '".join(items)


def check_plan(
    *,
    diagram: Diagram,
    process_instance_key: int,
    active: Mapping[int, ActiveElement],
    activate: list[dict[str, Any]],
    terminate: list[int],
) -> list[str]:
    """Refuse (PlanRefused) what Zeebe would refuse; else a line per instruction saying what it does."""
    prefix = f"Expected to modify instance of process '{diagram.process_id}' but it contains one or more"
    unknown = [item["element_id"] for item in activate if item["element_id"] not in diagram.elements]
    if unknown:
        raise PlanRefused(
            f"{prefix} activate instructions with an element that could not be found: '{_join(unknown)}'",
            "activate",
        )
    unsupported = [
        item["element_id"]
        for item in activate
        if diagram.elements[item["element_id"]].element_type in UNSUPPORTED_TYPES
    ]
    if unsupported:
        types = sorted({diagram.elements[element_id].element_type for element_id in unsupported})
        raise PlanRefused(
            f"{prefix} activate instructions for elements that are unsupported: '{_join(unsupported)}'. "
            f"The activation of elements with type '{_join(types)}' is not supported.",
            "activate",
        )
    inside = [
        (item["element_id"], scope)
        for item in activate
        if (scope := diagram._inside_multi_instance(diagram.elements[item["element_id"]])) is not None
    ]
    if inside:
        raise PlanRefused(
            f"{prefix} activate instructions for elements that are inside a multi-instance element: "
            f"'{_join(element_id for element_id, _ in inside)}' (in '{_join(scope for _, scope in inside)}'). "
            "The activation of elements inside a multi-instance element is not supported.",
            "activate",
        )
    missing = [str(key) for key in terminate if key not in active or key == process_instance_key]
    if missing:
        raise PlanRefused(
            f"{prefix} terminate instructions with an element instance that could not be found: '{_join(missing)}'",
            "terminate",
        )
    lines = []
    for item in activate:
        element = diagram.elements[item["element_id"]]
        ancestor = item.get("ancestor_key")
        if ancestor is not None and ancestor != process_instance_key:
            ancestor_instance = active.get(ancestor)
            if ancestor_instance is None:
                raise PlanRefused(
                    f"{prefix} activate instructions with an ancestor scope key that does not exist, or is not in "
                    f"an active state: '{ancestor}'",
                    "activate",
                )
            if ancestor_instance.element_id not in element.scopes:
                raise PlanRefused(
                    f"{prefix} activate instructions with an ancestor scope key that is not an ancestor of the "
                    f"element to activate:\n- instance '{ancestor}' of element '{ancestor_instance.element_id}' is not an "
                    f"ancestor of element '{element.element_id}'",
                    "activate",
                )
        else:
            for scope_id in element.scopes:  # innermost first, as Zeebe decides
                instances = [a for a in active.values() if a.element_id == scope_id]
                if len(instances) > 1:
                    raise PlanRefused(
                        f"{prefix} activate instructions for an element that has a flow scope with more than one "
                        f"active instance: '{scope_id}'. Can't decide in which instance of the flow scope the "
                        "element should be activated. Please specify an ancestor element instance key for this "
                        "activate instruction.",
                        "activate",
                    )
                if instances:
                    break
        where = f" inside {ancestor}" if ancestor not in (None, process_instance_key) else ""
        with_vars = f" with variables {sorted(item['variables'])}" if item.get("variables") else ""
        lines.append(f"Add a token before '{element.element_id}' ({element.element_type}){where}{with_vars}.")
    for key in terminate:
        lines.append(f"Cancel the token at '{active[key].element_id}' (element instance {key}).")
    return lines
