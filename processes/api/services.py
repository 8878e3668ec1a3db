"""Writes of the API itself: API tokens (the action services live in processes.operations)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

from processes.roles import Role, assign_role

USERNAME_MAX_LENGTH = 150


@transaction.atomic
def api_token_issue(*, username: str, role: Role) -> str:
    """Create the user if needed, give it exactly ``role`` and return its API token (a new token each
    time: issuing again revokes the previous one, so a leaked token is retired by re-issuing)."""
    username = username.strip()
    if not username or len(username) > USERNAME_MAX_LENGTH:
        raise ValidationError(f"A user name is 1..{USERNAME_MAX_LENGTH} characters.")
    try:
        role = Role(role)
    except ValueError as error:
        raise ValidationError(f"Unknown role {role!r}; expected one of {', '.join(Role.values)}.") from error
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()  # API-only until someone sets a password for the console
        user.save(update_fields=["password"])
    assign_role(user=user, role=role)
    Token.objects.filter(user=user).delete()
    return str(Token.objects.create(user=user).key)
