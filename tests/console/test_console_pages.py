"""Console pages through Django's test client on PostgreSQL: every page for every role, the role
matrix of the action endpoints (a viewer's forged POST is refused and writes nothing), keyset paging,
the lazy tree, "why is it stuck" sentences, the CSP header. The browser walk is tests/console/test_browser.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client

from console import selectors as console_selectors
from console.views.pages import operations_installed
from processes.choices import ClusterState, InstanceState, JobState
from processes.models import Cluster, Job
from processes.roles import Role, assign_role
from routing.activation import HAND_BACK_MESSAGE
from tests.api import data

pytestmark = pytest.mark.django_db


def login(client: Client, name: str, role: Role | None) -> User:
    user = User.objects.create_user(username=name, password="pw-" + name)
    if role is not None:
        assign_role(user=user, role=role)
    client.force_login(user)
    return user


@pytest.fixture
def tree():
    root = data.instance(bpmn_process_id="rack-sweep", server_serial="SN-7", minutes=1)
    child = data.instance(parent=root, bpmn_process_id="server-repair", minutes=2)
    grandchild = data.instance(parent=child, bpmn_process_id="diagnosis", minutes=3)
    step = data.element(grandchild, element_id="check-cpu", minutes=3)
    job = data.job(step, state=JobState.FAILED, retries=0)
    incident = data.incident_on(step, error_message="CPU sensor <b>unreadable</b>", job_row=job)
    data.variable(root, "serverSn", "SN-7")
    return {"root": root, "child": child, "grandchild": grandchild, "step": step, "incident": incident}


def test_pages_need_login(client, tree):
    for path in (
        "/",
        "/instances/",
        f"/instances/{tree['root'].key}/",
        "/incidents/",
        "/operations/",
        "/clusters/",
    ):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), path


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR, Role.ADMIN])
def test_every_page_renders_for_every_role(client, tree, role):
    login(client, "someone", role)
    grandchild = tree["grandchild"]
    pages = [
        "/",
        "/instances/",
        "/instances/?state=active&bpmn_process_id=diagnosis",
        f"/instances/{grandchild.key}/",
        f"/instances/{grandchild.key}/live",
        f"/instances/{grandchild.key}/live?part=details",
        f"/instances/{tree['root'].key}/children",
        "/incidents/",
        "/incidents/list?state=active",
        "/servers/",
        "/servers/SN-7/",
        "/operations/",
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        if response["Content-Type"].startswith("text/html"):
            policy = response["Content-Security-Policy"]
            assert (
                "script-src 'self'" in policy
                and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
            )
    assert client.get("/clusters/").status_code == (200 if role == Role.ADMIN else 403)


def test_viewer_sees_no_action_buttons_and_forged_posts_are_refused(client, tree):
    login(client, "vera", Role.VIEWER)
    body = client.get(f"/instances/{tree['grandchild'].key}/").content.decode()
    assert "Retry…" not in body and "Skip…" not in body and "Cancel instance…" not in body
    assert 'class="action' not in body
    cluster = Cluster.objects.get(pk=1)
    forged = [
        (f"/actions/retry/{tree['incident'].key}/", {"retries": "3"}),
        (f"/actions/skip/{tree['step'].key}/", {"variables": "{}"}),
        (f"/actions/cancel/{tree['root'].key}/", {}),
        ("/batches/new", {"action": "retry", "state": "active"}),
        (f"/clusters/{cluster.id}/drain", {}),
    ]
    for path, payload in forged:
        assert client.post(path, payload).status_code == 403, path
        assert client.get(path).status_code == 403, path
    cluster.refresh_from_db()
    assert cluster.state == ClusterState.ACTIVE
    if operations_installed():
        from processes.operations.models import BatchOperation, Operation

        assert Operation.objects.count() == 0 and BatchOperation.objects.count() == 0


def test_operator_sees_actions_and_a_dialog_that_says_what_happens(client, tree):
    login(client, "olga", Role.OPERATOR)
    body = client.get(f"/instances/{tree['grandchild'].key}/").content.decode()
    assert f"/actions/retry/{tree['incident'].key}/" in body
    dialog = client.get(f"/actions/retry/{tree['incident'].key}/").content.decode()
    assert "What will happen" in dialog and "provision-task" in dialog and "resolves incident" in dialog
    cancel = client.get(f"/actions/cancel/{tree['root'].key}/").content.decode()
    assert "3 active instances in this subtree" in cancel
    # An operator is not an admin: no cluster actions.
    assert client.post("/clusters/1/drain").status_code == 403


def test_bad_action_input_comes_back_into_the_dialog(client, tree):
    login(client, "olga", Role.OPERATOR)
    response = client.post(f"/actions/skip/{tree['step'].key}/", {"variables": "[1, 2"})
    assert response.status_code == 422
    assert "not valid JSON" in response.content.decode()
    response = client.post(f"/actions/retry/{tree['incident'].key}/", {"retries": "-4"})
    assert response.status_code == 422 and "between 1 and 1000" in response.content.decode()
    if operations_installed():
        from processes.operations.models import Operation

        assert Operation.objects.count() == 0
    assert client.get("/actions/explode/1/").status_code == 404
    assert client.get("/actions/retry/not-a-key/").status_code == 404


def test_admin_drains_and_enables_a_cluster(client, tree):
    login(client, "ada", Role.ADMIN)
    data.cluster(2)
    page = client.get("/clusters/").content.decode()
    assert "/clusters/1/drain" in page
    assert "Stops placing new instances" in client.get("/clusters/1/drain").content.decode()
    response = client.post("/clusters/1/drain")
    assert response.status_code == 200 and "Draining" in response.content.decode()
    assert Cluster.objects.get(pk=1).state == ClusterState.DRAINING
    client.post("/clusters/1/enable")
    assert Cluster.objects.get(pk=1).state == ClusterState.ACTIVE


def test_instance_list_keyset_pages_and_filters(client):
    login(client, "vera", Role.VIEWER)
    made = [data.instance(bpmn_process_id="bulk", minutes=minute) for minute in range(120)]
    first = client.get("/instances/?bpmn_process_id=bulk")
    rows = first.context["rows"]
    assert [row.key for row in rows] == [row.key for row in reversed(made)][:50]
    cursor = first.context["next_cursor"]
    second = client.get(f"/instances/?bpmn_process_id=bulk&after={cursor}", HTTP_HX_REQUEST="true")
    assert [row.key for row in second.context["rows"]] == [row.key for row in reversed(made)][50:100]
    assert "<html" not in second.content.decode()  # a partial: rows only
    third = client.get(f"/instances/?bpmn_process_id=bulk&after={second.context['next_cursor']}")
    assert len(third.context["rows"]) == 20 and third.context["next_cursor"] is None
    assert client.get("/instances/?after=garbage!").status_code == 400
    invalid = client.get("/instances/?root_key=abc").content.decode()
    assert "not a key" in invalid and "nothing is listed" in invalid


def test_new_rows_counter(client):
    login(client, "vera", Role.VIEWER)
    since = datetime(2026, 1, 1, 0, 30, tzinfo=UTC).isoformat()
    for minute in (10, 40, 50):
        data.instance(bpmn_process_id="counted", minutes=minute)
    body = client.get("/instances/new-count", {"since": since, "bpmn_process_id": "counted"}).content.decode()
    assert "2 new instances" in body
    assert client.get("/instances/new-count", {"since": "yesterday"}).status_code == 400


def test_tree_children_lazy_pages(client):
    login(client, "vera", Role.VIEWER)
    root = data.instance(bpmn_process_id="fan-out")
    children = [data.instance(parent=root, bpmn_process_id="leaf", minutes=minute) for minute in range(130)]
    data.instance(parent=children[0], bpmn_process_id="deeper")
    response = client.get(f"/instances/{root.key}/children")
    nodes = response.context["nodes"]
    assert len(nodes) == 100 and nodes[0]["child_count"] == 1 and nodes[1]["child_count"] == 0
    more = client.get(f"/instances/{root.key}/children?after={response.context['next_cursor']}")
    assert [node["instance"].key for node in more.context["nodes"]] == [child.key for child in children[100:]]


def test_large_variable_value_on_demand(client, tree):
    from processes.models import Variable, VariableValue

    login(client, "vera", Role.VIEWER)
    root = tree["root"]
    big = Variable.objects.create(
        key=data.next_key(),
        cluster_id=1,
        partition_id=1,
        name="report",
        scope_key=root.key,
        process_instance=root,
        value=None,
        truncated=True,
        preview='{"lines": ["aaaa',
        size=100_000,
    )
    VariableValue.objects.create(variable=big, json_text=json.dumps({"lines": ["a" * 50] * 2000}))
    page = client.get(f"/instances/{root.key}/").content.decode()
    assert f"/variables/{big.key}/value" in page and "aaaa" * 100 not in page
    full = client.get(f"/variables/{big.key}/value").content.decode()
    assert full.count("a" * 50) == 2000


def test_diagram_and_statistics(client, tree):
    login(client, "vera", Role.VIEWER)
    definition = data.definition(bpmn_process_id="diagnosis")
    grandchild = tree["grandchild"]
    type(grandchild).objects.filter(pk=grandchild.pk).update(process_definition=definition)
    data.element(grandchild, element_id="start", state=InstanceState.COMPLETED, element_type="START_EVENT")
    assert client.get(f"/instances/{grandchild.key}/diagram.bpmn").content.decode() == definition.bpmn_xml
    stats = client.get(f"/instances/{grandchild.key}/statistics.json").json()["elements"]
    assert stats["check-cpu"]["incidents"] == 1 and stats["check-cpu"]["active"] == 1
    assert stats["start"]["completed"] == 1
    assert client.get(f"/instances/{tree['root'].key}/diagram.bpmn").status_code == 404


def test_why_stuck_sentences(tree, settings, tmp_path: Path):
    now = datetime.now(tz=UTC)
    instance = data.instance(bpmn_process_id="repair")
    locked_step = data.element(instance, element_id="replace-part")
    Job.objects.filter(pk=data.job(locked_step).pk).update(
        state=JobState.ACTIVATED, worker="tech-7", deadline=now + timedelta(minutes=5)
    )
    backoff_step = data.element(instance, element_id="reboot")
    Job.objects.filter(pk=data.job(backoff_step).pk).update(
        retry_backoff_ms=600_000, updated_at=now, error_message="BMC busy"
    )
    manual_step = data.element(instance, element_id="manual-analysis", element_type="SERVICE_TASK")
    Job.objects.filter(pk=data.job(manual_step).pk).update(
        job_type="io.camunda.zeebe:userTask", custom_headers={"io.camunda.zeebe:assignee": "repair-lead"}
    )
    idle_step = data.element(instance, element_id="ship-part")
    Job.objects.filter(pk=data.job(idle_step).pk).update(job_type="ship-part")

    settings.FLEETFLOW_PROXY_STATE_DIR = None
    reasons = {reason.element_id: reason for reason in console_selectors.why_stuck(instances=[instance])}
    assert "locked by worker tech-7 until" in reasons["replace-part"].sentence
    assert "retry backoff until" in reasons["reboot"].sentence and "BMC busy" in reasons["reboot"].sentence
    assert "waiting for assignee repair-lead since" in reasons["manual-analysis"].sentence
    assert "publishes no per-job-type poll times" in reasons["ship-part"].sentence

    polls = console_selectors.job_type_polls(
        {
            "generatedAt": now.timestamp(),
            "activation": {
                "clusters": {
                    "1": {
                        "jobTypes": {
                            "ship-part": {
                                "lastPollAt": (now - timedelta(minutes=12)).timestamp(),
                                "workers": {"w1": (now - timedelta(minutes=12)).timestamp()},
                            },
                            "check-cpu": {"lastPollAt": None, "workers": {}, "parkedPolls": 1},
                        }
                    }
                }
            },
        }
    )
    reasons = {
        reason.element_id: reason
        for reason in console_selectors.why_stuck(instances=[instance], polls=polls, polls_known=True)
    }
    assert (
        "no worker has polled job type ship-part for 12 minutes (last seen: w1)"
        in reasons["ship-part"].sentence
    )
    assert polls is not None and polls["check-cpu"].last_poll_at is not None  # a parked poll is asking now
    assert console_selectors.job_type_polls({"clusters": {}}) is None  # a proxy without poll figures

    incident_reasons = console_selectors.why_stuck(instances=[tree["grandchild"]])
    assert incident_reasons[0].kind == "incident"
    assert "CPU sensor <b>unreadable</b>" in incident_reasons[0].sentence


def test_a_job_the_proxy_handed_back_is_shown_as_a_hand_back_not_a_worker_failure(client, settings):
    """routing.activation hands an undeliverable job back with a FailJob whose message says so;
    the jobs table and "why is it stuck" must not present it as the worker's failure."""
    now = datetime.now(tz=UTC)
    instance = data.instance(bpmn_process_id="repair")
    handed = data.job(data.element(instance, element_id="ship-part"))
    Job.objects.filter(pk=handed.pk).update(
        job_type="ship-part",
        state=JobState.CREATED,
        retries=3,
        updated_at=now,
        error_message=HAND_BACK_MESSAGE,
    )
    failed = data.job(data.element(instance, element_id="reboot"))
    Job.objects.filter(pk=failed.pk).update(job_type="reboot", updated_at=now, error_message="BMC busy")
    assert Job.objects.get(pk=handed.pk).handed_back and not Job.objects.get(pk=failed.pk).handed_back

    settings.FLEETFLOW_PROXY_STATE_DIR = None
    reasons = {reason.element_id: reason for reason in console_selectors.why_stuck(instances=[instance])}
    assert "waits for a worker since" in reasons["ship-part"].sentence
    assert "The routing proxy handed it back at" in reasons["ship-part"].sentence
    assert "not a worker failure" in reasons["ship-part"].sentence
    assert "handed" not in reasons["reboot"].sentence

    # With a retry backoff (a worker's earlier failure left one): still named a hand-back.
    Job.objects.filter(pk=handed.pk).update(retry_backoff_ms=600_000)
    Job.objects.filter(pk=failed.pk).update(retry_backoff_ms=600_000)
    reasons = {reason.element_id: reason for reason in console_selectors.why_stuck(instances=[instance])}
    assert (
        "job was handed back by the routing proxy (not a worker failure) and waits out a retry backoff"
        in (reasons["ship-part"].sentence)
    )
    assert HAND_BACK_MESSAGE not in reasons["ship-part"].sentence
    assert "job failed (BMC busy) and waits out a retry backoff" in reasons["reboot"].sentence

    login(client, "vera", Role.VIEWER)
    body = client.get(f"/instances/{instance.key}/").content.decode()
    assert body.count("Handed back by the routing proxy (not a worker failure)") == 1
    assert ">BMC busy<" in body  # a worker's failure is shown as it is


