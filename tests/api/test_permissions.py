"""Permission matrix for every endpoint and action: anonymous, viewer, operator, admin (CONVENTIONS:
personas; every endpoint includes the denied case). One table, one test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction

from processes.operations.models import Operation
from processes.roles import Role
from tests.api.world import World, build_world

pytestmark = pytest.mark.django_db

RANK = {None: 0, Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}
V1 = "/api/v1"


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: Callable[[World], str]
    minimum: Role
    ok: int = 200
    body: Callable[[World], dict[str, Any]] | None = None


ENDPOINTS = [
    Endpoint("clusters", "get", lambda w: f"{V1}/clusters/", Role.VIEWER),
    Endpoint("cluster", "get", lambda w: f"{V1}/clusters/1/", Role.VIEWER),
    Endpoint("definitions", "get", lambda w: f"{V1}/process-definitions/", Role.VIEWER),
    Endpoint("definition", "get", lambda w: f"{V1}/process-definitions/{w.definition.key}/", Role.VIEWER),
    Endpoint("instances", "get", lambda w: f"{V1}/process-instances/", Role.VIEWER),
    Endpoint("instance", "get", lambda w: f"{V1}/process-instances/{w.root.key}/", Role.VIEWER),
    Endpoint("tree", "get", lambda w: f"{V1}/process-instances/{w.root.key}/tree/", Role.VIEWER),
    Endpoint(
        "elements", "get", lambda w: f"{V1}/process-instances/{w.root.key}/element-instances/", Role.VIEWER
    ),
    Endpoint("variables", "get", lambda w: f"{V1}/process-instances/{w.root.key}/variables/", Role.VIEWER),
    Endpoint("jobs", "get", lambda w: f"{V1}/process-instances/{w.root.key}/jobs/", Role.VIEWER),
    Endpoint(
        "instance incidents", "get", lambda w: f"{V1}/process-instances/{w.root.key}/incidents/", Role.VIEWER
    ),
    Endpoint(
        "instance operations",
        "get",
        lambda w: f"{V1}/process-instances/{w.root.key}/operations/",
        Role.VIEWER,
    ),
    Endpoint("incidents", "get", lambda w: f"{V1}/incidents/", Role.VIEWER),
    Endpoint("incident", "get", lambda w: f"{V1}/incidents/{w.incident.key}/", Role.VIEWER),
    Endpoint("by-error", "get", lambda w: f"{V1}/incidents/by-error/", Role.VIEWER),
    Endpoint("servers", "get", lambda w: f"{V1}/servers/", Role.VIEWER),
    Endpoint("server", "get", lambda w: f"{V1}/servers/SN-1/", Role.VIEWER),
    Endpoint("timeline", "get", lambda w: f"{V1}/servers/SN-1/timeline/", Role.VIEWER),
    Endpoint("element", "get", lambda w: f"{V1}/element-instances/{w.step.key}/", Role.VIEWER),
    Endpoint("job", "get", lambda w: f"{V1}/jobs/{w.job.key}/", Role.VIEWER),
    Endpoint("operations", "get", lambda w: f"{V1}/operations/", Role.VIEWER),
    Endpoint("operation", "get", lambda w: f"{V1}/operations/{w.operation.id}/", Role.VIEWER),
    Endpoint("batches", "get", lambda w: f"{V1}/batch-operations/", Role.VIEWER),
    Endpoint("batch", "get", lambda w: f"{V1}/batch-operations/{w.batch.id}/", Role.VIEWER),
    Endpoint("stats", "get", lambda w: f"{V1}/stats/", Role.VIEWER),
    # Actions: operators and admins; 202 with the operation.
    Endpoint(
        "retry",
        "post",
        lambda w: f"{V1}/incidents/{w.incident.key}/retry/",
        Role.OPERATOR,
        202,
        lambda w: {"retries": 2},
    ),
    Endpoint(
        "skip",
        "post",
        lambda w: f"{V1}/element-instances/{w.step.key}/skip/",
        Role.OPERATOR,
        202,
        lambda w: {"variables": {"fixed": True}},
    ),
    Endpoint(
        "reassign",
        "post",
        lambda w: f"{V1}/element-instances/{w.manual_step.key}/reassign/",
        Role.OPERATOR,
        202,
        lambda w: {"assignee": "vendor-b", "candidate_groups": ["vendors"]},
    ),
    Endpoint("cancel", "post", lambda w: f"{V1}/process-instances/{w.root.key}/cancel/", Role.OPERATOR, 202),
    Endpoint(
        "set variables",
        "post",
        lambda w: f"{V1}/process-instances/{w.root.key}/variables/",
        Role.OPERATOR,
        202,
        lambda w: {"variables": {"rack": "r2"}, "scope_key": str(w.step.key), "local": True},
    ),
    Endpoint(
        "job retries",
        "post",
        lambda w: f"{V1}/jobs/{w.job.key}/retries/",
        Role.OPERATOR,
        202,
        lambda w: {"retries": 3},
    ),
    Endpoint(
        "message",
        "post",
        lambda w: f"{V1}/messages/",
        Role.OPERATOR,
        202,
        lambda w: {"name": "vendor-answer", "correlation_key": "SN-1", "variables": {"ok": True}},
    ),
    Endpoint(
        "batch dry run",
        "post",
        lambda w: f"{V1}/batch-operations/",
        Role.OPERATOR,
        200,
        lambda w: {"action": "retry", "filter": {"state": "active"}, "dry_run": True},
    ),
    Endpoint(
        "batch start",
        "post",
        lambda w: f"{V1}/batch-operations/",
        Role.OPERATOR,
        202,
        lambda w: {"action": "retry", "filter": {"state": "active"}, "parameters": {"retries": 2}},
    ),
    Endpoint("batch cancel", "post", lambda w: f"{V1}/batch-operations/{w.batch.id}/cancel/", Role.OPERATOR),
    # Cluster management: admins only.
    Endpoint("drain", "post", lambda w: f"{V1}/clusters/1/drain/", Role.ADMIN),
    Endpoint("disable", "post", lambda w: f"{V1}/clusters/1/disable/", Role.ADMIN),
    Endpoint("enable", "post", lambda w: f"{V1}/clusters/3/enable/", Role.ADMIN),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_permission_matrix(personas, endpoint):
    world = build_world()
    for persona in ("anonymous", "viewer", "operator", "admin"):
        # Each persona sees the world as built: what an allowed action wrote is rolled back.
        with transaction.atomic():
            check(personas[persona], endpoint, world)
            transaction.set_rollback(True)


def check(persona, endpoint: Endpoint, world: World) -> None:  # type: ignore[no-untyped-def]
    held = persona.role
    operations_before = Operation.objects.count()
    kwargs: dict[str, Any] = {"format": "json"}
    if endpoint.body is not None:
        kwargs["data"] = endpoint.body(world)
    response = getattr(persona.client, endpoint.method)(endpoint.path(world), **kwargs)
    if held is None:
        expected = 401
    elif RANK[held] < RANK[endpoint.minimum]:
        expected = 403
    else:
        expected = endpoint.ok
    assert response.status_code == expected, (persona.name, endpoint.name, response.content[:300])
    body = response.json()
    if expected >= 400:
        assert set(body) == {"error"} and body["error"]["code"] in {"not_authenticated", "permission_denied"}
        assert Operation.objects.count() == operations_before  # a refused action writes nothing
    elif expected == 202 and "action" in body and "dry_run_count" not in body:
        operation = Operation.objects.get(pk=body["id"])
        assert operation.actor_name == persona.name
        assert operation.state == "queued"
