"""Read endpoints: contents, keys as strings, filters, keyset pagination, errors in the one shape."""

from __future__ import annotations

from datetime import timedelta

import pytest

from processes.choices import IncidentState, InstanceState, JobState
from processes.models import ImportPosition
from routing.keys import to_global
from tests.api import data

pytestmark = pytest.mark.django_db

V1 = "/api/v1"


def assert_error(response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"], body
    if field is not None:
        assert field in body["error"]["details"], body
        assert field in body["error"]["message"], body
    return body


@pytest.fixture
def tree():
    root = data.instance(bpmn_process_id="provision", minutes=0, server_serial="SN-1")
    children = [data.instance(parent=root, bpmn_process_id="firmware", minutes=1 + i) for i in range(3)]
    grandchild = data.instance(parent=children[0], bpmn_process_id="flash", minutes=5)
    step = data.element(grandchild, element_id="flash-bios", minutes=5)
    failed_job = data.job(step, state=JobState.FAILED, retries=0)
    incident = data.incident_on(step, error_message="BIOS flash timed out", job_row=failed_job)
    data.element(root, element_id="start", minutes=0, state=InstanceState.COMPLETED)
    data.variable(root, "serverSn", "SN-1")
    return {
        "root": root,
        "children": children,
        "grandchild": grandchild,
        "step": step,
        "job": failed_job,
        "incident": incident,
    }


def test_keys_are_strings_and_detail_has_tree_fields(viewer, tree):
    root, grandchild = tree["root"], tree["grandchild"]
    body = viewer.get(f"{V1}/process-instances/{grandchild.key}/").json()
    assert body["key"] == str(grandchild.key)
    assert body["key"] == str(int(body["key"])) and int(body["key"]) > 2**53
    assert body["parent_key"] == str(tree["children"][0].key)
    assert body["root_key"] == str(root.key)
    assert body["depth"] == 2
    assert body["server"] == "SN-1"
    assert body["children_count"] == 0
    assert body["state"] == "active"
    assert body["incident"] is True
    root_body = viewer.get(f"{V1}/process-instances/{root.key}/").json()
    assert root_body["children_count"] == 3
    assert root_body["parent_key"] is None and root_body["depth"] == 0


def test_instance_sub_resources(viewer, tree):
    root, grandchild = tree["root"], tree["grandchild"]
    subtree = viewer.get(f"{V1}/process-instances/{root.key}/tree/").json()
    assert [row["depth"] for row in subtree["results"]] == [1, 1, 1, 2]
    assert {row["key"] for row in subtree["results"]} == {str(c.key) for c in tree["children"]} | {
        str(grandchild.key)
    }
    assert subtree["results"][-1]["parent_key"] == str(tree["children"][0].key)
    elements = viewer.get(f"{V1}/process-instances/{grandchild.key}/element-instances/").json()["results"]
    assert [e["element_id"] for e in elements] == ["flash-bios"]
    assert elements[0]["process_instance_key"] == str(grandchild.key)
    variables = viewer.get(f"{V1}/process-instances/{root.key}/variables/").json()["results"]
    assert [(v["name"], v["value"]) for v in variables] == [("serverSn", "SN-1")]
    jobs = viewer.get(f"{V1}/process-instances/{grandchild.key}/jobs/").json()["results"]
    assert [(j["key"], j["state"], j["retries"]) for j in jobs] == [(str(tree["job"].key), "failed", 0)]
    incidents = viewer.get(f"{V1}/process-instances/{grandchild.key}/incidents/").json()["results"]
    assert [i["key"] for i in incidents] == [str(tree["incident"].key)]
    assert incidents[0]["job_key"] == str(tree["job"].key)


def test_instance_list_filters_and_keyset_pagination(viewer, tree):
    for minute in range(10, 17):
        data.instance(bpmn_process_id="decommission", minutes=minute, state=InstanceState.COMPLETED)
    response = viewer.get(f"{V1}/process-instances/", {"bpmn_process_id": "decommission", "page_size": 3})
    pages, url = [], None
    body = response.json()
    while True:
        pages.append([row["start_date"] for row in body["results"]])
        url = body["next"]
        if url is None:
            break
        assert "bpmn_process_id=decommission" in url
        body = viewer.get(url).json()
    assert [len(page) for page in pages] == [3, 3, 1]
    flat = [start for page in pages for start in page]
    assert flat == sorted(flat, reverse=True) and len(set(flat)) == 7
    roots = viewer.get(f"{V1}/process-instances/", {"roots_only": "true", "incident": "true"}).json()[
        "results"
    ]
    assert [row["key"] for row in roots] == [str(tree["root"].key)]
    canceled = viewer.get(f"{V1}/process-instances/", {"state": "canceled"}).json()["results"]
    assert canceled == []
    by_error = viewer.get(f"{V1}/process-instances/", {"error_message": "flash timed"}).json()["results"]
    assert {row["key"] for row in by_error} == {str(tree["root"].key), str(tree["grandchild"].key)}


def test_instances_with_equal_or_missing_start_dates_page_without_loss(viewer):
    same = [data.instance(bpmn_process_id="same", minutes=3) for _ in range(5)]
    undated = [data.instance(bpmn_process_id="same", minutes=0) for _ in range(3)]
    from processes.models import ProcessInstance

    ProcessInstance.objects.filter(key__in=[row.key for row in undated]).update(start_date=None)
    seen, url, params = [], f"{V1}/process-instances/", {"bpmn_process_id": "same", "page_size": 2}
    for _ in range(10):
        body = viewer.get(url, params).json()
        seen += [row["key"] for row in body["results"]]
        url, params = body["next"], None
        if url is None:
            break
    assert sorted(seen) == sorted(str(row.key) for row in same + undated)
    assert len(seen) == 8


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state": "running"}, "state"),
        ({"root_key": "abc"}, "root_key"),
        ({"root_key": str(to_global(9, 5))}, "root_key"),
        ({"incident": "maybe"}, "incident"),
        ({"cursor": "%%%"}, "cursor"),
        ({"cursor": "WzEsMl0"}, "cursor"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "501"}, "page_size"),
        ({"stat": "active"}, "stat"),
        ({"state": ""}, "state"),
        ({"cursor": ""}, "cursor"),
    ],
)
def test_bad_list_input_is_400_naming_the_field(viewer, tree, params, field):
    assert_error(viewer.get(f"{V1}/process-instances/", params), 400, "invalid", field)


