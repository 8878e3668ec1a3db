"""Import what a real engine wrote for real flows, over two clusters, and compare with the engine's truth.

Two `python -m engine` processes run the same scenario (scenario.py), so both hand out the same
Zeebe keys: the importer must keep them apart as global keys (DESIGN §2). The expected state is
computed from the log records by tests/importer/truth.py, not by the projection.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processes.models import (
    ElementInstance,
    ImportPosition,
    Incident,
    Job,
    ProcessDefinition,
    ProcessInstance,
    RecordImportError,
    Variable,
    VariableValue,
)
from routing.keys import ZEEBE_KEY_LIMIT
from servers.models import Server
from tests.importer.conftest import Fleet
from tests.importer.helpers import import_all, log_cluster, snapshot, snapshot_diff, wipe_query_models
from tests.importer.scenario import LARGE_TEXT
from tests.importer.truth import g

pytestmark = pytest.mark.slow


def _import_fleet(fleet: Fleet, batch_size: int = 5000) -> None:
    for cluster_id, data_dir in fleet.data_dirs.items():
        import_all(log_cluster(cluster_id, data_dir), batch_size=batch_size)


def _compare(fleet: Fleet) -> None:
    truth = fleet.truth
    instances = {row.key: row for row in ProcessInstance.objects.all()}
    assert set(instances) == set(truth.instances)
    for key, expected in truth.instances.items():
        row = instances[key]
        got = {
            "state": row.state,
            "bpmn_process_id": row.bpmn_process_id,
            "parent": row.parent_id,
            "root": row.root_id,
            "depth": row.depth,
            "incident": row.incident,
            "subtree_incident": row.subtree_incident,
            "cluster": row.cluster_id,
        }
        want = {name: expected[name] for name in got if name != "cluster"} | {"cluster": expected["cluster"]}
        assert got == want, f"instance {key}"
        assert row.start_date is not None
        assert (row.end_date is None) == (row.state == "active")
    elements = {row.key: row for row in ElementInstance.objects.all()}
    assert set(elements) == set(truth.elements)
    for key, expected in truth.elements.items():
        row = elements[key]
        assert (row.state, row.element_id, row.element_type, row.process_instance_id) == (
            expected["state"],
            expected["element_id"],
            expected["element_type"],
            expected["process_instance"],
        ), f"element {key}"
    jobs = {row.key: row for row in Job.objects.all()}
    assert set(jobs) == set(truth.jobs)
    for key, expected in truth.jobs.items():
        row = jobs[key]
        assert (row.state, row.retries, row.worker, row.job_type, row.process_instance_id) == (
            expected["state"],
            expected["retries"],
            expected["worker"],
            expected["job_type"],
            expected["process_instance"],
        ), f"job {key}"
    incidents = {row.key: row for row in Incident.objects.all()}
    assert set(incidents) == set(truth.incidents)
    for key, expected in truth.incidents.items():
        row = incidents[key]
        assert (row.state, row.error_type, row.process_instance_id, row.job_id) == (
            expected["state"],
            expected["error_type"],
            expected["process_instance"],
            expected["job"],
        ), f"incident {key}"
        assert row.root_key == truth.instances[expected["process_instance"]]["root"]
        assert row.tree_path == instances[expected["process_instance"]].tree_path
    variables = {row.key: row for row in Variable.objects.all()}
    assert set(variables) == set(truth.variables)
    for key, expected in truth.variables.items():
        row = variables[key]
        assert (row.name, row.scope_key, row.process_instance_id) == (
            expected["name"],
            expected["scope"],
            expected["process_instance"],
        ), f"variable {key}"
        if row.truncated:
            assert VariableValue.objects.get(pk=key).json_text == f'"{expected["value"]}"'
            assert row.value is None and expected["value"] == LARGE_TEXT
        else:
            assert row.value == expected["value"], f"variable {key} ({row.name})"
    assert set(ProcessDefinition.objects.values_list("key", flat=True)) == set(truth.definitions)


@pytest.mark.django_db
def test_import_matches_engine_truth_over_two_clusters(fleet: Fleet) -> None:
    _import_fleet(fleet)
    _compare(fleet)
    truth = fleet.truth
    print(
        f"compared {len(truth.instances)} instances, {len(truth.elements)} elements, {len(truth.jobs)} jobs, "
        f"{len(truth.incidents)} incidents, {len(truth.variables)} variables"
    )
    job_states = {row["state"] for row in truth.jobs.values()}
    assert job_states >= {"activated", "completed", "canceled", "error_thrown", "failed"}
    assert {row["state"] for row in truth.incidents.values()} == {"active", "resolved"}
    # Both engines handed out the same Zeebe keys; global keys keep the clusters apart.
    local = {
        cluster_id: {
            key & (ZEEBE_KEY_LIMIT - 1)
            for key, row in fleet.truth.instances.items()
            if row["cluster"] == cluster_id
        }
        for cluster_id in (1, 2)
    }
    assert local[1] & local[2], "the scenario should make the two engines reuse keys"
    assert RecordImportError.objects.count() == 0
    # Every record was read: positions at the end of each partition's log.
    for cluster_id, records in fleet.records.items():
        last = {}
        for record in records:
            last[record["partitionId"]] = max(last.get(record["partitionId"], 0), record["position"])
        stored = dict(
            ImportPosition.objects.filter(cluster_id=cluster_id).values_list("partition_id", "position")
        )
        assert stored == last


@pytest.mark.django_db
def test_through_the_proxy_the_importer_speaks_the_clients_key_space(proxied_fleet: Fleet) -> None:
    _import_fleet(proxied_fleet)
    _compare(proxied_fleet)
    seen = proxied_fleet.keys[0]
    # The keys the client got from the proxy are the keys of the imported rows.
    assert ProcessInstance.objects.get(pk=seen["sweep"]).bpmn_process_id == "rack-sweep"
    assert ProcessInstance.objects.get(pk=seen["canceled_repair"]).state == "terminated"
    assert ProcessInstance.objects.get(pk=seen["modified"]).state == "completed"
    order_task = Job.objects.get(pk=seen["order_task_job"])
    assert (order_task.job_type, order_task.state) == ("io.camunda.zeebe:userTask", "activated")
    clusters = set(ProcessInstance.objects.values_list("cluster_id", flat=True))
    assert clusters <= {1, 2} and ProcessInstance.objects.filter(parent__isnull=True).count() >= 4


@pytest.mark.django_db
def test_trees_servers_and_subtrees(fleet: Fleet) -> None:
    _import_fleet(fleet)
    sweep = ProcessInstance.objects.get(pk=g(1, fleet.keys[1]["sweep"]))
    subtree = ProcessInstance.objects.filter(tree_path__startswith=sweep.tree_path)
    assert subtree.count() == 5  # the sweep, two repairs, two diagnoses
    assert {row.depth for row in subtree} == {0, 1, 2}
    assert sweep.server_id is None  # a rack sweep names no server
    repairs = subtree.filter(depth=1)
    assert sorted(repairs.values_list("server_id", flat=True)) == ["R1-SN1", "R1-SN2"]
    for repair in repairs:
        (diagnosis,) = repair.children.all()
        assert diagnosis.server_id == repair.server_id
        assert diagnosis.root_id == sweep.key
        assert ProcessInstance.objects.filter(tree_path__startswith=repair.tree_path).count() == 2
    stuck = ProcessInstance.objects.get(pk=g(2, fleet.keys[2]["stuck_repair"]))
    assert stuck.subtree_incident and not stuck.incident
    assert stuck.children.get().incident
    assert Server.objects.filter(serial_number="R2-SN9", is_stub=True, state="unknown").exists()
    canceled = ProcessInstance.objects.get(pk=g(1, fleet.keys[1]["canceled_repair"]))
    assert canceled.state == "terminated"
    assert canceled.children.get().state == "terminated"
    assert set(Job.objects.filter(process_instance__root=canceled).values_list("state", flat=True)) >= {
        "canceled"
    }
    modified = ProcessInstance.objects.get(pk=g(1, fleet.keys[1]["modified"]))
    assert modified.state == "completed"
    assert modified.element_instances.get(element_id="task").state == "terminated"


@pytest.mark.django_db
def test_replaying_every_record_changes_nothing(fleet: Fleet) -> None:
    _import_fleet(fleet)
    before = snapshot()
    # Forget the positions: the source delivers everything again.
    ImportPosition.objects.all().delete()
    for cluster_id in fleet.data_dirs:
        from processes.models import Cluster

        import_all(Cluster.objects.get(pk=cluster_id))
    assert snapshot() == before
    _compare(fleet)


@pytest.mark.django_db
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batch_size=st.one_of(st.integers(min_value=1, max_value=40), st.integers(min_value=41, max_value=3000))
)
def test_any_batch_size_gives_the_same_tables(fleet: Fleet, batch_size: int) -> None:
    wipe_query_models()
    from processes.models import Cluster

    Cluster.objects.all().delete()
    _import_fleet(fleet, batch_size=5000)
    reference = snapshot()
    wipe_query_models()
    Cluster.objects.all().delete()
    _import_fleet(fleet, batch_size=batch_size)
    assert snapshot() == reference


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("batch_size", [7, 5000])
def test_one_statement_upserts_and_copy_write_the_same_tables(
    fleet: Fleet, batch_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small batches are written with one INSERT ... FROM json_populate_recordset per model, large
    ones with COPY (bulk.upsert_rows): the same records give the same tables either way, at a
    batch size that updates rows across batches and at one that holds whole instances."""
    from processes.importer import bulk
    from processes.models import Cluster

    def run(json_max_rows: int) -> dict[str, Any]:
        wipe_query_models()
        Cluster.objects.all().delete()
        monkeypatch.setattr(bulk, "JSON_UPSERT_MAX_ROWS", json_max_rows)
        calls: list[str] = []
        real_json, real_copy = bulk.upsert_json, bulk.copy_rows
        monkeypatch.setattr(bulk, "upsert_json", lambda *a: calls.append("json") or real_json(*a))
        monkeypatch.setattr(bulk, "copy_rows", lambda *a: calls.append("copy") or real_copy(*a))
        _import_fleet(fleet, batch_size=batch_size)
        # Each run took the path it is meant to measure, and only that one.
        assert set(calls) == ({"json"} if json_max_rows else {"copy"}), set(calls)
        return snapshot()

    by_copy = run(0)
    by_json = run(1_000_000)
    assert by_json == by_copy, snapshot_diff(by_json, by_copy)[:20]
    assert by_json["ProcessInstance"] and by_json["Variable"] and by_json["Job"]
