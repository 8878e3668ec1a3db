"""Writes records to Redis exactly as zeebe-redis-exporter does in JSON format (reference §3.9).

One stream per value type named `<prefix>:<VALUE_TYPE>`; each entry is `XADD <stream> *` with a
single field whose name is the export time in ms and whose value is the record JSON. Like the
exporters' defaults, only EVENT records are exported. (The engine has no Redis exporter yet; this
is the test's stand-in writer, not a fake engine: it replays the engine's real log.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import redis


def export_to_streams(
    client: redis.Redis, prefix: str, records: Iterable[dict[str, Any]], *, events_only: bool = True
) -> int:
    pipeline = client.pipeline(transaction=False)
    written = 0
    for record in records:
        if events_only and record.get("recordType") != "EVENT":
            continue
        pipeline.xadd(f"{prefix}:{record['valueType']}", {str(int(time.time() * 1000)): json.dumps(record)})
        written += 1
        if written % 500 == 0:
            pipeline.execute()
    pipeline.execute()
    return written


def in_log_order(records_by_partition: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records as the exporter sees them: each partition in position order, partitions interleaved."""
    by_partition: dict[int, list[dict[str, Any]]] = {}
    for record in records_by_partition:
        by_partition.setdefault(record["partitionId"], []).append(record)
    queues = [sorted(found, key=lambda r: r["position"]) for _, found in sorted(by_partition.items())]
    merged: list[dict[str, Any]] = []
    while any(queues):
        for queue in queues:
            merged.extend(queue[:7])
            del queue[:7]
    return merged