@pytest.mark.parametrize(
    ("key", "status", "code"),
    [
        ("abc", 400, "invalid"),
        ("12", 400, "invalid"),  # cluster id 0: a plain Zeebe key
        (str(to_global(7, 99)), 400, "invalid"),  # cluster 7 does not exist
        ("99999999999999999999999", 400, "invalid"),
        (str(to_global(1, 424242)), 404, "not_found"),
    ],
)
def test_bad_key_in_path(viewer, tree, key, status, code):
    body = assert_error(viewer.get(f"{V1}/process-instances/{key}/"), status, code)
    if status == 400:
        assert "key" in body["error"]["details"]
    assert_error(viewer.get(f"{V1}/process-instances/{key}/tree/"), status, code)


def test_unknown_path_and_method_use_the_error_shape(viewer, admin, tree):
    assert_error(viewer.get("/api/v1/no-such-thing/"), 404, "not_found")
    # Role before method: a viewer learns it may not write; an admin that the method does not exist.
    assert_error(viewer.delete(f"{V1}/process-instances/{tree['root'].key}/"), 403, "permission_denied")
    assert_error(admin.delete(f"{V1}/process-instances/{tree['root'].key}/"), 405, "method_not_allowed")


def test_anonymous_and_roleless_users_are_refused(db, tree, personas):
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from tests.api.conftest import token_client

    assert_error(personas["anonymous"].client.get(f"{V1}/process-instances/"), 401, "not_authenticated")
    roleless = get_user_model().objects.create(username="nobody")
    client = token_client(Token.objects.create(user=roleless).key)
    assert_error(client.get(f"{V1}/process-instances/"), 403, "permission_denied")
    assert_error(token_client("not-a-token").get(f"{V1}/process-instances/"), 401, "authentication_failed")


def test_session_authentication(db, tree, client):
    from django.contrib.auth import get_user_model

    from processes.roles import Role, assign_role

    user = get_user_model().objects.create_user(username="alice", password="pw-alice-123")
    assign_role(user=user, role=Role.VIEWER)
    client.force_login(user)
    response = client.get(f"{V1}/process-instances/{tree['root'].key}/")
    assert response.status_code == 200
    assert response.json()["key"] == str(tree["root"].key)


def test_incidents_list_and_by_error(viewer, tree):
    other = data.element(tree["root"], element_id="check")
    data.incident_on(other, error_type="IO_MAPPING_ERROR", error_message="no variable rack")
    data.incident_on(other, error_type="IO_MAPPING_ERROR", error_message="no variable rack")
    data.incident_on(other, error_message="old", state=IncidentState.RESOLVED)
    body = viewer.get(f"{V1}/incidents/", {"state": "active", "error_type": "IO_MAPPING_ERROR"}).json()
    assert len(body["results"]) == 2
    groups = viewer.get(f"{V1}/incidents/by-error/").json()
    assert groups == [
        {"error_type": "IO_MAPPING_ERROR", "error_message": "no variable rack", "count": 2},
        {"error_type": "JOB_NO_RETRIES", "error_message": "BIOS flash timed out", "count": 1},
    ]
    detail = viewer.get(f"{V1}/incidents/{tree['incident'].key}/").json()
    assert detail["process_instance_key"] == str(tree["grandchild"].key)
    assert_error(viewer.get(f"{V1}/incidents/", {"server": "x" * 200}), 400, "invalid", "server")


