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


READ_CHUNK = 1024 * 1024
INDEX_EVERY = 1024


def _iter_batches(handle: Any, start_offset: int, unchecked: int = 0) -> Iterator[tuple[list[bytes], int]]:
    """Complete batches from `start_offset` (a batch boundary): (payloads, offset after batch).

    Reads the file in chunks, so a reader never holds more than a chunk plus one batch; stops
    at the first short or corrupt frame (torn tail, or a batch still being written). The CRC of
    the first `unchecked` records is not verified: they are only skipped over, never returned,
    and a torn tail can only follow them.
    """
    handle.seek(start_offset)
    buffer = b""
    buffer_offset = start_offset
    index = 0
    pending: list[bytes] = []
    while True:
        if len(buffer) - index < HEADER.size:
            chunk = handle.read(READ_CHUNK)
            if not chunk:
                return
            buffer = buffer[index:] + chunk
            buffer_offset += index
            index = 0
            continue
        word, crc = HEADER.unpack_from(buffer, index)
        end = index + HEADER.size + (word & LENGTH_MASK)
        if len(buffer) < end:
            # Drop what was consumed before growing: appending to the whole buffer would copy the
            # file read so far again for every record that straddles a chunk (quadratic reads).
            buffer = buffer[index:]
            buffer_offset += index
            end -= index
            index = 0
        while len(buffer) < end:
            chunk = handle.read(max(READ_CHUNK, end - len(buffer)))
            if not chunk:
                return
            buffer += chunk
        payload = buffer[index + HEADER.size : end]
        if unchecked > 0:
            unchecked -= 1
        elif zlib.crc32(payload) != crc:
            return
        pending.append(payload)
        index = end
        if word & BATCH_END:
            yield pending, buffer_offset + index
            pending = []


class LogReader:
    """Read-only access to one partition's log; safe while the engine appends to it.

    Only records of complete, CRC-valid batches are returned. Positions are consecutive, so
    `read(from_position)` opens the segment whose name covers the position, then starts from
    the nearest entry of a sparse (position -> byte offset) index this reader builds while it
    reads, and skips the records before `from_position` by their headers only. Tailing the log
    (`read(last + 1)` in a loop) therefore costs only the new bytes; records are parsed lazily,
    so `max_records` bounds the work of one call.
    """

    def __init__(self, data_dir: str | Path, partition_id: int):
        self.partition_id = partition_id
        self.directory = partition_dir(data_dir, partition_id)
        # segment first position -> sorted [(position at a batch boundary, byte offset)]
        self._index: dict[int, list[tuple[int, int]]] = {}
        # segment first position -> (position, offset) right after the last batch read
        self._tail: dict[int, tuple[int, int]] = {}

    def read(self, from_position: int = 1, max_records: int = 10_000) -> list[dict[str, Any]]:
        """Records with position >= `from_position`, in order, at most `max_records`."""
        records: list[dict[str, Any]] = []
        if max_records <= 0:
            return records
        for record in self.iter_records(from_position):
            records.append(record)
            if len(records) >= max_records:
                break
        return records

    def _remember(self, first: int, position: int, offset: int) -> None:
        entries = self._index.setdefault(first, [(first, 0)])
        if position - entries[-1][0] >= INDEX_EVERY:
            entries.append((position, offset))
        tail = self._tail.get(first)
        if tail is None or position > tail[0]:
            self._tail[first] = (position, offset)

    def _start(self, first: int, from_position: int) -> tuple[int, int]:
        tail = self._tail.get(first)
        if tail is not None and tail[0] <= from_position:
            return tail
        entries = self._index.get(first)
        if not entries:
            return first, 0
        found = bisect.bisect_right(entries, (from_position, float("inf"))) - 1
        return entries[max(0, found)]

    def iter_records(self, from_position: int = 1) -> Iterator[dict[str, Any]]:
        """Every record with position >= `from_position` that is complete right now."""
        from_position = max(1, from_position)
        segments = _segments(self.directory)
        if not segments:
            return
        firsts = [first for first, _ in segments]
        start_index = max(0, bisect.bisect_right(firsts, from_position) - 1)
        for seg_index in range(start_index, len(segments)):
            first, path = segments[seg_index]
            position, offset = self._start(first, from_position)
            try:
                handle = open(path, "rb")  # noqa: SIM115 - closed in the finally below
            except FileNotFoundError:
                return
            try:
                for payloads, batch_end in _iter_batches(
                    handle, offset, max(0, from_position - position - 1)
                ):
                    for payload in payloads:
                        if position >= from_position:
                            yield json.loads(payload)
                        position += 1
                    self._remember(first, position, batch_end)
            finally:
                handle.close()
            next_first = segments[seg_index + 1][0] if seg_index + 1 < len(segments) else None
            if next_first is None or position < next_first:
                # The tail of the newest segment (or a gap we must not skip) ends the read.
                return

    def last_position(self) -> int:
        """Position of the newest complete record, 0 when the log is empty."""
        segments = _segments(self.directory)
        if not segments:
            return 0
        first, path = segments[-1]
        position, offset = self._start(first, 1 << 62)
        with open(path, "rb") as handle:
            for payloads, batch_end in _iter_batches(handle, offset):
                position += len(payloads)
                self._remember(first, position, batch_end)
        return position - 1


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
