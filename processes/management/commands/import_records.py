"""`python manage.py import_records [--follow] [--cluster ID ...] [--batch-size N]`: the importer.

Without --follow it imports what the clusters' sources hold now and exits; with --follow it keeps
tailing them until SIGTERM or SIGINT, which end it after the batch in flight (nothing is lost:
positions commit with the rows, and the next start resumes there).
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from processes.importer.runner import DEFAULT_BATCH_SIZE, Importer, run_importers
from processes.importer.sources import SourceConfigError
from processes.models import Cluster

logger = logging.getLogger("processes.importer")


class Command(BaseCommand):
    help = "Import exported Zeebe records of the clusters into the query models."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--follow", action="store_true", help="Keep importing new records until stopped.")
        parser.add_argument(
            "--cluster",
            type=int,
            action="append",
            dest="clusters",
            help="Cluster id (repeatable; default all).",
        )
        parser.add_argument(
            "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="Records per transaction."
        )
        parser.add_argument(
            "--idle-wait",
            type=float,
            default=1.0,
            help="With --follow: seconds to wait for new records per round.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size: int = options["batch_size"]
        if batch_size < 1:
            raise CommandError(f"--batch-size must be at least 1, got {batch_size}")
        clusters = list(Cluster.objects.order_by("id"))
        if options["clusters"]:
            wanted = set(options["clusters"])
            clusters = [cluster for cluster in clusters if cluster.id in wanted]
            missing = wanted - {cluster.id for cluster in clusters}
            if missing:
                raise CommandError(f"No cluster with id {', '.join(map(str, sorted(missing)))}")
        if not clusters:
            raise CommandError(
                "No clusters configured: add one first (admin, or processes.services.cluster_create)"
            )
        importers = []
        try:
            for cluster in clusters:
                try:
                    importers.append(Importer(cluster=cluster, batch_size=batch_size))
                except SourceConfigError as error:
                    raise CommandError(str(error)) from None
            stop = threading.Event()

            def request_stop(signum: int, frame: FrameType | None) -> None:
                logger.info("received %s: stopping after the batch in flight", signal.Signals(signum).name)
                stop.set()

            signal.signal(signal.SIGTERM, request_stop)
            signal.signal(signal.SIGINT, request_stop)
            logger.info(
                "importing clusters %s (batch size %d%s)",
                ", ".join(f"{cluster.id} ({cluster.record_source})" for cluster in clusters),
                batch_size,
                ", following" if options["follow"] else "",
            )
            run_importers(
                importers, follow=options["follow"], stop=stop, idle_wait_seconds=options["idle_wait"]
            )
        finally:
            for importer in importers:
                importer.close()
