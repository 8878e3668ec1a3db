"""One error body for every 4xx and 5xx of the API (issue 11)::

    {"error": {"code": "invalid", "message": "root_key: 'x' is not a key ...", "details": {...}}}

``details`` is an object: for input errors, field name -> list of messages; otherwise empty. Django's
ValidationError (raised by services and selectors) and PermissionDenied (processes.roles.RoleRequired)
become 400 and 403 here, so views call services without translating their exceptions.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

logger = logging.getLogger(__name__)

NON_FIELD = "non_field_errors"


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _validation_details(exc: DjangoValidationError) -> dict[str, list[str]]:
    field = getattr(exc, "field", None)  # processes.operations.services.OperationRejected names its field
    if hasattr(exc, "error_dict"):
        return {name: [str(m) for m in messages] for name, messages in exc.message_dict.items()}
    return {field or NON_FIELD: [str(message) for message in exc.messages]}


def _flatten(data: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error data -> {"field" or "field.sub": [messages]}."""
    if isinstance(data, dict):
        flat: dict[str, list[str]] = {}
        for name, value in data.items():
            flat.update(_flatten(value, f"{prefix}.{name}" if prefix else str(name)))
        return flat
    if isinstance(data, list):
        if all(not isinstance(item, dict | list) for item in data):
            return {prefix or NON_FIELD: [str(item) for item in data]}
        flat = {}
        for index, item in enumerate(data):
            flat.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    return {prefix or NON_FIELD: [str(data)]}


def _first_message(details: dict[str, list[str]]) -> str:
    for name, messages in details.items():
        if messages:
            return messages[0] if name == NON_FIELD else f"{name}: {messages[0]}"
    return "Invalid input."


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(_validation_details(exc))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, RequestDataTooBig):
        return Response(
            error_body(
                "too_large", f"The request body exceeds {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
            ),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        # Not an API exception: a bug. Logged with its traceback; the client gets the same shape.
        logger.error("API error in %s", context.get("view").__class__.__name__, exc_info=exc)
        set_rollback()
        return Response(
            error_body("server_error", "Internal server error."), status=status.HTTP_500_INTERNAL_SERVER_ERROR
        )
    if isinstance(exc, exceptions.ValidationError):
        details = _flatten(response.data)
        response.data = error_body("invalid", _first_message(details), details)
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        detail = response.data.get("detail", exc.detail) if isinstance(response.data, dict) else exc.detail
        response.data = error_body(str(code), str(detail))
    return response


@csrf_exempt  # it never acts; without this a POST to an unknown path got CSRF's HTML 403
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unmatched paths under /api/ answer in the API's error shape, not Django's HTML page."""
    return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)
