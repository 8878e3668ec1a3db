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


#: The largest gRPC message the engine accepts or sends: Zeebe's default maxMessageSize, which is
#: also the default receive limit of grpc clients such as pyzeebe.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

#: Deepest nesting of objects/arrays accepted in a variable document or FEEL result. Deeper
#: values cannot be encoded (Python's JSON encoder recurses) and no process needs them.
MAX_NESTING_DEPTH = 100


def document_problem(value: Any) -> str | None:
    """Why `value` cannot be stored as variables (nested deeper than MAX_NESTING_DEPTH, a lone
    surrogate in a string or key, a non-finite number), or None. Iterative: the depth it
    checks is exactly what would make a recursive check fail."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth >= MAX_NESTING_DEPTH:
                return f"it is nested deeper than {MAX_NESTING_DEPTH} levels"
            for name, child in item.items():
                if isinstance(name, str) and _lone_surrogate(name):
                    return f"the name {name!r} contains a lone surrogate (not valid Unicode)"
                stack.append((child, depth + 1))
        elif isinstance(item, list | tuple):
            if depth >= MAX_NESTING_DEPTH:
                return f"it is nested deeper than {MAX_NESTING_DEPTH} levels"
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            if _lone_surrogate(item):
                return f"the string {item[:40]!r} contains a lone surrogate (not valid Unicode)"
        elif isinstance(item, float) and not math.isfinite(item):
            return f"the number {item} is not a finite JSON number"
    return None


def _lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_variables_document(text: str) -> dict[str, Any]:
    """A request's `variables` string: empty means {}, otherwise it must be a JSON object that
    `document_problem` accepts (raises ValueError with the reason otherwise)."""
    if text is None or text.strip() == "":
        return {}
    try:
        document = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError(f"it is nested deeper than {MAX_NESTING_DEPTH} levels") from None
    if not isinstance(document, dict):
        raise ValueError(f"Expected document to be a root level object, but was '{type(document).__name__}'")
    problem = document_problem(document)
    if problem is not None:
        raise ValueError(problem)
    return document


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        # 1e400 parses to infinity, which JSON cannot carry back out: reject it like NaN.
        raise ValueError(f"the number {text[:40]} is out of range (not a finite double)")
    return number


def _reject_constant(name: str) -> Any:
    raise ValueError(f"'{name}' is not a valid JSON value")
