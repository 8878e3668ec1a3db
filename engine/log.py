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

Damage. Only a torn tail (the newest segment ends in an incomplete batch, or in bytes after the
last complete batch that hold no further valid frame) is expected: it is what a crash in the
middle of a write leaves, it was never acknowledged, and the writer cuts it at start-up. Any other
damage (a bad frame with valid frames after it, a segment that ends short of the next one, a
record whose position is not the next one) raises `LogCorruption` naming the file and byte
offset, from the writer (the engine refuses to start) and from the reader (the importer stops
loudly instead of short). `python -m engine check-log DIR` reports every partition's damage and
`--repair` cuts a damaged partition at its first bad frame, keeping what was cut aside.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("engine.log")

HEADER = struct.Struct(">II")
BATCH_END = 0x8000_0000
LENGTH_MASK = 0x7FFF_FFFF
SEGMENT_MAX_BYTES = 64 * 1024 * 1024
_SEGMENT_NAME = re.compile(r"^segment-(\d{20})\.log$")
_PARTITION_DIR = re.compile(r"^partition-(\d+)$")


class LogCorruption(Exception):
    """The log is damaged somewhere other than its torn tail: refuse to guess what was lost."""

    def __init__(self, path: Path, offset: int, detail: str):
        super().__init__(
            f"log damaged in {path} at byte offset {offset}: {detail}. Nothing was changed; "
            f"inspect it with `python -m engine check-log {path.parent.parent}` (`--repair` cuts the log there)"
        )
        self.path = path
        self.offset = offset
        self.detail = detail


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


# A resynchronisation scan tries at most this many candidate frame starts after a bad frame.
RESYNC_CANDIDATES = 20_000


def _valid_frame_at(data: bytes, offset: int) -> bool:
    """A complete frame with a matching CRC and a JSON-object payload starts at `offset`."""
    if offset + HEADER.size >= len(data):
        return False
    word, crc = HEADER.unpack_from(data, offset)
    length = word & LENGTH_MASK
    begin = offset + HEADER.size
    end = begin + length
    return length > 0 and end <= len(data) and data[begin] == 0x7B and zlib.crc32(data[begin:end]) == crc


def valid_frame_after(data: bytes, start: int) -> int | None:
    """Offset of the first valid record frame that starts after `start`, or None.

    Decides between a torn tail (nothing valid follows the damage: a crash cut the last write)
    and damage in the middle of the log (valid records follow it). Payloads are JSON objects,
    so only offsets 8 bytes before a `{` are candidates.
    """
    search = start + 1 + HEADER.size
    for _ in range(RESYNC_CANDIDATES):
        brace = data.find(b"{", search)
        if brace < 0:
            return None
        if _valid_frame_at(data, brace - HEADER.size):
            return brace - HEADER.size
        search = brace + 1
    return None


def inspect_segment(data: bytes) -> tuple[int, int, int | None, bool]:
    """(complete records, end of the last complete batch, first bad offset, damaged mid-log).

    The first bad offset is None when every frame is fine (an incomplete last batch may still
    follow the committed end). `damaged mid-log` is True when a valid frame follows a bad one.
    """
    frames, committed_end = _scan_complete(data)
    offset = committed_end
    size = len(data)
    while offset + HEADER.size <= size:
        word, crc = HEADER.unpack_from(data, offset)
        end = offset + HEADER.size + (word & LENGTH_MASK)
        if end > size or zlib.crc32(data[offset + HEADER.size : end]) != crc:
            return len(frames), committed_end, offset, valid_frame_after(data, offset) is not None
        offset = end
    if offset < size:
        return len(frames), committed_end, offset, False
    return len(frames), committed_end, None, False


READ_CHUNK = 1024 * 1024
INDEX_EVERY = 1024


class _BadFrame(Exception):
    """A complete frame whose CRC does not match (`offset` is where its header starts)."""

    def __init__(self, offset: int):
        super().__init__(offset)
        self.offset = offset


