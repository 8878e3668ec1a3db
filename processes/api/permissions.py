"""Roles in the API (processes.roles): viewers read, operators act, admins manage clusters.

Two halves, each in one place: :class:`RolePermission` answers 401/403 before a view runs (reads need
a viewer, POSTs the role the view names for the action), and :func:`restrict` is the queryset filter
of the base view (CONVENTIONS §4), so a view that forgot its permission class still shows nothing to
a user without a role. The role is looked up once per request.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from processes.roles import Role, user_role

_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}
_ROLE_ATTRIBUTE = "_fleetflow_role"


def request_role(request: Request) -> Role | None:
    underlying = getattr(request, "_request", request)
    if not hasattr(underlying, _ROLE_ATTRIBUTE):
        setattr(underlying, _ROLE_ATTRIBUTE, user_role(request.user))
    return getattr(underlying, _ROLE_ATTRIBUTE)


def required_role(request: Request, view: Any) -> Role:
    per_action: dict[str, Role] = getattr(view, "action_roles", {})
    action = getattr(view, "action", None)
    if action in per_action:
        return per_action[action]
    return Role.VIEWER if request.method in SAFE_METHODS else Role.OPERATOR


class RolePermission(BasePermission):
    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False  # DRF answers 401 with the authentication challenge
        needed = required_role(request, view)
        held = request_role(request)
        if held is None or _RANK[held] < _RANK[needed]:
            self.message = f"{needed.label} role required; you have {held.value if held else 'no role'}."
            return False
        return True


def restrict(queryset: QuerySet[Any], request: Request) -> QuerySet[Any]:
    """Everything for any role, nothing without one (reads are not partitioned further yet)."""
    if request_role(request) is None:
        return queryset.none()
    return queryset
