"""Source: Redis streams written by zeebe-redis-exporter in JSON format (reference §3.9).

One stream per value type, named `<prefix>:<VALUE_TYPE>`; each entry has a single field named by
the export time in ms whose value is the record JSON. We read with a consumer group (XREADGROUP),
created at offset 0 so a new importer sees the retained history, and XACK only after the batch's
transaction committed (`acknowledge`). Delivery is at-least-once: after a crash between commit and
XACK, our pending entries are read again first (id "0") and the projection skips them by position
(one watermark per partition and value-type stream, since each stream holds its partition's
records of that type in log order).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

import redis

from processes.importer.records import SourceRecord

logger = logging.getLogger(__name__)

STREAM_RESCAN_SECONDS = 5.0
MAX_BLOCK_MS = 2000


class RedisStreamSource:
    def __init__(self, *, url: str, stream_prefix: str = "zeebe", group: str, consumer: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.stream_prefix = stream_prefix
        self.group = group
        self.consumer = consumer
        self._streams: list[bytes] = []
        self._scanned_at = 0.0
        # Streams whose own pending (delivered, unacknowledged) entries have all been re-read.
        self._pending_done: set[bytes] = set()

    def _refresh_streams(self) -> None:
        now = time.monotonic()
        if self._streams and now - self._scanned_at < STREAM_RESCAN_SECONDS:
            return
        self._scanned_at = now
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
        self._streams = found

    def _value_type(self, stream: bytes) -> str:
        return stream.decode("utf-8", errors="replace")[len(self.stream_prefix) + 1 :]

    def fetch(
        self, positions: Mapping[tuple[int, str], int], max_records: int, wait_seconds: float
    ) -> list[SourceRecord]:
        deadline = time.monotonic() + wait_seconds
        while True:
            self._refresh_streams()
            if self._streams:
                records = self._read(max_records, block_ms=None)
                if records:
                    return records
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            if not self._streams:
                time.sleep(min(remaining, 0.2))
                continue
            records = self._read(max_records, block_ms=max(1, min(MAX_BLOCK_MS, int(remaining * 1000))))
            if records:
                return records

    def _read(self, max_records: int, block_ms: int | None) -> list[SourceRecord]:
        pending = [stream for stream in self._streams if stream not in self._pending_done]
        if pending and block_ms is None:
            response = self.client.xreadgroup(
                self.group, self.consumer, {stream: "0" for stream in pending}, count=max_records
            )
            records = self._records(response)
            returned = {stream for stream, entries in response or [] if entries}
            self._pending_done.update(stream for stream in pending if stream not in returned)
            if records:
                return records
        count = max(1, max_records // max(1, len(self._streams)))
        response = self.client.xreadgroup(
            self.group, self.consumer, {stream: ">" for stream in self._streams}, count=count, block=block_ms
        )
        return self._records(response)

    def _records(self, response: object) -> list[SourceRecord]:
        records: list[SourceRecord] = []
        for stream, entries in response or []:  # type: ignore[attr-defined]
            value_type = self._value_type(stream)
            for entry_id, fields in entries:
                # A single field: export time in ms -> record JSON (reference §3.9).
                payload = next(iter(fields.values()), b"") if fields else b""
                records.append(
                    SourceRecord(
                        payload=payload,
                        stream=value_type,
                        source_ref=entry_id.decode(),
                        ack=(stream, entry_id),
                    )
                )
        return records

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
