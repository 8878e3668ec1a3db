"""`manage.py issue_token` (DESIGN §8): token alone on the last line, usable at once, role as asked."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from processes.roles import Role, user_role
from tests.api import data

pytestmark = pytest.mark.django_db


def issue(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("issue_token", *args, stdout=out, stderr=err)
    lines = out.getvalue().splitlines()
    assert lines, err.getvalue()
    return lines[-1]


def test_token_on_the_last_line_works_with_the_role():
    data.cluster(1)
    token = issue("--user", "grafana", "--role", "viewer")
    stored = Token.objects.get(key=token)
    assert stored.user.username == "grafana"
    assert user_role(stored.user) == Role.VIEWER
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/clusters/").status_code == 200
    assert client.post("/api/v1/clusters/1/drain/").status_code == 403


def test_reissuing_changes_role_and_revokes_the_old_token():
    first = issue("--user", "ops-bot", "--role", "viewer")
    second = issue("--user", "ops-bot", "--role", "operator")
    assert first != second
    assert not Token.objects.filter(key=first).exists()
    assert user_role(Token.objects.get(key=second).user) == Role.OPERATOR
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    assert client.get("/api/v1/clusters/").status_code == 401


@pytest.mark.parametrize("args", [("--user", "x", "--role", "root"), ("--user", "  ", "--role", "viewer")])
def test_bad_arguments_are_refused(args):
    with pytest.raises((CommandError, SystemExit)):
        issue(*args)
    assert not Token.objects.exists()


def test_the_admin_lists_tokens_without_their_keys(client):
    """An admin's token list tells tokens apart by their first characters; no admin page shows a
    key (titles, links, the revoke confirmation): it is shown once, by issue_token."""
    from django.contrib.auth.models import User

    token = issue("--user", "grafana", "--role", "viewer")
    admin_user = User.objects.create_superuser("root", "root@example.invalid", "pw-root-long-enough")
    client.force_login(admin_user)
    listing = client.get("/admin/processes/apitoken/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "grafana" in page and f"{token[:4]}…" in page
    assert token not in page
    user = Token.objects.get(key=token).user
    for path in (f"{user.pk}/change/", f"{user.pk}/history/", f"{user.pk}/delete/"):
        response = client.get(f"/admin/processes/apitoken/{path}")
        assert response.status_code == 200, (path, response.status_code)
        assert token not in response.content.decode() and f"{token[:4]}…" in response.content.decode()
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404  # DRF's own page is gone
    assert token not in client.get("/admin/").content.decode()
