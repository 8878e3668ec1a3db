"""Several `manage.py import_records --follow` processes at once (issue 16): they split the
(cluster, partition) units between them with leases (processes/importer/leases.py), take over
when one is killed (kill -9) or paused (SIGSTOP) and resume; the tables and every stream's
counters then equal those of one uninterrupted import: nothing applied twice, nothing skipped.

Real processes against a real PostgreSQL and Redis; the engine logs are those two real
`python -m engine` clusters wrote (the `fleet` fixture)."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import connection, transaction

from processes.importer.bulk import upsert_postgresql
from processes.importer.fold import JOB_FIELDS
from processes.models import Cluster, ImportLease, ImportPosition, Job
from tests.importer.conftest import Fleet
from tests.importer.helpers import import_all, log_cluster, snapshot, snapshot_diff, wipe_query_models
from tests.importer.redis_writer import export_to_streams, in_log_order
from tests.importer.test_command import REPO_ROOT, _command_env, _imported_positions, _wait_until
from tests.importer.test_sources import redis_cluster

pytestmark = pytest.mark.slow


def _follow(log_path: Path, batch_size: int, lease_seconds: float = 10.0) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
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
                "--lease-seconds",
                str(lease_seconds),
            ],
            cwd=REPO_ROOT,
            env=_command_env(),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
    process.wait(60)


def _units_held(process: subprocess.Popen[bytes]) -> set[tuple[int, int]]:
    """The units a process holds (its holder id is host:pid:random, leases.default_holder)."""
    return {
        (lease.cluster_id, lease.partition_id)
        for lease in ImportLease.objects.all()
        if f":{process.pid}:" in lease.holder
    }


def _counters() -> list[tuple[Any, ...]]:
    return list(
        ImportPosition.objects.order_by("cluster", "partition_id", "stream").values_list(
            "cluster", "partition_id", "stream", "position", "imported_count", "skipped_count", "error_count"
        )
    )


def _reference(fleet: Fleet) -> tuple[dict[str, Any], list[tuple[Any, ...]], int]:
    """One uninterrupted import of both engines' logs, then empty tables for the importers."""
    clusters = [log_cluster(cluster_id, path) for cluster_id, path in fleet.data_dirs.items()]
    for cluster in clusters:
        import_all(cluster)
    reference = snapshot(), _counters(), _imported_positions()
    wipe_query_models()
    return reference


def _positions_of(units: set[tuple[int, int]]) -> int:
    return sum(
        position
        for cluster_id, partition_id in units
        for position in ImportPosition.objects.filter(
            cluster_id=cluster_id, partition_id=partition_id
        ).values_list("position", flat=True)
    )


