"""The per-partition append-only record log: the engine's source of truth.

Layout: ``DIR/partition-<n>/segment-<first position, 20 digits>.log``. Each entry is one record:

    4-byte big-endian header word | 4-byte big-endian CRC32 of the payload | UTF-8 JSON payload

The header word holds the payload length in its low 31 bits. Its top bit (``BATCH_END``) marks
the last record of an atomically written batch (all records produced by the commands processed
in one group commit). Readers only ever return records of *complete* batches, and the writer
truncates an incomplete or torn tail at start-up, so a crash in the middle of a write can never
leave half of a command's consequences visible (Zeebe writes a command's follow-up events as one
atomic log batch, too).

The payload is exactly the record JSON of reference §3.3 (value included). Besides EVENT records
the log holds the client commands (`recordType` COMMAND) and their rejections
(COMMAND_REJECTION), like a broker's log; an exporter of events filters on `recordType`. Positions are
consecutive per partition starting at 1, and a segment's file name holds its first position, so
``LogReader.read(from_position)`` finds its segment by name and skips records by header only.

Public reader API (stable; used by the importer in another process while the engine writes):

    partition_ids(data_dir) -> list[int]
    LogReader(data_dir, partition_id).read(from_position=1, max_records=10_000) -> list[dict]
    LogReader(data_dir, partition_id).iter_records(from_position=1) -> Iterator[dict]
"""

from __future__ import annotations

import bisect
import json
import os
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HEADER = struct.Struct(">II")
BATCH_END = 0x8000_0000
LENGTH_MASK = 0x7FFF_FFFF
SEGMENT_MAX_BYTES = 64 * 1024 * 1024
_SEGMENT_NAME = re.compile(r"^segment-(\d{20})\.log$")
_PARTITION_DIR = re.compile(r"^partition-(\d+)$")


def partition_dir(data_dir: str | Path, partition_id: int) -> Path:
    return Path(data_dir) / f"partition-{partition_id}"


