"""Decoding and validation of raw records (reference §3.3) before they reach the projection.

A source hands over `SourceRecord`s whose payload is the record JSON as text, bytes or an already
decoded dict. `decode_record` turns one into a `Record` or raises `MalformedRecord` with a message
an operator can act on. Only the top-level fields every Zeebe version has are required
(reference §3.3 "Importer tip"); everything else is optional because older and newer brokers add
or lack fields (the Zeebe 1.2 log in shared/data has no tenantId or bpmnEventType).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from processes.importer import jsontext
from routing.keys import CLUSTER_SHIFT, ZEEBE_KEY_LIMIT, KeyCodecError, to_global

RAW_EXCERPT_CHARS = 2000
MESSAGE_CHARS = 10_000
# What the query models can hold (bigint positions, timestamps Python and PostgreSQL both read,
# ImportPosition.stream's 64 characters): a record outside these is malformed, not a crash.
POSITION_MAX = (1 << 63) - 1
TIMESTAMP_MS_MIN = -62_135_596_800_000  # 0001-01-01T00:00:00Z
TIMESTAMP_MS_MAX = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
PARTITION_ID_MAX = 8192
STREAM_MAX_CHARS = 64


class MalformedRecord(ValueError):
    """A record that cannot be read; the message names what is wrong."""


@dataclass(slots=True)
class SourceRecord:
    """One record as a source delivered it.

    `stream` is "" for sources that deliver a partition in log order, the value-type stream name for
    Redis. `partition_hint` and `position_hint` are what the source knows without decoding (the
    log reader knows both), used to report a record that cannot be decoded. `source_ref`
    identifies the record in its source (Redis entry id, ES document id).

    `position_trusted` says the position hint comes from the source itself, not from the payload
    (the log's framing: the record IS at that position). Only then may a record that fails move
    its stream's position past it; a position read from a bad payload never moves anything.
    `problem` marks an entry the source could not deliver at all (a gap in the log, an entry
    trimmed away): it becomes an import error with that message and moves no position.
    """

    payload: dict[str, Any] | str | bytes
    stream: str = ""
    partition_hint: int | None = None
    position_hint: int | None = None
    source_ref: str = ""
    ack: Any = field(default=None, repr=False)
    position_trusted: bool = False
    problem: str | None = None


@dataclass(slots=True)
class Record:
    """A decoded record: the fields the projection uses, keys still local to the cluster."""

    partition_id: int
    position: int
    timestamp_ms: int
    value_type: str
    intent: str
    record_type: str
    key: int
    value: dict[str, Any]
    stream: str
    source_ref: str = ""
    position_trusted: bool = False


_REQUIRED_INT = ("partitionId", "position", "timestamp", "key")
_REQUIRED_STR = ("valueType", "intent", "recordType")


def storable_text(text: str, limit: int | None = None) -> str:
    """`text` as a PostgreSQL text column holds it: NUL (which it cannot) shown as the escape \\u0000."""
    if "\x00" in text:
        text = text.replace("\x00", "\\u0000")
    return text if limit is None else text[:limit]


def payload_excerpt(payload: dict[str, Any] | str | bytes) -> str:
    """The beginning of a payload, storable as text (NUL escaped, undecodable bytes replaced)."""
    if isinstance(payload, bytes):
        text = payload[:RAW_EXCERPT_CHARS].decode("utf-8", errors="replace")
    elif isinstance(payload, str):
        text = payload[:RAW_EXCERPT_CHARS]
    else:
        try:
            text = json.dumps(payload, default=str)[:RAW_EXCERPT_CHARS]
        except (TypeError, ValueError):
            text = repr(payload)[:RAW_EXCERPT_CHARS]
    return storable_text(text, RAW_EXCERPT_CHARS)


def decode_record(source_record: SourceRecord) -> Record:
    if source_record.problem is not None:
        raise MalformedRecord(source_record.problem)
    payload = source_record.payload
    if isinstance(payload, (str, bytes)):
        try:
            data = jsontext.loads_record(payload)
        except (ValueError, UnicodeDecodeError) as error:
            raise MalformedRecord(f"record is not valid JSON: {error}") from None
    else:
        data = payload
    if not isinstance(data, dict):
        raise MalformedRecord(f"record is a JSON {type(data).__name__}, expected an object")
    # Fast path for the well-formed record (almost all of them); the checks below name the problem.
    try:
        partition_id = data["partitionId"]
        position = data["position"]
        timestamp_ms = data["timestamp"]
        key = data["key"]
        value_type = data["valueType"]
        intent = data["intent"]
        record_type = data["recordType"]
        value = data["value"]
    except KeyError:
        pass
    else:
        if (
            type(partition_id) is int
            and type(position) is int
            and type(timestamp_ms) is int
            and type(key) is int
            and type(value) is dict
            and type(value_type) is str
            and type(intent) is str
            and type(record_type) is str
            and value_type
            and intent
            and record_type
            and 1 <= partition_id <= PARTITION_ID_MAX
            and 1 <= position <= POSITION_MAX
            and TIMESTAMP_MS_MIN <= timestamp_ms <= TIMESTAMP_MS_MAX
            and len(source_record.stream) <= STREAM_MAX_CHARS
            and (not source_record.position_trusted or position == source_record.position_hint)
        ):
            return Record(
                partition_id,
                position,
                timestamp_ms,
                value_type,
                intent,
                record_type,
                key,
                value,
                source_record.stream,
                source_record.source_ref,
                source_record.position_trusted,
            )
    for name in _REQUIRED_INT:
        value = data.get(name)
        if type(value) is not int:
            raise MalformedRecord(
                f"field {name!r} is missing"
                if value is None
                else f"field {name!r} is not an integer: {value!r}"
            )
    for name in _REQUIRED_STR:
        value = data.get(name)
        if not isinstance(value, str) or not value:
            raise MalformedRecord(
                f"field {name!r} is missing" if value is None else f"field {name!r} is not a text: {value!r}"
            )
    value = data.get("value")
    if not isinstance(value, dict):
        raise MalformedRecord(
            "field 'value' is missing" if value is None else "field 'value' is not an object"
        )
    partition_id = data["partitionId"]
    if not 1 <= partition_id <= PARTITION_ID_MAX:
        raise MalformedRecord(f"partitionId {partition_id} is outside 1..{PARTITION_ID_MAX}")
    position = data["position"]
    if not 1 <= position <= POSITION_MAX:
        raise MalformedRecord(f"position {position} is outside 1..{POSITION_MAX} (a bigint)")
    if not TIMESTAMP_MS_MIN <= data["timestamp"] <= TIMESTAMP_MS_MAX:
        raise MalformedRecord(
            f"timestamp {data['timestamp']} is outside the years 1..9999 (epoch milliseconds)"
        )
    if len(source_record.stream) > STREAM_MAX_CHARS:
        raise MalformedRecord(
            f"stream name of {len(source_record.stream)} characters is longer than {STREAM_MAX_CHARS}"
        )
    if source_record.position_trusted and position != source_record.position_hint:
        raise MalformedRecord(
            f"position field {position} does not match the record's place in the log "
            f"({source_record.position_hint})"
        )
    return Record(
        partition_id=partition_id,
        position=data["position"],
        timestamp_ms=data["timestamp"],
        value_type=data["valueType"],
        intent=data["intent"],
        record_type=data["recordType"],
        key=data["key"],
        value=value,
        stream=source_record.stream,
        source_ref=source_record.source_ref,
        position_trusted=source_record.position_trusted,
    )


def global_key(cluster_id: int, zeebe_key: Any, field_name: str) -> int | None:
    """The global key (DESIGN §2) of a key field; None for Zeebe's "no key" (-1, or 0/absent).

    Raises MalformedRecord for a value that is not an integer or does not fit the codec.
    """
    if type(zeebe_key) is int and 0 < zeebe_key < ZEEBE_KEY_LIMIT:
        # Hot path (every key of every record): the codec's own checks are done by the range test;
        # routing.keys.to_global still produces the errors for everything else.
        return (cluster_id << CLUSTER_SHIFT) | zeebe_key
    if zeebe_key is None:
        return None
    if type(zeebe_key) is not int:
        raise MalformedRecord(f"key field {field_name!r} is not an integer: {zeebe_key!r}")
    if zeebe_key <= 0:
        return None
    try:
        return to_global(cluster_id, zeebe_key)
    except KeyCodecError as error:
        raise MalformedRecord(f"key field {field_name!r}: {error}") from None
