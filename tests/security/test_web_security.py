"""The console's door when DEBUG is off: headers, cookies, login throttling (django-axes), API
tokens listed and revoked by admins, and the audit trail of logins and token use."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from processes.api.services import api_token_issue
from processes.operations.models import AuditEntry
from processes.roles import Role, assign_role

pytestmark = pytest.mark.django_db

PASSWORD = "right-password-123"


@pytest.fixture
def operator() -> User:
    user = User.objects.create_user("olga", password=PASSWORD)
    assign_role(user=user, role=Role.OPERATOR)
    return user


def login(client: Client, username: str, password: str, address: str = "10.0.0.7") -> int:
    response = client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )
    return response.status_code


def test_hardening_headers_and_cookies_with_debug_off(client: Client, operator: User) -> None:
    assert settings.DEBUG is False
    response = client.get("/accounts/login/", secure=True)
    assert response.status_code == 200
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in response
    assert "'unsafe-inline'" not in response["Content-Security-Policy"].split("script-src")[-1].split(";")[0]
    assert response.cookies["csrftoken"]["secure"]
    client.post(
        "/accounts/login/", {"username": "olga", "password": PASSWORD}, secure=True, REMOTE_ADDR="10.0.0.7"
    )
    session = client.cookies[settings.SESSION_COOKIE_NAME]
    assert session["secure"] and session["httponly"]
    # HSTS goes on HTTPS responses only (sent over plain HTTP it would be ignored anyway)
    assert "Strict-Transport-Security" not in client.get("/accounts/login/")


def test_tenth_wrong_password_locks_the_login_for_the_cooloff(client: Client, operator: User) -> None:
    assert settings.AXES_FAILURE_LIMIT == 10
    for attempt in range(1, 10):
        assert login(client, "olga", f"wrong-{attempt}") == 200, attempt  # the form again, not locked
    assert login(client, "olga", "wrong-10") == 429  # the tenth in a row locks
    assert login(client, "olga", PASSWORD) == 429  # even the right password, while locked
    # another address is not locked out by this one's failures (the pair is locked, not the user)
    assert login(Client(), "olga", PASSWORD, address="10.0.0.8") == 302
    # after the configured time the lock lifts (the attempts are aged rather than slept through)
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    assert login(client, "olga", PASSWORD) == 302
    events = list(AuditEntry.objects.filter(actor_name="olga").values_list("event", flat=True))
    assert events.count("login_failed") >= 10
    assert "login_locked" in events and events.count("login") == 2


def test_successful_login_resets_the_count(client: Client, operator: User) -> None:
    for attempt in range(9):
        assert login(client, "olga", f"wrong-{attempt}") == 200
    assert login(client, "olga", PASSWORD) == 302
    client.logout()
    for attempt in range(9):
        assert login(client, "olga", f"again-{attempt}") == 200
    assert login(client, "olga", PASSWORD) == 302


def test_token_use_is_audited_and_admins_list_and_revoke_tokens(client: Client) -> None:
    token = api_token_issue(username="dashboard-bot", role=Role.VIEWER)
    api = Client()
    assert api.get("/api/v1/clusters/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    used = AuditEntry.objects.filter(event="token_used", actor_name="dashboard-bot").get()
    assert token not in used.message and token[:6] in used.message and "/api/v1/clusters/" in used.message

    admin = User.objects.create_superuser("ada", password=PASSWORD)
    client.force_login(admin)
    listing = client.get("/admin/processes/apitoken/")
    assert listing.status_code == 200 and "dashboard-bot" in listing.content.decode()
    token_row = Token.objects.get(key=token)
    confirm = client.post(f"/admin/processes/apitoken/{token_row.user_id}/delete/", {"post": "yes"})
    assert confirm.status_code == 302
    assert not Token.objects.filter(key=token).exists()
    assert api.get("/api/v1/clusters/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 401
    assert AuditEntry.objects.filter(event="token_revoked", actor_name="dashboard-bot").exists()
    # an operator (not admin) cannot see the tokens
    operator = User.objects.create_user("otto", password=PASSWORD, is_staff=True)
    assign_role(user=operator, role=Role.OPERATOR)
    other = Client()
    other.force_login(operator)
    assert other.get("/admin/processes/apitoken/").status_code in (302, 403)
