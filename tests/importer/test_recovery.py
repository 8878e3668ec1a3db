"""Smaller recoveries of issue 20: a destroyed consumer group is recreated, trimmed entries are
reported as trimmed, PostgreSQL down at start-up is a clear message and a retry with a low cap."""

from __future__ import annotations

import json
import logging
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from processes.importer.runner import MAX_ERROR_BACKOFF_SECONDS, Importer
from processes.importer.sources.redis_streams import RedisStreamSource
from processes.models import Cluster, RecordImportError
from tests.importer.conftest import Fleet
from tests.importer.helpers import import_all, log_cluster, snapshot, snapshot_diff, wipe_query_models
from tests.importer.redis_writer import export_to_streams, in_log_order
from tests.importer.test_command import REPO_ROOT
from tests.importer.test_sources import redis_cluster
from tests.services import free_port

pytestmark = pytest.mark.slow


@pytest.mark.django_db
def test_a_destroyed_consumer_group_is_recreated_and_said(
    fleet: Fleet, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import_all(log_cluster(1, fleet.data_dirs[1]))
    expected = snapshot()
    wipe_query_models()
    Cluster.objects.all().delete()
    records = in_log_order(fleet.records[1])
    half = len(records) // 2
    client = redis.Redis.from_url(redis_url)
    prefix = f"zeebe-{uuid.uuid4().hex[:8]}"
    export_to_streams(client, prefix, records[:half])
    cluster = redis_cluster(1, redis_url, prefix)
    importer = Importer(cluster=cluster, batch_size=25)
    try:
        importer.drain()
        for stream in client.scan_iter(match=f"{prefix}:*", _type="STREAM"):
            client.xgroup_destroy(stream, "fleetflow-importer")
        export_to_streams(client, prefix, records[half:])
        with caplog.at_level(logging.WARNING, logger="processes.importer"):
            importer.drain()
    finally:
        importer.close()
    assert "consumer group 'fleetflow-importer' is gone" in caplog.text
    got = snapshot()
    assert got == expected, snapshot_diff(got, expected)


@pytest.mark.django_db
def test_entries_trimmed_before_import_are_reported_as_trimmed(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    prefix = f"zeebe-{uuid.uuid4().hex[:8]}"
    for position in (1, 2, 3):
        client.xadd(
            f"{prefix}:PROCESS", {"1700000000000": json.dumps({"partitionId": 1, "position": position})}
        )
    config = {"url": redis_url, "stream_prefix": prefix, "group": "fleetflow-importer", "consumer": "c1"}
    # An importer read the entries (now pending for c1) and died before committing them.
    reader = RedisStreamSource(**config)
    assert len(reader.fetch({}, 10, 0.0)) == 3
    reader.close()
    client.xtrim(f"{prefix}:PROCESS", maxlen=0)
    cluster = redis_cluster(3, redis_url, prefix)
    cluster.record_source_config = config
    cluster.save()
    import_all(cluster)
    errors = list(RecordImportError.objects.filter(cluster=cluster))
    assert len(errors) == 3
    assert all("trimmed from the stream" in error.message for error in errors), [e.message for e in errors]
    assert int(client.xpending(f"{prefix}:PROCESS", "fleetflow-importer")["pending"]) == 0


def _command(*args: str, database_port: int) -> subprocess.Popen[bytes]:
    import os

    env = dict(
        os.environ,
        DATABASE_URL=f"postgresql://nobody:nothing@127.0.0.1:{database_port}/fleetflow",
        DEBUG="0",
        SECRET_KEY="test-only",
        PYTHONPATH=str(REPO_ROOT),
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", "import_records", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_postgresql_down_at_start_up_is_a_clear_message() -> None:
    process = _command(database_port=free_port())
    _, stderr = process.communicate(timeout=60)
    text = stderr.decode()
    assert process.returncode == 1, text
    assert "PostgreSQL is not reachable" in text
    assert "Traceback" not in text


def test_postgresql_down_at_start_up_is_retried_with_a_low_cap(tmp_path: Path) -> None:
    process = _command("--follow", database_port=free_port())
    try:
        retries: list[float] = []
        deadline = time.monotonic() + 60
        assert process.stderr is not None
        while time.monotonic() < deadline and len(retries) < 6:
            line = process.stderr.readline().decode()
            if not line:
                break
            found = re.search(r"PostgreSQL is not reachable .*; retrying in ([\d.]+) s", line)
            if found:
                retries.append(float(found.group(1)))
        assert len(retries) == 6, retries
        assert retries[:4] == [0.5, 1.0, 2.0, 4.0]
        assert max(retries) == MAX_ERROR_BACKOFF_SECONDS <= 5.0
        assert process.poll() is None, "still waiting for PostgreSQL"
    finally:
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=30)
    assert process.returncode == 0, rest.decode()[-2000:]
    assert "Traceback" not in rest.decode()
