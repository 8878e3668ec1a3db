"""Reading what the exporters wrote: a Redis streams consumer and the engine log's records."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import redis

from engine.log import LogReader, partition_ids


def stream_name() -> str:
    """A `?name=` of its own per test: tests share one Redis."""
    return f"t{uuid.uuid4().hex[:12]}"


def log_records(data_dir: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for partition_id in partition_ids(data_dir):
        found.extend(LogReader(data_dir, partition_id).read(1, 10_000_000))
    return found


class StreamConsumer:
    """A consumer as the real connector reads (reference §3.9): a consumer group per application
    on every `<name>:*` stream, XREADGROUP, the single field's value is the record JSON, XACK."""

    def __init__(self, url: str, name: str, group: str = "test-consumer") -> None:
        self.client = redis.Redis.from_url(url)
        self.name = name
        self.group = group
        self.streams: set[bytes] = set()
        self.records: list[dict[str, Any]] = []
        self.fields: list[bytes] = []
        self.entry_ids: list[bytes] = []

    def poll(self, count: int = 500) -> int:
        for stream in self.client.scan_iter(match=f"{self.name}:*", _type="STREAM", count=1000):
            if stream not in self.streams:
                try:
                    self.client.xgroup_create(stream, self.group, id="0")
                except redis.ResponseError as error:
                    assert "BUSYGROUP" in str(error), error
                self.streams.add(stream)
        if not self.streams:
            return 0
        response: Any = self.client.xreadgroup(
            self.group, "c1", dict.fromkeys(self.streams, ">"), count=count
        )
        read = 0
        for stream, entries in response or []:
            for entry_id, fields in entries:
                assert len(fields) == 1, f"{stream!r} {entry_id!r}: expected one field, got {fields!r}"
                ((field, payload),) = fields.items()
                record = json.loads(payload)
                assert stream.decode() == f"{self.name}:{record['valueType']}"
                self.records.append(record)
                self.fields.append(field)
                self.entry_ids.append(entry_id)
                self.client.xack(stream, self.group, entry_id)
                read += 1
        return read

    def drain(self) -> None:
        while self.poll():
            pass

    def duplicates(self) -> list[tuple[int, int]]:
        seen = Counter((record["partitionId"], record["position"]) for record in self.records)
        return sorted(key for key, times in seen.items() if times > 1)

    def identities(self) -> set[tuple[int, int]]:
        return {(record["partitionId"], record["position"]) for record in self.records}

    def close(self) -> None:
        self.client.close()


def exporter_pid(engine_log: str) -> int:
    """The pid of the engine's newest exporters child (engine/exporters/process.py logs it)."""
    found = re.findall(r"exporters started \(pid (\d+)\)", engine_log)
    assert found, f"no exporters child in the engine log:\n{engine_log[-3000:]}"
    return int(found[-1])


def process_gone(pid: int) -> bool:
    """Exited (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def process_report(pid: int) -> str:
    """What a process that should have ended is doing: its state and each thread's kernel wait
    channel (for a failure message)."""
    lines = []
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        lines += [line for line in status.splitlines() if line.startswith(("State:", "PPid:", "Threads:"))]
        for task in sorted(Path(f"/proc/{pid}/task").iterdir()):
            wchan = (task / "wchan").read_text().strip() or "-"
            comm = (task / "comm").read_text().strip()
            lines.append(f"thread {task.name} {comm}: {wchan}")
    except OSError as error:
        lines.append(f"/proc/{pid}: {error}")
    return f"process {pid}: " + "; ".join(lines)
