"""Template context shared by every console page: what the logged-in user may do.

Templates hide action buttons with these flags; the action views and the services check the role
again on every POST, so a hidden button is a courtesy, not the protection.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from processes.roles import Role, user_role


def roles(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_can_act": False, "user_can_admin": False, "user_role": None}
    role = user_role(user)  # one query for the three flags
    return {
        "user_can_act": role in (Role.OPERATOR, Role.ADMIN),
        "user_can_admin": role == Role.ADMIN,
        "user_role": role,
    }
