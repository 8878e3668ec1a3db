"""`instance of`: FEEL type names (`number`, `list<string>`, `context<a: number>`, `Any`)."""

from __future__ import annotations

from typing import Any

from engine.feel.values import kind_of

_SIMPLE_TYPES = {
    "number": "number",
    "string": "string",
    "boolean": "boolean",
    "date": "date",
    "time": "time",
    "date and time": "date and time",
    "days and time duration": "days and time duration",
    "years and months duration": "years and months duration",
    "list": "list",
    "context": "context",
    "function": "function",
    "range": "range",
}


def is_instance_of(value: Any, type_name: str) -> bool:
    type_name = type_name.strip()
    if type_name == "Any":
        return value is not None
    if type_name == "Null":
        return value is None
    if value is None:
        return False
    base, _, parameter = type_name.partition("<")
    base = " ".join(base.split())
    expected = _SIMPLE_TYPES.get(base)
    if expected is None:
        return False
    if kind_of(value) != expected:
        return False
    parameter = parameter.rstrip()[:-1].strip() if parameter else ""
    if not parameter:
        return True
    if base == "list":
        return all(item is None or is_instance_of(item, parameter) for item in value)
    if base == "range":
        return all(bound is None or is_instance_of(bound, parameter) for bound in (value.start, value.end))
    if base == "context":
        for entry in _split_top_level(parameter):
            key, _, entry_type = entry.partition(":")
            key = key.strip()
            if key not in value:
                return False
            if value[key] is not None and not is_instance_of(value[key], entry_type.strip()):
                return False
        return True
    return True


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "<":
            depth += 1
        elif char == ">":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts
