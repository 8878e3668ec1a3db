"""Positions and tallies: which records of a batch are fresh, and what the batch leaves behind.

Per (partition, stream) the ImportPosition row says how far the import got. Inside a batch's
transaction the projection locks the rows of the batch's partitions (`lock_positions`), checks
them against the positions the importer read its records after (`check_expected`: a
compare-and-set, so a batch fetched by an importer that has since lost the partition cannot
commit), drops what is at or below them (`fresh_records`), and finally writes the new positions,
newest timestamps and counters (`write_positions`), the import errors (`write_failures`) and the
samples of unknown record kinds (`write_skipped_samples`), all in the same transaction as the rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db.models import F

from processes.importer.records import (
    MESSAGE_CHARS,
    PARTITION_ID_MAX,
    POSITION_MAX,
    STREAM_MAX_CHARS,
    Record,
    SourceRecord,
    payload_excerpt,
    storable_text,
)
from processes.models import Cluster, ImportPosition, RecordImportError, SkippedRecordSample

logger = logging.getLogger(__name__)

StreamKey = tuple[int, str]  # (partition id, stream)
SOURCE_REF_MAX_CHARS = 128  # RecordImportError.source_ref


class PositionsMoved(Exception):
    """A stored position is not the one the batch was read after: another importer imported this
    partition meanwhile (see check_expected). The batch is rolled back; nothing of it is applied."""


@dataclass
class BatchResult:
    """What one batch did; the runner logs it and the bench measures lag from `timestamps_ms`."""

    received: int = 0
    imported: int = 0
    duplicates: int = 0
    skipped: int = 0
    errors: int = 0
    changed_instances: int = 0
    timestamps_ms: list[int] = field(default_factory=list)
    # (partition id, stream) -> position committed by this batch.
    positions: dict[tuple[int, str], int] = field(default_factory=dict)

    @property
    def fresh(self) -> int:
        return self.imported + self.skipped + self.errors

    def merge(self, later: BatchResult) -> BatchResult:
        """This result followed by `later` (a batch applied in parts, see apply_batch)."""
        return BatchResult(
            received=self.received + later.received,
            imported=self.imported + later.imported,
            duplicates=self.duplicates + later.duplicates,
            skipped=self.skipped + later.skipped,
            errors=self.errors + later.errors,
            changed_instances=self.changed_instances + later.changed_instances,
            timestamps_ms=self.timestamps_ms + later.timestamps_ms,
            positions={**self.positions, **later.positions},
        )


@dataclass
class StreamTally:
    position: int = 0
    newest_timestamp_ms: int | None = None
    imported: int = 0
    skipped: int = 0
    errors: int = 0


@dataclass
class Failure:
    partition_id: int
    position: int | None
    stream: str
    source_ref: str
    message: str
    raw_excerpt: str
    # The position is the record's place in the source (see SourceRecord.position_trusted): only
    # then does the failed record move its stream's position (else the log would stall on it).
    position_trusted: bool = False
    # Not a failure: the record's row was stored, with the changes the message names (sanitize).
    stored: bool = False


def failure_for(source_record: SourceRecord, message: str) -> Failure:
    partition_id = source_record.partition_hint
    return Failure(
        # Partition 0 collects what has no readable partition (a claimed -1 or 40000 included).
        partition_id=partition_id
        if partition_id is not None and 1 <= partition_id <= PARTITION_ID_MAX
        else 0,
        position=source_record.position_hint
        if source_record.position_hint is not None and 1 <= source_record.position_hint <= POSITION_MAX
        else None,
        stream=storable_text(source_record.stream, STREAM_MAX_CHARS),
        source_ref=storable_text(source_record.source_ref, SOURCE_REF_MAX_CHARS),
        message=message,
        raw_excerpt=payload_excerpt(source_record.payload),
        position_trusted=source_record.position_trusted and source_record.position_hint is not None,
    )


def advance(tally: StreamTally, record: Record) -> None:
    if record.position > tally.position:
        tally.position = record.position
    if tally.newest_timestamp_ms is None or record.timestamp_ms > tally.newest_timestamp_ms:
        tally.newest_timestamp_ms = record.timestamp_ms


def batch_partitions(records: Iterable[Record], failures: Iterable[Failure]) -> frozenset[int]:
    """The partitions a batch holds records of (0: records whose partition could not be read)."""
    return frozenset({record.partition_id for record in records} | {f.partition_id for f in failures})


def lock_positions(cluster: Cluster, partitions: frozenset[int] | None) -> dict[StreamKey, ImportPosition]:
    """Lock the ImportPosition rows of these partitions (all of the cluster's with None) until the
    batch commits. Only the partitions' rows: importers of other partitions of the same cluster
    go on in parallel."""
    rows = ImportPosition.objects.select_for_update().filter(cluster=cluster)
    if partitions is not None:
        rows = rows.filter(partition_id__in=sorted(partitions))
    return {(row.partition_id, row.stream): row for row in rows.order_by("partition_id", "stream")}


def check_expected(
    cluster: Cluster,
    locked: Mapping[StreamKey, ImportPosition],
    expected: Mapping[StreamKey, int],
    partitions: frozenset[int],
) -> None:
    """Compare-and-set: every stream of the batch's partitions must stand where the importer
    read the batch from, or another importer moved it (raise PositionsMoved). Partition 0 (no
    readable partition) holds counters only and any importer may write it."""
    for stream_key, row in locked.items():
        if stream_key[0] == 0 or stream_key[0] not in partitions:
            continue
        if row.position != expected.get(stream_key, 0):
            raise PositionsMoved(
                f"cluster {cluster.id} partition {stream_key[0]}"
                f"{' stream ' + stream_key[1] if stream_key[1] else ''}: position {row.position} "
                f"committed by another importer (this batch was read after {expected.get(stream_key, 0)})"
            )


def fresh_records(
    cluster: Cluster,
    decoded: list[Record],
    failures: list[Failure],
    positions: Mapping[StreamKey, ImportPosition],
    tallies: dict[StreamKey, StreamTally],
    result: BatchResult,
) -> list[Record]:
    """Drop what is at or below its stream's position (delivered again); keep the rest in order.

    Records and failures whose position is the source's own (the engine log) are taken in
    one (partition, position) order, so a failure is judged against the records before it,
    never after. A failure whose position came from its own bad payload is not ordered at
    all and moves nothing: it is recognised as delivered again by its source_ref instead.
    Positions move in the projection's fold, only over records that were applied (or knowingly
    skipped). `failures` is left holding the failures to store.
    """
    watermarks = {stream_key: row.position for stream_key, row in positions.items()}
    ordered: list[tuple[int, int, int, Record | Failure]] = [
        (record.partition_id, record.position, 1, record) for record in decoded
    ]
    untrusted: list[Failure] = []
    for failure in failures:
        if failure.position_trusted and failure.position is not None:
            ordered.append((failure.partition_id, failure.position, 0, failure))
        else:
            untrusted.append(failure)
    # Within a partition, log order; streams of one partition (Redis) interleave by position.
    ordered.sort(key=lambda item: (item[0], item[1], item[2]))
    fresh: list[Record] = []
    kept: list[Failure] = []
    for partition_id, position, _, item in ordered:
        stream_key = (partition_id, item.stream)
        if position <= watermarks.get(stream_key, 0):
            result.duplicates += 1
            continue
        watermarks[stream_key] = position
        tally = tallies.get(stream_key)
        if tally is None:
            tally = tallies[stream_key] = StreamTally()
        if isinstance(item, Record):
            fresh.append(item)
        else:
            tally.position = max(tally.position, position)
            tally.errors += 1
            result.errors += 1
            kept.append(item)
    if untrusted:
        seen = _errors_already_stored(cluster, untrusted)
        for failure in untrusted:
            if failure.source_ref and (failure.stream[:STREAM_MAX_CHARS], failure.source_ref) in seen:
                result.duplicates += 1
                continue
            tally = tallies.setdefault((failure.partition_id, failure.stream), StreamTally())
            tally.errors += 1
            result.errors += 1
            kept.append(failure)
    failures[:] = kept
    return fresh


def _errors_already_stored(cluster: Cluster, failures: list[Failure]) -> set[tuple[str, str]]:
    refs = sorted({failure.source_ref for failure in failures if failure.source_ref})
    if not refs:
        return set()
    return set(
        RecordImportError.objects.filter(cluster=cluster, source_ref__in=refs).values_list(
            "stream", "source_ref"
        )
    )


def write_positions(
    cluster: Cluster, positions: Mapping[StreamKey, ImportPosition], tallies: Mapping[StreamKey, StreamTally]
) -> dict[StreamKey, int]:
    """Write the streams' new positions, newest timestamps and counters; returns the positions."""
    rows = []
    for stream_key, tally in tallies.items():
        row = positions.get(stream_key)
        if row is None:
            row = ImportPosition(cluster=cluster, partition_id=stream_key[0], stream=stream_key[1])
        row.source = cluster.record_source
        row.position = max(row.position, tally.position)
        if tally.newest_timestamp_ms is not None:
            newest = datetime.fromtimestamp(tally.newest_timestamp_ms / 1000, tz=UTC)
            if row.last_record_timestamp is None or newest > row.last_record_timestamp:
                row.last_record_timestamp = newest
        row.imported_count += tally.imported
        row.skipped_count += tally.skipped
        row.error_count += tally.errors
        rows.append(row)
    if rows:
        ImportPosition.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["cluster", "partition_id", "stream"],
            update_fields=[
                "source",
                "position",
                "last_record_timestamp",
                "imported_count",
                "skipped_count",
                "error_count",
                "updated_at",
            ],
        )
    return {(row.partition_id, row.stream): row.position for row in rows}


