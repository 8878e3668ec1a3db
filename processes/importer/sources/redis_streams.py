"""Source: Redis streams written by zeebe-redis-exporter in JSON format (reference §3.9).

One stream per value type, named `<prefix>:<VALUE_TYPE>`; each entry has a single field named by
the export time in ms whose value is the record JSON. We read with a consumer group (XREADGROUP),
created at offset 0 so a new importer sees the retained history, and XACK only after the batch's
transaction committed (`acknowledge`).

Log order across streams: the exporter writes each partition's records in position order, but
they land in different streams, and a reader that takes N entries per stream would see a job's
activation (JOB_BATCH) before its creation (JOB). So every read covers all streams in one
XREADGROUP (one consistent snapshot), and a record of partition p is released to the projection
only when no stream can still hold an earlier record of p: a stream that returned fewer entries
than asked has nothing more, and a stream that returned a full page bounds p at the highest
position of p it delivered. Records beyond that frontier wait in memory (they stay pending in
the group, unacknowledged) until the lagging stream has been read further. The projection thus
sees each partition in log order, exactly as from the engine's log.

Delivery is at-least-once: after a crash between commit and XACK, our pending entries are read
again first (from id 0 upwards) and the projection skips them by position (one watermark per
partition and value-type stream, since each stream holds its partition's records in log order).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis

from processes.importer import jsontext
from processes.importer.records import MalformedRecord, SourceRecord, decode_record

logger = logging.getLogger(__name__)

STREAM_RESCAN_SECONDS = 1.0
MAX_BLOCK_MS = 1000


def _valid(record: SourceRecord) -> bool:
    try:
        decode_record(record)
    except MalformedRecord:
        return False
    return True


class RedisStreamSource:
    def __init__(
        self,
        *,
        url: str,
        stream_prefix: str = "zeebe",
        group: str,
        consumer: str,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        # username/password come from processes/source_config.py (never from the stored URL).
        credentials = {"username": username, "password": password} if password is not None else {}
        self.client = redis.Redis.from_url(url, **credentials)
        self.stream_prefix = stream_prefix
        self.group = group
        self.consumer = consumer
        self._streams: list[bytes] = []
        self._scanned_at = 0.0
        # Re-reading our own pending entries after a restart: stream -> last id read ("0" at start).
        self._pending_cursor: dict[bytes, bytes | str] = {}
        # Highest position delivered so far per (stream, partition).
        self._delivered: dict[tuple[bytes, int], int] = {}
        # Delivered records waiting for the frontier (see the module docstring).
        self._held: list[SourceRecord] = []

    def _refresh_streams(self) -> None:
        now = time.monotonic()
        if self._streams and now - self._scanned_at < STREAM_RESCAN_SECONDS:
            return
        self._scanned_at = now
        # Streams only: the engine's exporter keeps its dedupe hash `<prefix>:exporter-positions`
        # under the same prefix (engine/exporters/redis_streams.py).
        found = sorted(
            set(self.client.scan_iter(match=f"{self.stream_prefix}:*", _type="STREAM", count=1000))
        )
        for stream in found:
            if stream not in self._streams:
                try:
                    self.client.xgroup_create(stream, self.group, id="0")
                except redis.ResponseError as error:
                    if "BUSYGROUP" not in str(error):
                        raise
                self._pending_cursor[stream] = "0"
        self._streams = found

    def _recreate_groups(self, error: redis.ResponseError) -> None:
        """The consumer group (or a stream) was destroyed under us: create it again at the start of
        each stream, so nothing is missed; what was imported already is skipped by position."""
        logger.warning(
            "Redis consumer group %r is gone (%s): recreating it at the start of every %s:* stream; "
            "entries are read again and those already imported are skipped by position",
            self.group,
            error,
            self.stream_prefix,
        )
        for stream in self._streams:
            try:
                self.client.xgroup_create(stream, self.group, id="0")
            except redis.ResponseError as create_error:
                if "BUSYGROUP" not in str(create_error):
                    logger.warning("stream %r: cannot create group %r: %s", stream, self.group, create_error)
        # Rescan (a stream may be gone) and restart from the pending entries, as after a start.
        self._streams = []
        self._scanned_at = 0.0
        self.rewind()

    def _value_type(self, stream: bytes) -> str:
        return stream.decode("utf-8", errors="replace")[len(self.stream_prefix) + 1 :]

    def fetch(
        self, positions: Mapping[tuple[int, str], int], max_records: int, wait_seconds: float
    ) -> list[SourceRecord]:
        deadline = time.monotonic() + wait_seconds
        block_ms: int | None = None
        while True:
            self._refresh_streams()
            if self._streams:
                released, read = self._read_and_release(max_records, block_ms)
                if released:
                    return released
                if read:
                    continue  # everything read is held back: read the lagging streams further
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            if not self._streams:
                time.sleep(min(remaining, 0.2))
                continue
            block_ms = max(1, min(MAX_BLOCK_MS, int(remaining * 1000)))

    def _read_and_release(self, max_records: int, block_ms: int | None) -> tuple[list[SourceRecord], int]:
        count = max(1, max_records)
        ids: dict[Any, Any] = {stream: self._pending_cursor.get(stream, ">") for stream in self._streams}
        in_pending_phase = any(stream_id != ">" for stream_id in ids.values())
        # redis-py types a reply as any RESP value; XREADGROUP's is [(stream, [(id, fields)])].
        try:
            response: Any = self.client.xreadgroup(
                self.group, self.consumer, ids, count=count, block=None if in_pending_phase else block_ms
            )
        except redis.ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            self._recreate_groups(error)
            return [], 1
        saturated: set[bytes] = set()
        immediate: list[SourceRecord] = []
        returned: dict[bytes, int] = {}
        for stream, entries in response or []:
            returned[stream] = len(entries)
            if len(entries) >= count:
                saturated.add(stream)
            value_type = self._value_type(stream)
            for entry_id, fields in entries:
                if entry_id is None:
                    continue  # a hole redis-py reports for some replies: nothing to read or ack
                if stream in self._pending_cursor:
                    self._pending_cursor[stream] = entry_id
                record = self._source_record(stream, value_type, entry_id, fields)
                partition_id, position = record.partition_hint, record.position_hint
                if partition_id is None or position is None or not _valid(record):
                    # Undecodable or invalid: the projection reports it now. Its position (read
                    # from the bad payload) must not raise the frontier either.
                    immediate.append(record)
                    continue
                delivered_key = (stream, partition_id)
                if position > self._delivered.get(delivered_key, 0):
                    self._delivered[delivered_key] = position
                self._held.append(record)
        for stream in list(self._pending_cursor):
            if returned.get(stream, 0) < count:
                # Our pending entries of this stream are all read again: continue with new ones.
                del self._pending_cursor[stream]
                saturated.discard(stream)
            else:
                saturated.add(stream)
        # After a pending-phase read there may be new entries to read right away.
        progressed = sum(returned.values()) + (1 if in_pending_phase else 0)
        return immediate + self._release(saturated, max_records), progressed

    def _release(self, saturated: set[bytes], max_records: int) -> list[SourceRecord]:
        """Held records that no stream can precede any more, in (partition, position) order."""
        if not self._held:
            return []
        partitions = {record.partition_hint for record in self._held}
        frontier: dict[int, float] = {}
        for partition_id in partitions:
            bound = float("inf")
            for stream in saturated:
                bound = min(bound, self._delivered.get((stream, partition_id), 0))  # type: ignore[arg-type]
            frontier[partition_id] = bound  # type: ignore[index]
        self._held.sort(key=lambda record: (record.partition_hint, record.position_hint))
        released: list[SourceRecord] = []
        kept: list[SourceRecord] = []
        for record in self._held:
            if len(released) < max_records and record.position_hint <= frontier[record.partition_hint]:  # type: ignore[operator,index]
                released.append(record)
            else:
                kept.append(record)
        self._held = kept
        return released

    def _source_record(
        self, stream: bytes, value_type: str, entry_id: bytes, fields: dict[bytes, bytes]
    ) -> SourceRecord:
        if not fields:
            # A pending entry whose content is gone: XTRIM (or MAXLEN) removed it from the stream
            # after it was delivered and before its batch committed. Its record is lost.
            return SourceRecord(
                payload="",
                stream=value_type,
                source_ref=entry_id.decode(),
                ack=(stream, entry_id),
                problem=(
                    f"stream entry {entry_id.decode()} was trimmed from the stream (XTRIM/MAXLEN) "
                    "before it was imported; its record is lost"
                ),
            )
        # A single field: export time in ms -> record JSON (reference §3.9).
        raw = next(iter(fields.values()), b"")
        payload: dict[str, Any] | bytes = raw
        partition_id = position = None
        problem = None
        try:
            decoded = jsontext.loads_record(raw)
        except ValueError:
            decoded = None
            if not raw.lstrip().startswith(b"{"):
                # zeebe-redis-exporter's default format is protobuf; Fleetflow reads its json
                # format (reference §3.9), so say how to fix the exporter, not just "not JSON".
                problem = (
                    f"stream entry {entry_id.decode()} is not valid JSON (the exporter's protobuf format?): "
                    "Fleetflow reads zeebe-redis-exporter's json format, set ZEEBE_REDIS_FORMAT=json"
                )
        if isinstance(decoded, dict):
            payload = decoded
            if type(decoded.get("partitionId")) is int and type(decoded.get("position")) is int:
                partition_id, position = decoded["partitionId"], decoded["position"]
        return SourceRecord(
            payload=payload,
            stream=value_type,
            partition_hint=partition_id,
            position_hint=position,
            source_ref=entry_id.decode(),
            ack=(stream, entry_id),
            problem=problem,
        )

    def rewind(self) -> None:
        # Everything read since the last XACK (the failed batch, the records held back for the
        # frontier, a read-ahead batch) is still pending in the group: read it all again from the
        # start of each stream's pending list, rebuilding the frontier as it arrives.
        self._held.clear()
        self._delivered.clear()
        for stream in self._streams:
            self._pending_cursor[stream] = "0"

    def acknowledge(self, records: Sequence[SourceRecord]) -> None:
        by_stream: dict[bytes, list[bytes]] = {}
        for record in records:
            if record.ack is not None:
                stream, entry_id = record.ack
                by_stream.setdefault(stream, []).append(entry_id)
        if not by_stream:
            return
        pipeline = self.client.pipeline(transaction=False)
        for stream, entry_ids in by_stream.items():
            pipeline.xack(stream, self.group, *entry_ids)
        pipeline.execute()

    def close(self) -> None:
        self.client.close()
