"""Exceptions raised by the FEEL implementation (re-exported from `engine.feel`)."""

from __future__ import annotations


class FeelError(Exception):
    """Base class of every FEEL failure."""


class FeelSyntaxError(FeelError):
    """The expression text cannot be parsed; raised by `compile_expression` (deploy-time validation).

    `line` and `column` are 1-based and point at the offending character when known.
    """

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


class FeelEvaluationError(FeelError):
    """The evaluation failed hard (feel-scala `failWith`, e.g. a failed `assert()`).

    Zeebe turns this into an incident. Most runtime problems are *not* this error: since
    feel-scala 1.17 they are suppressed to `null` plus a warning (see `engine.feel`).
    """


class AssertionFailed(FeelEvaluationError):
    """`assert(value, condition)` with a condition that is not true."""
