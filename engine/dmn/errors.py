"""Errors of the DMN package.

A DMN resource that cannot be deployed raises `DmnParseError`. Zeebe (DmnResourceTransformer)
rejects such a resource with `'<resourceName>': <failure>`, where the failure is dmn-scala's
parse failure; several failures of one resource are joined with newlines, as dmn-scala does
(`failures.map(_.message).mkString("\\n")`). Evaluation never raises: a failed evaluation is a
`DecisionEvaluationResult` with a failure message (engine.dmn.evaluation).
"""

from __future__ import annotations

from collections.abc import Iterable


class DmnParseError(ValueError):
    """The resource is not a deployable DMN; `failures` lists every problem found."""

    def __init__(self, failures: Iterable[str]) -> None:
        self.failures = list(failures)
        if not self.failures:
            raise ValueError("DmnParseError needs at least one failure")
        self.message = "\n".join(self.failures)
        super().__init__(self.message)

    def resource_message(self, resource_name: str) -> str:
        """This resource's line of a deployment rejection (Zeebe: `'%s': %s`)."""
        return f"'{resource_name}': {self.message}"
