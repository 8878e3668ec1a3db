"""`manage.py run_gateway_proxy`: the routing proxy (routing/) driven by the Cluster table.

Changes made in the console, the admin or the API (state, weight, address, new clusters) are picked
up by polling the table every half second, so they take effect within 2 s without a restart.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, close_old_connections

from processes.selectors import cluster_list
from routing.clusters import ClusterConfigError
from routing.server import run_proxy

log = logging.getLogger(__name__)


def cluster_table_source() -> list[dict[str, Any]]:
    """Read the Cluster table in the shape the routing layer expects.

    Called from the proxy's worker thread: the thread's connection is recycled when stale, and a
    database outage becomes a ClusterConfigError so the proxy keeps routing with its last list.
    """
    close_old_connections()
    try:
        return [
            {
                "id": cluster.id,
                "name": cluster.name,
                "address": cluster.gateway_address,
                "weight": cluster.weight,
                "state": cluster.state,
                "security": cluster.gateway_security or None,  # routing/security.py
            }
            for cluster in cluster_list()
        ]
    except DatabaseError as error:
        raise ClusterConfigError(f"cannot read the Cluster table: {error}") from None


class Command(BaseCommand):
    help = "Run the Zeebe gateway proxy in front of the clusters in the Cluster table."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=26500, help="listen port (default 26500)")
        parser.add_argument(
            "--state-dir",
            default=str(Path(settings.BASE_DIR) / "var" / "routing"),
            help="deployment journal and metrics.json (default var/routing)",
        )
        parser.add_argument("--poll-interval", type=float, default=0.5, help="seconds between table reads")

    def handle(self, *args: Any, **options: Any) -> None:
        log.info("gateway proxy on %s:%s driven by the Cluster table", options["host"], options["port"])
        run_proxy(
            cluster_table_source,
            host=options["host"],
            port=options["port"],
            state_dir=options["state_dir"],
            poll_interval=options["poll_interval"],
        )
