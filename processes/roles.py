"""Roles: viewer (reads), operator (acts on instances), admin (clusters, users) - DESIGN §7.

A role is a Django group of the same name carrying model permissions, so the Django admin and
``user.has_perm`` see the same rights. Role checks themselves go by group membership (one query)
and rank: an admin may do everything an operator may, an operator everything a viewer may.
Services call :func:`require_role` themselves (CONVENTIONS §2), so a view that forgets its check
still cannot act for a viewer.

:func:`ensure_role_groups` is idempotent: it runs after every ``migrate`` (post_migrate, wired in
processes.operations.apps) and may be called again at any time; it adds missing groups and
permissions and removes permissions a role no longer has.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db import models, transaction


class Role(models.TextChoices):
    """The three roles, in increasing order of rights."""

    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"


_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}

# Apps whose models every role may read.
_READ_APPS = ("processes", "servers", "operations")

# (app_label, codename) added on top of the role below it. Permissions of apps that are not
# installed (yet) are skipped; the next ensure_role_groups after their migration adds them.
_OPERATOR_PERMISSIONS = (
    ("operations", "add_operation"),
    ("operations", "add_batchoperation"),
    ("operations", "change_batchoperation"),  # cancel a batch
)
_ADMIN_PERMISSIONS = (
    ("processes", "add_cluster"),
    ("processes", "change_cluster"),
    ("processes", "delete_cluster"),
    ("auth", "view_user"),
    ("auth", "add_user"),
    ("auth", "change_user"),
    ("auth", "delete_user"),
    ("auth", "view_group"),
    ("authtoken", "view_token"),
    ("authtoken", "add_token"),
    ("authtoken", "delete_token"),
    # API tokens as the admin lists them (processes.models.ApiToken, a proxy of DRF's token)
    ("processes", "view_apitoken"),
    ("processes", "add_apitoken"),
    ("processes", "delete_apitoken"),
)
# Models of the read apps that only admins see (the read grant below leaves them out).
_ADMIN_ONLY_MODELS = (("processes", "apitoken"),)


class RoleRequired(PermissionDenied):
    """The user's role is below the one an action needs."""

    def __init__(self, message: str, *, required: Role, actual: Role | None) -> None:
        super().__init__(message)
        self.required = required
        self.actual = actual


def _permissions_for(role: Role) -> models.QuerySet[Permission]:
    query = models.Q(content_type__app_label__in=_READ_APPS, codename__startswith="view_")
    for app_label, model in _ADMIN_ONLY_MODELS:
        query &= ~models.Q(content_type__app_label=app_label, content_type__model=model)
    extra: tuple[tuple[str, str], ...] = ()
    if _RANK[role] >= _RANK[Role.OPERATOR]:
        extra += _OPERATOR_PERMISSIONS
    if _RANK[role] >= _RANK[Role.ADMIN]:
        extra += _ADMIN_PERMISSIONS
    for app_label, codename in extra:
        query |= models.Q(content_type__app_label=app_label, codename=codename)
    return Permission.objects.filter(query)


def ensure_role_groups(**_signal_kwargs: Any) -> None:
    """Create the three role groups and give each exactly its permissions (idempotent).

    Accepts and ignores signal keyword arguments so it can be a post_migrate receiver.
    """
    with transaction.atomic():
        for role in Role:
            group, _ = Group.objects.get_or_create(name=role.value)
            group.permissions.set(_permissions_for(role))


def assign_role(*, user: Any, role: Role) -> None:
    """Make ``role`` the user's only role (removes the other role groups)."""
    role = Role(role)  # a bad value raises ValueError naming it
    with transaction.atomic():
        ensure_role_groups()
        groups = {group.name: group for group in Group.objects.filter(name__in=Role.values)}
        user.groups.remove(*[group for name, group in groups.items() if name != role.value])
        user.groups.add(groups[role.value])


def user_role(user: Any) -> Role | None:
    """The user's highest role: superusers are admins; anonymous, inactive or group-less: None."""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return None
    if user.is_superuser:
        return Role.ADMIN
    names = set(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
    roles = [Role(name) for name in names]
    return max(roles, key=_RANK.__getitem__) if roles else None


def has_role(user: Any, *, at_least: Role) -> bool:
    role = user_role(user)
    return role is not None and _RANK[role] >= _RANK[Role(at_least)]


def require_role(user: Any, *, at_least: Role) -> None:
    """Raise :class:`RoleRequired` unless the user holds ``at_least`` or a higher role."""
    role = user_role(user)
    if role is None or _RANK[role] < _RANK[Role(at_least)]:
        who = getattr(user, "get_username", lambda: "anonymous")() if user is not None else "anonymous"
        held = role.value if role is not None else "no role"
        raise RoleRequired(
            f"{Role(at_least).label} role required: {who or 'anonymous'} has {held}",
            required=Role(at_least),
            actual=role,
        )


def can_act(user: Any) -> bool:
    """May run operator actions (operator or admin)."""
    return has_role(user, at_least=Role.OPERATOR)


def can_admin(user: Any) -> bool:
    """May manage clusters and users (admin)."""
    return has_role(user, at_least=Role.ADMIN)
