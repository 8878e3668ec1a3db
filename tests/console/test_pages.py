"""The console front page: login required, then the dashboard lists clusters."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from processes import services

pytestmark = pytest.mark.django_db


def test_front_page_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_dashboard_lists_clusters(client):
    services.cluster_create(cluster_id=4, name="dc1-blue", gateway_address="127.0.0.1:26500")
    client.force_login(User.objects.create_user("viewer", password="pw-unused-123"))
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "dc1-blue" in body and "127.0.0.1:26500" in body


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_admin_shows_query_models_read_only(client):
    admin_user = User.objects.create_superuser("root", "root@example.invalid", "pw-unused-123")
    client.force_login(admin_user)
    for path in (
        "/admin/processes/processinstance/",
        "/admin/processes/incident/",
        "/admin/processes/job/",
        "/admin/processes/importposition/",
        "/admin/processes/recordimporterror/",
    ):
        assert client.get(path).status_code == 200, path
    # Written by the importer only: no add form even for a superuser.
    assert client.get("/admin/processes/processinstance/add/").status_code == 403
