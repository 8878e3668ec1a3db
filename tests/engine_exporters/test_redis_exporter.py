"""The Redis streams exporter (engine/exporters/redis_streams.py) against a real Redis and a real
engine process: every record of the log reaches a consumer exactly once, across kill -9."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis

from engine.exporters.positions import ExporterPositions
from engine.exporters.redis_streams import RedisStreamsExporter
from tests.engine.helpers import activate, complete, create, deploy, gateway, one_task_process
from tests.engine_exporters.helpers import (
    StreamConsumer,
    exporter_pid,
    log_records,
    process_gone,
    process_report,
    stream_name,
)
from tests.support import engine_process, free_port, wait_for


def export_url(redis_url: str, name: str) -> str:
    base = redis_url.split("?", 1)[0]
    return f"{base}?name={name}"


def _create_until(address: str, process_id: str, stop: threading.Event, created: list[int]) -> None:
    """Create instances until told to stop or the engine goes away (kill -9)."""
    with gateway(address) as stub:
        while not stop.is_set():
            try:
                created.append(create(stub, process_id, {"n": len(created)}))
            except grpc.RpcError:
                return


def _everything_exported(consumer: StreamConsumer, data_dir: Path) -> bool:
    consumer.drain()
    expected = {(record["partitionId"], record["position"]) for record in log_records(data_dir)}
    return bool(expected) and consumer.identities() == expected


@pytest.mark.slow
def test_every_record_reaches_a_consumer_exactly_once_across_kill9(tmp_path: Path, redis_url: str) -> None:
    name = stream_name()
    url = export_url(redis_url, name)
    data_dir = tmp_path / "data"
    consumer = StreamConsumer(redis_url, name)
    engine = engine_process(tmp_path, partitions=2, extra_args=["--export", url])
    try:
        with gateway(engine.address) as stub:
            deploy(stub, "order.bpmn", one_task_process("order", "pack"))
            for n in range(10):
                create(stub, "order", {"n": n})
            for job in activate(stub, "pack", max_jobs=5):
                complete(stub, job.key, {"packed": True})
        # Crash 1 in the middle of a stream of creates: the exporter resumes from its saved positions.
        stop, created = threading.Event(), []
        creator = threading.Thread(target=_create_until, args=(engine.address, "order", stop, created))
        creator.start()
        wait_for(lambda: len(created) >= 40, timeout=60, what="40 more instances created")
        consumer.poll()  # a consumer reads while the engine runs
        engine.kill9()
        stop.set()
        creator.join(30)
        engine.start()
        # Crash 2: the exporters process itself is killed -9 in the middle of a stream of creates
        # (the engine goes on serving and starts it again).
        first_child = exporter_pid(engine.log_tail(100_000))
        stop, created = threading.Event(), []
        creator = threading.Thread(target=_create_until, args=(engine.address, "order", stop, created))
        creator.start()
        wait_for(lambda: len(created) >= 20, timeout=60, what="20 more instances created")
        os.kill(first_child, signal.SIGKILL)
        wait_for(lambda: len(created) >= 40, timeout=60, what="creates go on without the exporters")
        stop.set()
        creator.join(30)
        wait_for(
            lambda: exporter_pid(engine.log_tail(100_000)) != first_child,
            timeout=30,
            what="the engine restarting its exporters",
        )
        # Crash 3, and the exporter's own position file is lost too (as if the crash fell between
        # the write to Redis and the save of the position): everything is sent again, and Redis
        # keeps none of it twice.
        wait_for(lambda: _everything_exported(consumer, data_dir), timeout=60, what="records exported")
        child = exporter_pid(engine.log_tail(100_000))
        engine.kill9()
        try:
            wait_for(
                lambda: process_gone(child), timeout=30, what="the exporters child ending with its engine"
            )
        except AssertionError as error:
            raise AssertionError(f"{error}\n{process_report(child)}\n{engine.log_tail(6000)}") from None
        positions_file = ExporterPositions(data_dir, RedisStreamsExporter(url).exporter_id)
        assert positions_file.path.exists(), list((data_dir / "exporters").iterdir())
        positions_file.path.unlink()
        engine.start()
        with gateway(engine.address) as stub:
            for job in activate(stub, "pack", max_jobs=20):
                complete(stub, job.key)
            create(stub, "order", {"last": True})
        wait_for(lambda: _everything_exported(consumer, data_dir), timeout=60, what="records exported")
        # Nothing more trickles in afterwards (the resend after the lost position file added nothing).
        assert consumer.poll() == 0
    finally:
        engine.stop()
    log = {(record["partitionId"], record["position"]): record for record in log_records(data_dir)}
    assert consumer.duplicates() == []
    assert consumer.identities() == set(log)
    assert len(consumer.records) == len(log) > 150
    # The payload is the record JSON exactly as the engine logged it (reference §3.9: `record.toJson()`).
    for record in consumer.records:
        assert record == log[(record["partitionId"], record["position"])]
    # Each partition's records reach each stream in log order.
    last: dict[tuple[str, int], int] = {}
    for record in consumer.records:
        key = (record["valueType"], record["partitionId"])
        assert record["position"] > last.get(key, 0)
        last[key] = record["position"]
    # The single field's name is the export time in ms.
    assert all(field.isdigit() and len(field) == 13 for field in consumer.fields)
    assert {record["recordType"] for record in consumer.records} >= {"COMMAND", "EVENT"}
    consumer.close()


def _record(partition_id: int, position: int, value_type: str = "JOB") -> dict[str, Any]:
    return {
        "partitionId": partition_id,
        "position": position,
        "sourceRecordPosition": -1,
        "key": position,
        "timestamp": 1_700_000_000_000,
        "recordType": "EVENT",
        "valueType": value_type,
        "intent": "CREATED",
        "rejectionType": "NULL_VAL",
        "rejectionReason": "",
        "brokerVersion": "8.5.0",
        "recordVersion": 1,
        "value": {"n": position},
    }


def test_a_batch_sent_again_adds_nothing(redis_url: str) -> None:
    name = stream_name()
    exporter = RedisStreamsExporter(export_url(redis_url, name))
    client = redis.Redis.from_url(redis_url)
    try:
        batch = [_record(1, 1), _record(1, 2, "PROCESS_INSTANCE"), _record(1, 3)]
        exporter.export(1, batch)
        exporter.export(1, batch)  # the crash-between-write-and-save case
        exporter.export(1, [*batch, _record(1, 4)])  # an overlapping batch adds only what is new
        huge = {**_record(2, 1), "value": {"variables": {"big": 2**70, "text": "é\u2028"}}}
        exporter.export(2, [huge])  # partitions are counted apart; a 70-bit integer survives
        job = client.xrange(f"{name}:JOB")
        assert [json.loads(next(iter(fields.values())))["position"] for _, fields in job] == [1, 3, 4, 1]
        assert json.loads(next(iter(job[-1][1].values()))) == huge
        assert client.xlen(f"{name}:PROCESS_INSTANCE") == 1
        assert client.hgetall(f"{name}:exporter-positions") == {b"1": b"4", b"2": b"1"}
    finally:
        client.delete(f"{name}:JOB", f"{name}:PROCESS_INSTANCE", f"{name}:exporter-positions")
        client.close()
        exporter.close()


def test_filters_and_bad_urls() -> None:
    exporter = RedisStreamsExporter("redis://127.0.0.1:1/0?value_types=job&record_types=EVENT")
    assert exporter.accepts(_record(1, 1))
    assert not exporter.accepts(_record(1, 1, "PROCESS_INSTANCE"))
    assert not exporter.accepts({**_record(1, 1), "recordType": "COMMAND"})
    from engine.exporters import ExporterConfigError, exporter_for

    for bad in (
        "redis://127.0.0.1:6379?nmae=x",
        "redis://127.0.0.1:6379?name=a:b",
        "ftp://x",
        "redis:///0",
        "redis://h:99999",
        "redis://h:1/abc",
        "http://[::1",
        "http://h:9200?prefix=",
        "127.0.0.1:6379",
    ):
        with pytest.raises(ExporterConfigError):
            exporter_for(bad)


def test_engine_serves_while_redis_is_down_and_exports_when_it_comes_back(tmp_path: Path) -> None:
    """No Redis at the --export address: commands are still accepted; the records arrive once a
    Redis listens there (the exporter retries with backoff, never drops a batch)."""
    import shutil
    import subprocess

    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is needed (the suite's Redis comes from it too)"
    port = free_port()
    name = stream_name()
    url = f"redis://127.0.0.1:{port}/0?name={name}"
    engine = engine_process(tmp_path, extra_args=["--export", url])
    server: subprocess.Popen[bytes] | None = None
    try:
        with gateway(engine.address) as stub:
            deploy(stub, "order.bpmn", one_task_process("order", "pack"))
            keys = [create(stub, "order") for _ in range(5)]
        assert len(set(keys)) == 5
        # The exporter has tried and failed (and will retry) before Redis exists.
        wait_for(lambda: "retry" in engine.log_tail(20_000), timeout=30, what="a failed export attempt")
        server = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        consumer = StreamConsumer(f"redis://127.0.0.1:{port}/0", name)
        wait_for(
            lambda: _everything_exported(consumer, tmp_path / "data"), timeout=60, what="records exported"
        )
        assert consumer.duplicates() == []
        consumer.close()
        assert "succeeded after" in engine.log_tail(20_000)
    finally:
        engine.stop()
        if server is not None:
            server.terminate()
            server.wait(10)


def test_only_what_the_engine_fsynced_is_exported(tmp_path: Path, redis_url: str) -> None:
    """The exporters child with --durable-from-stdin (as the engine runs it) exports a partition only
    up to the position the engine says it fsynced, and stops when the engine closes its input."""
    import subprocess
    import sys

    from engine.log import LogWriter
    from tests.support import python_env

    writer = LogWriter(tmp_path, 1)
    writer.append_batch([json.dumps(_record(1, position)).encode() for position in range(1, 21)])
    writer.close()
    name = stream_name()
    client = redis.Redis.from_url(redis_url)
    argv = [sys.executable, "-m", "engine.exporters", "--data-dir", str(tmp_path), "--partitions", "1"]
    argv += ["--export", export_url(redis_url, name), "--durable-from-stdin"]
    stderr_path = tmp_path / "exporters.log"
    with open(stderr_path, "wb") as stderr:
        child = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=stderr, env=python_env())
    assert child.stdin is not None

    def exported() -> list[int]:
        return [json.loads(next(iter(f.values())))["position"] for _, f in client.xrange(f"{name}:JOB")]

    try:
        child.stdin.write(b"1 5\n")
        child.stdin.flush()
        wait_for(lambda: exported() == [1, 2, 3, 4, 5], timeout=30, what="positions 1..5 exported")
        child.stdin.write(b"garbage\n1 12\n")
        child.stdin.flush()
        wait_for(lambda: exported() == list(range(1, 13)), timeout=30, what="positions 1..12 exported")
        child.stdin.close()  # the engine is gone
        assert child.wait(30) == 0
        assert exported() == list(range(1, 13))  # nothing beyond what was fsynced
        assert "malformed durable position" in stderr_path.read_text()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        client.delete(f"{name}:JOB", f"{name}:exporter-positions")
        client.close()


def test_a_damaged_position_file_stops_the_exporters_with_its_name(tmp_path: Path) -> None:
    """Only a rename ever replaces the file, so damage is from outside: refuse to guess (resuming at
    0 would resend everything, skipping would lose records) and say which file."""
    import subprocess
    import sys

    from tests.support import python_env

    url = "redis://127.0.0.1:1/0"
    path = ExporterPositions(tmp_path, RedisStreamsExporter(url).exporter_id).path
    path.parent.mkdir(parents=True)
    path.write_text('{"partitions": {"1": {"position": "x"}}}')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.exporters",
            "--data-dir",
            str(tmp_path),
            "--partitions",
            "1",
            "--export",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=python_env(),
    )
    assert result.returncode == 2
    assert str(path) in result.stderr and "fix or remove it" in result.stderr


def test_streams_of_another_log_are_refused_not_skipped(tmp_path: Path, redis_url: str) -> None:
    """Redis says partition 1 was exported up to 1000, this log ends at 20 (a new data directory
    against old streams): exporting would skip every record up to 1000 silently, so it refuses."""
    import subprocess
    import sys

    from engine.log import LogWriter
    from tests.support import python_env

    writer = LogWriter(tmp_path, 1)
    writer.append_batch([json.dumps(_record(1, position)).encode() for position in range(1, 21)])
    writer.close()
    name = stream_name()
    client = redis.Redis.from_url(redis_url)
    client.hset(f"{name}:exporter-positions", "1", "1000")
    stderr_path = tmp_path / "exporters.log"
    argv = [sys.executable, "-m", "engine.exporters", "--data-dir", str(tmp_path), "--partitions", "1"]
    with open(stderr_path, "wb") as stderr:
        child = subprocess.Popen(
            [*argv, "--export", export_url(redis_url, name)], stderr=stderr, env=python_env()
        )
    try:
        wait_for(
            lambda: "another engine's records" in stderr_path.read_text(),
            timeout=30,
            what="the exporter refusing the streams",
        )
        assert client.exists(f"{name}:JOB") == 0
        assert client.hget(f"{name}:exporter-positions", "1") == b"1000"
    finally:
        child.terminate()
        child.wait(30)
        client.delete(f"{name}:exporter-positions")
        client.close()
