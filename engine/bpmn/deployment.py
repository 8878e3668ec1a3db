"""Validate all resources of one DeployResource command together, as Zeebe does.

A deployment is atomic (reference/zeebe-protocol.md §1.3 DeployResource): if any resource is
invalid, nothing is deployed and the rejection lists every resource's problems. Besides each
resource on its own, Zeebe rejects two resources of one deployment that define the same
process id (DeploymentTransformer: "Duplicated process id in resources 'a' and 'b'").
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.bpmn.errors import DEPLOYMENT_REJECTION_PREFIX, BpmnValidationError
from engine.bpmn.model import ProcessModel
from engine.bpmn.parser import parse_bpmn


class DeploymentRejected(ValueError):
    """The deployment is refused; `reason` is Zeebe's full rejection reason (INVALID_ARGUMENT)."""

    def __init__(self, reason: str, errors: Sequence[BpmnValidationError] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errors = list(errors)


def parse_deployment(resources: Sequence[tuple[str, bytes]]) -> list[tuple[str, list[ProcessModel]]]:
    """Parse every (name, content) BPMN resource; raise `DeploymentRejected` if any is invalid
    or two resources define the same process id. Returns (name, models) in the given order."""
    parsed: list[tuple[str, list[ProcessModel]]] = []
    errors: list[BpmnValidationError] = []
    for name, content in resources:
        try:
            parsed.append((name, parse_bpmn(name, content)))
        except BpmnValidationError as error:
            errors.append(error)
    lines = [error.resource_message() for error in errors]
    lines.extend(duplicate_process_id_errors(parsed))
    if lines:
        raise DeploymentRejected(DEPLOYMENT_REJECTION_PREFIX + "".join("\n" + line for line in lines), errors)
    return parsed


def duplicate_process_id_errors(parsed: Sequence[tuple[str, Sequence[ProcessModel]]]) -> list[str]:
    """Zeebe's message for each process id defined by a second resource of the deployment."""
    first_resource: dict[str, str] = {}
    problems = []
    for name, models in parsed:
        for model in models:
            previous = first_resource.setdefault(model.bpmn_process_id, name)
            if previous != name:
                problems.append(f"Duplicated process id in resources '{previous}' and '{name}'")
    return problems
