"""The server admin writes through servers.services: a stub becomes a full row, the key is fixed."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from servers import services
from servers.choices import ServerState
from servers.models import Server

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def form(**overrides: Any) -> dict[str, Any]:
    values = {
        "serial_number": "SN-100",
        "hostname": "web-1",
        "hardware_model": "R650",
        "rack": "r1",
        "data_centre": "fra1",
        "state": ServerState.IN_SERVICE,
    }
    values.update(overrides)
    return values


def test_add_creates_a_full_row(admin_client: Client) -> None:
    response = admin_client.post("/admin/servers/server/add/", form())
    assert response.status_code == 302, response.content.decode()[:2000]
    server = Server.objects.get()
    assert (server.serial_number, server.hostname, server.state, server.is_stub) == (
        "SN-100",
        "web-1",
        ServerState.IN_SERVICE,
        False,
    )


def test_editing_a_stub_makes_it_a_full_row_and_keeps_its_serial(admin_client: Client) -> None:
    services.server_ensure_stubs(serial_numbers=["SN-7"])
    assert Server.objects.get().is_stub
    response = admin_client.post(
        "/admin/servers/server/SN-7/change/", form(serial_number="SN-8", hostname="db-1")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    server = Server.objects.get()
    assert (server.serial_number, server.hostname, server.is_stub) == ("SN-7", "db-1", False)


def test_a_duplicate_serial_is_refused_on_its_field(admin_client: Client) -> None:
    services.server_upsert(serial_number="SN-100", hostname="old")
    response = admin_client.post("/admin/servers/server/add/", form(hostname="new"))
    assert response.status_code == 200
    assert "serial_number" in response.context["adminform"].form.errors
    assert Server.objects.get().hostname == "old"
