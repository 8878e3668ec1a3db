"""Roles as Django groups: every role, the anonymous user, superusers and idempotency."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Group, Permission, User

from processes.roles import (
    Role,
    RoleRequired,
    assign_role,
    can_act,
    can_admin,
    ensure_role_groups,
    require_role,
    user_role,
)

pytestmark = pytest.mark.django_db


def make_user(name: str, role: Role | None = None, **extra) -> User:
    user = User.objects.create_user(username=name, password="pw-" + name, **extra)
    if role is not None:
        assign_role(user=user, role=role)
    return User.objects.get(pk=user.pk)  # fresh: no cached permissions


def perms_of(role: Role) -> set[str]:
    group = Group.objects.get(name=role.value)
    return {
        f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")
    }


def test_groups_exist_with_their_permissions():
    ensure_role_groups()
    assert set(Group.objects.filter(name__in=Role.values).values_list("name", flat=True)) == set(Role.values)
    viewer, operator, admin = perms_of(Role.VIEWER), perms_of(Role.OPERATOR), perms_of(Role.ADMIN)
    assert "processes.view_processinstance" in viewer
    assert "processes.view_incident" in viewer
    assert "servers.view_server" in viewer
    assert not any(p.split(".")[1].startswith(("add_", "change_", "delete_")) for p in viewer)
    assert viewer < operator < admin
    assert "processes.change_cluster" in admin and "processes.change_cluster" not in operator
    assert "auth.add_user" in admin and "auth.add_user" not in operator


def test_operator_permissions_include_operations_when_installed():
    ensure_role_groups()
    assert "operations.add_operation" in perms_of(Role.OPERATOR)
    assert "operations.add_operation" not in perms_of(Role.VIEWER)


def test_ensure_is_idempotent_and_repairs():
    ensure_role_groups()
    before = {role: perms_of(role) for role in Role}
    ensure_role_groups()
    assert {role: perms_of(role) for role in Role} == before
    # Someone gave viewers a write permission by hand: the next run takes it away again.
    Group.objects.get(name="viewer").permissions.add(Permission.objects.get(codename="change_cluster"))
    ensure_role_groups()
    assert perms_of(Role.VIEWER) == before[Role.VIEWER]
    assert Group.objects.filter(name__in=Role.values).count() == 3


@pytest.mark.parametrize(
    ("role", "acts", "admins"),
    [(Role.VIEWER, False, False), (Role.OPERATOR, True, False), (Role.ADMIN, True, True)],
)
def test_each_role(role, acts, admins):
    user = make_user("u-" + role.value, role)
    assert user_role(user) == role
    assert can_act(user) is acts
    assert can_admin(user) is admins
    require_role(user, at_least=Role.VIEWER)
    if acts:
        require_role(user, at_least=Role.OPERATOR)
    else:
        with pytest.raises(RoleRequired, match="Operator role required: u-viewer has viewer") as info:
            require_role(user, at_least=Role.OPERATOR)
        assert info.value.required == Role.OPERATOR and info.value.actual == Role.VIEWER
    if not admins:
        with pytest.raises(RoleRequired):
            require_role(user, at_least=Role.ADMIN)
    # Django's own permission check agrees with the group's permissions.
    assert user.has_perm("processes.change_cluster") is admins
    assert user.has_perm("processes.view_processinstance") is True


def test_anonymous_and_roleless_users_have_no_role():
    for user in (AnonymousUser(), None, make_user("nobody")):
        assert user_role(user) is None
        assert not can_act(user) and not can_admin(user)
        with pytest.raises(RoleRequired, match="no role"):
            require_role(user, at_least=Role.VIEWER)


def test_superuser_is_admin_without_groups():
    root = User.objects.create_superuser(username="root", password="pw-root")
    assert user_role(root) == Role.ADMIN
    assert can_admin(root)


def test_inactive_user_has_no_role():
    user = make_user("gone", Role.ADMIN, is_active=False)
    assert user_role(user) is None
    assert not can_act(user)


def test_assign_role_replaces_the_previous_role():
    user = make_user("moving", Role.ADMIN)
    assign_role(user=user, role=Role.VIEWER)
    assert user_role(User.objects.get(pk=user.pk)) == Role.VIEWER
    assert list(user.groups.values_list("name", flat=True)) == ["viewer"]
    assign_role(user=user, role="operator")  # plain strings from forms and commands work too
    assert user_role(user) == Role.OPERATOR


def test_assign_unknown_role_is_refused():
    user = make_user("x")
    with pytest.raises(ValueError, match="superuser"):
        assign_role(user=user, role="superuser")  # type: ignore[arg-type]
    assert user_role(user) is None


def test_highest_of_several_groups_wins():
    user = make_user("both")
    ensure_role_groups()
    user.groups.add(Group.objects.get(name="viewer"), Group.objects.get(name="operator"))
    assert user_role(user) == Role.OPERATOR
