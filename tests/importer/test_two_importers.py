"""Two importers of one cluster at once (issue 20): the second waits on the cluster's import lock
and takes over when the holder dies; the upsert never lets an older record overwrite a newer one.

Real `manage.py import_records --follow` processes against a real PostgreSQL and Redis."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from django.db import connection, transaction

from processes.importer.bulk import upsert_postgresql
from processes.importer.fold import JOB_FIELDS
from processes.models import Cluster, Job
from tests.importer.conftest import Fleet
from tests.importer.helpers import (
    import_all,
    log_cluster,
    release_session_locks,
    snapshot,
    snapshot_diff,
    wipe_query_models,
)
from tests.importer.redis_writer import export_to_streams, in_log_order
from tests.importer.test_command import REPO_ROOT, _command_env, _imported_positions, _wait_until
from tests.importer.test_sources import redis_cluster

pytestmark = pytest.mark.slow


def _follow(stderr_path: Path, batch_size: int) -> subprocess.Popen[bytes]:
    release_session_locks()
    with open(stderr_path, "ab") as stderr:
        return subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "import_records",
                "--follow",
                "--batch-size",
                str(batch_size),
                "--idle-wait",
                "0.2",
            ],
            cwd=REPO_ROOT,
            env=_command_env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    process.wait(30)


def _pending(client: redis.Redis, prefix: str) -> int:
    """Entries read and not yet acknowledged; -1 while a stream has no group yet."""
    total = 0
    for stream in client.scan_iter(match=f"{prefix}:*", _type="STREAM"):
        try:
            total += int(client.xpending(stream, "fleetflow-importer")["pending"])
        except redis.ResponseError:
            return -1
    return total


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("source", ["redis", "log"])
def test_a_second_importer_waits_and_takes_over_when_the_first_dies(
    fleet: Fleet, redis_url: str, tmp_path: Path, source: str
) -> None:
    import_all(log_cluster(1, fleet.data_dirs[1]))
    reference = snapshot()
    total = _imported_positions() if source == "log" else None
    wipe_query_models()
    Cluster.objects.all().delete()
    client = redis.Redis.from_url(redis_url)
    prefix = f"zeebe-{uuid.uuid4().hex[:8]}"
    if source == "redis":
        export_to_streams(client, prefix, in_log_order(fleet.records[1]))
        redis_cluster(1, redis_url, prefix)
        expected_positions = None
    else:
        log_cluster(1, fleet.data_dirs[1])
        expected_positions = total
    logs = [tmp_path / "importer-a.log", tmp_path / "importer-b.log"]
    processes = [_follow(logs[0], batch_size=3), _follow(logs[1], batch_size=7)]
    waiting_message = "another importer holds its import lock"
    try:
        _wait_until(
            lambda: any(waiting_message in path.read_text() for path in logs),
            "one importer to wait for the other",
            processes[0],
            logs[0],
        )
        waiter = 0 if waiting_message in logs[0].read_text() else 1
        holder = 1 - waiter
        _wait_until(lambda: _imported_positions() > 0, "some records", processes[holder], logs[holder])
        # The holder dies mid-stream; the waiting one takes over.
        processes[holder].send_signal(signal.SIGKILL)
        processes[holder].wait(30)

        def done() -> bool:
            if expected_positions is not None:
                return _imported_positions() == expected_positions
            return _pending(client, prefix) == 0 and snapshot() == reference

        _wait_until(done, "the waiting importer to finish the import", processes[waiter], logs[waiter])
    finally:
        for process in processes:
            _stop(process)
    assert processes[waiter].returncode == 0, logs[waiter].read_text()[-3000:]
    assert "import lock taken" in logs[waiter].read_text()
    got = snapshot()
    assert got == reference, snapshot_diff(got, reference)


@pytest.mark.django_db(transaction=True)
def test_two_importers_started_together_lose_nothing(fleet: Fleet, redis_url: str, tmp_path: Path) -> None:
    import_all(log_cluster(1, fleet.data_dirs[1]))
    reference = snapshot()
    wipe_query_models()
    Cluster.objects.all().delete()
    client = redis.Redis.from_url(redis_url)
    prefix = f"zeebe-{uuid.uuid4().hex[:8]}"
    export_to_streams(client, prefix, in_log_order(fleet.records[1]))
    redis_cluster(1, redis_url, prefix)
    stderr_path = tmp_path / "importers.log"
    processes = [_follow(stderr_path, batch_size=size) for size in (2, 3)]
    try:
        _wait_until(
            lambda: _pending(client, prefix) == 0 and snapshot() == reference,
            "the import to complete",
            processes[0],
            stderr_path,
        )
    finally:
        for process in processes:
            _stop(process)
    got = snapshot()
    assert got == reference, snapshot_diff(got, reference)
    assert stderr_path.read_text().count("another importer holds its import lock") == 1


@pytest.mark.django_db
def test_the_upsert_never_overwrites_a_newer_row(fleet: Fleet) -> None:
    cluster = log_cluster(1, fleet.data_dirs[1])
    import_all(cluster)
    job = Job.objects.filter(cluster=cluster).order_by("-position").first()
    assert job is not None
    newer = {name: getattr(job, Job._meta.get_field(name).attname) for name in JOB_FIELDS}
    older = {**newer, "position": job.position - 1, "state": "created", "retries": 99}
    with transaction.atomic():
        upsert_postgresql(Job, JOB_FIELDS, [older])
    job.refresh_from_db()
    assert (job.position, job.state, job.retries) == (newer["position"], newer["state"], newer["retries"])
    assert connection.vendor == "postgresql"