def test_incident_message_is_escaped_on_the_page(client, tree):
    login(client, "vera", Role.VIEWER)
    body = client.get(f"/instances/{tree['grandchild'].key}/").content.decode()
    assert "<b>unreadable</b>" not in body and "&lt;b&gt;unreadable&lt;/b&gt;" in body


def test_server_page_timeline(client, tree):
    login(client, "vera", Role.VIEWER)
    body = client.get("/servers/SN-7/").content.decode()
    assert body.count('class="bar bar-') == 3
    assert "CPU sensor" in body  # stuck now
    assert client.get("/servers/NOPE/").status_code == 404


def test_dashboard_series(client, tree):
    login(client, "vera", Role.VIEWER)
    payload = client.get("/dashboard/series.json?hours=3").json()
    assert payload["bucketSeconds"] == 60 and len(payload["times"]) == len(payload["series"]["started"])
    assert client.get("/dashboard/series.json?hours=x").status_code == 400
    page = client.get("/").content.decode()
    assert "Incidents by error" in page and "CPU sensor" in page


def test_operator_retry_creates_an_operation_and_shows_its_state(client, tree):
    from processes.operations.models import AuditEntry, Operation

    user = login(client, "olga", Role.OPERATOR)
    response = client.post(
        f"/actions/retry/{tree['incident'].key}/", {"retries": "2"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    operation = Operation.objects.get()
    assert (operation.action, operation.target_key, operation.actor_id) == (
        "retry",
        tree["incident"].key,
        user.pk,
    )
    assert operation.parameters["retries"] == 2
    assert AuditEntry.objects.filter(operation=operation).exists()
    body = response.content.decode()
    assert f'id="operation-{operation.pk}"' in body and "Queued" in body
    status = client.get(f"/operations/{operation.pk}/status").content.decode()
    assert 'hx-trigger="every 1s"' in status  # still open: the page asks again
    Operation.objects.filter(pk=operation.pk).update(state="failed", error="NOT_FOUND: no such job")
    status = client.get(f"/operations/{operation.pk}/status").content.decode()
    assert "every 1s" not in status and "NOT_FOUND: no such job" in status
    log = client.get("/operations/").content.decode()
    assert "olga" in log and "Audit log" in log and "requested" in log


def test_batch_dry_run_start_and_cancel(client, tree):
    from processes.operations.models import BatchOperation

    login(client, "olga", Role.OPERATOR)
    query = {"action": "retry", "state": "active", "error_message": "CPU sensor"}
    dialog = client.get("/batches/new", query).content.decode()
    assert "data-dry-run-count>1<" in dialog and "Start batch on 1" in dialog
    assert BatchOperation.objects.count() == 0  # a dry run writes nothing
    started = client.post("/batches/new", query)
    assert started.status_code == 200
    batch = BatchOperation.objects.get()
    assert batch.filter == {"state": "active", "error_message": "CPU sensor"} and batch.dry_run_count == 1
    cancelled = client.post(f"/batches/{batch.pk}/")
    assert cancelled.status_code == 200
    batch.refresh_from_db()
    assert batch.state == "cancelled"
    assert "Cancelled" in cancelled.content.decode()


def test_batch_with_a_bad_filter_is_refused_with_a_reason(client, tree):
    from processes.operations.models import BatchOperation

    login(client, "olga", Role.OPERATOR)
    response = client.get("/batches/new", {"action": "retry", "colour": "red"})
    assert response.status_code == 422 and "Unknown filter" in response.content.decode()
    response = client.post("/batches/new", {"action": "retry", "root_key": "12x"})
    assert response.status_code == 422
    assert BatchOperation.objects.count() == 0
    assert client.get("/batches/new", {"action": "explode"}).status_code == 404


def test_tree_states_for_live_labels(client, tree):
    login(client, "vera", Role.VIEWER)
    keys = [tree["root"].key, tree["grandchild"].key]
    states = client.get("/instances/tree-states.json", {"keys": ",".join(map(str, keys)) + ",junk"}).json()
    assert states[str(tree["grandchild"].key)] == {
        "state": "active",
        "label": "Active",
        "incident": True,
        "subtreeIncident": True,
    }
    assert states[str(tree["root"].key)]["incident"] is False
    too_many = ",".join(str(n) for n in range(1, 600))
    assert client.get("/instances/tree-states.json", {"keys": too_many}).status_code == 400


def test_clusters_page_shows_who_imports_each_partition(client):
    """Import leases on the clusters page: a partition's own holder, a whole-cluster lease for a
    source read as one unit, an expired lease and a missed heartbeat said as such (DB clock)."""
    from django.utils import timezone

    from processes.models import ImporterProcess, ImportLease, ImportPosition

    login(client, "ada", Role.ADMIN)
    one, two = data.cluster(1), data.cluster(2)
    now = timezone.now()
    for cluster, partition in ((one, 1), (one, 2), (two, 1)):
        ImportPosition.objects.create(
            cluster=cluster, partition_id=partition, stream="", source="engine_log", position=10
        )
    ImportLease.objects.create(
        cluster=one, partition_id=1, holder="host-a:101:aa", token=3, expires_at=now + timedelta(seconds=10)
    )
    ImportLease.objects.create(
        cluster=one, partition_id=2, holder="host-b:202:bb", token=1, expires_at=now - timedelta(minutes=2)
    )
    ImportLease.objects.create(
        cluster=two, partition_id=0, holder="host-a:101:aa", token=1, expires_at=now + timedelta(seconds=10)
    )
    ImporterProcess.objects.create(
        holder="host-a:101:aa", backend_pid=1, started_at=now, expires_at=now + timedelta(seconds=10)
    )
    ImporterProcess.objects.create(
        holder="host-b:202:bb", backend_pid=2, started_at=now, expires_at=now - timedelta(minutes=2)
    )
    response = client.get("/clusters/")
    imports = {(row.lag.cluster_id, row.lag.partition_id): row.lease for row in response.context["imports"]}
    assert imports[(1, 1)].holder == "host-a:101:aa" and not imports[(1, 1)].expired
    assert imports[(1, 2)].holder == "host-b:202:bb" and imports[(1, 2)].expired
    assert (imports[(2, 1)].holder, imports[(2, 1)].partition_id) == ("host-a:101:aa", 0)
    importers = {row.holder: row for row in response.context["importers"]}
    assert (importers["host-a:101:aa"].alive, importers["host-a:101:aa"].leases) == (True, 2)
    assert (importers["host-b:202:bb"].alive, importers["host-b:202:bb"].leases) == (False, 1)
    page = response.content.decode()
    row_two = page[page.index('data-import="1-2"') :]
    assert "host-b:202:bb" in row_two[: row_two.index("</tr>")]
    assert "lease expired" in row_two[: row_two.index("</tr>")]
    assert "(whole cluster)" in page and "missed since" in page
