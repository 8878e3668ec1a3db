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
from django.db import DatabaseError, close_old_connections

from processes.importer.runner import (
    DEFAULT_BATCH_SIZE,
    MAX_ERROR_BACKOFF_SECONDS,
    Importer,
    database_unavailable,
    run_importers,
)
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
        follow: bool = options["follow"]
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            logger.info("received %s: stopping after the batch in flight", signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        importers: list[Importer] = []
        try:
            importers = self._start_importers(options, batch_size, follow, stop)
            if not importers:
                return  # stopped while waiting for the database
            logger.info(
                "importing clusters %s (batch size %d%s)",
                ", ".join(
                    f"{importer.cluster.id} ({importer.cluster.record_source})" for importer in importers
                ),
                batch_size,
                ", following" if follow else "",
            )
            failed = run_importers(
                importers, follow=follow, stop=stop, idle_wait_seconds=options["idle_wait"]
            )
        finally:
            for importer in importers:
                try:
                    importer.close()
                except Exception:
                    logger.exception("cluster %s: error while closing", importer.cluster.id)
        if failed:
            raise CommandError(
                "import failed for "
                + "; ".join(f"cluster {importer.cluster.id}: {error}" for importer, error in failed)
            )

    def _start_importers(
        self, options: dict[str, Any], batch_size: int, follow: bool, stop: threading.Event
    ) -> list[Importer]:
        """The clusters' importers; PostgreSQL down at start-up is said clearly and, with --follow,
        waited for (backing off as when it goes down later)."""
        backoff = 0.0
        while True:
            try:
                return self._importers(options, batch_size)
            except DatabaseError as error:
                if not database_unavailable(error):
                    raise
                reason = " ".join(str(error).split())[:300]
                if not follow:
                    raise CommandError(f"PostgreSQL is not reachable: {reason}") from None
                backoff = min(MAX_ERROR_BACKOFF_SECONDS, max(0.5, backoff * 2))
                logger.error("PostgreSQL is not reachable (%s); retrying in %.1f s", reason, backoff)
                close_old_connections()
                if stop.wait(backoff):
                    return []

    def _importers(self, options: dict[str, Any], batch_size: int) -> list[Importer]:
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
        importers: list[Importer] = []
        try:
            for cluster in clusters:
                try:
                    importers.append(Importer(cluster=cluster, batch_size=batch_size))
                except SourceConfigError as error:
                    raise CommandError(str(error)) from None
        except BaseException:
            for importer in importers:
                importer.close()
            raise
        return importers
