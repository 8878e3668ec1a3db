"""Deployment-time errors of a BPMN resource, formatted the way Zeebe rejects a deployment.

Zeebe validates each resource with the BPMN model validators and, when a resource is invalid,
rejects the DEPLOYMENT CREATE command with INVALID_ARGUMENT and a reason built like this
(engine `DeploymentTransformer.ErrorCollector` + `BpmnResourceTransformer` +
`ValidationErrorFormatter`; the gateway prefixes `Command 'CREATE' rejected with code
'INVALID_ARGUMENT': `, reference/zeebe-protocol.md §1.3):

    Expected to deploy new resources, but encountered the following errors:
    '<resourceName>': - Element: <id>[ > extensionElements > taskDefinition]
        - ERROR: <message>
    - Element: <other id>
        - ERROR: <message>

Resource-level problems (malformed XML, too large, no executable process) have no element and
are written as `'<resourceName>': <message>`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Reason prefix of a rejected deployment (Zeebe DeploymentTransformer).
DEPLOYMENT_REJECTION_PREFIX = "Expected to deploy new resources, but encountered the following errors:"


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation error.

    `element_id` is the id of the closest element that has one (None for a problem of the whole
    resource); `path` optionally continues the identifier inside that element the way Zeebe
    does (`extensionElements > taskDefinition`).
    """

    element_id: str | None
    message: str
    path: str | None = None

    @property
    def element_identifier(self) -> str | None:
        """Zeebe's element identifier: `<id>` or `<id> > <path>`."""
        if self.element_id is None:
            return None
        if self.path:
            return f"{self.element_id} > {self.path}"
        return self.element_id

    def __str__(self) -> str:
        if self.element_id is None:
            return self.message
        return f"Element: {self.element_identifier}: {self.message}"


class BpmnValidationError(ValueError):
    """A resource that cannot be deployed; carries every problem found, not just the first."""

    def __init__(self, resource_name: str, problems: Iterable[Problem]) -> None:
        self.resource_name = resource_name
        self.problems: list[Problem] = list(problems)
        if not self.problems:
            raise ValueError("BpmnValidationError needs at least one problem")
        super().__init__(self.resource_message())

    def resource_message(self) -> str:
        """This resource's part of the rejection reason: `'<name>': <problems>`."""
        element_problems = [p for p in self.problems if p.element_id is not None]
        resource_problems = [p for p in self.problems if p.element_id is None]
        parts: list[str] = []
        for problem in resource_problems:
            parts.append(problem.message)
        if element_problems:
            parts.append(_format_element_problems(element_problems))
        return f"'{self.resource_name}': " + "\n".join(parts)

    def zeebe_message(self) -> str:
        """The full DEPLOYMENT rejection reason for this resource alone (without the gateway's
        `Command 'CREATE' rejected with code 'INVALID_ARGUMENT': ` prefix), every problem spelled out."""
        return zeebe_rejection_reason([self], max_problems=None)


#: At most this many problems are spelled out in a rejection reason; the rest are counted
#: ("... and K more problems"). The reason travels in a gRPC status message (a header): ~19 KB
#: of problems exceeded gRPC's metadata limit and clients saw RESOURCE_EXHAUSTED instead of
#: INVALID_ARGUMENT.
MAX_PROBLEMS_IN_REASON = 20


def zeebe_rejection_reason(
    errors: Iterable[BpmnValidationError], max_problems: int | None = MAX_PROBLEMS_IN_REASON
) -> str:
    """The rejection reason for a deployment in which several resources failed (the first
    `max_problems` problems, then how many more there are; None: all of them)."""
    errors = list(errors)
    parts = []
    budget = max_problems if max_problems is not None else sum(len(error.problems) for error in errors)
    omitted = 0
    for error in errors:
        if budget <= 0:
            omitted += len(error.problems)
            continue
        shown = error.problems[:budget]
        omitted += len(error.problems) - len(shown)
        budget -= len(shown)
        parts.append("\n" + BpmnValidationError(error.resource_name, shown).resource_message())
    if omitted:
        parts.append(f"\n... and {omitted} more problem{'s' if omitted != 1 else ''}")
    return DEPLOYMENT_REJECTION_PREFIX + "".join(parts)


def _format_element_problems(problems: list[Problem]) -> str:
    # ValidationErrorFormatter groups results per element, in first-seen order, and ends each
    # result line with a newline; we keep Zeebe's layout but drop the final trailing newline.
    grouped: dict[str, list[Problem]] = {}
    for problem in problems:
        identifier = problem.element_identifier
        assert identifier is not None
        grouped.setdefault(identifier, []).append(problem)
    lines: list[str] = []
    for identifier, element_problems in grouped.items():
        lines.append(f"- Element: {identifier}")
        lines.extend(f"    - ERROR: {problem.message}" for problem in element_problems)
    return "\n".join(lines)
