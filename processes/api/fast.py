"""A faster ``to_representation`` for the read-only serializers of large pages.

DRF's generic ``Serializer.to_representation`` costs ~0.2 ms per row here (a subtree page of 500
instances spent ~100 ms in it, bench/api.py). Rows from the query models hold JSON-ready values
(str, int, bool) in most fields, so the plan built once per serializer copies those as they are and
calls a field's own ``to_representation`` only where it converts (keys, dates, method fields).
The output is the same as DRF's (tests/api/test_fast.py compares both on every serializer).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rest_framework import serializers

from processes.api.fields import KeyField

# Fields whose to_representation returns a str/int/bool model value unchanged.
_PASS_THROUGH = (serializers.CharField, serializers.IntegerField, serializers.BooleanField)


def _datetime(value: datetime) -> str:
    # DRF's ISO 8601 output under TIME_ZONE = "UTC": aware, converted to UTC, "+00:00" written "Z".
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class FastRepresentationMixin:
    """For read-only ModelSerializers whose fields read one attribute each (or a method field)."""

    _plan: list[tuple[str, tuple[str, ...], Any]] | None = None

    def _build_plan(self) -> list[tuple[str, tuple[str, ...], Any]]:
        plan = []
        for name, field in self.fields.items():  # type: ignore[attr-defined]
            if field.write_only:
                continue
            converter: Any
            if isinstance(field, KeyField):
                converter = str
            elif isinstance(field, serializers.DateTimeField) and getattr(field, "format", None) is None:
                converter = _datetime
            elif type(field) in _PASS_THROUGH or (
                isinstance(field, serializers.ChoiceField)
                and not field.choice_strings_to_values.keys()
                - {str(value) for value in field.choice_strings_to_values.values()}
            ):
                converter = None
            else:
                converter = field.to_representation
            plan.append((name, tuple(field.source_attrs), converter))
        return plan

    def to_representation(self, instance: Any) -> dict[str, Any]:
        plan = self._plan
        if plan is None:
            plan = self._plan = self._build_plan()
        output: dict[str, Any] = {}
        for name, attributes, converter in plan:
            value = instance
            for attribute in attributes:
                value = getattr(value, attribute)
            if value is None:
                output[name] = None
            elif converter is None:
                output[name] = value
            else:
                output[name] = converter(value)
        return output
