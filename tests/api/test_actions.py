"""Actions through the API: 202 with the operation (row written, parameters as given), and bad input
answered 400 naming the field with nothing written."""

from __future__ import annotations

import pytest

from processes.choices import ClusterState, IncidentState
from processes.models import Cluster
from processes.operations.models import AuditEntry, BatchOperation, Operation
from routing.keys import to_global
from tests.api.test_reads import assert_error
from tests.api.world import build_world

pytestmark = pytest.mark.django_db

V1 = "/api/v1"


@pytest.fixture
def world(db):  # type: ignore[no-untyped-def]
    return build_world()


def test_retry_answers_202_with_the_queued_operation(operator, world):
    response = operator.post(f"{V1}/incidents/{world.incident.key}/retry/", {"retries": 4}, format="json")
    assert response.status_code == 202
    body = response.json()
    operation = Operation.objects.get(pk=body["id"])
    assert (body["action"], body["state"], body["target_key"]) == ("retry", "queued", str(world.incident.key))
    assert operation.parameters["retries"] == 4
    assert operation.actor_name == "operator"
    assert AuditEntry.objects.filter(operation=operation).exists()
    listed = operator.get(f"{V1}/process-instances/{world.root.key}/operations/").json()["results"]
    assert body["id"] in [row["id"] for row in listed]
    assert operator.get(f"{V1}/operations/{body['id']}/").json()["target_key"] == str(world.incident.key)


def test_retry_defaults_to_one_retry(operator, world):
    body = operator.post(f"{V1}/incidents/{world.incident.key}/retry/", {}, format="json").json()
    assert Operation.objects.get(pk=body["id"]).parameters["retries"] == 1


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("incidents/{incident}/retry/", {"retries": 0}, "retries"),
        ("incidents/{incident}/retry/", {"retries": "many"}, "retries"),
        ("element-instances/{step}/skip/", {"variables": [1, 2]}, "variables"),
        ("element-instances/{step}/skip/", {"variables": "x"}, "variables"),
        ("element-instances/{step}/skip/", {"variables": {"blob": "x" * 300_000}}, "variables"),
        ("element-instances/{manual}/reassign/", {}, "assignee"),
        ("element-instances/{manual}/reassign/", {"candidate_groups": "ops"}, "candidate_groups"),
        ("process-instances/{root}/variables/", {"variables": {}}, "variables"),
        ("process-instances/{root}/variables/", {"variables": {"a": 1}, "scope_key": "abc"}, "scope_key"),
        (
            "process-instances/{root}/variables/",
            {"variables": {"a": 1}, "scope_key": "{foreign}"},
            "scope_key",
        ),
        ("process-instances/{root}/variables/", {"variables": {"a": 1}, "scope_key": "{child}"}, "scope_key"),
        ("jobs/{job}/retries/", {}, "retries"),
        ("jobs/{job}/retries/", {"retries": -1}, "retries"),
        ("messages/", {"correlation_key": "k"}, "name"),
        ("messages/", {"name": "m", "time_to_live_ms": -5}, "time_to_live_ms"),
        ("messages/", {"name": "m", "variables": 7}, "variables"),
        ("batch-operations/", {"action": "explode", "filter": {}}, "action"),
        (
            "batch-operations/",
            {"action": "cancel", "filter": {"stat": "active"}, "dry_run": True},
            "filter.stat",
        ),
        (
            "batch-operations/",
            {"action": "cancel", "filter": {"root_key": "x"}, "dry_run": True},
            "filter.root_key",
        ),
        ("batch-operations/", {"action": "retry", "filter": {"state": "open"}}, "filter.state"),
        ("batch-operations/", {"action": "retry", "filter": {}, "parameters": {"bogus": 1}}, "parameters"),
        ("batch-operations/", {"action": "cancel", "filter": {"bpmn_process_id": "none-such"}}, "filter"),
    ],
)
def test_bad_action_input_is_400_naming_the_field(operator, world, path, payload, field):
    keys = {
        "incident": world.incident.key,
        "step": world.step.key,
        "manual": world.manual_step.key,
        "root": world.root.key,
        "child": world.child.key,
        "job": world.job.key,
        "foreign": to_global(9, 5),
    }
    payload = {
        name: value.format(**keys) if isinstance(value, str) and "{" in value else value
        for name, value in payload.items()
    }
    operations_before, batches_before = Operation.objects.count(), BatchOperation.objects.count()
    response = operator.post(f"{V1}/{path.format(**keys)}", payload, format="json")
    body = assert_error(response, 400, "invalid")
    assert field in body["error"]["details"], body
    assert Operation.objects.count() == operations_before
    assert BatchOperation.objects.count() == batches_before


