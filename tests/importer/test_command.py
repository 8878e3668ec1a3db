"""`manage.py import_records` as a real subprocess: kill -9 mid-stream and a restart give the same
tables as an uninterrupted import; SIGTERM stops it cleanly; bad arguments get clear errors."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.db.models import Sum

from processes.models import ImportPosition
from tests.importer.conftest import Fleet
from tests.importer.helpers import (
    import_all,
    log_cluster,
    snapshot,
    snapshot_diff,
    wipe_query_models,
)
from tests.support import python_env, wait_for
from tests.support.processes import REPO_ROOT

pytestmark = pytest.mark.slow

WAIT_SECONDS = 90.0


def _command_env() -> dict[str, str]:
    """The subprocess must use the test database this test runs against."""
    settings = connection.settings_dict
    url = (
        f"postgresql://{quote(settings['USER'] or '')}:{quote(settings['PASSWORD'] or '')}"
        f"@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"
    )
    return {**python_env(), "DATABASE_URL": url, "DEBUG": "0", "SECRET_KEY": "test-only"}


def _start(batch_size: int, stderr_path: Path) -> subprocess.Popen[bytes]:
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


def _imported_positions() -> int:
    return int(ImportPosition.objects.aggregate(total=Sum("position"))["total"] or 0)


def _wait_until(predicate, what: str, process: subprocess.Popen[bytes], stderr_path: Path) -> None:  # type: ignore[no-untyped-def]
    def probe() -> bool:
        if predicate():
            return True
        if process.poll() is not None:
            raise _ImporterExited(f"importer exited early ({process.returncode}):\n{stderr_path.read_text()}")
        return False

    try:
        # Any error (the importer exiting, a failing query) ends the wait at once, as before.
        wait_for(probe, WAIT_SECONDS, interval=0.01, what=what, stop_on=(Exception,))
    except _ImporterExited:
        raise
    except AssertionError:
        raise AssertionError(f"timed out waiting for {what}:\n{stderr_path.read_text()[-3000:]}") from None


class _ImporterExited(AssertionError):
    pass


@pytest.mark.django_db(transaction=True)
def test_kill_9_mid_stream_and_restart_give_the_same_tables(fleet: Fleet, tmp_path: Path) -> None:
    clusters = [log_cluster(cluster_id, path) for cluster_id, path in fleet.data_dirs.items()]
    for cluster in clusters:
        import_all(cluster)
    reference = snapshot()
    total = _imported_positions()
    wipe_query_models()
    stderr_path = tmp_path / "importer.log"

    first = _start(batch_size=2, stderr_path=stderr_path)
    try:
        _wait_until(lambda: _imported_positions() >= total // 3, "a third of the records", first, stderr_path)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    assert first.returncode == -signal.SIGKILL
    assert _imported_positions() < total, "the import should have been killed mid-stream"

    second = _start(batch_size=5, stderr_path=stderr_path)
    try:
        _wait_until(lambda: _imported_positions() == total, "all records", second, stderr_path)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    assert second.returncode == 0, stderr_path.read_text()[-3000:]
    assert "importer stopping" in stderr_path.read_text()
    got = snapshot()
    assert got == reference, snapshot_diff(got, reference)


@pytest.mark.django_db
def test_unknown_cluster_and_bad_batch_size_are_clear_errors(fleet: Fleet) -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    log_cluster(1, fleet.data_dirs[1])
    with pytest.raises(CommandError, match="No cluster with id 9"):
        call_command("import_records", "--cluster", "9")
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        call_command("import_records", "--batch-size", "0")


@pytest.mark.django_db
def test_engine_log_source_without_data_dir_is_a_clear_error() -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from processes.services import cluster_create

    cluster_create(cluster_id=4, name="no-dir", gateway_address="127.0.0.1:1", record_source_config={})
    with pytest.raises(CommandError, match=r"record_source_config\['data_dir'\]"):
        call_command("import_records", "--cluster", "4")


@pytest.mark.django_db
def test_command_imports_once_without_follow(fleet: Fleet) -> None:
    from django.core.management import call_command

    cluster = log_cluster(1, fleet.data_dirs[1])
    call_command("import_records", "--cluster", "1", "--batch-size", "100")
    last = max(record["position"] for record in fleet.records[1] if record["partitionId"] == 1)
    assert ImportPosition.objects.get(cluster=cluster, partition_id=1).position == last
