"""Every login, failed login, lock-out, API token use and token revocation lands in the audit log.

Signal receivers (connected in ``ProcessesConfig.ready``) and the token authentication class named
in ``REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]``. Rows go to ``operations.AuditEntry`` (the
one audit trail the operations page shows), with ``operation`` and ``batch`` empty. A password is
never written: Django passes the failed credentials through ``cleanse_setting`` before the signal.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_delete
from django.http import HttpRequest
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from processes.operations.models import AuditEntry


def _client(request: HttpRequest | None) -> dict[str, Any]:
    if request is None:
        return {}
    return {
        "ip": request.META.get("REMOTE_ADDR", ""),
        "user_agent": str(request.META.get("HTTP_USER_AGENT", ""))[:200],
        "path": request.path[:200],
    }


def audit_auth_event(
    *, event: str, user: Any = None, username: str = "", message: str, request: HttpRequest | None = None
) -> AuditEntry:
    """Write one authentication audit row (``event``: login, logout, login_failed, login_locked,
    token_used, token_revoked)."""
    actor = user if user is not None and getattr(user, "pk", None) is not None else None
    return AuditEntry.objects.create(
        actor=actor,
        actor_name=(username or (user.get_username() if actor is not None else ""))[:150],
        event=event,
        message=message,
        detail=_client(request),
    )


def _logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    audit_auth_event(event="login", user=user, message="signed in", request=request)


def _logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit_auth_event(event="logout", user=user, message="signed out", request=request)


def _login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username") or "")
    audit_auth_event(
        event="login_failed", username=username, message="wrong user name or password", request=request
    )


def _locked_out(
    sender: Any, request: HttpRequest | None, username: str | None, ip_address: str, **kwargs: Any
) -> None:
    audit_auth_event(
        event="login_locked",
        username=username or "",
        message=f"too many failed logins from {ip_address}: locked",
        request=request,
    )


def _token_deleted(sender: Any, instance: Token, **kwargs: Any) -> None:
    user = getattr(instance, "user", None)
    audit_auth_event(event="token_revoked", user=user, message=f"API token {instance.key[:6]}… revoked")


class AuditedTokenAuthentication(TokenAuthentication):
    """DRF token authentication that writes a ``token_used`` audit row per authenticated request."""

    def authenticate(self, request: Any) -> tuple[Any, Token] | None:
        result = super().authenticate(request)
        if result is not None:
            user, token = result
            audit_auth_event(
                event="token_used",
                user=user,
                message=f"API token {token.key[:6]}… {request.method} {request.path[:150]}",
                request=request._request,
            )
        return result


def connect() -> None:
    """Connect the receivers (idempotent: each has a dispatch uid)."""
    from axes.signals import user_locked_out

    user_logged_in.connect(_logged_in, dispatch_uid="fleetflow-audit-login")
    user_logged_out.connect(_logged_out, dispatch_uid="fleetflow-audit-logout")
    user_login_failed.connect(_login_failed, dispatch_uid="fleetflow-audit-login-failed")
    user_locked_out.connect(_locked_out, dispatch_uid="fleetflow-audit-locked")
    post_delete.connect(_token_deleted, sender=Token, dispatch_uid="fleetflow-audit-token-revoked")
