"""The import loop: fetch a batch from a cluster's source, apply it, acknowledge it, repeat.

`Importer` serves one cluster; `run_importers` round-robins over several in one process and
stops cleanly when its stop event is set (the command sets it on SIGTERM/SIGINT): the batch in
flight commits or rolls back as a whole, and the next start resumes from the committed positions.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence

from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections

from processes.choices import RecordSource
from processes.importer.events import flush_instance_events
from processes.importer.lock import ClusterImportLock
from processes.importer.projection import BatchResult, Projection, db_driver
from processes.importer.sources import RecordSourceReader, open_source
from processes.importer.sources.readahead import ReadAheadSource
from processes.models import Cluster, ImportPosition

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 10_000
GC_PAUSE_BATCHES = 10  # see Importer._pause_collector
SUMMARY_EVERY_SECONDS = 10.0
# A cluster whose batch failed waits before its next try, doubling from 0.5 s up to this: low,
# so an importer notices within seconds that PostgreSQL (or a source) is back.
MAX_ERROR_BACKOFF_SECONDS = 4.0
# How long run_once sleeps while another importer holds the cluster's lock (at most).
LOCK_WAIT_SECONDS = 1.0


class Importer:
    """Imports one cluster's records; see the module docstring."""

    def __init__(
        self,
        *,
        cluster: Cluster,
        source: RecordSourceReader | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        self.cluster = cluster
        if source is None:
            # Read the next batch while the current one is written (sources/readahead.py); a
            # Redis consumer group tracks delivery itself, every other source reads by position.
            source = ReadAheadSource(
                open_source(cluster), reads_by_position=cluster.record_source != RecordSource.REDIS
            )
        self.source = source
        self.batch_size = batch_size
        self.projection = Projection(cluster=cluster)
        self.positions: dict[tuple[int, str], int] = {}
        # Set after a failed batch: the committed positions are re-read before the next fetch.
        self.reload_positions_later = False
        self._collector_paused = False
        self._collector_was_enabled = True
        self._paused_batches = 0
        self.lock = ClusterImportLock(cluster.id)
        # After a failed batch: not before this monotonic time (see run_importers).
        self.retry_at = 0.0
        self.backoff = 0.0
        self.reload_positions()

    def reload_positions(self) -> None:
        self.positions = {
            (partition_id, stream): position
            for partition_id, stream, position in ImportPosition.objects.filter(
                cluster=self.cluster
            ).values_list("partition_id", "stream", "position")
        }

    def run_once(self, wait_seconds: float = 0.0) -> BatchResult | None:
        """Import at most one batch; None when the source had nothing within `wait_seconds`, or
        another importer holds this cluster's import lock (see lock.py)."""
        if not self.lock.held():
            time.sleep(min(wait_seconds, LOCK_WAIT_SECONDS))
            return None
        if self.lock.acquired_again:
            # Taken over (or taken back after a lost connection): the other importer may have
            # moved the positions, and a Redis group must re-read its pending entries.
            self.lock.acquired_again = False
            self.reload_positions_later = True
            self.source.rewind()
        if self.reload_positions_later:
            self.reload_positions()
            self.reload_positions_later = False
        self._pause_collector()
        try:
            records = self.source.fetch(self.positions, self.batch_size, wait_seconds)
            if not records:
                self._resume_collector()
                return None
            result = self.projection.apply_batch(records)
            # Only now, after the commit: XACK for Redis (at-least-once, reference §3.9).
            self.source.acknowledge(records)
        except BaseException:
            self._resume_collector()
            try:
                self.source.rewind()
            except Exception:
                logger.exception("cluster %s: could not rewind the record source", self.cluster.pk)
            raise
        self.positions.update(result.positions)
        self._paused_batches += 1
        if self._paused_batches >= GC_PAUSE_BATCHES:
            self._resume_collector()
        return result

    # A batch allocates tens of thousands of short-lived dicts that reference counting frees; the
    # cyclic collector running over them (and over every long-lived object) halved the import
    # rate in bench/importer.py. It is paused while the importer is busy, for at most
    # GC_PAUSE_BATCHES batches in a row, and resumed whenever the source is idle, a batch fails
    # or the importer closes. Resuming after every batch (as before) cost 15-20 % on the Redis
    # figure: each resume collected the batch still referenced plus the one read ahead.
    def _pause_collector(self) -> None:
        if not self._collector_paused:
            self._collector_was_enabled = gc.isenabled()
            gc.disable()
            self._collector_paused = True
            self._paused_batches = 0

    def _resume_collector(self) -> None:
        if self._collector_paused:
            self._collector_paused = False
            if self._collector_was_enabled:
                gc.enable()

    def drain(self, max_batches: int = 1_000_000) -> int:
        """Import until the source has nothing more; returns the number of records received."""
        received = 0
        for _ in range(max_batches):
            result = self.run_once()
            if result is None:
                break
            received += result.received
        return received

    def close(self) -> None:
        self._resume_collector()
        try:
            flush_instance_events()
            self.source.close()
        finally:
            # A lost connection has taken the lock with it.
            with contextlib.suppress(DatabaseError):
                self.lock.release()


def database_unavailable(error: BaseException) -> bool:
    """The database is down or the connection was lost (retry), as opposed to anything else."""
    driver = db_driver()
    return isinstance(
        error, (OperationalError, InterfaceError, driver.OperationalError, driver.InterfaceError)
    )


def run_importers(
    importers: Sequence[Importer],
    *,
    follow: bool,
    stop: threading.Event,
    idle_wait_seconds: float = 1.0,
    on_batch: Callable[[Importer, BatchResult], None] | None = None,
) -> list[tuple[Importer, BaseException]]:
    """Round-robin over the importers until they are idle (or, with `follow`, until `stop`).

    A batch that fails costs only its own cluster: with `follow` that cluster waits (backing off
    from 0.5 s to MAX_ERROR_BACKOFF_SECONDS) while the others go on, and then retries from its
    committed positions; without `follow` it is left out of the run. Records PostgreSQL cannot
    hold never get here (the projection isolates them). Returns the clusters given up on.
    """
    failed: list[tuple[Importer, BaseException]] = []
    active = list(importers)
    if not active:
        return failed
    per_cluster_wait = idle_wait_seconds / len(active)
    totals = BatchResult()
    summary_at = time.monotonic() + SUMMARY_EVERY_SECONDS
    while not stop.is_set() and active:
        any_records = False
        now = time.monotonic()
        ready = [importer for importer in active if importer.retry_at <= now]
        if not ready:
            stop.wait(max(0.0, min(importer.retry_at for importer in active) - now))
            continue
        for importer in ready:
            if stop.is_set():
                break
            try:
                result = importer.run_once(wait_seconds=per_cluster_wait if follow else 0.0)
            except Exception as error:
                if not follow:
                    logger.error("cluster %s: import failed: %s", importer.cluster.id, error)
                    failed.append((importer, error))
                    active.remove(importer)
                    continue
                _back_off(importer, error)
                continue
            importer.backoff = 0.0
            if result is None:
                continue
            any_records = True
            for name in ("received", "imported", "duplicates", "skipped", "errors"):
                setattr(totals, name, getattr(totals, name) + getattr(result, name))
            logger.debug("cluster %s: %s", importer.cluster.id, result)
            if on_batch is not None:
                on_batch(importer, result)
        if time.monotonic() >= summary_at:
            summary_at = time.monotonic() + SUMMARY_EVERY_SECONDS
            logger.info(
                "imported %d records (%d duplicates, %d skipped, %d errors) so far",
                totals.imported,
                totals.duplicates,
                totals.skipped,
                totals.errors,
            )
        if not any_records and not follow:
            break
    logger.info(
        "importer stopping: %d records received, %d imported, %d duplicates, %d skipped, %d errors",
        totals.received,
        totals.imported,
        totals.duplicates,
        totals.skipped,
        totals.errors,
    )
    return failed


def _back_off(importer: Importer, error: BaseException) -> None:
    importer.backoff = min(MAX_ERROR_BACKOFF_SECONDS, max(0.5, importer.backoff * 2))
    importer.retry_at = time.monotonic() + importer.backoff
    if database_unavailable(error):
        logger.error(
            "cluster %s: database unavailable (%s); retrying in %.1f s",
            importer.cluster.id,
            " ".join(str(error).split())[:300],
            importer.backoff,
        )
    else:
        # The traceback once per trouble, then one line per retry.
        logger.error(
            "cluster %s: batch failed (%s: %s); retrying in %.1f s",
            importer.cluster.id,
            type(error).__name__,
            " ".join(str(error).split())[:300],
            importer.backoff,
            exc_info=importer.backoff <= 0.5,
        )
    importer.projection.forget_caches()
    importer.reload_positions_later = True
    with contextlib.suppress(DatabaseError):
        close_old_connections()
