"""A batch that fails in PostgreSQL loses nothing: the next batches deliver its records again.

The failure is real: a PostgreSQL trigger raises while the batch writes its process instances
(the shape of a constraint violation or a server error mid-batch). For a Redis consumer group the
failed batch's entries stay pending and are not returned by a plain `>` read, so without a rewind
a later batch would move the positions past them and they would be skipped as already imported.
"""

from __future__ import annotations

import uuid

import pytest
import redis
from django.db import connection

from processes.importer.runner import Importer
from processes.models import Cluster, ProcessInstance
from tests.importer.conftest import Fleet
from tests.importer.helpers import import_all, log_cluster, snapshot, snapshot_diff, wipe_query_models
from tests.importer.redis_writer import export_to_streams, in_log_order
from tests.importer.test_sources import redis_cluster

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

MAX_BATCHES = 10_000


def install_failing_trigger() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION fleetflow_test_fail() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'injected failure for %', NEW.key; END $$ LANGUAGE plpgsql;
            CREATE TRIGGER fleetflow_test_fail BEFORE INSERT OR UPDATE ON processes_processinstance
            FOR EACH ROW EXECUTE FUNCTION fleetflow_test_fail();
            """
        )


def drop_failing_trigger() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "DROP TRIGGER fleetflow_test_fail ON processes_processinstance; DROP FUNCTION fleetflow_test_fail();"
        )


def import_until_failure(importer: Importer) -> Exception:
    for _ in range(MAX_BATCHES):
        try:
            if importer.run_once() is None:
                break
        except Exception as error:  # the injected failure, as the database reports it
            return error
    raise AssertionError("no batch failed: the trigger did not fire")


@pytest.mark.parametrize("source", ["log", "redis"])
def test_a_failed_batch_is_imported_again_once_the_database_recovers(
    fleet: Fleet, redis_url: str, source: str
) -> None:
    import_all(log_cluster(1, fleet.data_dirs[1]))
    expected = snapshot()
    assert expected["ProcessInstance"], "the reference import produced rows"
    wipe_query_models()
    Cluster.objects.all().delete()

    if source == "redis":
        prefix = f"zeebe-{uuid.uuid4().hex[:8]}"
        export_to_streams(redis.Redis.from_url(redis_url), prefix, in_log_order(fleet.records[1]))
        cluster = redis_cluster(1, redis_url, prefix)
    else:
        cluster = log_cluster(1, fleet.data_dirs[1])
    importer = Importer(cluster=cluster, batch_size=40)
    try:
        # A few batches succeed first, so the failure happens mid-stream with positions committed.
        for _ in range(3):
            assert importer.run_once() is not None
        install_failing_trigger()
        error = import_until_failure(importer)
        assert "injected failure" in str(error)
        drop_failing_trigger()
        assert ProcessInstance.objects.count() < len(expected["ProcessInstance"])
        importer.drain()
    finally:
        importer.close()
    got = snapshot()
    assert got == expected, snapshot_diff(got, expected)
