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
