"""The one projection every source feeds: a batch of records -> query model rows, in one transaction.

    decode (outside the transaction)
    fence: the importer's leases of the batch's partitions are still its own (runner/leases.py)
    lock the partitions' ImportPosition rows; check them against the positions the batch was read
      after; drop records at or below their stream's position              (positions.py)
    load the rows the batch touches (one query per model) -> BatchFold     (bulk.py, fold.py)
    derived fields: server links, incident tree paths                      (derived.py)
    bulk upserts (COPY, INSERT ... ON CONFLICT DO UPDATE) -> subtree incident flags
    AFTER_APPLY hooks (same transaction; see AppliedBatch)
    ImportPosition rows (position, newest timestamp, counters) + RecordImportError rows
    + SkippedRecordSample rows (one per unknown kind)                      (positions.py)
    commit -> Channels "instance.changed" events (transaction.on_commit)

A record that fails validation or the fold is one RecordImportError; a batch PostgreSQL refuses
as data (NUL, too long, out of range) is stored sanitized or split down to the record at fault
(apply_batch). A position only moves over records accounted for, and over a failed record only
when the source vouches for its position (the engine log's framing).

Positions are written in the same transaction as the rows, so a crash loses both or neither, and
records at or below a stored position are skipped when a source delivers them again. Rows keep the
position of their last record (see fold.py), which makes the projection itself idempotent too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from processes.importer import bulk, derived
from processes.importer import fold as fields
from processes.importer.bulk import data_errors, db_driver, upsert_postgresql
from processes.importer.events import send_instance_events_on_commit
from processes.importer.fold import BatchFold
from processes.importer.positions import (
    BatchResult,
    Failure,
    PositionsMoved,
    StreamKey,
    StreamTally,
    advance,
    batch_partitions,
    check_expected,
    failure_for,
    fresh_records,
    lock_positions,
    write_failures,
    write_positions,
    write_skipped_samples,
)
from processes.importer.records import (
    MalformedRecord,
    Record,
    SourceRecord,
    decode_record,
    global_key,
    payload_excerpt,
    storable_text,
)
from processes.importer.vocabulary import KNOWN_VALUE_TYPES
from processes.models import (
    Cluster,
    ElementInstance,
    Incident,
    Job,
    ProcessDefinition,
    ProcessInstance,
    Variable,
    VariableValue,
)

__all__ = [
    "AFTER_APPLY",
    "AppliedBatch",
    "BatchResult",
    "Fence",
    "PositionsMoved",
    "Projection",
    "data_errors",
    "db_driver",
    "register_after_apply",
    "upsert_postgresql",
]

logger = logging.getLogger(__name__)

# The query models a batch loads and writes: fold attribute (rows by key; `dirty_<name>` the keys
# to write), model, field list.
MODELS: tuple[tuple[str, Any, tuple[str, ...]], ...] = (
    ("definitions", ProcessDefinition, fields.DEFINITION_FIELDS),
    ("instances", ProcessInstance, fields.INSTANCE_FIELDS),
    ("elements", ElementInstance, fields.ELEMENT_FIELDS),
    ("jobs", Job, fields.JOB_FIELDS),
    ("incidents", Incident, fields.INCIDENT_FIELDS),
    ("variables", Variable, fields.VARIABLE_FIELDS),
)

# Called first inside a batch's transaction with the partitions the batch holds records of (0
# excluded): raises if this importer no longer holds them (runner's leases), so a batch read by
# an importer that was paused while its lease moved on rolls back instead of applying.
Fence = Callable[[frozenset[int]], None]


@dataclass
class AppliedBatch:
    """What a committed-to-be batch applied; handed to the AFTER_APPLY hooks inside its transaction."""

    cluster: Cluster
    records: list[Record]
    fold: BatchFold


# Called with each batch's AppliedBatch inside the batch's transaction, after the query-model rows
# and before the positions are written: a hook's writes commit or roll back with the batch, and a
# hook that raises fails the batch (it is then retried, or isolated record by record on a data
# error). The single place for work that must follow the imported records, e.g. confirming
# operations from the records that carry them out. Register with `register_after_apply`.
AFTER_APPLY: list[Callable[[AppliedBatch], None]] = []


def register_after_apply(hook: Callable[[AppliedBatch], None]) -> None:
    if hook not in AFTER_APPLY:
        AFTER_APPLY.append(hook)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:500]


class Projection:
    """Applies batches of one cluster's records; see the module docstring."""

    def __init__(
        self,
        *,
        cluster: Cluster,
        server_variable: str | None = None,
        preview_bytes: int | None = None,
        fence: Fence | None = None,
    ) -> None:
        self.cluster = cluster
        self.server_variable = str(server_variable or settings.FLEETFLOW_SERVER_VARIABLE)
        self.preview_bytes = preview_bytes or settings.FLEETFLOW_VARIABLE_PREVIEW_BYTES
        self.fence = fence
        # Serial numbers known to have a Server row (see derived.link_servers).
        self._known_servers: set[str] = set()
        # The positions the batch in hand was read after (None: not checked), kept up to date
        # as parts of it commit (see apply_batch).
        self._expected: dict[StreamKey, int] | None = None

    def forget_caches(self) -> None:
        """Drop what the projection remembers between batches (after a failed batch)."""
        self._known_servers.clear()
        bulk.forget_staging_tables()

    # -- entry point -----------------------------------------------------------------------------

    def apply_batch(
        self,
        source_records: Sequence[SourceRecord],
        *,
        expected_positions: Mapping[StreamKey, int] | None = None,
    ) -> BatchResult:
        """Apply a batch in one transaction; a record PostgreSQL cannot hold costs one error row.

        With `expected_positions` (what the importer read the batch after), the stored positions
        of the batch's partitions must still be those, or PositionsMoved is raised and nothing
        is applied: a compare-and-set fencing off an importer whose partition moved on.

        A data error (psycopg's DataError or IntegrityError family: NUL characters, a value too
        long or out of range for its column) rolls the batch back, and it is applied again with
        every written value made storable (sanitize); if that fails too, the batch is split in
        halves, each applied (and committed) on its own, down to the single record, which becomes
        a RecordImportError. Any other error (the database down, a connection lost, a lease lost)
        propagates: the runner retries the batch.
        """
        self._expected = dict(expected_positions) if expected_positions is not None else None
        try:
            return self._apply(source_records, sanitize=False)
        except data_errors() as error:
            logger.warning(
                "cluster %s: a batch of %d records cannot be stored as it is (%s); "
                "storing what can be stored, record by record if need be",
                self.cluster.id,
                len(source_records),
                _one_line(error),
            )
        self.forget_caches()
        return self._apply_isolating(source_records)

    def _apply_isolating(self, source_records: Sequence[SourceRecord]) -> BatchResult:
        try:
            return self._apply(source_records, sanitize=True)
        except data_errors() as error:
            if len(source_records) == 1:
                self.forget_caches()
                return self._apply_unstorable(source_records[0], error)
        self.forget_caches()
        middle = len(source_records) // 2
        first = self._apply_isolating(source_records[:middle])
        second = self._apply_isolating(source_records[middle:])
        return first.merge(second)

    def _apply_unstorable(self, source_record: SourceRecord, error: BaseException) -> BatchResult:
        failure = failure_for(source_record, f"record cannot be stored: {_one_line(error)}")
        try:
            decoded = decode_record(source_record)
        except MalformedRecord:
            pass
        else:
            failure.partition_id = decoded.partition_id
            failure.position = decoded.position
            failure.stream = decoded.stream
            failure.raw_excerpt = payload_excerpt(
                {
                    "position": decoded.position,
                    "valueType": decoded.value_type,
                    "intent": decoded.intent,
                    "key": decoded.key,
                    "value": decoded.value,
                }
            )
        result = BatchResult(received=1)
        with transaction.atomic():
            failures = [failure]
            positions = self._lock(batch_partitions([], failures))
            tallies: dict[StreamKey, StreamTally] = {}
            fresh_records(self.cluster, [], failures, positions, tallies, result)
            result.positions = write_positions(self.cluster, positions, tallies)
            write_failures(self.cluster, failures)
        self._committed(result)
        return result

    def _lock(self, partitions: frozenset[int]) -> dict[StreamKey, Any]:
        """Fence, lock and check the batch's partitions (see the module docstring)."""
        if self.fence is not None:
            self.fence(partitions - {0})
        # Without a fence (tests, one importer per cluster) the whole cluster's rows, as before.
        positions = lock_positions(self.cluster, partitions if self.fence is not None else None)
        if self._expected is not None:
            check_expected(self.cluster, positions, self._expected, partitions)
        return positions

    def _committed(self, result: BatchResult) -> None:
        # A batch applied in parts: the next part is read after what this one committed.
        if self._expected is not None:
            self._expected.update(result.positions)

    def _apply(self, source_records: Sequence[SourceRecord], *, sanitize: bool) -> BatchResult:
        result = BatchResult(received=len(source_records))
        decoded: list[Record] = []
        failures: list[Failure] = []
        for source_record in source_records:
            try:
                decoded.append(decode_record(source_record))
            except MalformedRecord as error:
                failures.append(failure_for(source_record, str(error)))
        with transaction.atomic():
            positions = self._lock(batch_partitions(decoded, failures))
            tallies: dict[StreamKey, StreamTally] = {}
            fresh = fresh_records(self.cluster, decoded, failures, positions, tallies, result)
            fold, applied = self._fold(fresh, tallies, failures, result)
            self._write(fold, sanitize, failures)
            if AFTER_APPLY:
                batch = AppliedBatch(cluster=self.cluster, records=applied, fold=fold)
                for hook in AFTER_APPLY:
                    hook(batch)
            result.positions = write_positions(self.cluster, positions, tallies)
            write_failures(self.cluster, failures)
            write_skipped_samples(self.cluster, self._skipped)
            send_instance_events_on_commit(self._instance_events(fold))
        result.changed_instances = len(fold.changed_instances)
        self._committed(result)
        return result

    # -- steps -----------------------------------------------------------------------------------

    def _fold(
        self,
        fresh: list[Record],
        tallies: dict[StreamKey, StreamTally],
        failures: list[Failure],
        result: BatchResult,
    ) -> tuple[BatchFold, list[Record]]:
        """Fold the fresh records; returns the fold and the records it applied.

        A record moves its stream's position (and its newest timestamp) once it is accounted
        for: applied, known and ignored, or skipped as unknown (with a sample kept). A record the
        fold rejects moves it only when its position is the source's own (see positions.Failure).
        """
        cluster_id = self.cluster.id
        to_apply: list[Record] = []
        keys: dict[str, set[int | None]] = {name: set() for name, _, _ in MODELS}
        probe = BatchFold(
            cluster_id=cluster_id,
            server_variable=self.server_variable,
            preview_bytes=self.preview_bytes,
            **{name: {} for name, _, _ in MODELS},
        )
        self._skipped: dict[tuple[str, str], tuple[Record, int]] = {}
        timestamps = result.timestamps_ms
        for record in fresh:
            tally = tallies[(record.partition_id, record.stream)]
            if record.value_type not in KNOWN_VALUE_TYPES or (
                probe.wants(record) and not probe.intent_known(record)
            ):
                tally.skipped += 1
                result.skipped += 1
                kind = (record.value_type, record.intent)
                sample = self._skipped.get(kind)
                self._skipped[kind] = (record, 1) if sample is None else (sample[0], sample[1] + 1)
            elif not probe.wants(record):
                tally.imported += 1
                result.imported += 1
            else:
                to_apply.append(record)
                self._collect_keys(record, keys)
                continue
            advance(tally, record)
            timestamps.append(record.timestamp_ms)
        fold = BatchFold(
            cluster_id=cluster_id,
            server_variable=self.server_variable,
            preview_bytes=self.preview_bytes,
            **{name: bulk.load_rows(model, names, keys[name]) for name, model, names in MODELS},
        )
        # Keys found in the database, before the fold adds the batch's new rows (see insert_new).
        self._existing = {name: set(getattr(fold, name)) for name, _, _ in MODELS}
        applied: list[Record] = []
        for record in to_apply:
            tally = tallies[(record.partition_id, record.stream)]
            try:
                fold.apply(record)
            except MalformedRecord as error:
                tally.errors += 1
                result.errors += 1
                if record.position_trusted:
                    tally.position = max(tally.position, record.position)
                failures.append(
                    Failure(
                        partition_id=record.partition_id,
                        position=record.position,
                        stream=record.stream,
                        source_ref=record.source_ref,
                        message=f"{record.value_type} {record.intent}: {error}",
                        raw_excerpt=payload_excerpt(
                            {"position": record.position, "key": record.key, "value": record.value}
                        ),
                        position_trusted=record.position_trusted,
                    )
                )
            else:
                tally.imported += 1
                result.imported += 1
                advance(tally, record)
                timestamps.append(record.timestamp_ms)
                applied.append(record)
        return fold, applied

    def _collect_keys(self, record: Record, keys: dict[str, set[int | None]]) -> None:
        """Keys of the rows a record reads or writes, for the one load query per model."""
        cluster_id = self.cluster.id
        value = record.value

        def key_of(raw: Any) -> int | None:
            try:
                return global_key(cluster_id, raw, "key")
            except MalformedRecord:
                return None  # the fold reports it

        value_type = record.value_type
        instance_key = key_of(value.get("processInstanceKey"))
        keys["instances"].add(instance_key)
        if value_type == "PROCESS_INSTANCE":
            if value.get("bpmnElementType") == "PROCESS":
                keys["instances"].add(key_of(record.key))
                keys["instances"].add(key_of(value.get("parentProcessInstanceKey")))
            else:
                keys["elements"].add(key_of(record.key))
        elif value_type == "JOB":
            keys["jobs"].add(key_of(record.key))
        elif value_type == "JOB_BATCH":
            job_keys = value.get("jobKeys")
            jobs = value.get("jobs")
            if isinstance(job_keys, list):
                keys["jobs"].update(key_of(job_key) for job_key in job_keys)
            if isinstance(jobs, list):
                keys["instances"].update(
                    key_of(job.get("processInstanceKey")) for job in jobs if isinstance(job, dict)
                )
        elif value_type == "INCIDENT":
            keys["incidents"].add(key_of(record.key))
            keys["jobs"].add(key_of(value.get("jobKey")))
        elif value_type == "VARIABLE":
            keys["variables"].add(key_of(record.key))
        elif value_type == "PROCESS":
            keys["definitions"].add(key_of(record.key))

    def _write(self, fold: BatchFold, sanitize: bool, failures: list[Failure]) -> None:
        """Write the fold's rows; with `sanitize`, every value made storable first (see apply_batch),
        each change reported as an import error of the row's record."""
        changed_servers = derived.link_servers(
            fold, server_variable=self.server_variable, known_servers=self._known_servers
        )
        derived.resolve_incident_trees(fold, existing_incidents=self._existing["incidents"])
        for name, model, names in MODELS:
            found = getattr(fold, name)
            rows = [found[key] for key in getattr(fold, f"dirty_{name}")]
            if sanitize:
                for row in rows:
                    changes = bulk.sanitize_row(model, names, row)
                    if changes:
                        failures.append(
                            Failure(
                                partition_id=row.get("partition_id") or 0,
                                position=row.get("position") or None,
                                stream="",
                                source_ref="",
                                message=f"{model.__name__} {row.get('key')} stored with changes: "
                                + "; ".join(changes),
                                raw_excerpt=payload_excerpt({field: row[field] for field in names}),
                                stored=True,
                            )
                        )
            bulk.upsert_rows(model, names, rows, self._existing[name])
        if fold.large_values:
            large_values = fold.large_values
            if sanitize:
                # The full JSON text of a value: a raw NUL in it is written as JSON's own escape.
                large_values = {key: storable_text(text) for key, text in large_values.items()}
            VariableValue.objects.bulk_create(
                [VariableValue(variable_id=key, json_text=text) for key, text in large_values.items()],
                batch_size=bulk.WRITE_CHUNK,
                update_conflicts=True,
                unique_fields=["variable"],
                update_fields=["json_text"],
            )
        if fold.shrunk_variables:
            VariableValue.objects.filter(variable_id__in=sorted(fold.shrunk_variables)).delete()
        derived.write_derived(fold, changed_servers)

    @staticmethod
    def _instance_events(fold: BatchFold) -> list[tuple[int, int]]:
        """(group instance key, changed instance key): the instance's own group and its root's."""
        pairs: set[tuple[int, int]] = set()
        for instance_key in fold.changed_instances | fold.dirty_instances:
            pairs.add((instance_key, instance_key))
            row = fold.instances.get(instance_key)
            if row is not None and row["root_id"] is not None and row["root_id"] != instance_key:
                pairs.add((row["root_id"], instance_key))
        return sorted(pairs)
