"""The Cluster table's gateway_security: what the proxy and the actions' router read from it."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from processes.management.commands.run_gateway_proxy import cluster_table_source
from processes.models import Cluster
from routing.clusters import validate_cluster_list
from routing.security import UpstreamSecurity

pytestmark = pytest.mark.django_db(transaction=True)  # the source closes stale connections

SECURITY = {
    "tls": True,
    "ca": "/etc/zeebe/ca.pem",
    "server_name": "zeebe.internal",
    "token_url": "https://identity.example/token",
    "client_id": "fleetflow",
    "client_secret_file": "/run/secrets/zeebe",
    "audience": "zeebe-api",
}


def test_table_security_reaches_the_routing_layer() -> None:
    Cluster.objects.create(id=1, name="plain", gateway_address="127.0.0.1:26500")
    Cluster.objects.create(
        id=2, name="secure", gateway_address="zeebe.example:443", gateway_security=SECURITY
    )
    clusters = {c.id: c for c in validate_cluster_list(cluster_table_source())}
    assert clusters[1].security is None
    assert clusters[2].security == UpstreamSecurity(**SECURITY)

    from processes.operations.services import cluster_router

    router = cluster_router()
    assert router is not None  # built from the same rows without error (channels open lazily)


@pytest.mark.parametrize(
    "bad",
    [
        {**SECURITY, "client_secret": "hunter2"},  # a secret in clear is refused
        {**SECURITY, "tls": False},  # OAuth without TLS
        {
            "tls": True,
            "token_url": "http://identity.example/token",
            "client_id": "a",
            "client_secret_env": "S",
        },
        {"tls": "sometimes"},
    ],
)
def test_clean_refuses_unusable_or_secret_settings(bad: dict) -> None:
    cluster = Cluster(id=3, name="bad", gateway_address="zeebe.example:443", gateway_security=bad)
    with pytest.raises(ValidationError) as error:
        cluster.full_clean()
    assert "gateway_security" in error.value.message_dict


def test_admin_edits_gateway_security_and_refuses_a_clear_secret(client) -> None:  # type: ignore[no-untyped-def]
    import json

    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("ada", password="pw-123456789"))
    form = {
        "id": 4,
        "name": "secured",
        "gateway_address": "zeebe.example:443",
        "weight": 1,
        "record_source": "engine_log",
        "record_source_config": json.dumps({"data_dir": "/var/zeebe"}),
    }
    refused = client.post(
        "/admin/processes/cluster/add/",
        {**form, "gateway_security": json.dumps({**SECURITY, "client_secret": "hunter2"})},
    )
    assert refused.status_code == 200 and "client_secret" in refused.content.decode()
    assert not Cluster.objects.filter(pk=4).exists()
    saved = client.post("/admin/processes/cluster/add/", {**form, "gateway_security": json.dumps(SECURITY)})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert Cluster.objects.get(pk=4).gateway_security == SECURITY
