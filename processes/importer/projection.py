"""The one projection every source feeds: a batch of records -> query model rows, in one transaction.

    decode (outside the transaction)
    lock the cluster's ImportPosition rows; drop records at or below their stream's position
    load the rows the batch touches (one query per model) -> BatchFold (in memory)
    derived fields: server links, incident tree paths
    bulk upserts (INSERT ... ON CONFLICT DO UPDATE) -> subtree incident flags (one UPDATE)
    AFTER_APPLY hooks (same transaction; see AppliedBatch)
    ImportPosition rows (position, newest timestamp, counters) + RecordImportError rows
    + SkippedRecordSample rows (one per unknown kind)
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

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, connection, models, transaction
from django.db.models import Exists, F, OuterRef

from processes.choices import IncidentState
from processes.importer import fold as fields
from processes.importer.events import send_instance_events_on_commit
from processes.importer.fold import BatchFold, Row
from processes.importer.records import (
    MESSAGE_CHARS,
    PARTITION_ID_MAX,
    POSITION_MAX,
    STREAM_MAX_CHARS,
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
    ImportPosition,
    Incident,
    Job,
    ProcessDefinition,
    ProcessInstance,
    RecordImportError,
    SkippedRecordSample,
    Variable,
    VariableValue,
)
from servers.services import normalize_serial_number, server_ensure_stubs

logger = logging.getLogger(__name__)

# Rows per INSERT statement and keys per IN (...) list: well inside PostgreSQL's and SQLite's
# parameter limits for the widest model.
WRITE_CHUNK = 1000
READ_CHUNK = 2000

StreamKey = tuple[int, str]  # (partition id, stream)
SOURCE_REF_MAX_CHARS = 128  # RecordImportError.source_ref


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
        merged = BatchResult(
            received=self.received + later.received,
            imported=self.imported + later.imported,
            duplicates=self.duplicates + later.duplicates,
            skipped=self.skipped + later.skipped,
            errors=self.errors + later.errors,
            changed_instances=self.changed_instances + later.changed_instances,
            timestamps_ms=self.timestamps_ms + later.timestamps_ms,
            positions={**self.positions, **later.positions},
        )
        return merged


@dataclass
class _StreamTally:
    position: int = 0
    newest_timestamp_ms: int | None = None
    imported: int = 0
    skipped: int = 0
    errors: int = 0


@dataclass
class _Failure:
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


def _failure_for(source_record: SourceRecord, message: str) -> _Failure:
    partition_id = source_record.partition_hint
    return _Failure(
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


def data_errors() -> tuple[type[BaseException], ...]:
    """Errors that say the batch's data cannot be stored (isolate the record), not that the
    database is unavailable (retry). Raw psycopg errors (COPY is not wrapped by Django) included."""
    driver = db_driver()
    return (DataError, IntegrityError, driver.DataError, driver.IntegrityError)


def db_driver() -> Any:
    """The DB-API module under Django's connection (psycopg, sqlite3): its own error classes."""
    return connection.Database  # type: ignore[attr-defined]  # set by every backend


def _column(meta: Any, name: str) -> str:
    return str(meta.get_field(name).column)


def _advance(tally: _StreamTally, record: Record) -> None:
    if record.position > tally.position:
        tally.position = record.position
    if tally.newest_timestamp_ms is None or record.timestamp_ms > tally.newest_timestamp_ms:
        tally.newest_timestamp_ms = record.timestamp_ms


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:500]


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _load(model: type[models.Model], names: Sequence[str], keys: Iterable[int | None]) -> dict[int, Row]:
    wanted = sorted({key for key in keys if key is not None})
    rows: dict[int, Row] = {}
    if not wanted:
        return rows
    if connection.vendor == "postgresql":
        # One array parameter instead of thousands of IN (...) parameters for Django to compile.
        meta = model._meta
        columns = ", ".join(f'"{_column(meta, name)}"' for name in names)
        json_fields = [name for name in names if isinstance(meta.get_field(name), models.JSONField)]
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT {columns} FROM "{meta.db_table}" WHERE "key" = ANY(%s)',  # noqa: S608 - model names only
                [wanted],
            )
            for values in cursor.fetchall():
                row = dict(zip(names, values, strict=True))
                for name in json_fields:
                    # Django's connection loads jsonb as text (JSONField.from_db_value decodes it).
                    if row[name] is not None:
                        row[name] = json.loads(row[name])
                rows[row["key"]] = row
        return rows
    for chunk in _chunks(wanted, READ_CHUNK):
        for row in model._default_manager.filter(pk__in=chunk).values(*names):
            rows[row["key"]] = row
    return rows


