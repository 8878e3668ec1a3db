"""run_stack's registration of its embedded clusters in the Cluster table (processes/services.py)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from console.management.commands.run_stack import register_embedded_clusters
from processes.models import Cluster
from processes.services import cluster_create

pytestmark = pytest.mark.django_db


def clusters() -> list[tuple[int, str, str, str, dict[str, str]]]:
    return list(
        Cluster.objects.order_by("id").values_list(
            "id", "name", "gateway_address", "state", "record_source_config"
        )
    )


def test_a_second_run_keeps_the_ids_takes_the_new_ports_and_disables_clusters_it_no_longer_starts() -> None:
    cluster_create(
        cluster_id=1, name="real-zeebe", gateway_address="zeebe:26500"
    )  # someone else's: left alone
    register_embedded_clusters(
        {f"embedded-{i}": (f"127.0.0.1:{4000 + i}", f"/data/engine-{i}") for i in (1, 2, 3)}
    )
    register_embedded_clusters(
        {f"embedded-{i}": (f"127.0.0.1:{5000 + i}", f"/data/engine-{i}") for i in (1, 2)}
    )
    assert clusters() == [
        (1, "real-zeebe", "zeebe:26500", "active", {}),
        (2, "embedded-1", "127.0.0.1:5001", "active", {"data_dir": "/data/engine-1"}),
        (3, "embedded-2", "127.0.0.1:5002", "active", {"data_dir": "/data/engine-2"}),
        (4, "embedded-3", "127.0.0.1:4003", "disabled", {"data_dir": "/data/engine-3"}),
    ]
    # Started again with three: the third is back in placement.
    register_embedded_clusters(
        {f"embedded-{i}": (f"127.0.0.1:{6000 + i}", f"/data/engine-{i}") for i in (1, 2, 3)}
    )
    assert [row[3] for row in clusters()] == ["active"] * 4


def test_another_data_directory_on_the_same_database_is_refused() -> None:
    register_embedded_clusters({"embedded-1": ("127.0.0.1:4001", "/data/engine-1")})
    with pytest.raises(ValidationError, match="run with the --data-dir it was created with"):
        register_embedded_clusters({"embedded-1": ("127.0.0.1:4001", "/elsewhere/engine-1")})
    assert clusters() == [(1, "embedded-1", "127.0.0.1:4001", "active", {"data_dir": "/data/engine-1"})]


def test_a_redis_url_with_a_password_is_named_not_stored() -> None:
    """REDIS_URL may carry a password (redis://:pw@host): the clusters name the variable instead
    (processes/source_config.py), a plain one is stored as it is."""
    register_embedded_clusters(
        {"embedded-1": ("127.0.0.1:4001", "/data/engine-1")}, redis_url="redis://:hunter2@redis:6379/0"
    )
    register_embedded_clusters(
        {"embedded-2": ("127.0.0.1:4002", "/data/engine-2")}, redis_url="redis://redis:6379/0"
    )
    configs = [row[4] for row in clusters()]
    assert configs[0] == {
        "url_env": "REDIS_URL",
        "stream_prefix": "zeebe-embedded-1",
        "data_dir": "/data/engine-1",
    }
    assert configs[1]["url"] == "redis://redis:6379/0"
    assert "hunter2" not in repr(configs)
