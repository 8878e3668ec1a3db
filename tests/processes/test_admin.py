"""The cluster admin writes through processes.services: its checks apply to add and change forms."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from processes import services
from processes.choices import ClusterState, RecordSource
from processes.models import Cluster

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/processes/cluster/add/"


def change_url(cluster_id: int) -> str:
    return f"/admin/processes/cluster/{cluster_id}/change/"


@pytest.fixture
def admin_client() -> Client:
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def add_form(**overrides: Any) -> dict[str, Any]:
    form = {
        "id": "5",
        "name": "east",
        "gateway_address": "127.0.0.1:26505",
        "weight": "2",
        "record_source": RecordSource.ENGINE_LOG,
        "record_source_config": '{"data_dir": "/var/lib/east"}',
    }
    form.update(overrides)
    return form


def test_add_creates_the_cluster(admin_client: Client) -> None:
    response = admin_client.post(ADD_URL, add_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    cluster = Cluster.objects.get(pk=5)
    assert (cluster.name, cluster.gateway_address, cluster.weight, cluster.state) == (
        "east",
        "127.0.0.1:26505",
        2,
        ClusterState.ACTIVE,
    )
    assert cluster.record_source_config == {"data_dir": "/var/lib/east"}


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("localhost", "must be host:port"),
        ("127.0.0.1:70000", "outside 1..65535"),
        ("http://127.0.0.1:26500", "must be host:port"),
    ],
)
def test_add_with_a_bad_address_is_refused_on_its_field(
    admin_client: Client, address: str, message: str
) -> None:
    response = admin_client.post(ADD_URL, add_form(gateway_address=address))
    assert response.status_code == 200  # the form again, with the operator's input
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors["gateway_address"])
    assert address in response.content.decode()
    assert not Cluster.objects.exists()


def test_add_with_a_password_in_the_record_source_url_is_refused_on_its_field(admin_client: Client) -> None:
    form = add_form(record_source="redis", record_source_config='{"url": "redis://:hunter2@redis:6379/0"}')
    response = admin_client.post(ADD_URL, form)
    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.errors["record_source_config"])
    assert "url carries a password" in errors and "password_env" in errors
    assert not Cluster.objects.exists()


def test_add_with_an_id_outside_the_key_range_is_refused(admin_client: Client) -> None:
    response = admin_client.post(ADD_URL, add_form(id="32"))
    assert response.status_code == 200
    assert "id" in response.context["adminform"].form.errors
    assert not Cluster.objects.exists()


def test_change_goes_through_the_service(admin_client: Client) -> None:
    services.cluster_create(cluster_id=7, name="west", gateway_address="127.0.0.1:26507")
    form = add_form(name="west-2", gateway_address="10.1.2.3:26500", weight="0", record_source_config="{}")
    del form["id"]  # read-only once the cluster exists
    response = admin_client.post(change_url(7), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    cluster = Cluster.objects.get(pk=7)
    assert (cluster.name, cluster.gateway_address, cluster.weight) == ("west-2", "10.1.2.3:26500", 0)


def test_change_to_a_bad_address_keeps_the_stored_one(admin_client: Client) -> None:
    services.cluster_create(cluster_id=7, name="west", gateway_address="127.0.0.1:26507")
    form = add_form(name="west", gateway_address="no-port-here")
    del form["id"]
    response = admin_client.post(change_url(7), form)
    assert response.status_code == 200
    assert "must be host:port" in " ".join(response.context["adminform"].form.errors["gateway_address"])
    assert Cluster.objects.get(pk=7).gateway_address == "127.0.0.1:26507"


def test_state_and_id_cannot_be_changed_and_clusters_cannot_be_deleted(admin_client: Client) -> None:
    services.cluster_create(cluster_id=7, name="west", gateway_address="127.0.0.1:26507")
    form = add_form(name="west", gateway_address="127.0.0.1:26507", state=ClusterState.DISABLED, id="9")
    response = admin_client.post(change_url(7), form)
    assert response.status_code == 302
    cluster = Cluster.objects.get()
    assert (cluster.pk, cluster.state) == (7, ClusterState.ACTIVE)
    assert admin_client.post("/admin/processes/cluster/7/delete/", {"post": "yes"}).status_code == 403
    assert Cluster.objects.filter(pk=7).exists()
