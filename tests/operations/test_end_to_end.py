"""Operator actions end to end (issue 10, must show): two engine clusters behind `python -m
routing`, a real Celery worker on the test Redis, `import_records --follow` on the test database.
Outcomes are checked in the engines' own logs (their truth) and in the confirmed operations."""

from __future__ import annotations

from typing import Any

import pytest

from processes.models import Incident, ProcessInstance
from processes.operations import services
from processes.operations.models import AuditEntry, Operation
from processes.roles import Role
from routing.keys import cluster_of
from tests.operations import factories as f
from tests.operations.stack import Stack, count_records
from tests.routing.harness import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

LOCAL = (1 << 58) - 1


def local(key: int) -> int:
    return key & LOCAL


def imported(model: Any, timeout: float = 60, **lookup: Any) -> Any:
    return wait_for(
        lambda: model.objects.filter(**lookup).first(), timeout, what=f"{model.__name__} {lookup}"
    )


def settled(operation: Operation, timeout: float = 60, states: tuple[str, ...] = ("confirmed",)) -> Operation:
    def check() -> Operation | None:
        operation.refresh_from_db()
        return operation if operation.state in states else None

    try:
        return wait_for(check, timeout, what=f"operation {operation.id} to be {states}")  # type: ignore[no-any-return]
    except AssertionError:
        raise AssertionError(
            f"operation {operation.id}: {operation.state} {operation.result} {operation.error}"
        ) from None


def make_incident(stack: Stack, cluster_id: int) -> tuple[int, Incident]:
    gateway = stack.gateway()
    try:
        instance_key = gateway.create_on(cluster_id, "e2e-flow", {"serverSn": "SN-E2E"})
        job = next(
            job
            for job in gateway.activate_all("e2e-flow-diagnose", 1)
            if job.processInstanceKey == instance_key
        )
        gateway.fail(job.key, retries=0, message="BMC did not answer")
    finally:
        gateway.close()
    incident = imported(Incident, process_instance_id=instance_key, state="active")
    return instance_key, incident


def test_retry_an_incident_on_cluster_two_continues_and_is_confirmed(stack: Stack) -> None:
    operator = f.user("otto", Role.OPERATOR)
    instance_key, incident = make_incident(stack, 2)
    assert cluster_of(incident.key) == 2

    operation = services.operation_retry(actor=operator, incident=incident, retries=2)
    operation = settled(operation)
    assert operation.cluster_id == 2 and operation.attempts == 1 and not operation.already_done
    assert "resolved" in operation.result
    events = [entry.event for entry in AuditEntry.objects.filter(operation=operation).order_by("id")]
    assert events == ["requested", "succeeded", "confirmed"] or events == [
        "requested",
        "confirmed",
        "succeeded",
    ]

    # The instance continues: the job is back with 2 retries, a worker completes it, then the next.
    gateway = stack.gateway()
    try:
        job = gateway.activate_all("e2e-flow-diagnose", 1)[0]
        assert job.processInstanceKey == instance_key and job.retries == 2
        gateway.complete(job.key)
        gateway.complete(gateway.activate_all("e2e-flow-repair", 1)[0].key)
    finally:
        gateway.close()
    wait_for(
        lambda: ProcessInstance.objects.filter(key=instance_key, state="completed").exists(),
        60,
        what="the retried instance to complete",
    )
    records = stack.records(2)
    assert count_records(records, "INCIDENT", "RESOLVED", processInstanceKey=local(instance_key)) == 1
    assert count_records(records, "INCIDENT", "RESOLVE", record_type="COMMAND") >= 1
