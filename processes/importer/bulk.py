"""Bulk reads and writes of the query-model rows a batch touches (the projection's database side).

    load_rows      one query per model for the batch's keys (an array parameter on PostgreSQL)
    upsert_rows    a small batch's rows in one statement (INSERT ... SELECT FROM
                   json_populate_recordset ... ON CONFLICT DO UPDATE: one round trip); a large
                   one's new rows COPied straight into the table, the rest COPied into a session
                   temporary table and merged with one INSERT ... SELECT ... ON CONFLICT DO UPDATE
    sanitize_row   a row made storable (NUL escaped, texts cut to their column) for the batch that
                   PostgreSQL refused as data (see projection.apply_batch)

Rows are dicts of model attribute names (fold.Row); the field lists come from fold.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DataError, IntegrityError, connection, models, transaction

from processes.importer.fold import Row
from processes.importer.records import storable_text

try:  # optional speed-up (see jsontext.py); the standard library writes what it refuses
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

# Rows per INSERT statement and keys per IN (...) list: well inside PostgreSQL's and SQLite's
# parameter limits for the widest model.
WRITE_CHUNK = 1000
READ_CHUNK = 2000
# Up to this many rows of a model, upsert_rows writes them in one statement (upsert_json): at
# the steady rates where import lag matters a batch is small, and its cost was round trips, not
# rows (COPY to staging, merge, empty, savepoint, COPY new rows, release: six per model). Larger
# batches keep COPY, which moves rows faster once there are many.
JSON_UPSERT_MAX_ROWS = 1000

TRUNCATION_MARKER = "…"


def db_driver() -> Any:
    """The DB-API module under Django's connection (psycopg, sqlite3): its own error classes."""
    return connection.Database  # type: ignore[attr-defined]  # set by every backend


def data_errors() -> tuple[type[BaseException], ...]:
    """Errors that say the batch's data cannot be stored (isolate the record), not that the
    database is unavailable (retry). Raw psycopg errors (COPY is not wrapped by Django) included."""
    driver = db_driver()
    return (DataError, IntegrityError, driver.DataError, driver.IntegrityError)


def column(meta: Any, name: str) -> str:
    return str(meta.get_field(name).column)


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def load_rows(model: type[models.Model], names: Sequence[str], keys: Iterable[int | None]) -> dict[int, Row]:
    """The rows of `model` with these keys, as dicts of `names`."""
    wanted = sorted({key for key in keys if key is not None})
    rows: dict[int, Row] = {}
    if not wanted:
        return rows
    if connection.vendor == "postgresql":
        # One array parameter instead of thousands of IN (...) parameters for Django to compile.
        meta = model._meta
        columns = ", ".join(f'"{column(meta, name)}"' for name in names)
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
    for chunk in chunks(wanted, READ_CHUNK):
        for row in model._default_manager.filter(pk__in=chunk).values(*names):
            rows[row["key"]] = row
    return rows


