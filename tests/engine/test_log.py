"""The record log: framing, batches, torn tails, segments and the reader API."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.log import LogReader, LogWriter, encode_entry, partition_ids


def payload(position: int, **extra: object) -> bytes:
    return json.dumps({"position": position, "valueType": "JOB", **extra}).encode()


def write_batches(data_dir: Path, batches: list[int], segment_max_bytes: int = 64 * 1024 * 1024) -> LogWriter:
    writer = LogWriter(data_dir, 1, segment_max_bytes=segment_max_bytes)
    for size in batches:
        first = writer.next_position
        writer.append_batch([payload(first + offset) for offset in range(size)])
    writer.sync()
    return writer


def test_entries_are_length_crc_json_frames(tmp_path: Path) -> None:
    write_batches(tmp_path, [2]).close()
    segment = next((tmp_path / "partition-1").glob("segment-*.log"))
    data = segment.read_bytes()
    word, crc = struct.unpack_from(">II", data, 0)
    length = word & 0x7FFF_FFFF
    body = data[8 : 8 + length]
    assert zlib.crc32(body) == crc
    assert json.loads(body)["position"] == 1
    assert word & 0x8000_0000 == 0  # first record of the batch: not the batch end
    word2, _ = struct.unpack_from(">II", data, 8 + length)
    assert word2 & 0x8000_0000  # last record carries the batch-end flag


def test_reader_returns_records_from_position_in_order(tmp_path: Path) -> None:
    write_batches(tmp_path, [3, 4, 5]).close()
    reader = LogReader(tmp_path, 1)
    assert [r["position"] for r in reader.read()] == list(range(1, 13))
    assert [r["position"] for r in reader.read(7, max_records=3)] == [7, 8, 9]
    assert [r["position"] for r in reader.iter_records(11)] == [11, 12]
    assert reader.read(13) == []
    assert partition_ids(tmp_path) == [1]


def test_reader_tails_a_growing_log(tmp_path: Path) -> None:
    writer = write_batches(tmp_path, [2])
    reader = LogReader(tmp_path, 1)
    assert [r["position"] for r in reader.read(1)] == [1, 2]
    writer.append_batch([payload(3), payload(4)])
    assert [r["position"] for r in reader.read(3)] == [3, 4]
    writer.close()


def test_torn_tail_is_invisible_and_truncated_by_the_writer(tmp_path: Path) -> None:
    write_batches(tmp_path, [2, 3]).close()
    segment = next((tmp_path / "partition-1").glob("segment-*.log"))
    data = segment.read_bytes()
    segment.write_bytes(data[:-5])  # tear the last record of the second batch
    reader = LogReader(tmp_path, 1)
    # the whole incomplete batch is hidden, not just its torn record
    assert [r["position"] for r in reader.read()] == [1, 2]
    writer = LogWriter(tmp_path, 1)
    assert writer.next_position == 3
    writer.append_batch([payload(3)])
    writer.close()
    assert [r["position"] for r in LogReader(tmp_path, 1).read()] == [1, 2, 3]


def test_crc_mismatch_stops_the_reader(tmp_path: Path) -> None:
    write_batches(tmp_path, [1, 1, 1]).close()
    segment = next((tmp_path / "partition-1").glob("segment-*.log"))
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF  # corrupt the last record's payload
    segment.write_bytes(bytes(data))
    assert [r["position"] for r in LogReader(tmp_path, 1).read()] == [1, 2]


def test_segments_roll_and_are_found_by_position(tmp_path: Path) -> None:
    write_batches(tmp_path, [10] * 20, segment_max_bytes=2000).close()
    segments = sorted((tmp_path / "partition-1").glob("segment-*.log"))
    assert len(segments) > 3
    firsts = [int(path.stem.split("-")[1]) for path in segments]
    assert firsts[0] == 1 and firsts == sorted(firsts)
    reader = LogReader(tmp_path, 1)
    assert [r["position"] for r in reader.read(155, max_records=10)] == list(range(155, 165))
    assert [r["position"] for r in reader.read()] == list(range(1, 201))
    reopened = LogWriter(tmp_path, 1, segment_max_bytes=2000)
    assert reopened.next_position == 201
    reopened.close()


def test_empty_or_missing_partition(tmp_path: Path) -> None:
    assert partition_ids(tmp_path / "nothing") == []
    assert LogReader(tmp_path, 3).read() == []


def test_last_position_and_reading_a_large_segment_in_small_steps(tmp_path: Path) -> None:
    writer = write_batches(tmp_path, [50] * 100)  # 5000 records, one segment
    reader = LogReader(tmp_path, 1)
    assert reader.last_position() == 5000
    seen = []
    position = 1
    for _ in range(100):  # bounded: 5000 records in steps of 64
        batch = reader.read(position, max_records=64)
        if not batch:
            break
        seen.extend(r["position"] for r in batch)
        position = batch[-1]["position"] + 1
    assert seen == list(range(1, 5001))
    # a fresh reader jumps into the middle correctly
    assert [r["position"] for r in LogReader(tmp_path, 1).read(4321, max_records=3)] == [4321, 4322, 4323]
    writer.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=12), cut=st.floats(0, 1))
def test_any_crash_point_leaves_exactly_the_complete_batches(
    tmp_path_factory: pytest.TempPathFactory, batches: list[int], cut: float
) -> None:
    data_dir = tmp_path_factory.mktemp("torn")
    write_batches(data_dir, batches).close()
    segment = next((data_dir / "partition-1").glob("segment-*.log"))
    data = segment.read_bytes()
    cut_at = int(len(data) * cut)
    segment.write_bytes(data[:cut_at])
    # batch boundaries in bytes, from the writer's own encoding
    complete_records, offset, position = 0, 0, 1
    for size in batches:
        batch = b"".join(encode_entry(payload(position + i), i == size - 1) for i in range(size))
        if offset + len(batch) > cut_at:
            break
        offset += len(batch)
        complete_records += size
        position += size
    assert [r["position"] for r in LogReader(data_dir, 1).read()] == list(range(1, complete_records + 1))
    writer = LogWriter(data_dir, 1)
    assert writer.next_position == complete_records + 1
    assert segment.stat().st_size == offset
    writer.close()


def test_records_that_straddle_read_chunks_are_read_whole(tmp_path: Path) -> None:
    # 700 KB records against the reader's 1 MiB chunks: most records straddle a chunk boundary,
    # the path that compacts the read buffer before growing it.
    writer = LogWriter(tmp_path, 1)
    blobs = [chr(ord("a") + n) * 700_000 for n in range(8)]
    for position, blob in enumerate(blobs, start=1):
        writer.append_batch([payload(position, blob=blob)])
    writer.sync()
    records = LogReader(tmp_path, 1).read(1, max_records=100)
    assert [r["position"] for r in records] == list(range(1, 9))
    assert [r["blob"] for r in records] == blobs
    assert [r["position"] for r in LogReader(tmp_path, 1).read(6)] == [6, 7, 8]
    writer.close()
