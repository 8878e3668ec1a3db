"""Lay a real engine's records out as an engine log again (engine.log.LogWriter), e.g. in small
segments, with one entry replaced, so tests can cut segments out or flip a bit in them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.log import LogWriter, partition_dir


def write_log(
    data_dir: Path,
    records: list[dict[str, Any]],
    *,
    segment_max_bytes: int = 64 * 1024 * 1024,
    replace: Callable[[dict[str, Any]], bytes | None] | None = None,
) -> None:
    """One batch per record, positions as in `records`; `replace` may return other bytes for a record."""
    by_partition: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        by_partition.setdefault(record["partitionId"], []).append(record)
    for partition_id, found in by_partition.items():
        found.sort(key=lambda record: record["position"])
        assert [record["position"] for record in found] == list(range(1, len(found) + 1))
        writer = LogWriter(data_dir, partition_id, segment_max_bytes=segment_max_bytes)
        try:
            for record in found:
                payload = replace(record) if replace is not None else None
                writer.append_batch([payload if payload is not None else json.dumps(record).encode()])
        finally:
            writer.close()


def segments(data_dir: Path, partition_id: int) -> list[Path]:
    return sorted(partition_dir(data_dir, partition_id).glob("segment-*.log"))


def segment_first(path: Path) -> int:
    return int(path.name.removeprefix("segment-").removesuffix(".log"))


def flip_bit(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))