def partition_ids(data_dir: str | Path) -> list[int]:
    """Partition ids that have a log directory under ``data_dir``, ascending."""
    root = Path(data_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _PARTITION_DIR.match(child.name)
        if match and child.is_dir():
            found.append(int(match.group(1)))
    return sorted(found)


def _segments(directory: Path) -> list[tuple[int, Path]]:
    """(first position, path) of every segment, ascending by first position."""
    if not directory.is_dir():
        return []
    segments = []
    for child in directory.iterdir():
        match = _SEGMENT_NAME.match(child.name)
        if match:
            segments.append((int(match.group(1)), child))
    segments.sort()
    return segments


def _segment_path(directory: Path, first_position: int) -> Path:
    return directory / f"segment-{first_position:020d}.log"


def encode_entry(payload: bytes, batch_end: bool) -> bytes:
    word = len(payload) | (BATCH_END if batch_end else 0)
    return HEADER.pack(word, zlib.crc32(payload)) + payload


def _scan_complete(data: bytes, start: int = 0) -> tuple[list[tuple[int, int]], int]:
    """Frames of complete batches in ``data`` from ``start``.

    Returns ((payload offset, payload length) per record, end offset of the last complete batch).
    Stops at the first short or corrupt frame: that is a torn tail or a batch still being written.
    """
    frames: list[tuple[int, int]] = []
    pending: list[tuple[int, int]] = []
    offset = start
    committed_end = start
    size = len(data)
    while offset + HEADER.size <= size:
        word, crc = HEADER.unpack_from(data, offset)
        length = word & LENGTH_MASK
        begin = offset + HEADER.size
        end = begin + length
        if end > size or zlib.crc32(data[begin:end]) != crc:
            break
        pending.append((begin, length))
        offset = end
        if word & BATCH_END:
            frames.extend(pending)
            pending = []
            committed_end = offset
    return frames, committed_end


class LogReader:
    """Read-only access to one partition's log; safe while the engine appends to it.

    Only records of complete, CRC-valid batches are returned. Positions are consecutive, so
    ``read(from_position)`` opens the segment whose name covers the position and skips the
    records before it by their headers. The reader remembers where its last read ended, which
    makes tailing the log (``read(last + 1)`` in a loop) cost only the new bytes.
    """

    def __init__(self, data_dir: str | Path, partition_id: int):
        self.partition_id = partition_id
        self.directory = partition_dir(data_dir, partition_id)
        # Resume point of the previous read: (next position, segment first position, byte offset).
        self._resume: tuple[int, int, int] | None = None

    def read(self, from_position: int = 1, max_records: int = 10_000) -> list[dict[str, Any]]:
        """Records with position >= ``from_position``, in order, at most ``max_records``."""
        records: list[dict[str, Any]] = []
        if max_records <= 0:
            return records
        for record in self.iter_records(from_position):
            records.append(record)
            if len(records) >= max_records:
                break
        return records

    def iter_records(self, from_position: int = 1) -> Iterator[dict[str, Any]]:
        """Every record with position >= ``from_position`` that is complete right now."""
        from_position = max(1, from_position)
        segments = _segments(self.directory)
        if not segments:
            return
        firsts = [first for first, _ in segments]
        index = max(0, bisect.bisect_right(firsts, from_position) - 1)
        for seg_index in range(index, len(segments)):
            first, path = segments[seg_index]
            start_offset, start_position = 0, first
            if self._resume and self._resume[1] == first and self._resume[0] <= from_position:
                start_position, _, start_offset = self._resume
            try:
                with open(path, "rb") as handle:
                    handle.seek(start_offset)
                    data = handle.read()
            except FileNotFoundError:
                return
            frames, committed_end = _scan_complete(data)
            position = start_position
            for begin, length in frames:
                if position >= from_position:
                    record = json.loads(data[begin : begin + length])
                    self._resume = (position + 1, first, start_offset + begin + length)
                    yield record
                position += 1
            if frames:
                self._resume = (position, first, start_offset + committed_end)
            next_first = segments[seg_index + 1][0] if seg_index + 1 < len(segments) else None
            if next_first is None or position < next_first:
                # The tail of the newest segment (or a gap we must not skip) ends the read.
                return

    def last_position(self) -> int:
        """Position of the newest complete record, 0 when the log is empty."""
        last = 0
        for record in self.iter_records(1):
            last = record["position"]
        return last


class LogWriter:
    """Appends record batches to one partition's log (single writer: the engine process).

    On open, the torn or incomplete tail of the newest segment is truncated away, so a crash
    leaves only whole batches. ``append_batch`` writes without syncing; ``sync`` makes
    everything written so far durable. The engine acknowledges a command only after the
    ``sync`` that covers its batch (group commit: many batches, one fsync).
    """

    def __init__(self, data_dir: str | Path, partition_id: int, segment_max_bytes: int = SEGMENT_MAX_BYTES):
        self.directory = partition_dir(data_dir, partition_id)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segment_max_bytes = segment_max_bytes
        self.next_position = 1
        self._file: Any = None
        self._size = 0
        self._open_tail()

    def _open_tail(self) -> None:
        segments = _segments(self.directory)
        # Drop empty trailing segments left by a crash right after a roll-over.
        while segments and segments[-1][1].stat().st_size == 0 and len(segments) > 1:
            segments.pop()[1].unlink()
        if not segments:
            path = _segment_path(self.directory, 1)
            self._file = open(path, "ab")  # noqa: SIM115 - the writer keeps its segment open
            self._size = 0
            self.next_position = 1
            self._fsync_dir()
            return
        first, path = segments[-1]
        data = path.read_bytes()
        frames, committed_end = _scan_complete(data)
        if committed_end != len(data):
            with open(path, "r+b") as handle:
                handle.truncate(committed_end)
                handle.flush()
                os.fsync(handle.fileno())
        self._file = open(path, "ab")  # noqa: SIM115 - the writer keeps its segment open
        self._size = committed_end
        self.next_position = first + len(frames)

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def append_batch(self, payloads: list[bytes]) -> None:
        """Write one atomic batch (already positioned records, consecutive from next_position)."""
        if not payloads:
            return
        if self._size >= self.segment_max_bytes:
            self._roll()
        last = len(payloads) - 1
        buffer = b"".join(encode_entry(payload, index == last) for index, payload in enumerate(payloads))
        self._file.write(buffer)
        self._file.flush()  # hand the bytes to the OS now: readers in other processes see them
        self._size += len(buffer)
        self.next_position += len(payloads)

    def _roll(self) -> None:
        self.sync()
        self._file.close()
        self._file = open(_segment_path(self.directory, self.next_position), "ab")  # noqa: SIM115 - the writer keeps its segment open
        self._size = 0
        self._fsync_dir()

    def fileno(self) -> int:
        return int(self._file.fileno())

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self.sync()
            self._file.close()
            self._file = None
