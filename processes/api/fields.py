"""Serializer fields of the API: global keys travel as JSON strings (they exceed 2**53, DESIGN §2)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from processes.filters import parse_global_key

KEY_SCHEMA = {
    "type": "string",
    "pattern": "^[0-9]{1,19}$",
    "description": "A global key as a decimal string (keys exceed 2^53).",
    "example": "288230376151711745",
}


@extend_schema_field(KEY_SCHEMA)
class KeyField(serializers.Field):
    """A global key: read as a decimal string, written as a string (or integer) and validated against
    the key codec and the known clusters."""

    def to_representation(self, value: Any) -> str:
        return str(int(value))

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, str | int) or isinstance(data, bool):
            raise serializers.ValidationError("A key must be a decimal number given as a string.")
        try:
            return parse_global_key(data)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from error
