"""`manage.py register_cluster` (docker-compose.yml's register-* services): creates, is idempotent,
updates the address, refuses a different record source or a taken id with a message."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from processes.models import Cluster

pytestmark = pytest.mark.django_db

BLUE = [
    "--id=1",
    "--name=blue",
    "--gateway=zeebe-blue:26500",
    "--record-source=elasticsearch",
    "--config=url=http://elasticsearch:9200",
    "--config=index_prefix=zeebe-record-blue",
]


def test_registers_once_and_updates_the_address_on_a_second_run() -> None:
    call_command("register_cluster", *BLUE)
    call_command("register_cluster", *BLUE[:2], "--gateway=zeebe-blue-2:26500", *BLUE[3:])
    cluster = Cluster.objects.get()
    assert (cluster.id, cluster.name, cluster.gateway_address) == (1, "blue", "zeebe-blue-2:26500")
    assert cluster.record_source == "elasticsearch"
    assert cluster.record_source_config == {
        "url": "http://elasticsearch:9200",
        "index_prefix": "zeebe-record-blue",
    }


def test_refuses_a_changed_record_source_a_taken_id_and_bad_input() -> None:
    call_command("register_cluster", *BLUE)
    with pytest.raises(CommandError, match="reads elasticsearch"):
        call_command(
            "register_cluster", *BLUE[:3], "--record-source=redis", "--config=url=redis://redis:6379/0"
        )
    with pytest.raises(CommandError, match="already 'blue'"):
        call_command("register_cluster", "--id=1", "--name=green", *BLUE[2:])
    with pytest.raises(CommandError, match="not KEY=VALUE"):
        call_command("register_cluster", "--id=2", "--name=green", *BLUE[2:4], "--config=url")
    with pytest.raises(CommandError, match="host:port"):
        call_command("register_cluster", "--id=2", "--name=green", "--gateway=nope", *BLUE[3:])
    assert list(Cluster.objects.values_list("name", "gateway_address")) == [("blue", "zeebe-blue:26500")]
