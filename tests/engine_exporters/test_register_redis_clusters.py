"""run_stack --record-source redis registers its embedded clusters with the importer's Redis source
(console/management/commands/run_stack.py), and refuses a database registered for the other source."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from console.management.commands.run_stack import register_embedded_clusters
from processes.choices import RecordSource
from processes.models import Cluster

pytestmark = pytest.mark.django_db


def test_redis_source_rows_follow_the_redis_address_and_refuse_a_switch() -> None:
    wanted = {"embedded-1": ("127.0.0.1:4001", "/data/engine-1")}
    register_embedded_clusters(wanted, redis_url="redis://127.0.0.1:7001/0")
    cluster = Cluster.objects.get(name="embedded-1")
    assert cluster.record_source == RecordSource.REDIS
    assert cluster.record_source_config == {
        "url": "redis://127.0.0.1:7001/0",
        "stream_prefix": "zeebe-embedded-1",
        "data_dir": "/data/engine-1",
    }
    # A new local redis-server port on the next run: same row, new address.
    register_embedded_clusters(wanted, redis_url="redis://127.0.0.1:7002/0")
    cluster.refresh_from_db()
    assert cluster.record_source_config["url"] == "redis://127.0.0.1:7002/0"
    # Switching to the engine log on the same database is refused (the row's import positions are
    # Redis's), and changes nothing.
    with pytest.raises(ValidationError, match="--record-source"):
        register_embedded_clusters(wanted)
    cluster.refresh_from_db()
    assert cluster.record_source == RecordSource.REDIS
    assert Cluster.objects.count() == 1
