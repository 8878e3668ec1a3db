"""Where does the flow go after a step? Read from the definition's BPMN XML, for skip (DESIGN §6).

The XML comes from the clusters' records (untrusted text), so it is parsed with defusedxml (no
entity expansion, no external entities). Only what skip needs is answered: the single element a
step's one outgoing sequence flow leads to, or a reason why there is none to choose.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element  # type only; parsing goes through defusedxml

from defusedxml import ElementTree as SafeElementTree

BPMN_NS = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"

# Element types (ElementInstance.element_type, reference §3.6) that are not a step one can skip.
_NOT_SKIPPABLE = frozenset(
    {
        "PROCESS",
        "START_EVENT",
        "END_EVENT",
        "BOUNDARY_EVENT",
        "SEQUENCE_FLOW",
        "MULTI_INSTANCE_BODY",
        "EXCLUSIVE_GATEWAY",
        "PARALLEL_GATEWAY",
        "INCLUSIVE_GATEWAY",
        "EVENT_BASED_GATEWAY",
    }
)
_JOINING_GATEWAYS = ("parallelGateway", "inclusiveGateway", "complexGateway")


class NoSingleSuccessor(ValueError):
    """The step has no single outgoing path to continue along; the message says why."""


@dataclass(frozen=True)
class Successor:
    element_id: str
    element_tag: str  # BPMN tag without namespace, e.g. "serviceTask"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def successor_of(bpmn_xml: str, *, element_id: str, element_type: str) -> Successor:
    """The element the step ``element_id`` leads to, or :class:`NoSingleSuccessor`."""
    if element_type in _NOT_SKIPPABLE:
        raise NoSingleSuccessor(
            f"{element_type.lower().replace('_', ' ')} '{element_id}' is not a step that can be skipped"
        )
    if not bpmn_xml.strip():
        raise NoSingleSuccessor("the process definition's BPMN XML has not been imported")
    try:
        root = SafeElementTree.fromstring(bpmn_xml)
    except (SafeElementTree.ParseError, ValueError) as error:  # defusedxml's refusals are ValueErrors
        raise NoSingleSuccessor(f"the process definition's BPMN XML cannot be read: {error}") from None
    by_id: dict[str, Element] = {}
    flows_from: dict[str, list[Element]] = {}
    incoming: dict[str, int] = {}
    for node in root.iter():
        node_id = node.get("id")
        if node_id:
            by_id[node_id] = node
        if _local(node.tag) == "sequenceFlow":
            flows_from.setdefault(node.get("sourceRef", ""), []).append(node)
            target = node.get("targetRef", "")
            incoming[target] = incoming.get(target, 0) + 1
    step = by_id.get(element_id)
    if step is None:
        raise NoSingleSuccessor(f"element '{element_id}' is not in the process definition's BPMN XML")
    if any(_local(child.tag) == "multiInstanceLoopCharacteristics" for child in step):
        raise NoSingleSuccessor(
            f"'{element_id}' is a multi-instance activity: skipping one of its instances is not supported"
        )
    outgoing = flows_from.get(element_id, [])
    if not outgoing:
        raise NoSingleSuccessor(
            f"'{element_id}' has no outgoing sequence flow: there is no next step to continue with"
        )
    if len(outgoing) > 1:
        targets = ", ".join(f"'{flow.get('targetRef', '?')}'" for flow in outgoing)
        raise NoSingleSuccessor(
            f"'{element_id}' has {len(outgoing)} outgoing sequence flows (to {targets}): "
            f"skip needs a single outgoing path; use process instance modification to choose one"
        )
    flow = outgoing[0]
    if any(_local(child.tag) == "conditionExpression" for child in flow):
        raise NoSingleSuccessor(
            f"the sequence flow after '{element_id}' has a condition: skip cannot decide whether it is taken"
        )
    target_id = flow.get("targetRef", "")
    target = by_id.get(target_id)
    if target is None:
        raise NoSingleSuccessor(
            f"the sequence flow after '{element_id}' leads to unknown element '{target_id}'"
        )
    tag = _local(target.tag)
    if tag in _JOINING_GATEWAYS and incoming.get(target_id, 0) > 1:
        raise NoSingleSuccessor(
            f"the path after '{element_id}' joins at {tag} '{target_id}': "
            f"activating a joining gateway would not wait for the other branches"
        )
    return Successor(element_id=target_id, element_tag=tag)