def _split_and_busy(processes: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    """Wait until the processes hold two of the four units each and have each imported some."""
    for process, log in zip(processes, logs, strict=True):
        _wait_until(
            lambda process=process: (
                len(_units_held(process)) == 2 and _positions_of(_units_held(process)) > 0
            ),
            f"importer {process.pid} to hold its fair share (2 of 4) and import some of it",
            process,
            log,
        )


@pytest.mark.django_db(transaction=True)
def test_two_importers_split_two_engines_and_one_killed_loses_nothing(fleet: Fleet, tmp_path: Path) -> None:
    reference, reference_counters, total = _reference(fleet)
    logs = [tmp_path / "importer-a.log", tmp_path / "importer-b.log"]
    processes = [_follow(logs[0], batch_size=2), _follow(logs[1], batch_size=2)]
    try:
        _split_and_busy(processes, logs)
        victim, survivor = processes
        victims_units = _units_held(victim)
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
        assert _imported_positions() < total, "the import should have been killed mid-way"
        _wait_until(
            lambda: _units_held(survivor) == {(1, 1), (1, 2), (2, 1), (2, 2)},
            "the survivor to take the killed importer's partitions over",
            survivor,
            logs[1],
        )
        _wait_until(lambda: _imported_positions() == total, "all records", survivor, logs[1])
    finally:
        for process in processes:
            _stop(process)
    assert processes[1].returncode == 0, logs[1].read_text()[-3000:]
    survivor_log = logs[1].read_text()
    for cluster_id, partition_id in victims_units:
        assert f"took the lease of cluster {cluster_id} partition {partition_id}" in survivor_log
    got = snapshot()
    assert got == reference, snapshot_diff(got, reference)
    # Every record counted once per stream, as in the uninterrupted import: nothing applied twice.
    assert _counters() == reference_counters
    assert set(ImportLease.objects.values_list("holder", flat=True)) == {""}  # handed back at the stop


@pytest.mark.django_db(transaction=True)
def test_a_paused_importer_resumes_without_applying_a_stale_batch(fleet: Fleet, tmp_path: Path) -> None:
    reference, reference_counters, total = _reference(fleet)
    logs = [tmp_path / "importer-paused.log", tmp_path / "importer-other.log"]
    processes = [
        _follow(logs[0], batch_size=2, lease_seconds=3),
        _follow(logs[1], batch_size=2, lease_seconds=3),
    ]
    paused, other = processes
    try:
        _split_and_busy(processes, logs)
        paused.send_signal(signal.SIGSTOP)
        paused_units = _units_held(paused)
        progress = _positions_of(paused_units)
        _wait_until(
            lambda: _units_held(other) == {(1, 1), (1, 2), (2, 1), (2, 2)},
            "the other importer to take the paused importer's partitions over",
            other,
            logs[1],
        )
        assert _positions_of(paused_units) >= progress
        _wait_until(lambda: _imported_positions() == total, "all records", other, logs[1])
        after_import = (snapshot(), _counters())
        paused.send_signal(signal.SIGCONT)
        # It finds its leases gone (its round, or the fence of the batch it had in hand), and
        # then takes its fair share back from the other one.
        _wait_until(
            lambda: (
                "taken by another importer" in logs[0].read_text()
                or "moved to another importer" in logs[0].read_text()
            ),
            "the resumed importer to notice it lost its leases",
            paused,
            logs[0],
        )
        _wait_until(
            lambda: len(_units_held(paused)) == 2 and len(_units_held(other)) == 2,
            "the two importers to share the units again",
            paused,
            logs[0],
        )
        assert (snapshot(), _counters()) == after_import
    finally:
        for process in processes:
            _stop(process)
    for process, log in zip(processes, logs, strict=True):
        assert process.returncode == 0, log.read_text()[-3000:]
    got = snapshot()
    assert got == reference, snapshot_diff(got, reference)
    assert _counters() == reference_counters


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
def test_a_redis_cluster_is_one_unit_taken_over_when_its_importer_dies(
    fleet: Fleet, redis_url: str, tmp_path: Path
) -> None:
    """Redis streams hold every partition of a cluster (reference §3.9): one importer reads the
    whole cluster, the other waits with nothing to do, and takes over after a kill -9."""
    import_all(log_cluster(1, fleet.data_dirs[1]))
    reference = snapshot()
    wipe_query_models()
    Cluster.objects.all().delete()
    client = redis.Redis.from_url(redis_url)
    prefix = f"zeebe-{uuid.uuid4().hex[:8]}"
    export_to_streams(client, prefix, in_log_order(fleet.records[1]))
    redis_cluster(1, redis_url, prefix)
    logs = [tmp_path / "importer-a.log", tmp_path / "importer-b.log"]
    processes = [_follow(logs[0], batch_size=3), _follow(logs[1], batch_size=7)]
    try:
        _wait_until(
            lambda: (
                any(_units_held(process) == {(1, 0)} for process in processes)
                and any("importing nothing" in log.read_text() for log in logs)
            ),
            "one importer to hold the cluster, the other nothing",
            processes[0],
            logs[0],
        )
        holder = 0 if _units_held(processes[0]) else 1
        waiter = 1 - holder
        _wait_until(lambda: _imported_positions() > 0, "some records", processes[holder], logs[holder])
        processes[holder].send_signal(signal.SIGKILL)
        processes[holder].wait(30)
        _wait_until(
            lambda: _pending(client, prefix) == 0 and snapshot() == reference,
            "the other importer to finish the import",
            processes[waiter],
            logs[waiter],
        )
    finally:
        for process in processes:
            _stop(process)
    assert processes[waiter].returncode == 0, logs[waiter].read_text()[-3000:]
    assert "took the lease of cluster 1 all partitions" in logs[waiter].read_text()
    got = snapshot()
    assert got == reference, snapshot_diff(got, reference)


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
