"""`python manage.py import_records [--follow] [--cluster ID ...] [--batch-size N] [--lease-seconds S]`.

Without --follow it imports what the clusters' sources hold now and exits; with --follow it keeps
tailing them until SIGTERM or SIGINT, which end it after the batch in flight (nothing is lost:
positions commit with the rows, and the next start resumes there).

Run several on PostgreSQL to scale out: they split the clusters' partitions between them with
leases, each taking a fair share, and take over a stopped or killed one's partitions
(processes/importer/leases.py). A clean stop hands its partitions over at once.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, close_old_connections

from processes.importer.leases import DEFAULT_TTL_SECONDS, ROUND_SECONDS, Leases
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


def install_stop_handlers(stop: threading.Event) -> Callable[[], None]:
    """SIGTERM and SIGINT set `stop`. Returns a function that puts the previous handlers back.

    The handler only queues the signal: it runs in the main thread between bytecodes, possibly while
    that thread is inside `stop.wait()` (run_importers) holding the event's non-reentrant lock, where
    `stop.set()` would block for good and the importer would ignore every later signal (the
    exporters child deadlocked so, commit 3bfeedd). `SimpleQueue.put` takes no lock that thread could
    hold (its C implementation is reentrant); a daemon thread logs it and sets the event.
    """
    received: queue.SimpleQueue[int | None] = queue.SimpleQueue()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        received.put(signum)

    def stop_on_request() -> None:
        while (signum := received.get()) is not None:
            logger.info("received %s: stopping after the batch in flight", signal.Signals(signum).name)
            stop.set()

    threading.Thread(target=stop_on_request, name="import_records-stop-signals", daemon=True).start()
    previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGTERM, signal.SIGINT)}

    def uninstall() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        received.put(None)

    return uninstall


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
            "--lease-seconds",
            type=float,
            default=DEFAULT_TTL_SECONDS,
            help="How long a partition's lease outlives its holder's last renewal: another importer "
            "takes over a paused (SIGSTOP) or unreachable importer's partitions after this long "
            "(a killed one's at once).",
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
        lease_seconds: float = options["lease_seconds"]
        if lease_seconds < 2 * ROUND_SECONDS:
            raise CommandError(
                f"--lease-seconds must be at least {2 * ROUND_SECONDS:g}, got {lease_seconds:g}"
            )
        stop = threading.Event()
        uninstall_stop_handlers = install_stop_handlers(stop)
        importers: list[Importer] = []
        leases: Leases | None = None
        try:
            leases = Leases(ttl_seconds=lease_seconds)
            importers = self._start_importers(options, batch_size, follow, stop, leases)
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
                importers,
                follow=follow,
                stop=stop,
                idle_wait_seconds=options["idle_wait"],
                leases=leases,
            )
        finally:
            for importer in importers:
                try:
                    importer.close()
                except Exception:
                    logger.exception("cluster %s: error while closing", importer.cluster.id)
            if leases is not None:
                leases.close()
            uninstall_stop_handlers()
        if failed:
            raise CommandError(
                "import failed for "
                + "; ".join(f"cluster {importer.cluster.id}: {error}" for importer, error in failed)
            )

    def _start_importers(
        self,
        options: dict[str, Any],
        batch_size: int,
        follow: bool,
        stop: threading.Event,
        leases: Leases,
    ) -> list[Importer]:
        """The clusters' importers; PostgreSQL down at start-up is said clearly and, with --follow,
        waited for (backing off as when it goes down later)."""
        backoff = 0.0
        while True:
            try:
                return self._importers(options, batch_size, leases)
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

    def _importers(self, options: dict[str, Any], batch_size: int, leases: Leases) -> list[Importer]:
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
                    importers.append(Importer(cluster=cluster, batch_size=batch_size, leases=leases))
                except SourceConfigError as error:
                    raise CommandError(str(error)) from None
        except BaseException:
            for importer in importers:
                importer.close()
            raise
        return importers