def _upsert(
    model: type[models.Model], names: Sequence[str], rows: list[Row], existing: set[int] | None = None
) -> None:
    """Write `rows`; `existing` holds the keys the batch loaded from the table (see _insert_new)."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        if existing is not None:
            new_rows = [row for row in rows if row["key"] not in existing]
            if new_rows and _insert_new(model, names, new_rows):
                rows = [row for row in rows if row["key"] in existing]
                if not rows:
                    return
        _upsert_postgresql(model, names, rows)
        return
    meta = model._meta
    update_fields = [meta.get_field(name).name for name in names if name != "key"]
    objects = [model(**row) for row in rows]
    model.objects.bulk_create(  # type: ignore[attr-defined]
        objects,
        batch_size=WRITE_CHUNK,
        update_conflicts=True,
        unique_fields=["key"],
        update_fields=update_fields,
    )


def _copy_rows(
    cursor: Any, table: str, model: type[models.Model], names: Sequence[str], rows: list[Row]
) -> None:
    """COPY `rows` into `table`; JSON fields as text, None as SQL NULL (as the ORM writes them)."""
    meta = model._meta
    quoted = ", ".join(f'"{_column(meta, name)}"' for name in names)
    json_columns = [
        index for index, name in enumerate(names) if isinstance(meta.get_field(name), models.JSONField)
    ]
    dumps = json.dumps
    with cursor.copy(f'COPY "{table}" ({quoted}) FROM STDIN') as copy:
        write_row = copy.write_row
        if not json_columns:
            for row in rows:
                write_row([row[name] for name in names])
            return
        for row in rows:
            values = [row[name] for name in names]
            for index in json_columns:
                if values[index] is not None:
                    values[index] = dumps(values[index])
            write_row(values)


def _insert_new(model: type[models.Model], names: Sequence[str], rows: list[Row]) -> bool:
    """COPY rows the batch found no trace of straight into the table; False if some exist after all.

    A row whose key the batch's load query (run inside this transaction, after locking the
    cluster's ImportPosition rows) did not find is new: only this cluster's importer writes its
    keys. That saves the staging table and the INSERT ... ON CONFLICT for most rows of a batch (an
    element instance usually starts and ends within one batch). Should a row exist all the same
    (two importers started for one cluster before it had any position row), the COPY fails on the
    primary key, is rolled back to its savepoint, and the caller upserts the rows instead.
    """
    meta = model._meta
    written = {_column(meta, name) for name in names}
    # Columns the importer does not write (flags kept by SQL): their model default, as on insert.
    extra = [field for field in meta.concrete_fields if field.column not in written]
    defaults = {field.attname: field.get_default() for field in extra}
    all_names = [*names, *defaults]
    if defaults:
        rows = [{**row, **defaults} for row in rows]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            _copy_rows(cursor.cursor, meta.db_table, model, all_names, rows)
    except (IntegrityError, db_driver().IntegrityError):  # raw psycopg COPY: not wrapped
        logger.info("%s: some new rows exist already; upserting them", meta.db_table)
        return False
    return True


def _staging_tables_created() -> set[str]:
    """Staging tables known to exist in the current database session.

    Kept next to the psycopg connection it belongs to (held, so a new session never inherits it).
    """
    raw = connection.connection
    cache = connection.__dict__.get("_fleetflow_staging")
    if cache is None or cache[0] is not raw:
        cache = (raw, set())
        connection.__dict__["_fleetflow_staging"] = cache
    return cache[1]


def _upsert_postgresql(model: type[models.Model], names: Sequence[str], rows: list[Row]) -> None:
    """COPY the rows into a temporary table, then one INSERT ... SELECT ... ON CONFLICT DO UPDATE.

    Same statement as bulk_create(update_conflicts=True) produces, minus the per-value Python
    work of Django's compiler and psycopg's client-side quoting, which dominated a batch's cost.
    The temporary table lives for the session; it is emptied after use (and at commit).
    """
    meta = model._meta
    table = meta.db_table
    columns = [_column(meta, name) for name in names]
    # Columns the importer does not write (flags kept by SQL): their model default on insert only.
    written = set(columns)
    extra = [field for field in meta.concrete_fields if field.column not in written]
    staging = f"import_staging_{table}"
    quoted = ", ".join(f'"{column}"' for column in columns)
    insert_columns = quoted + "".join(f', "{field.column}"' for field in extra)
    select_columns = quoted + "".join(", %s" for _ in extra)
    updates = ", ".join(f'"{column}" = EXCLUDED."{column}"' for column in columns if column != "key")
    # A row keeps the position of its last record (fold.py): never let an older record's state
    # overwrite a newer one, should another writer have got there first.
    guard = f' WHERE "{table}"."position" <= EXCLUDED."position"' if "position" in columns else ""
    with connection.cursor() as cursor:
        # One CREATE per database session once it is committed (a rolled-back CREATE leaves no
        # table; a reconnect gets a new connection object and so an empty set).
        created = _staging_tables_created()
        if staging not in created:
            cursor.execute(
                f'CREATE TEMPORARY TABLE IF NOT EXISTS "{staging}" ON COMMIT DELETE ROWS AS '  # noqa: S608 - model names only
                f'SELECT {quoted} FROM "{table}" WITH NO DATA'
            )
            transaction.on_commit(lambda: created.add(staging))
        _copy_rows(cursor.cursor, staging, model, names, rows)
        cursor.execute(
            f'INSERT INTO "{table}" ({insert_columns}) SELECT {select_columns} FROM "{staging}" '  # noqa: S608
            f'ON CONFLICT ("key") DO UPDATE SET {updates}{guard}',
            [field.get_default() for field in extra],
        )
        # Empty it now too: inside an outer transaction (tests) the commit is not ours. DELETE,
        # not TRUNCATE, which would create a new file per batch.
        cursor.execute(f'DELETE FROM "{staging}"')  # noqa: S608


TRUNCATION_MARKER = "…"


def _storable_json(value: Any) -> tuple[Any, bool]:
    """`value` with NUL characters in its texts (keys included) escaped; jsonb cannot hold them."""
    if isinstance(value, str):
        return (value.replace("\x00", "\\u0000"), True) if "\x00" in value else (value, False)
    if isinstance(value, list):
        items = [_storable_json(item) for item in value]
        return [item for item, _ in items], any(changed for _, changed in items)
    if isinstance(value, dict):
        changed = False
        result = {}
        for name, item in value.items():
            new_name, name_changed = _storable_json(name)
            new_item, item_changed = _storable_json(item)
            result[new_name] = new_item
            changed = changed or name_changed or item_changed
        return result, changed
    return value, False


def _sanitize_row(
    model: type[models.Model], names: Sequence[str], row: Row, failures: list[_Failure]
) -> None:
    """Make `row` storable in place: NUL escaped as \\u0000, texts cut to their column's length
    with a marker. Every change is reported (an import error naming the row and the field)."""
    meta = model._meta
    changes: list[str] = []
    for name in names:
        value = row[name]
        if value is None:
            continue
        model_field = meta.get_field(name)
        if isinstance(model_field, models.JSONField):
            row[name], changed = _storable_json(value)
            if changed:
                changes.append(f"{name}: NUL characters stored as \\u0000")
        elif isinstance(value, str):
            if "\x00" in value:
                value = storable_text(value)
                changes.append(f"{name}: NUL characters stored as \\u0000")
            limit = getattr(model_field, "max_length", None)
            if limit is not None and len(value) > limit:
                changes.append(f"{name}: {len(value)} characters cut to {limit}")
                value = value[: limit - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER
            row[name] = value
    if changes:
        failures.append(
            _Failure(
                partition_id=row.get("partition_id") or 0,
                position=row.get("position") or None,
                stream="",
                source_ref="",
                message=f"{model.__name__} {row.get('key')} stored with changes: " + "; ".join(changes),
                raw_excerpt=payload_excerpt({name: row[name] for name in names}),
                stored=True,
            )
        )


class Projection:
    """Applies batches of one cluster's records; see the module docstring."""

    def __init__(
        self,
        *,
        cluster: Cluster,
        server_variable: str | None = None,
        preview_bytes: int | None = None,
    ) -> None:
        self.cluster = cluster
        self.server_variable = str(server_variable or settings.FLEETFLOW_SERVER_VARIABLE)
        self.preview_bytes = preview_bytes or settings.FLEETFLOW_VARIABLE_PREVIEW_BYTES
        # Serial numbers known to have a Server row (stub or real); rows are never deleted by the
        # importer, so a hit saves the stub INSERT. Bounded: cleared when it grows too large.
        self._known_servers: set[str] = set()

    def forget_caches(self) -> None:
        """Drop what the projection remembers between batches (after a failed batch)."""
        self._known_servers.clear()
        connection.__dict__.pop("_fleetflow_staging", None)

    # -- entry point -----------------------------------------------------------------------------

    def apply_batch(self, source_records: Sequence[SourceRecord]) -> BatchResult:
        """Apply a batch in one transaction; a record PostgreSQL cannot hold costs one error row.

        A data error (psycopg's DataError or IntegrityError family: NUL characters, a value too
        long or out of range for its column) rolls the batch back, and it is applied again with
        every written value made storable (sanitize); if that fails too, the batch is split in
        halves, each applied (and committed) on its own, down to the single record, which becomes
        a RecordImportError. Any other error (the database down, a connection lost) propagates:
        the runner retries the batch.
        """
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
        failure = _failure_for(source_record, f"record cannot be stored: {_one_line(error)}")
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
            positions = self._lock_positions()
            tallies: dict[StreamKey, _StreamTally] = {}
            failures = [failure]
            self._fresh_records([], failures, positions, tallies, result)
            self._write_positions(positions, tallies)
            self._write_failures(failures)
        result.positions = self._positions_written
        return result

    def _lock_positions(self) -> dict[StreamKey, ImportPosition]:
        return {
            (row.partition_id, row.stream): row
            for row in ImportPosition.objects.select_for_update().filter(cluster=self.cluster)
        }

    def _apply(self, source_records: Sequence[SourceRecord], *, sanitize: bool) -> BatchResult:
        result = BatchResult(received=len(source_records))
        decoded: list[Record] = []
        failures: list[_Failure] = []
        for source_record in source_records:
            try:
                decoded.append(decode_record(source_record))
            except MalformedRecord as error:
                failures.append(_failure_for(source_record, str(error)))
        with transaction.atomic():
            positions = self._lock_positions()
            tallies: dict[StreamKey, _StreamTally] = {}
            fresh = self._fresh_records(decoded, failures, positions, tallies, result)
            fold, applied = self._fold(fresh, tallies, failures, result)
            self._write(fold, sanitize, failures)
            if AFTER_APPLY:
                batch = AppliedBatch(cluster=self.cluster, records=applied, fold=fold)
                for hook in AFTER_APPLY:
                    hook(batch)
            self._write_positions(positions, tallies)
            self._write_failures(failures)
            self._write_skipped_samples()
            send_instance_events_on_commit(self._instance_events(fold))
        result.changed_instances = len(fold.changed_instances)
        result.positions = self._positions_written
        return result

    # -- steps -----------------------------------------------------------------------------------

    def _fresh_records(
        self,
        decoded: list[Record],
        failures: list[_Failure],
        positions: dict[StreamKey, ImportPosition],
        tallies: dict[StreamKey, _StreamTally],
        result: BatchResult,
    ) -> list[Record]:
        """Drop what is at or below its stream's position (delivered again); keep the rest in order.

        Records and failures whose position is the source's own (the engine log) are taken in
        one (partition, position) order, so a failure is judged against the records before it,
        never after. A failure whose position came from its own bad payload is not ordered at
        all and moves nothing: it is recognised as delivered again by its source_ref instead.
        Positions move in `_fold`, only over records that were applied (or knowingly skipped).
        """
        watermarks = {stream_key: row.position for stream_key, row in positions.items()}
        ordered: list[tuple[int, int, int, Record | _Failure]] = [
            (record.partition_id, record.position, 1, record) for record in decoded
        ]
        untrusted: list[_Failure] = []
        for failure in failures:
            if failure.position_trusted and failure.position is not None:
                ordered.append((failure.partition_id, failure.position, 0, failure))
            else:
                untrusted.append(failure)
        # Within a partition, log order; streams of one partition (Redis) interleave by position.
        ordered.sort(key=lambda item: (item[0], item[1], item[2]))
        fresh: list[Record] = []
        kept: list[_Failure] = []
        for partition_id, position, _, item in ordered:
            stream_key = (partition_id, item.stream)
            if position <= watermarks.get(stream_key, 0):
                result.duplicates += 1
                continue
            watermarks[stream_key] = position
            tally = tallies.get(stream_key)
            if tally is None:
                tally = tallies[stream_key] = _StreamTally()
            if isinstance(item, Record):
                fresh.append(item)
            else:
                tally.position = max(tally.position, position)
                tally.errors += 1
                result.errors += 1
                kept.append(item)
        if untrusted:
            seen = self._errors_already_stored(untrusted)
            for failure in untrusted:
                if failure.source_ref and (failure.stream[:STREAM_MAX_CHARS], failure.source_ref) in seen:
                    result.duplicates += 1
                    continue
                tally = tallies.setdefault((failure.partition_id, failure.stream), _StreamTally())
                tally.errors += 1
                result.errors += 1
                kept.append(failure)
        failures[:] = kept
        return fresh

    def _errors_already_stored(self, failures: list[_Failure]) -> set[tuple[str, str]]:
        refs = sorted({failure.source_ref for failure in failures if failure.source_ref})
        if not refs:
            return set()
        return set(
            RecordImportError.objects.filter(cluster=self.cluster, source_ref__in=refs).values_list(
                "stream", "source_ref"
            )
        )

    def _fold(
        self,
        fresh: list[Record],
        tallies: dict[StreamKey, _StreamTally],
        failures: list[_Failure],
        result: BatchResult,
    ) -> tuple[BatchFold, list[Record]]:
        """Fold the fresh records; returns the fold and the records it applied.

        A record moves its stream's position (and its newest timestamp) once it is accounted
        for: applied, known and ignored, or skipped as unknown (with a sample kept). A record the
        fold rejects moves it only when its position is the source's own (see _Failure).
        """
        cluster_id = self.cluster.id
        to_apply: list[Record] = []
        keys: dict[str, set[int | None]] = {
            name: set() for name in ("definitions", "instances", "elements", "jobs", "incidents", "variables")
        }
        probe = BatchFold(
            cluster_id=cluster_id,
            server_variable=self.server_variable,
            preview_bytes=self.preview_bytes,
            definitions={},
            instances={},
            elements={},
            jobs={},
            incidents={},
            variables={},
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
            _advance(tally, record)
            timestamps.append(record.timestamp_ms)
        fold = BatchFold(
            cluster_id=cluster_id,
            server_variable=self.server_variable,
            preview_bytes=self.preview_bytes,
            definitions=_load(ProcessDefinition, fields.DEFINITION_FIELDS, keys["definitions"]),
            instances=_load(ProcessInstance, fields.INSTANCE_FIELDS, keys["instances"]),
            elements=_load(ElementInstance, fields.ELEMENT_FIELDS, keys["elements"]),
            jobs=_load(Job, fields.JOB_FIELDS, keys["jobs"]),
            incidents=_load(Incident, fields.INCIDENT_FIELDS, keys["incidents"]),
            variables=_load(Variable, fields.VARIABLE_FIELDS, keys["variables"]),
        )
        # Keys found in the database, before the fold adds the batch's new rows (see _insert_new).
        self._existing = {
            name: set(getattr(fold, name))
            for name in ("definitions", "instances", "elements", "jobs", "incidents", "variables")
        }
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
                    _Failure(
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
                _advance(tally, record)
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

    def _link_servers(self, fold: BatchFold) -> list[Row]:
        """Set `server` on instances; returns pre-existing instances whose own server changed."""
        server_values = dict(fold.server_values)
        new_instances = fold.new_instances
        # A root's variables are written before the PROCESS element is activated (reference §3.8),
        # possibly in an earlier batch: look them up for the batch's new instances.
        missing = [key for key in new_instances if key not in server_values]
        for chunk in _chunks(missing, READ_CHUNK):
            for scope_key, value in Variable.objects.filter(
                name=self.server_variable, scope_key__in=chunk, truncated=False
            ).values_list("scope_key", "value"):
                server_values.setdefault(scope_key, value)
        new_set = set(new_instances)
        serials: set[str] = set()
        changed_existing: list[Row] = []
        for instance_key, raw in server_values.items():
            row = fold.instances.get(instance_key)
            serial = normalize_serial_number(raw)
            if row is None or serial is None:
                continue  # an instance not imported yet gets it from the Variable table on arrival
            serials.add(serial)
            if row["server_id"] != serial or not row["server_from_variable"]:
                row["server_id"] = serial
                row["server_from_variable"] = True
                fold.dirty_instances.add(instance_key)
                if instance_key not in new_set:
                    changed_existing.append(row)
        # Instances without their own server variable inherit their parent's (parents come first).
        for instance_key in new_instances:
            row = fold.instances[instance_key]
            if row["server_from_variable"] or row["parent_id"] is None:
                continue
            parent = fold.instances.get(row["parent_id"])
            if parent is not None and parent["server_id"] is not None:
                row["server_id"] = parent["server_id"]
        serials -= self._known_servers
        if serials:
            server_ensure_stubs(serial_numbers=serials)
            if len(self._known_servers) > 100_000:
                self._known_servers.clear()
            # Only after the commit do we know the rows exist.
            transaction.on_commit(lambda: self._known_servers.update(serials))
        return changed_existing

    def _resolve_incident_trees(self, fold: BatchFold) -> None:
        for incident_key in fold.dirty_incidents:
            row = fold.incidents[incident_key]
            if row["tree_path"] == "" and row["process_instance_id"] is not None:
                instance = fold.instances.get(row["process_instance_id"])
                if instance is not None:
                    row["root_key"] = instance["root_id"]
                    row["tree_path"] = instance["tree_path"]
        # Incidents imported before their instance (streams of different value types): complete
        # them now that the instance is here.
        for chunk in _chunks(fold.new_instances, READ_CHUNK):
            for row in Incident.objects.filter(tree_path="", process_instance_id__in=chunk).values(
                *fields.INCIDENT_FIELDS
            ):
                row = fold.incidents.setdefault(row["key"], row)
                self._existing["incidents"].add(row["key"])
                instance = fold.instances[row["process_instance_id"]]
                row["root_key"] = instance["root_id"]
                row["tree_path"] = instance["tree_path"]
                fold.dirty_incidents.add(row["key"])

    def _write(self, fold: BatchFold, sanitize: bool, failures: list[_Failure]) -> None:
        """Write the fold's rows; with `sanitize`, every value made storable first (see apply_batch),
        each change reported as an import error of the row's record."""
        changed_servers = self._link_servers(fold)
        self._resolve_incident_trees(fold)
        existing = self._existing
        for model, names, name in (
            (ProcessDefinition, fields.DEFINITION_FIELDS, "definitions"),
            (ProcessInstance, fields.INSTANCE_FIELDS, "instances"),
            (ElementInstance, fields.ELEMENT_FIELDS, "elements"),
            (Job, fields.JOB_FIELDS, "jobs"),
            (Incident, fields.INCIDENT_FIELDS, "incidents"),
            (Variable, fields.VARIABLE_FIELDS, "variables"),
        ):
            found = getattr(fold, name)
            rows = [found[key] for key in getattr(fold, f"dirty_{name}")]
            if sanitize:
                for row in rows:
                    _sanitize_row(model, names, row, failures)
            _upsert(model, names, rows, existing[name])
        if fold.large_values:
            large_values = fold.large_values
            if sanitize:
                # The full JSON text of a value: a raw NUL in it is written as JSON's own escape.
                large_values = {key: storable_text(text) for key, text in large_values.items()}
            VariableValue.objects.bulk_create(
                [VariableValue(variable_id=key, json_text=text) for key, text in large_values.items()],
                batch_size=WRITE_CHUNK,
                update_conflicts=True,
                unique_fields=["variable"],
                update_fields=["json_text"],
            )
        if fold.shrunk_variables:
            VariableValue.objects.filter(variable_id__in=sorted(fold.shrunk_variables)).delete()
        for row in changed_servers:
            # A server set on an existing instance reaches descendants that inherit it.
            ProcessInstance.objects.filter(
                tree_path__startswith=row["tree_path"], server_from_variable=False
            ).exclude(pk=row["key"]).update(server_id=row["server_id"])
        roots = sorted(
            {
                fold.incidents[key]["root_key"]
                for key in fold.dirty_incidents
                if fold.incidents[key]["root_key"] is not None
            }
        )
        for chunk in _chunks(roots, READ_CHUNK):
            active = Incident.objects.filter(state=IncidentState.ACTIVE)
            ProcessInstance.objects.filter(root_id__in=chunk).update(
                incident=Exists(active.filter(process_instance_id=OuterRef("key"))),
                subtree_incident=Exists(
                    active.filter(root_key=OuterRef("root_id"), tree_path__startswith=OuterRef("tree_path"))
                ),
            )

    def _write_positions(
        self, positions: dict[StreamKey, ImportPosition], tallies: dict[StreamKey, _StreamTally]
    ) -> None:
        rows = []
        self._positions_written: dict[StreamKey, int] = {}
        for stream_key, tally in tallies.items():
            row = positions.get(stream_key)
            if row is None:
                row = ImportPosition(cluster=self.cluster, partition_id=stream_key[0], stream=stream_key[1])
            row.source = self.cluster.record_source
            row.position = max(row.position, tally.position)
            if tally.newest_timestamp_ms is not None:
                newest = datetime.fromtimestamp(tally.newest_timestamp_ms / 1000, tz=UTC)
                if row.last_record_timestamp is None or newest > row.last_record_timestamp:
                    row.last_record_timestamp = newest
            row.imported_count += tally.imported
            row.skipped_count += tally.skipped
            row.error_count += tally.errors
            rows.append(row)
        self._positions_written = {(row.partition_id, row.stream): row.position for row in rows}
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

    def _write_failures(self, failures: list[_Failure]) -> None:
        if not failures:
            return
        for failure in failures:
            logger.warning(
                "cluster %s partition %s position %s%s: %s: %s",
                self.cluster.id,
                failure.partition_id or "?",
                failure.position if failure.position is not None else "?",
                f" ({failure.stream} {failure.source_ref})" if failure.stream or failure.source_ref else "",
                "record stored with changes" if failure.stored else "record skipped",
                failure.message,
            )
        RecordImportError.objects.bulk_create(
            [
                RecordImportError(
                    cluster=self.cluster,
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

    def _write_skipped_samples(self) -> None:
        """One SkippedRecordSample per kind skipped (the first record seen), with a running count."""
        for (value_type, intent), (record, count) in sorted(self._skipped.items()):
            kind = {
                "cluster": self.cluster,
                "value_type": storable_text(value_type, 64),
                "intent": storable_text(intent, 64),
            }
            updated = SkippedRecordSample.objects.filter(**kind).update(count=F("count") + count)
            if not updated:
                logger.warning(
                    "cluster %s: skipping records of unknown kind %s %s (first at partition %s "
                    "position %s; a sample is kept)",
                    self.cluster.id,
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