def _iter_batches(
    handle: Any, start_offset: int, unchecked: int = 0
) -> Iterator[tuple[list[bytes], int, int]]:
    """Complete batches from `start_offset` (a batch boundary): (payloads, batch start, batch end).

    Reads the file in chunks, so a reader never holds more than a chunk plus one batch; stops
    at the first short frame (a batch still being written, or a torn tail) and raises
    `_BadFrame` at a complete frame with a wrong CRC (the caller decides whether that is a torn
    tail or damage). The CRC of the first `unchecked` records is not verified: they are only
    skipped over, never returned, and a torn tail can only follow them.
    """
    handle.seek(start_offset)
    buffer = b""
    buffer_offset = start_offset
    index = 0
    batch_start = start_offset
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
            raise _BadFrame(buffer_offset + index)
        pending.append(payload)
        index = end
        if word & BATCH_END:
            yield pending, batch_start, buffer_offset + index
            batch_start = buffer_offset + index
            pending = []


def _damage_follows(path: Path, offset: int) -> bool:
    """True if a valid frame follows the bad frame at `offset` (damage, not a torn tail)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    return valid_frame_after(data, offset) is not None


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
            last_segment = seg_index + 1 == len(segments)
            try:
                for payloads, batch_start, batch_end in _iter_batches(
                    handle, offset, max(0, from_position - position - 1)
                ):
                    for payload in payloads:
                        if position >= from_position:
                            record = json.loads(payload)
                            if record.get("position") != position:
                                raise LogCorruption(
                                    path,
                                    batch_start,
                                    f"record number {position} of the partition carries position "
                                    f"{record.get('position')} (positions must be dense)",
                                )
                            yield record
                        position += 1
                    self._remember(first, position, batch_end)
            except _BadFrame as bad:
                if not last_segment or _damage_follows(path, bad.offset):
                    raise LogCorruption(
                        path, bad.offset, "checksum mismatch with valid records after it"
                    ) from None
                return  # a torn tail: the writer cuts it at start-up
            finally:
                handle.close()
            if last_segment:
                return  # the tail of the newest segment ends the read
            next_first = segments[seg_index + 1][0]
            if position != next_first:
                # A closed segment is always complete: anything else is a hole in the log.
                raise LogCorruption(
                    path,
                    path.stat().st_size,
                    f"segment ends before position {position} but the next segment starts at "
                    f"position {next_first}",
                )

    def last_position(self) -> int:
        """Position of the newest complete record, 0 when the log is empty."""
        segments = _segments(self.directory)
        if not segments:
            return 0
        first, path = segments[-1]
        position, offset = self._start(first, 1 << 62)
        with open(path, "rb") as handle:
            try:
                for payloads, _, batch_end in _iter_batches(handle, offset):
                    position += len(payloads)
                    self._remember(first, position, batch_end)
            except _BadFrame as bad:
                if _damage_follows(path, bad.offset):
                    raise LogCorruption(
                        path, bad.offset, "checksum mismatch with valid records after it"
                    ) from None
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
        frames, committed_end, bad_offset, mid_log = inspect_segment(data)
        if mid_log:
            assert bad_offset is not None
            raise LogCorruption(path, bad_offset, "checksum mismatch with valid records after it")
        if committed_end != len(data):
            log.warning(
                "%s: cutting a torn tail of %d bytes at offset %d (an unfinished, never acknowledged write)",
                path,
                len(data) - committed_end,
                committed_end,
            )
            with open(path, "r+b") as handle:
                handle.truncate(committed_end)
                handle.flush()
                os.fsync(handle.fileno())
        self._file = open(path, "ab")  # noqa: SIM115 - the writer keeps its segment open
        self._size = committed_end
        self.next_position = first + frames

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


# ---------------------------------------------------------------------- check-log (offline tool)
def _batches(data: bytes, end: int) -> Iterator[tuple[int, list[tuple[int, int]]]]:
    """(batch start offset, [(payload offset, length)]) of the complete batches before `end`."""
    offset = 0
    start = 0
    frames: list[tuple[int, int]] = []
    while offset < end:
        word, _ = HEADER.unpack_from(data, offset)
        length = word & LENGTH_MASK
        frames.append((offset + HEADER.size, length))
        offset += HEADER.size + length
        if word & BATCH_END:
            yield start, frames
            start, frames = offset, []


def check_partition(directory: Path) -> tuple[list[str], tuple[Path, int, int] | None]:
    """Report lines for one partition directory and its first damage: (segment, cut offset,
    position after the cut) or None. Only reads; never writes."""
    lines: list[str] = []
    segments = _segments(directory)
    expected = segments[0][0] if segments else 1
    if segments and expected != 1:
        lines.append(f"DAMAGE {segments[0][1]}: the first segment starts at position {expected}, not 1")
        return lines, (segments[0][1], 0, 1)
    for index, (first, path) in enumerate(segments):
        last_segment = index + 1 == len(segments)
        if first != expected:
            lines.append(
                f"DAMAGE {path}: starts at position {first}, but the previous segment ends before {expected}"
            )
            return lines, (segments[index - 1][1], segments[index - 1][1].stat().st_size, expected)
        data = path.read_bytes()
        _, committed_end, bad_offset, mid_log = inspect_segment(data)
        position = first
        for batch_start, frames in _batches(data, committed_end):
            batch_first = position
            for begin, length in frames:
                try:
                    found = json.loads(data[begin : begin + length]).get("position")
                except ValueError:
                    found = "unparsable JSON"
                if found != position:
                    lines.append(
                        f"DAMAGE {path} at byte offset {batch_start}: expected position {position}, found {found}"
                    )
                    return lines, (path, batch_start, batch_first)
                position += 1
        lines.append(f"ok     {path}: positions {first}..{position - 1} ({position - first} records)")
        if bad_offset is not None or committed_end != len(data):
            cut = committed_end
            if mid_log or not last_segment:
                lines.append(
                    f"DAMAGE {path} at byte offset {bad_offset if bad_offset is not None else committed_end}: "
                    f"bad frame{' with valid records after it' if mid_log else ''}"
                    f"{'' if last_segment else ' in a closed segment'}"
                )
                return lines, (path, cut, position)
            lines.append(
                f"torn   {path}: {len(data) - committed_end} bytes after offset {committed_end} "
                "(an unfinished write; the engine cuts it at start-up)"
            )
        expected = position
    snapshot = directory / "snapshot.json"
    if snapshot.exists():
        try:
            last = json.loads(snapshot.read_text())["lastPosition"]
        except (ValueError, KeyError, TypeError) as exc:
            lines.append(f"warn   {snapshot}: unreadable ({exc}); the engine replays the whole log instead")
        else:
            if last >= expected:
                lines.append(
                    f"warn   {snapshot}: covers position {last}, beyond the log's end {expected - 1}; ignored"
                )
            else:
                lines.append(f"ok     {snapshot}: up to position {last}")
    return lines, None


def repair_partition(directory: Path, damage: tuple[Path, int, int]) -> list[str]:
    """Cut the partition's log at the damage: the damaged segment is truncated at the last
    complete batch before it, and everything cut (its tail and later segments, a snapshot
    beyond the new end) is moved to `DIR/partition-N/damaged-<time>/` for inspection."""
    import time

    path, cut, next_position = damage
    aside = directory / f"damaged-{time.strftime('%Y%m%dT%H%M%S')}"
    aside.mkdir(exist_ok=True)
    lines = []
    data = path.read_bytes()
    (aside / f"{path.name}.from-offset-{cut}").write_bytes(data[cut:])
    with open(path, "r+b") as handle:
        handle.truncate(cut)
        handle.flush()
        os.fsync(handle.fileno())
    lines.append(f"cut    {path} at offset {cut}: {len(data) - cut} bytes moved to {aside}")
    damaged_first = next(first for first, segment in _segments(directory) if segment == path)
    for first, later in _segments(directory):
        if first > damaged_first:
            os.replace(later, aside / later.name)
            lines.append(f"moved  {later} to {aside}")
    snapshot = directory / "snapshot.json"
    if snapshot.exists():
        try:
            last = json.loads(snapshot.read_text())["lastPosition"]
        except (ValueError, KeyError, TypeError):
            last = None
        if last is None or last >= next_position:
            os.replace(snapshot, aside / "snapshot.json")
            lines.append(f"moved  {snapshot} to {aside}")
    lines.append(f"the log of {directory.name} now ends before position {next_position}")
    return lines


def check_log(data_dir: str | Path, repair: bool = False) -> tuple[list[str], bool]:
    """(report lines, healthy) for every partition under `data_dir`; `repair` cuts damage."""
    lines: list[str] = []
    healthy = True
    for partition_id in partition_ids(data_dir):
        directory = partition_dir(data_dir, partition_id)
        report, damage = check_partition(directory)
        lines.extend(report)
        if damage is not None:
            if repair:
                lines.extend(repair_partition(directory, damage))
            else:
                healthy = False
    return lines, healthy
