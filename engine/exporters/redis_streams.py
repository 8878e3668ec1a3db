"""The zeebe-redis-exporter, JSON format (reference §3.9): one Redis stream per value type.

`--export redis://HOST:PORT[/DB][?name=zeebe&value_types=JOB,PROCESS_INSTANCE&record_types=EVENT]`

Stream `<name>:<VALUE_TYPE>` (default name `zeebe`, e.g. `zeebe:JOB`), one entry per record,
`XADD <stream> * <export time in ms> <record JSON>`: a single field named by the export time whose
value is `record.toJson()` (reference §3.3 without `sequence`). Like the real exporter's
`enabledValueTypes` / `enabledRecordTypes`, empty filters export every record, commands and
rejections included. Retention (the real exporter's cleanup cycle with `maxTimeToLiveInSeconds`)
is not done here: the streams keep everything until a consumer or an operator trims them.

Exactly once towards consumers: a batch is written by one Lua script that also holds, in the
hash `<name>:exporter-positions` (field = partition id), the highest position already written.
The script skips records at or below it and raises it in the same atomic step, so a batch sent
again after a crash (between the script and the save of the engine's own position) adds nothing.
Entry ids stay `*` (Redis time), as the real exporter's, because one stream holds every
partition's records and positions are only ordered within a partition.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from typing import Any

import redis

from engine.exporters.positions import ExporterPositions
from engine.exporters.runner import ExporterConfigError, dumps_record

log = logging.getLogger("engine.exporters.redis")

# KEYS[1]: the positions hash. ARGV: partition id, export time (the field name), then
# (stream, position, payload) per record in position order.
EXPORT_SCRIPT = """
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local top = last
local added = 0
for i = 3, #ARGV, 3 do
  local position = tonumber(ARGV[i + 1])
  if position > top then
    redis.call('XADD', ARGV[i], '*', ARGV[2], ARGV[i + 2])
    top = position
    added = added + 1
  end
end
if top > last then
  redis.call('HSET', KEYS[1], ARGV[1], tostring(top))
end
return {added, tostring(top)}
"""

RECORD_TYPES = ("EVENT", "COMMAND", "COMMAND_REJECTION")
SOCKET_TIMEOUT_SECONDS = 10.0


def _names(text: str) -> frozenset[str]:
    return frozenset(item.strip().upper() for item in text.split(",") if item.strip())


class RedisStreamsExporter:
    def __init__(self, url: str):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
            raise ExporterConfigError(f"--export {url}: expected redis://HOST:PORT[/DB]")
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        unknown = set(query) - {"name", "value_types", "record_types"}
        if unknown:
            raise ExporterConfigError(
                f"--export {url}: unknown option(s) {', '.join(sorted(unknown))} "
                "(known: name, value_types, record_types)"
            )
        self.name = (query.get("name") or ["zeebe"])[-1]
        if not self.name or ":" in self.name:
            raise ExporterConfigError(f"--export {url}: name must be non-empty and without ':'")
        self.value_types = _names((query.get("value_types") or [""])[-1])
        self.record_types = _names((query.get("record_types") or [""])[-1])
        if not self.record_types <= set(RECORD_TYPES):
            raise ExporterConfigError(f"--export {url}: record_types must be among {', '.join(RECORD_TYPES)}")
        try:
            port = parsed.port or 6379
            db = int(parsed.path.strip("/") or 0)
        except ValueError as exc:
            raise ExporterConfigError(f"--export {url}: {exc}") from None
        self.url = urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path, "", ""))
        self.positions_key = f"{self.name}:exporter-positions"
        self.exporter_id = f"redis-{parsed.hostname}-{port}-{db}-{self.name}"
        safe_netloc = parsed.hostname + (f":{parsed.port}" if parsed.port else "")
        self.description = f"redis://{safe_netloc}/{db} ({self.name}:*)"
        self.client = redis.Redis.from_url(
            self.url,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        )
        self._script = self.client.register_script(EXPORT_SCRIPT)

    def open(self, positions: ExporterPositions, log_ends: dict[int, int]) -> None:
        stored = self.client.hgetall(self.positions_key)
        for field, value in stored.items():
            partition_id, position = int(field), int(value)
            if partition_id in log_ends and position > log_ends[partition_id]:
                # Positions restart at 1 in a new data directory: the script would skip every
                # record up to this position, silently. Refuse instead.
                raise ExporterConfigError(
                    f"Redis says partition {partition_id} was exported up to position {position}, but "
                    f"this engine's log ends at {log_ends[partition_id]}: the streams hold another "
                    f"engine's records. Use another ?name= or delete the key {self.positions_key!r} "
                    "(and the streams) in Redis"
                )

    def accepts(self, record: dict[str, Any]) -> bool:
        return (not self.value_types or record["valueType"] in self.value_types) and (
            not self.record_types or record["recordType"] in self.record_types
        )

    def export(self, partition_id: int, records: list[dict[str, Any]]) -> None:
        args: list[Any] = [partition_id, int(time.time() * 1000)]
        for record in records:
            args += [
                f"{self.name}:{record['valueType']}",
                record["position"],
                dumps_record(record),
            ]
        self._script(keys=[self.positions_key], args=args)

    def metadata(self, partition_id: int) -> dict[str, Any] | None:
        return None

    def close(self) -> None:
        self.client.close()
