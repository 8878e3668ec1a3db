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
    HeaderEvaluationError,
    Mapping,
    ProcessModel,
    SequenceFlow,
)
from engine.bpmn.parser import is_bpmn_resource, parse_bpmn, resource_checksum
from engine.bpmn.safe_xml import MAX_RESOURCE_BYTES

__all__ = [
    "MAX_RESOURCE_BYTES",
    "BpmnValidationError",
    "Element",
    "ElementType",
    "EventType",
    "Expression",
    "HeaderEvaluationError",
    "Mapping",
    "Problem",
    "ProcessModel",
    "SequenceFlow",
    "is_bpmn_resource",
    "parse_bpmn",
    "resource_checksum",
    "zeebe_rejection_reason",
]
