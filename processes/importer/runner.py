"""The import loop: fetch a batch from a cluster's source, apply it, acknowledge it, repeat.

`Importer` serves one cluster; `run_importers` round-robins over several in one process and
stops cleanly when its stop event is set (the command sets it on SIGTERM/SIGINT): the batch in
flight commits or rolls back as a whole, and the next start resumes from the committed positions.

With `Leases` (the command always has them), several processes split the clusters' partitions
(leases.py): between batches `run_importers` runs the lease rounds, and each Importer reads only
the partitions it holds, re-reading its positions whenever they change hands; every batch is
fenced by its leases and by the positions it was read after (LeaseLost / PositionsMoved: the
batch is dropped, nothing of it applied).
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
from processes.importer.leases import WHOLE_CLUSTER, LeaseLost, Leases, Unit, units_of
from processes.importer.projection import BatchResult, PositionsMoved, Projection, db_driver
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
# How long run_once sleeps while other importers hold all of the cluster's leases (at most).
NOTHING_HELD_WAIT_SECONDS = 1.0


class Importer:
    """Imports one cluster's records; see the module docstring."""

    def __init__(
        self,
        *,
        cluster: Cluster,
        source: RecordSourceReader | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        leases: Leases | None = None,
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
        self.leases = leases
        self.projection = Projection(cluster=cluster, fence=self._fence if leases is not None else None)
        # The cluster's partitions this importer holds (partition -> lease token), as last seen.
        self._assignment: dict[int, int] | None = None
        # The source cannot be read by partition: the whole cluster is one lease (leases.py).
        self._whole_cluster = False
        self._units: set[Unit] = set()
        self._units_error: Exception | None = None
        self.positions: dict[tuple[int, str], int] = {}
        # Set after a failed batch: the committed positions are re-read before the next fetch.
        self.reload_positions_later = False
        self._collector_paused = False
        self._collector_was_enabled = True
        self._paused_batches = 0
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

    def units(self) -> set[Unit]:
        """The cluster's units of import: one per partition, or the whole cluster (leases.py).

        A source that cannot say (Elasticsearch unreachable) keeps the units last seen, so its
        outage costs its own cluster's batches only, not the lease rounds of every cluster."""
        try:
            partitions = getattr(self.source, "partitions", lambda: None)()
        except Exception as error:
            # Raised by run_once while this importer holds none of the cluster, so the outage is
            # this cluster's batch error (backed off and logged, or the run's failure).
            self._units_error = error
            return self._units
        self._units_error = None
        self._whole_cluster = partitions is None
        self._units = units_of({self.cluster.id: partitions})
        return self._units

    def _fence(self, partitions: frozenset[int]) -> None:
        assert self.leases is not None
        self.leases.fence(self.cluster.id, {WHOLE_CLUSTER} if self._whole_cluster else partitions)

    def _follow_assignment(self) -> bool:
        """Read what this importer holds now; False when it holds none of the cluster."""
        assert self.leases is not None
        assignment = self.leases.partitions(self.cluster.id)
        if assignment != self._assignment:
            # Gained or lost partitions: another importer may have moved their positions, a read-
            # ahead batch may hold records of partitions given up, and a Redis group must re-read
            # its pending entries.
            self._assignment = assignment
            restrict = getattr(self.source, "restrict", None)
            if restrict is not None:
                whole = self._whole_cluster or WHOLE_CLUSTER in assignment
                restrict(None if whole else frozenset(assignment))
            self.source.rewind()
            self.reload_positions_later = True
        return bool(assignment)

    def run_once(self, wait_seconds: float = 0.0) -> BatchResult | None:
        """Import at most one batch; None when the source had nothing within `wait_seconds`, or
        (with leases) other importers hold all of this cluster's partitions."""
        if self.leases is not None and not self._follow_assignment():
            if self._units_error is not None:
                raise self._units_error
            time.sleep(min(wait_seconds, NOTHING_HELD_WAIT_SECONDS))
            return None
        if self.reload_positions_later:
            self.reload_positions()
            self.reload_positions_later = False
        self._pause_collector()
        try:
            records = self.source.fetch(self.positions, self.batch_size, wait_seconds)
            if not records:
                self._resume_collector()
                return None
            result = self.projection.apply_batch(
                records, expected_positions=self.positions if self.leases is not None else None
            )
            # Only now, after the commit: XACK for Redis (at-least-once, reference §3.9).
            self.source.acknowledge(records)
        except (LeaseLost, PositionsMoved) as error:
            # Another importer has (or had) these partitions: nothing of the batch was applied.
            logger.warning("cluster %s: %s", self.cluster.id, error)
            self._resume_collector()
            self.source.rewind()
            self.reload_positions_later = True
            self._assignment = None
            return None
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
        finally:
            self.source.close()


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
    leases: Leases | None = None,
) -> list[tuple[Importer, BaseException]]:
    """Round-robin over the importers until they are idle (or, with `follow`, until `stop`).

    A batch that fails costs only its own cluster: with `follow` that cluster waits (backing off
    from 0.5 s to MAX_ERROR_BACKOFF_SECONDS) while the others go on, and then retries from its
    committed positions; without `follow` it is left out of the run. Records PostgreSQL cannot
    hold never get here (the projection isolates them). Returns the clusters given up on.

    With `leases` (shared by the importers), a lease round runs about once a second between
    batches (leases.py); without `follow` the run imports the partitions this process holds.
    """
    failed: list[tuple[Importer, BaseException]] = []
    active = list(importers)
    if not active:
        return failed
    per_cluster_wait = idle_wait_seconds / len(active)
    totals = BatchResult()
    summary_at = time.monotonic() + SUMMARY_EVERY_SECONDS
    lease_backoff = 0.0
    while not stop.is_set() and active:
        any_records = False
        if leases is not None and leases.due():
            try:
                leases.round(set().union(*(importer.units() for importer in active)))
                lease_backoff = 0.0
            except Exception as error:
                # Without a round the leases are not renewed: batches go on while the fence
                # finds them still ours; the database down fails those too, and both retry.
                lease_backoff = min(MAX_ERROR_BACKOFF_SECONDS, max(0.5, lease_backoff * 2))
                logger.error(
                    "lease round failed (%s: %s); retrying in %.1f s",
                    type(error).__name__,
                    " ".join(str(error).split())[:300],
                    lease_backoff,
                )
                with contextlib.suppress(DatabaseError):
                    close_old_connections()
                if not follow:
                    failed.extend((importer, error) for importer in active)
                    break
                if stop.wait(lease_backoff):
                    break
                continue
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