def upsert_rows(
    model: type[models.Model], names: Sequence[str], rows: list[Row], existing: set[int] | None = None
) -> None:
    """Write `rows`; `existing` holds the keys the batch loaded from the table (see insert_new)."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        if len(rows) <= JSON_UPSERT_MAX_ROWS:
            upsert_json(model, names, rows)
            return
        if existing is not None:
            new_rows = [row for row in rows if row["key"] not in existing]
            if new_rows and insert_new(model, names, new_rows):
                rows = [row for row in rows if row["key"] in existing]
                if not rows:
                    return
        upsert_postgresql(model, names, rows)
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


def copy_rows(
    cursor: Any, table: str, model: type[models.Model], names: Sequence[str], rows: list[Row]
) -> None:
    """COPY `rows` into `table`; JSON fields as text, None as SQL NULL (as the ORM writes them)."""
    meta = model._meta
    quoted = ", ".join(f'"{column(meta, name)}"' for name in names)
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


def insert_new(model: type[models.Model], names: Sequence[str], rows: list[Row]) -> bool:
    """COPY rows the batch found no trace of straight into the table; False if some exist after all.

    A row whose key the batch's load query (run inside this transaction, after locking the
    partitions' ImportPosition rows) did not find is new: only the importer holding a partition's
    lease writes its keys (keys carry their partition, DESIGN §2). That saves the staging table
    and the INSERT ... ON CONFLICT for most rows of a batch (an element instance usually starts
    and ends within one batch). Should a row exist all the same (a deployment's PROCESS record is
    written on every partition, so two importers may both insert its definition), the COPY fails
    on the primary key, is rolled back to its savepoint, and the caller upserts the rows instead.
    """
    meta = model._meta
    written = {column(meta, name) for name in names}
    # Columns the importer does not write (flags kept by SQL): their model default, as on insert.
    extra = [field for field in meta.concrete_fields if field.column not in written]
    defaults = {field.attname: field.get_default() for field in extra}
    all_names = [*names, *defaults]
    if defaults:
        rows = [{**row, **defaults} for row in rows]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            copy_rows(cursor.cursor, meta.db_table, model, all_names, rows)
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


def forget_staging_tables() -> None:
    """After a failed batch: the staging tables are created again when next needed."""
    connection.__dict__.pop("_fleetflow_staging", None)


@dataclass(frozen=True)
class Merge:
    """The SQL pieces of an INSERT ... ON CONFLICT DO UPDATE of `names` into a model's table,
    shared by the COPY-staged merge (upsert_postgresql) and the one-statement one (upsert_json)."""

    table: str
    quoted: str  # the written columns, quoted, comma-separated
    insert_columns: str  # those plus the columns the importer does not write
    select_columns: str  # the written columns plus a %s per default
    on_conflict: str
    defaults: list[Any]  # model defaults of the unwritten columns (insert only)

    @classmethod
    def of(cls, model: type[models.Model], names: Sequence[str]) -> Merge:
        meta = model._meta
        table = meta.db_table
        columns = [column(meta, name) for name in names]
        # Columns the importer does not write (flags kept by SQL): their model default on insert.
        written = set(columns)
        extra = [field for field in meta.concrete_fields if field.column not in written]
        quoted = ", ".join(f'"{name}"' for name in columns)
        updates = ", ".join(f'"{name}" = EXCLUDED."{name}"' for name in columns if name != "key")
        # A row keeps the position of its last record (fold.py): never let an older record's
        # state overwrite a newer one, should another writer have got there first.
        guard = f' WHERE "{table}"."position" <= EXCLUDED."position"' if "position" in columns else ""
        return cls(
            table=table,
            quoted=quoted,
            insert_columns=quoted + "".join(f', "{field.column}"' for field in extra),
            select_columns=quoted + "".join(", %s" for _ in extra),
            on_conflict=f'ON CONFLICT ("key") DO UPDATE SET {updates}{guard}',
            defaults=[field.get_default() for field in extra],
        )


def upsert_postgresql(model: type[models.Model], names: Sequence[str], rows: list[Row]) -> None:
    """COPY the rows into a temporary table, then one INSERT ... SELECT ... ON CONFLICT DO UPDATE.

    Same statement as bulk_create(update_conflicts=True) produces, minus the per-value Python
    work of Django's compiler and psycopg's client-side quoting, which dominated a batch's cost.
    The temporary table lives for the session; it is emptied after use (and at commit).
    """
    merge = Merge.of(model, names)
    table, quoted = merge.table, merge.quoted
    staging = f"import_staging_{table}"
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
        copy_rows(cursor.cursor, staging, model, names, rows)
        cursor.execute(
            f'INSERT INTO "{table}" ({merge.insert_columns}) SELECT {merge.select_columns} '  # noqa: S608
            f'FROM "{staging}" {merge.on_conflict}',
            merge.defaults,
        )
        # Empty it now too: inside an outer transaction (tests) the commit is not ours. DELETE,
        # not TRUNCATE, which would create a new file per batch.
        cursor.execute(f'DELETE FROM "{staging}"')  # noqa: S608


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def rows_json(model: type[models.Model], names: Sequence[str], rows: list[Row]) -> str:
    """`rows` as one JSON array of objects keyed by column (what json_populate_recordset reads).

    orjson when it can; the standard library for what orjson refuses (integers beyond 64 bits in
    a JSON field, lone surrogates), which PostgreSQL then stores or refuses as data."""
    meta = model._meta
    columns = [column(meta, name) for name in names]
    objects = [{col: row[name] for col, name in zip(columns, names, strict=True)} for row in rows]
    if orjson is not None:
        try:
            return orjson.dumps(objects).decode()
        except (TypeError, orjson.JSONEncodeError):
            pass
    return json.dumps(objects, default=_json_default)


def upsert_json(model: type[models.Model], names: Sequence[str], rows: list[Row]) -> None:
    """Insert or update `rows` in one statement: INSERT ... SELECT FROM json_populate_recordset
    ... ON CONFLICT DO UPDATE, the same merge upsert_postgresql makes (same guard, same defaults
    for the columns the importer does not write) without its staging table. Each value is
    converted by PostgreSQL from JSON to its column's type (jsonb columns take the nested JSON);
    a value it cannot store is a DataError, as with COPY, and the batch is isolated."""
    merge = Merge.of(model, names)
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO "{merge.table}" ({merge.insert_columns}) SELECT {merge.select_columns} '  # noqa: S608
            f'FROM json_populate_recordset(NULL::"{merge.table}", %s::json) {merge.on_conflict}',
            [*merge.defaults, rows_json(model, names, rows)],
        )


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


def sanitize_row(model: type[models.Model], names: Sequence[str], row: Row) -> list[str]:
    """Make `row` storable in place: NUL escaped as \\u0000, texts cut to their column's length
    with a marker. Returns the changes made, one text per field (the caller reports them)."""
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
    return changes
