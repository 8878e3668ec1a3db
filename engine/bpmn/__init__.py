"""Safe BPMN XML parsing, Zeebe-style validation and the in-memory process model.

Entry point: `parse_bpmn(resource_name, content) -> list[ProcessModel]`, which raises
`BpmnValidationError` (with `zeebe_message()`) for anything it cannot deploy.
"""

from engine.bpmn.errors import BpmnValidationError, Problem, zeebe_rejection_reason
from engine.bpmn.model import (
    Element,
    ElementType,
    EventType,
    Expression,
    Mapping,
    ProcessModel,
    SequenceFlow,
)

__all__ = [
    "BpmnValidationError",
    "Element",
    "ElementType",
    "EventType",
    "Expression",
    "Mapping",
    "Problem",
    "ProcessModel",
    "SequenceFlow",
    "zeebe_rejection_reason",
]
