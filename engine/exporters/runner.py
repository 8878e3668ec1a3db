"""Feed one exporter from the partition logs on disk, resuming after its acknowledged positions.

Like a Zeebe exporter director, each exporter runs on its own (here: a thread), reads every
partition's log from its own position, hands it bounded batches and acknowledges a batch (saves
the position, engine/exporters/positions.py) only after the target confirmed it. It reads the
log files through `LogReader` (tailing them: a poll every `poll_interval` seconds when there is
nothing new), never the partition's in-memory write path, so command processing never waits for
an exporter: a target that is down only makes the exporter retry with a capped backoff while
the engine goes on, and it catches up from the log when the target is back.

Only records the engine has made durable are exported (`durable_position`): a record that
reached Redis or Elasticsearch but not the disk could be lost by a power failure, and its
position would then be reused by a different record.

Delivery: a batch is sent, then its position saved. A crash in between sends the batch again on
restart; each exporter makes that repetition harmless (the Redis exporter skips records at or
below the position it stored in Redis in the same atomic script; Elasticsearch documents have
fixed ids `partitionId-position`, so indexing one again overwrites it).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from engine.exporters.positions import ExporterPositions
from engine.log import LogCorruption, LogReader

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is pinned in pyproject.toml
    orjson = None  # type: ignore[assignment]

log = logging.getLogger("engine.exporters")

BATCH_SIZE = 500
POLL_INTERVAL_SECONDS = 0.05
# The position file is written (two fsyncs) at most this often: the engine's own group commit
# shares the disk. A crash loses at most this much acknowledgement, i.e. that much is sent again,
# which each exporter makes harmless (module docstring).
SAVE_INTERVAL_SECONDS = 1.0
BACKOFF_FIRST_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0


def dumps_record(record: dict[str, Any]) -> str:
    """Compact record JSON; orjson when it can (several times faster: encoding is most of an
    exporter's CPU), the standard library for what orjson refuses (integers beyond 64 bits in
    variables). Both give the same JSON value."""
    if orjson is not None:
        try:
            return orjson.dumps(record).decode()
        except TypeError:
            pass
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


class ExporterConfigError(ValueError):
    """An `--export` value or target that cannot be used; the message says why."""


class Exporter(Protocol):
    """What the runner needs from a target (Redis streams, Elasticsearch)."""

    exporter_id: str
    description: str

    def open(self, positions: ExporterPositions, log_ends: dict[int, int]) -> None:
        """Connect and prepare the target (templates...); raise to be retried with backoff."""

    def accepts(self, record: dict[str, Any]) -> bool:
        """This exporter's record filter (record type, value type)."""

    def export(self, partition_id: int, records: list[dict[str, Any]]) -> None:
        """Send one batch (one partition, position order) and return once the target has it."""

    def metadata(self, partition_id: int) -> dict[str, Any] | None:
        """What to persist with the position (None: nothing)."""

    def close(self) -> None: ...


class ExporterRunner:
    """One exporter's thread: tail the logs, export, acknowledge."""

    def __init__(
        self,
        exporter: Exporter,
        data_dir: str | Path,
        partition_ids: list[int],
        *,
        durable_position: Callable[[int], int | None] | None = None,
        batch_size: int | None = None,
        poll_interval: float = POLL_INTERVAL_SECONDS,
    ):
        self.exporter = exporter
        self.data_dir = Path(data_dir)
        self.partition_ids = list(partition_ids)
        self.durable_position = durable_position
        self.batch_size = batch_size or int(getattr(exporter, "batch_size", BATCH_SIZE))
        self.poll_interval = poll_interval
        self.positions = ExporterPositions(data_dir, exporter.exporter_id)
        self._readers = {partition_id: LogReader(data_dir, partition_id) for partition_id in partition_ids}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.failure: BaseException | None = None  # set when the exporter gave up (log damage)
        self.exported = 0  # records handed to the target (filtered ones not counted)
        self.retries = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"exporter-{self.exporter.exporter_id}", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        """New records may be in the log: look now instead of at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.exporter.close()
        except Exception:  # closing a broken connection must not fail the engine's stop
            log.debug("closing %s failed", self.exporter.description, exc_info=True)

    # ------------------------------------------------------------------ loop
    def _run(self) -> None:
        try:
            log_ends = {
                partition_id: reader.last_position() for partition_id, reader in self._readers.items()
            }
            if not self._retrying("open", lambda: self.exporter.open(self.positions, log_ends)):
                return
            log.info(
                "exporter %s running from positions %s",
                self.exporter.description,
                {p: self.positions.position(p) for p in self.partition_ids},
            )
            saved_at = time.monotonic()
            while not self._stop.is_set():
                full = False
                for partition_id in self.partition_ids:
                    if self._stop.is_set():
                        break
                    full |= self._export_next(partition_id) >= self.batch_size
                if self.positions.dirty and (
                    self._stop.is_set() or time.monotonic() - saved_at >= SAVE_INTERVAL_SECONDS
                ):
                    self.positions.flush()
                    saved_at = time.monotonic()
                if not full:
                    # Caught up (or nearly): gather the next records for a poll interval instead
                    # of paying a round trip per handful of records.
                    self._wake.wait(self.poll_interval)
                    self._wake.clear()
            if self.positions.dirty:
                self.positions.flush()
        except (LogCorruption, ExporterConfigError) as exc:
            # The engine refuses to start on a damaged log; damage appearing later, or a target
            # that holds another log's records, stops this exporter loudly (the engine goes on).
            self.failure = exc
            log.critical("exporter %s stopped: %s", self.exporter.description, exc)
        except Exception as exc:  # a defect: say so, never take the engine down
            self.failure = exc
            log.exception("exporter %s stopped by an unexpected error", self.exporter.description)

    def _export_next(self, partition_id: int) -> int:
        """Export the next batch of one partition; the number of log records it covered."""
        start = self.positions.position(partition_id) + 1
        limit = self.durable_position(partition_id) if self.durable_position is not None else None
        if limit is not None and limit < start:
            return 0
        records = self._readers[partition_id].read(start, self.batch_size)
        if limit is not None:
            records = [record for record in records if record["position"] <= limit]
        if not records:
            return 0
        accepted = [record for record in records if self.exporter.accepts(record)]
        if accepted and not self._retrying(
            f"export of partition {partition_id} positions {records[0]['position']}..{records[-1]['position']}",
            lambda: self.exporter.export(partition_id, accepted),
        ):
            return 0
        self.exported += len(accepted)
        self.positions.update(partition_id, records[-1]["position"], self.exporter.metadata(partition_id))
        return len(records)

    def _retrying(self, what: str, action: Callable[[], None]) -> bool:
        """Run `action` until it succeeds (True) or the runner stops (False), backing off."""
        delay = BACKOFF_FIRST_SECONDS
        failures = 0
        while not self._stop.is_set():
            try:
                action()
            except ExporterConfigError:
                raise
            except Exception as exc:
                failures += 1
                self.retries += 1
                if failures == 1 or failures % 20 == 0:
                    log.warning(
                        "exporter %s: %s failed (%s: %s); retry %d in %.1f s",
                        self.exporter.description,
                        what,
                        type(exc).__name__,
                        exc,
                        failures,
                        delay,
                    )
                self._stop.wait(delay)
                delay = min(BACKOFF_MAX_SECONDS, delay * 2)
                continue
            if failures:
                log.info(
                    "exporter %s: %s succeeded after %d retries", self.exporter.description, what, failures
                )
            return True
        return False