def test_body_that_is_not_json_is_400(operator, world):
    response = operator.post(
        f"{V1}/incidents/{world.incident.key}/retry/", "{not json", content_type="application/json"
    )
    assert_error(response, 400, "parse_error")


def test_actions_on_ended_targets_are_refused(operator, world):
    world.incident.state = IncidentState.RESOLVED
    world.incident.save()
    body = assert_error(
        operator.post(f"{V1}/incidents/{world.incident.key}/retry/", {}, format="json"), 400, "invalid"
    )
    assert "already resolved" in body["error"]["message"]
    # A called instance cannot be cancelled on its own (Zeebe refuses it): the service says why.
    body = assert_error(operator.post(f"{V1}/process-instances/{world.child.key}/cancel/"), 400, "invalid")
    assert "root instance" in body["error"]["message"]


def test_unknown_targets_are_404_and_bad_keys_400(operator, world):
    missing = to_global(1, 999_999)
    assert_error(operator.post(f"{V1}/incidents/{missing}/retry/", {}, format="json"), 404, "not_found")
    assert_error(
        operator.post(f"{V1}/jobs/{missing}/retries/", {"retries": 1}, format="json"), 404, "not_found"
    )
    assert_error(
        operator.post(f"{V1}/element-instances/nope/skip/", {}, format="json"), 400, "invalid", "key"
    )
    assert_error(operator.post(f"{V1}/process-instances/{to_global(9, 1)}/cancel/"), 400, "invalid", "key")


def test_batch_dry_run_counts_and_start_cancel(operator, world):
    dry = operator.post(
        f"{V1}/batch-operations/",
        {"action": "retry", "filter": {"state": "active"}, "dry_run": True},
        format="json",
    )
    assert dry.status_code == 200 and dry.json() == {"count": 1}
    assert BatchOperation.objects.count() == 1  # the world's own batch; a dry run writes nothing
    started = operator.post(
        f"{V1}/batch-operations/",
        {"action": "retry", "filter": {"state": "active", "server": "SN-1"}, "parameters": {"retries": 2}},
        format="json",
    )
    assert started.status_code == 202
    body = started.json()
    assert (body["action"], body["state"], body["dry_run_count"]) == ("retry", "planning", 1)
    assert body["filter"] == {"state": "active", "server": "SN-1"}
    assert body["progress"]["total"] == 1
    cancelled = operator.post(f"{V1}/batch-operations/{body['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    again = operator.post(f"{V1}/batch-operations/{body['id']}/cancel/")
    assert_error(again, 400, "invalid", "batch")


def test_cluster_state_changes_for_admins(admin, world):
    response = admin.post(f"{V1}/clusters/1/drain/", format="json")
    assert response.status_code == 200 and response.json()["state"] == "draining"
    assert Cluster.objects.get(pk=1).state == ClusterState.DRAINING
    # Cluster 2 is now the last active one: taking it out needs the explicit confirmation.
    body = assert_error(admin.post(f"{V1}/clusters/2/disable/", format="json"), 400, "invalid")
    assert "last active" in body["error"]["message"]
    assert Cluster.objects.get(pk=2).state == ClusterState.ACTIVE
    confirmed = admin.post(f"{V1}/clusters/2/disable/", {"allow_no_placement": True}, format="json")
    assert confirmed.status_code == 200 and confirmed.json()["state"] == "disabled"
    assert admin.post(f"{V1}/clusters/1/enable/").json()["state"] == "active"
    assert_error(admin.post(f"{V1}/clusters/99/enable/"), 404, "not_found")


def test_post_to_unknown_path_and_bad_ids_answer_json(operator, world):
    assert_error(operator.post(f"{V1}/batch-operations/x!/cancel/"), 400, "invalid", "id")
    assert_error(operator.post(f"{V1}/no-such/thing/", {}, format="json"), 404, "not_found")
    assert_error(operator.get(f"{V1}/operations/12345678901234567890123/"), 400, "invalid", "id")
    assert_error(operator.get(f"{V1}/clusters/one/"), 400, "invalid", "id")


def test_huge_body_is_413_and_writes_nothing(operator, world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    payload = '{"variables": {"blob": "' + "x" * (2 * 1024 * 1024) + '"}}'
    response = operator.post(
        f"{V1}/process-instances/{world.root.key}/variables/", payload, content_type="application/json"
    )
    assert_error(response, 413, "too_large")
    assert not Operation.objects.filter(action="set_variables", actor_name="operator").exists()
