"""A command as the partition processes it, and the two ways processing can refuse one.

The gateway (and the broker's own loops) build a `Command`: value type, intent, key and the
value that is logged as the COMMAND record. `request` carries what a command needs but the
log does not keep (the parsed BPMN of a deployment, a creation's start instructions...), as a
dataclass declared by the processor module of that command family.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Command:
    value_type: str
    intent: str
    value: dict[str, Any] = field(default_factory=dict)
    key: int = -1
    request: Any = None
    #: False for commands Zeebe does not write to the log (JOB_BATCH ACTIVATE, timer checks).
    logged: bool = True


class Rejection(Exception):
    """A command rejection: `intent` of the command, Zeebe `rejection_type` and reason."""

    def __init__(self, intent: str, rejection_type: str, reason: str):
        super().__init__(reason)
        self.intent = intent
        self.rejection_type = rejection_type
        self.reason = reason

    def client_message(self) -> str:
        return f"Command '{self.intent}' rejected with code '{self.rejection_type}': {self.reason}"


class MappingFailure(Exception):
    """An expression failed; carries the incident error type and message."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
