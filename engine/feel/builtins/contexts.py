"""Context built-ins: get value, get entries, context put, context merge, context()."""

from __future__ import annotations

from typing import Any

from engine.feel.builtins.registry import (
    InvalidArgument,
    builtin,
    context_value,
    list_value,
    string,
)


def _get_value(context: Any, key: Any) -> Any:
    current = context_value(context)
    if type(key) is list:
        # feel-scala extension: a key path (MANIFEST.md point 6)
        if not key:
            return None
        value: Any = current
        for part in key:
            if type(value) is not dict:
                return None
            value = value.get(string(part))
        return value
    return current.get(string(key))


# feel-scala accepts both `m` (spec) and `context` as the parameter name.
builtin("get value", "m, key")(_get_value)
builtin("get value", "context, key")(_get_value)
builtin("get value", "context, keys")(_get_value)


def _get_entries(context: Any) -> list[dict[str, Any]]:
    return [{"key": key, "value": value} for key, value in context_value(context).items()]


builtin("get entries", "m")(_get_entries)
builtin("get entries", "context")(_get_entries)


def _put(context: dict[str, Any], keys: list[str], value: Any) -> dict[str, Any]:
    result = dict(context)
    head, rest = keys[0], keys[1:]
    if rest:
        nested = result.get(head)
        result[head] = _put(nested if type(nested) is dict else {}, rest, value)
    else:
        result[head] = value
    return result


@builtin("context put", "context, keys, value")
def context_put(context: Any, key: Any, value: Any) -> dict[str, Any]:
    current = context_value(context)
    if type(key) is list:
        keys = [string(part) for part in key]
        if not keys:
            raise InvalidArgument("empty key path")
        return _put(current, keys, value)
    return _put(current, [string(key)], value)


# Named `key:` is the single-key signature: a key path passed as `key:` is an invalid call
# (feel-scala's `key` parameter takes a string; DMN TCK 1146 expects null).
@builtin("context put", "context, key, value")
@builtin("put", "context, key, value")
def context_put_key(context: Any, key: Any, value: Any) -> dict[str, Any]:
    return _put(context_value(context), [string(key)], value)


@builtin("context merge", "contexts...")
def context_merge(*contexts: Any) -> dict[str, Any]:
    if not contexts:
        raise InvalidArgument("context merge() needs at least one context")
    if len(contexts) == 1 and type(contexts[0]) is list:
        contexts = tuple(contexts[0])
    result: dict[str, Any] = {}
    for context in contexts:
        result.update(context_value(context))
    return result


builtin("put all", "contexts...")(context_merge)


@builtin("context", "entries")
def context(entries: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for entry in list_value(entries):
        entry = context_value(entry)
        if "key" not in entry or "value" not in entry:
            raise InvalidArgument("context entries need 'key' and 'value'")
        result[string(entry["key"])] = entry["value"]
    return result
