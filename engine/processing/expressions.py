"""Evaluating model expressions during processing: a failure becomes a `MappingFailure`
(an incident of the caller's error type), never an exception half-way through a command."""

from __future__ import annotations

import contextlib
from typing import Any

from engine.processing.command import MappingFailure
from engine.values import document_problem, feel_type_name, to_json_compatible


def evaluate(expression: Any, variables: dict[str, Any], error_type: str) -> Any:
    try:
        value = to_json_compatible(expression.evaluate(variables))
    except MappingFailure:
        raise
    except Exception as exc:  # FEEL evaluation errors become incidents (reference §5.2)
        raise MappingFailure(error_type, failure_message(expression, exc)) from exc
    # A result the log cannot encode (e.g. `from json("\"\\ud800\"")`) is the expression's
    # failure, raised as its incident here, not an encoding error half-way through a command.
    problem = document_problem(value)
    if problem is not None:
        raise MappingFailure(
            error_type,
            f"failed to evaluate expression '{getattr(expression, 'text', '')}': "
            f"the result cannot be stored as a variable: {problem}",
        )
    return value


def evaluate_string(expression: Any, variables: dict[str, Any], error_type: str) -> str:
    value = evaluate(expression, variables, error_type)
    if not isinstance(value, str):
        raise MappingFailure(
            error_type,
            f"Expected result of the expression '{expression.text}' to be 'STRING', "
            f"but was '{feel_type_name(value)}'.",
        )
    return value


def evaluate_int(expression: Any, variables: dict[str, Any], error_type: str) -> int:
    """A NUMBER; a static text like "3" counts (zeebe:taskDefinition retries)."""
    value = evaluate(expression, variables, error_type)
    if isinstance(value, str) and expression.is_static:
        with contextlib.suppress(ValueError):
            value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool):
        raise MappingFailure(
            error_type,
            f"Expected result of the expression '{expression.text}' to be 'NUMBER', "
            f"but was '{feel_type_name(value)}'.",
        )
    return value


def failure_message(expression: Any, exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    source = getattr(expression, "text", "")
    if source and source not in text:
        return f"failed to evaluate expression '{source}': {text}"
    return text