def write_failures(cluster: Cluster, failures: list[Failure]) -> None:
    if not failures:
        return
    for failure in failures:
        logger.warning(
            "cluster %s partition %s position %s%s: %s: %s",
            cluster.id,
            failure.partition_id or "?",
            failure.position if failure.position is not None else "?",
            f" ({failure.stream} {failure.source_ref})" if failure.stream or failure.source_ref else "",
            "record stored with changes" if failure.stored else "record skipped",
            failure.message,
        )
    RecordImportError.objects.bulk_create(
        [
            RecordImportError(
                cluster=cluster,
                partition_id=failure.partition_id,
                position=failure.position,
                stream=failure.stream,
                source_ref=failure.source_ref,
                message=storable_text(failure.message, MESSAGE_CHARS),
                raw_excerpt=failure.raw_excerpt,
            )
            for failure in failures
        ],
        ignore_conflicts=True,
    )


def write_skipped_samples(cluster: Cluster, skipped: Mapping[tuple[str, str], tuple[Record, int]]) -> None:
    """One SkippedRecordSample per kind skipped (the first record seen), with a running count."""
    for (value_type, intent), (record, count) in sorted(skipped.items()):
        kind = {
            "cluster": cluster,
            "value_type": storable_text(value_type, 64),
            "intent": storable_text(intent, 64),
        }
        updated = SkippedRecordSample.objects.filter(**kind).update(count=F("count") + count)
        if not updated:
            logger.warning(
                "cluster %s: skipping records of unknown kind %s %s (first at partition %s "
                "position %s; a sample is kept)",
                cluster.id,
                kind["value_type"],
                kind["intent"],
                record.partition_id,
                record.position,
            )
            SkippedRecordSample.objects.create(
                **kind,
                partition_id=record.partition_id,
                position=record.position,
                count=count,
                raw_excerpt=payload_excerpt(
                    {
                        "partitionId": record.partition_id,
                        "position": record.position,
                        "recordType": record.record_type,
                        "valueType": record.value_type,
                        "intent": record.intent,
                        "key": record.key,
                        "value": record.value,
                    }
                ),
            )
