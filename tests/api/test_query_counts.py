"""Query counts: every list costs the same number of queries for a page of 2 and a page of 20 rows
(no N+1), and every list and detail stays under a small fixed bound (Zulip's assert_database_query_count)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api.world import World, build_world

pytestmark = pytest.mark.django_db

V1 = "/api/v1"
FAN_OUT = 25  # more rows than the larger page in every list below
# Token lookup (1) + its token_used audit row (1, issue 17: every token use is audited)
# + role lookup (1) + the key's cluster check (1) + the rows and their parts.
MAX_QUERIES = 9

LISTS = {
    "clusters": lambda w: f"{V1}/clusters/",
    "definitions": lambda w: f"{V1}/process-definitions/",
    "instances": lambda w: f"{V1}/process-instances/",
    "instances filtered": lambda w: (
        f"{V1}/process-instances/?state=active&server=SN-1&roots_only=false"
        f"&incident=false&root_key={w.root.key}&started_after=2025-01-01T00:00:00Z"
    ),
    "instances by variable": lambda w: f"{V1}/process-instances/?variable_name=bulk_1",
    "tree": lambda w: f"{V1}/process-instances/{w.root.key}/tree/",
    "element instances": lambda w: f"{V1}/process-instances/{w.root.key}/element-instances/",
    "variables": lambda w: f"{V1}/process-instances/{w.root.key}/variables/",
    "jobs": lambda w: f"{V1}/process-instances/{w.root.key}/jobs/",
    "instance incidents": lambda w: f"{V1}/process-instances/{w.root.key}/incidents/",
    "instance operations": lambda w: f"{V1}/process-instances/{w.root.key}/operations/",
    "incidents": lambda w: f"{V1}/incidents/?state=active",
    "servers": lambda w: f"{V1}/servers/",
    "timeline": lambda w: f"{V1}/servers/SN-1/timeline/",
    "operations": lambda w: f"{V1}/operations/",
    "batches": lambda w: f"{V1}/batch-operations/",
}
DETAILS = {
    "cluster": lambda w: f"{V1}/clusters/1/",
    "definition": lambda w: f"{V1}/process-definitions/{w.definition.key}/",
    "instance": lambda w: f"{V1}/process-instances/{w.root.key}/",
    "incident": lambda w: f"{V1}/incidents/{w.incident.key}/",
    "by-error": lambda w: f"{V1}/incidents/by-error/",
    "server": lambda w: f"{V1}/servers/SN-1/",
    "element": lambda w: f"{V1}/element-instances/{w.step.key}/",
    "job": lambda w: f"{V1}/jobs/{w.job.key}/",
    "operation": lambda w: f"{V1}/operations/{w.operation.id}/",
    "batch": lambda w: f"{V1}/batch-operations/{w.batch.id}/",
    "stats": lambda w: f"{V1}/stats/",
}

# stats: token + role + clusters + import lag + 5 grouped counts (states, processes, errors, incident
# processes, operation states), whatever the data size.
DETAIL_BOUNDS = {"stats": 10}  # 9 + the token_used audit row


@pytest.fixture
def world(db) -> World:  # type: ignore[no-untyped-def]
    return build_world(fan_out=FAN_OUT)


def count_queries(client, url: str) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    return len(captured), response.json()


def results_of(body: dict) -> list:
    return body["instances"] if "instances" in body else body["results"]


def test_list_query_counts_do_not_grow_with_the_page(viewer, world):
    for name, url_of in LISTS.items():
        url = url_of(world)
        joiner = "&" if "?" in url else "?"
        small, small_body = count_queries(viewer, f"{url}{joiner}page_size=2")
        large, large_body = count_queries(viewer, f"{url}{joiner}page_size=20")
        if name not in {"clusters", "instances by variable"}:  # fewer rows than a page
            assert len(results_of(small_body)) == 2, name
            assert len(results_of(large_body)) == 20, (name, len(results_of(large_body)))
        assert small == large, f"{name}: {small} queries for 2 rows, {large} for 20"
        assert large <= MAX_QUERIES, f"{name}: {large} queries"
        # The next page (keyset cursor) costs the same as the first.
        follow, _ = count_queries(viewer, small_body["next"]) if small_body["next"] else (small, None)
        assert follow == small, f"{name}: {follow} queries for the second page, {small} for the first"


def test_detail_query_counts(viewer, world):
    for name, url_of in DETAILS.items():
        queries, _ = count_queries(viewer, url_of(world))
        assert queries <= DETAIL_BOUNDS.get(name, MAX_QUERIES), f"{name}: {queries} queries"
