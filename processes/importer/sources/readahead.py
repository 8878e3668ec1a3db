"""Read-ahead: fetch the next batch in a background thread while the current one is written.

A batch's time splits into reading and decoding records (Python, in this process) and waiting for
PostgreSQL to apply the upserts (another process, another core). psycopg releases the GIL while
it waits, so a thread that reads the next batch during that wait uses the idle core: in
bench/importer.py the importer waited for PostgreSQL for about half of every batch.

What the next fetch returns is exactly what a plain fetch would have returned:

* a source that reads by position (engine log, Elasticsearch) is asked for the records after the
  positions the current batch will commit if it succeeds (the highest position per stream it
  holds). The read-ahead batch is used only when the runner then asks for exactly those
  positions with the same batch size; otherwise (the batch failed, or held only duplicates) it
  is thrown away and the source is asked again, synchronously.
* a source that tracks delivery itself (Redis consumer group) ignores positions: its next read is
  the same whatever the current batch's outcome, so the read-ahead batch is always used (a Redis
  entry read and then thrown away would stay pending until a restart).

The wrapped source is only ever used by one thread at a time: `fetch` and `close` wait for the
read-ahead thread first, and `acknowledge` (Redis XACK over its own connection pool) touches no
state a fetch changes.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from processes.importer.records import SourceRecord
from processes.importer.sources.base import RecordSourceReader

StreamKey = tuple[int, str]


@dataclass
class _Ahead:
    thread: threading.Thread
    assumed_positions: dict[StreamKey, int]
    max_records: int
    records: list[SourceRecord] = field(default_factory=list)
    error: BaseException | None = None


def positions_after(
    positions: Mapping[StreamKey, int], records: Sequence[SourceRecord]
) -> dict[StreamKey, int]:
    """The positions once `records` are committed: the highest position per stream they hold."""
    after = dict(positions)
    for record in records:
        position = record.position_hint
        if position is None or record.partition_hint is None:
            continue
        stream_key = (record.partition_hint, record.stream)
        if position > after.get(stream_key, 0):
            after[stream_key] = position
    return after


class ReadAheadSource:
    """Wraps a source; see the module docstring."""

    def __init__(self, source: RecordSourceReader, *, reads_by_position: bool) -> None:
        self.source = source
        self.reads_by_position = reads_by_position
        self._ahead: _Ahead | None = None

    def _take_ahead(self, positions: Mapping[StreamKey, int], max_records: int) -> list[SourceRecord]:
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return []
        ahead.thread.join()
        if not self.reads_by_position:
            if ahead.error is not None:
                raise ahead.error  # what a plain fetch would have raised, one call later
            return ahead.records
        if (
            ahead.error is None
            and ahead.max_records == max_records
            and ahead.assumed_positions == dict(positions)
        ):
            return ahead.records
        return []  # read for positions that were not committed: read again below

    def fetch(
        self, positions: Mapping[StreamKey, int], max_records: int, wait_seconds: float
    ) -> list[SourceRecord]:
        records = self._take_ahead(positions, max_records)
        if not records:
            records = self.source.fetch(positions, max_records, wait_seconds)
        if records:
            # Busy: read the next batch while this one is applied. An idle source is not read
            # ahead, so a follower waits in the plain fetch and its lag is unchanged.
            self._start_ahead(positions_after(positions, records), max_records)
        return records

    def _start_ahead(self, assumed_positions: dict[StreamKey, int], max_records: int) -> None:
        def read() -> None:
            try:
                ahead.records = self.source.fetch(assumed_positions, max_records, 0.0)
            except BaseException as error:  # handed to the next fetch
                ahead.error = error

        thread = threading.Thread(target=read, name="importer-read-ahead", daemon=True)
        ahead = _Ahead(thread=thread, assumed_positions=assumed_positions, max_records=max_records)
        self._ahead = ahead
        thread.start()

    def acknowledge(self, records: Sequence[SourceRecord]) -> None:
        self.source.acknowledge(records)

    def partitions(self) -> list[int] | None:
        """The wrapped source's partitions; None when it cannot be read by partition."""
        partitions = getattr(self.source, "partitions", None)
        return None if partitions is None else list(partitions())

    def restrict(self, partitions: frozenset[int] | None) -> None:
        # A batch read ahead for the partitions held before is dropped (positions-read sources
        # read it again; see rewind for a Redis group).
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.thread.join()
        restrict = getattr(self.source, "restrict", None)
        if restrict is not None:
            restrict(partitions)

    def rewind(self) -> None:
        # The batch read ahead assumed the failed batch would commit: drop it (a Redis source
        # re-reads it from its pending entries) and let the wrapped source rewind.
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.thread.join()
        self.source.rewind()

    def close(self) -> None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.thread.join()
        self.source.close()
