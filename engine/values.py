"""JSON helpers for variable values: FEEL results to JSON, compact JSON text, nested targets."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any


def to_json_compatible(value: Any) -> Any:
    """Turn evaluator results (Decimal, tuples, dates...) into plain JSON values."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None  # JSON has no NaN/Infinity
        if value == int(value) and abs(value) < 2**53:
            return int(value)
        return value
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, dict):
        return {str(k): to_json_compatible(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_compatible(item) for item in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def json_text(value: Any) -> str:
    """Compact JSON text as Zeebe writes VARIABLE.value (reference §3.3)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def feel_type_name(value: Any) -> str:
    """FEEL/Zeebe type name used in 'Expected result ... to be X, but was Y' messages."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int | float | Decimal):
        return "NUMBER"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, list | tuple):
        return "ARRAY"
    if isinstance(value, dict):
        return "OBJECT"
    return type(value).__name__.upper()


def put_path(document: dict[str, Any], target: str, value: Any, base: dict[str, Any]) -> None:
    """Write `value` at the dotted `target` path into `document` (reference §5.2: missing
    parents are created; an existing parent object is extended, not replaced)."""
    parts = target.split(".")
    if len(parts) == 1:
        document[target] = value
        return
    head = parts[0]
    current = document.get(head, base.get(head))
    root = dict(current) if isinstance(current, dict) else {}
    node = root
    for part in parts[1:-1]:
        child = node.get(part)
        child = dict(child) if isinstance(child, dict) else {}
        node[part] = child
        node = child
    node[parts[-1]] = value
    document[head] = root


def parse_variables_document(text: str) -> dict[str, Any]:
    """A request's `variables` string: empty means {}, otherwise it must be a JSON object."""
    if text is None or text.strip() == "":
        return {}
    document = json.loads(text, parse_constant=_reject_constant)
    if not isinstance(document, dict):
        raise ValueError(f"Expected document to be a root level object, but was '{type(document).__name__}'")
    return document


def _reject_constant(name: str) -> Any:
    raise ValueError(f"'{name}' is not a valid JSON value")
