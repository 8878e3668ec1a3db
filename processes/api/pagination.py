"""Keyset (cursor) pagination over the queryset's own ordering (issue 11: ``next`` links).

The cursor holds the ordering values of the last row of the page; the next page is the rows strictly
after it in the ordering, so a page 1,000 pages deep costs what the first page costs (no OFFSET) and
rows inserted meanwhile never shift a page. The last ordering field must be unique (every selector
ends its ordering with the key). PostgreSQL sorts NULL first in descending and last in ascending
order, and the "after" condition follows that, so rows without a start date are neither skipped
nor repeated. The first field also gets a plain range condition (``start_date <= x``) so that
PostgreSQL seeks in the index instead of filtering from its start.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.db import models
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_CURSOR_LENGTH = 1024


@dataclass(frozen=True)
class OrderingField:
    name: str
    descending: bool
    field: models.Field[Any, Any]

    @property
    def nullable(self) -> bool:
        return bool(self.field.null)


def ordering_of(queryset: QuerySet[Any]) -> list[OrderingField]:
    order_by = list(queryset.query.order_by) or list(queryset.model._meta.ordering)
    fields = []
    for entry in order_by:
        if not isinstance(entry, str):
            raise TypeError(f"keyset pagination needs plain field orderings, got {entry!r}")
        name = entry.lstrip("-")
        model_field = queryset.model._meta.pk if name == "pk" else queryset.model._meta.get_field(name)
        fields.append(
            OrderingField(
                name=model_field.name if name == "pk" else name,
                descending=entry.startswith("-"),
                field=model_field,
            )
        )
    return fields


def _after(fields: list[OrderingField], values: list[Any]) -> Q:
    """Rows strictly after ``values`` in the ordering (PostgreSQL NULL placement, see the module doc)."""
    head, value = fields[0], values[0]
    name = head.field.attname if isinstance(head.field, models.ForeignKey) else head.name
    rest = _after(fields[1:], values[1:]) if len(fields) > 1 else None
    if value is None:
        strictly = Q(**{f"{name}__isnull": False}) if head.descending else Q(pk__in=[])
        same = Q(**{f"{name}__isnull": True})
    else:
        lookup = "lt" if head.descending else "gt"
        strictly = Q(**{f"{name}__{lookup}": value})
        if head.nullable and not head.descending:
            strictly |= Q(**{f"{name}__isnull": True})
        same = Q(**{name: value})
    return strictly | (same & rest) if rest is not None else strictly


def _seek(head: OrderingField, value: Any) -> Q:
    name = head.field.attname if isinstance(head.field, models.ForeignKey) else head.name
    if value is None:
        return Q() if head.descending else Q(**{f"{name}__isnull": True})
    if head.descending:
        return Q(**{f"{name}__lte": value})
    condition = Q(**{f"{name}__gte": value})
    return condition | Q(**{f"{name}__isnull": True}) if head.nullable else condition


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _decode_value(field: OrderingField, raw: Any) -> Any:
    if raw is None:
        if not field.nullable:
            raise ValueError("null for a non-null field")
        return None
    internal = field.field.get_internal_type()
    if internal == "DateTimeField":
        parsed = parse_datetime(raw) if isinstance(raw, str) else None
        if parsed is None:
            raise ValueError("not a datetime")
        return parsed
    if internal in {
        "BigIntegerField",
        "IntegerField",
        "PositiveSmallIntegerField",
        "PositiveIntegerField",
        "SmallIntegerField",
        "BigAutoField",
        "AutoField",
        "ForeignKey",
    }:
        if isinstance(raw, bool) or not isinstance(raw, int) or not -(2**63) <= raw < 2**63:
            raise ValueError("not an integer")
        return raw
    if not isinstance(raw, str):
        raise ValueError("not a string")
    return raw


def encode_cursor(values: list[Any]) -> str:
    text = json.dumps([_encode_value(value) for value in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def cursor_for_row(queryset: QuerySet[Any], row: models.Model) -> str:
    """The cursor that continues after ``row`` (bench/api.py uses it to jump deep into a list)."""
    fields = ordering_of(queryset)
    return encode_cursor([getattr(row, f.field.attname) for f in fields])


def decode_cursor(fields: list[OrderingField], cursor: str) -> list[Any]:
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(raw, list) or len(raw) != len(fields):
            raise ValueError("wrong shape")
        return [_decode_value(field, value) for field, value in zip(fields, raw, strict=True)]
    except (ValueError, UnicodeError, binascii.Error) as error:
        raise serializers.ValidationError(
            {"cursor": ["Invalid cursor: use the `next` link of a previous page."]}
        ) from error


def page_size_of(request: Request) -> int:
    raw = request.query_params.get("page_size")
    if raw is None or raw == "":
        return DEFAULT_PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise serializers.ValidationError({"page_size": [f"Must be an integer from 1 to {MAX_PAGE_SIZE}."]})
    return int(raw)


class KeysetPagination(BasePagination):
    """``?cursor=...&page_size=N``; the response is ``{"next": url or null, "results": [...]}``."""

    cursor_query_param = "cursor"
    page_size_query_param = "page_size"

    def paginate_queryset(self, queryset: QuerySet[Any], request: Request, view: Any = None) -> list[Any]:
        self.request = request
        page_size = page_size_of(request)
        fields = ordering_of(queryset)
        cursor = request.query_params.get(self.cursor_query_param)
        if cursor:
            values = decode_cursor(fields, cursor)
            queryset = queryset.filter(_seek(fields[0], values[0]) & _after(fields, values))
        rows = list(queryset[: page_size + 1])
        self.has_next = len(rows) > page_size
        rows = rows[:page_size]
        self.next_cursor = (
            encode_cursor([getattr(rows[-1], f.field.attname) for f in fields]) if self.has_next else None
        )
        return rows

    def get_next_link(self) -> str | None:
        if self.next_cursor is None:
            return None
        params = self.request.query_params.copy()
        params[self.cursor_query_param] = self.next_cursor
        return self.request.build_absolute_uri(self.request.path) + "?" + urlencode(params, doseq=True)

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"next": self.get_next_link(), "results": data})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "in": "query",
                "required": False,
                "description": "Opaque cursor from the `next` link of the previous page.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "in": "query",
                "required": False,
                "description": f"Rows per page (1..{MAX_PAGE_SIZE}, default {DEFAULT_PAGE_SIZE}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
            },
        ]