def test_server_timeline(viewer, tree):
    other_server = data.instance(bpmn_process_id="provision", minutes=30, server_serial="SN-2")
    body = viewer.get(f"{V1}/servers/SN-1/timeline/").json()
    assert body["server"]["serial_number"] == "SN-1"
    keys = [row["key"] for row in body["instances"]]
    expected = [tree["root"], *tree["children"], tree["grandchild"]]
    assert sorted(keys) == sorted(str(row.key) for row in expected)
    assert str(other_server.key) not in keys
    by_key = {row["key"]: row for row in body["instances"]}
    assert [s["element_id"] for s in by_key[str(tree["grandchild"].key)]["steps"]] == ["flash-bios"]
    assert [s["element_id"] for s in by_key[str(tree["root"].key)]["steps"]] == ["start"]
    assert [i["key"] for i in body["stuck"]["incidents"]] == [str(tree["incident"].key)]
    assert [j["key"] for j in body["stuck"]["jobs"]] == [str(tree["job"].key)]
    assert body["next"] is None
    paged = viewer.get(f"{V1}/servers/SN-1/timeline/", {"page_size": 2}).json()
    assert len(paged["instances"]) == 2 and paged["next"]
    assert viewer.get(f"{V1}/servers/").json()["results"][0]["serial_number"] == "SN-1"
    assert_error(viewer.get(f"{V1}/servers/NOPE/timeline/"), 404, "not_found")


def test_clusters_with_import_lag_and_definitions_with_xml(viewer, tree):
    ImportPosition.objects.create(
        cluster_id=1, partition_id=1, position=42, last_record_timestamp=data.BASE_TIME, imported_count=42
    )
    clusters = viewer.get(f"{V1}/clusters/").json()["results"]
    assert [c["id"] for c in clusters] == [1]
    assert clusters[0]["health"] == "unknown"
    assert clusters[0]["import_lag"][0]["partition_id"] == 1
    assert clusters[0]["import_lag"][0]["position"] == 42
    assert clusters[0]["import_lag"][0]["lag_seconds"] > 0
    definition = data.definition(bpmn_process_id="provision")
    listed = viewer.get(f"{V1}/process-definitions/").json()["results"]
    assert listed[0]["key"] == str(definition.key) and "bpmn_xml" not in listed[0]
    detail = viewer.get(f"{V1}/process-definitions/{definition.key}/").json()
    assert detail["bpmn_xml"] == data.LINEAR_BPMN


def test_stats(viewer, tree):
    data.instance(bpmn_process_id="provision", state=InstanceState.TERMINATED, minutes=40)
    body = viewer.get(f"{V1}/stats/").json()
    assert {row["state"]: row["count"] for row in body["instances_by_state"]} == {"active": 5, "canceled": 1}
    assert body["active_instances_by_process"][0] == {"bpmn_process_id": "firmware", "version": 1, "count": 3}
    assert body["incidents_by_error"][0]["count"] == 1
    assert body["active_incidents_by_process"] == [{"bpmn_process_id": "flash", "count": 1}]
    assert body["clusters"] == [{"id": 1, "name": "c1", "state": "active", "weight": 1, "health": "unknown"}]


def test_schema_and_docs_are_served_without_cdn(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in [
        "/api/v1/process-instances/",
        "/api/v1/process-instances/{key}/tree/",
        "/api/v1/incidents/by-error/",
        "/api/v1/servers/{serial}/timeline/",
        "/api/v1/stats/",
    ]:
        assert path in paths, sorted(paths)
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower() and "https://" not in html


def test_started_filters_accept_timezones(viewer, tree):
    after = (data.BASE_TIME + timedelta(minutes=3)).isoformat()
    rows = viewer.get(f"{V1}/process-instances/", {"started_after": after}).json()["results"]
    assert len(rows) == 2


def test_schema_is_valid_openapi_without_warnings(tmp_path):
    from django.core.management import call_command

    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert "/api/v1/process-instances/{key}/tree/" in target.read_text()


def test_cluster_health_comes_from_the_proxy_metrics_file(viewer, tree, tmp_path, settings):
    import json

    data.cluster(2)
    (tmp_path / "metrics.json").write_text(
        json.dumps({"clusters": {"1": {"health": "up"}, "2": {"health": "down"}, "x": {"health": "up"}}})
    )
    settings.FLEETFLOW_PROXY_STATE_DIR = str(tmp_path)
    clusters = viewer.get(f"{V1}/clusters/").json()["results"]
    assert [(c["id"], c["health"]) for c in clusters] == [(1, "up"), (2, "down")]
    (tmp_path / "metrics.json").write_text("{torn")
    assert [c["health"] for c in viewer.get(f"{V1}/clusters/").json()["results"]] == ["unknown", "unknown"]
