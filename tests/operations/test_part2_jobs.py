"""By hand on a job (issue 19) without a cluster: roles, input, refusals naming the field with
nothing written, confirmation from imported rows, the API's 202 and the console dialog. The
end-to-end test (test_part2_end_to_end.py) runs them against real engines."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from processes.operations import confirm, services
from processes.operations.choices import OperationAction, OperationState
from processes.operations.executor import OperationSnapshot, execute
from processes.operations.models import AuditEntry, Operation
from processes.operations.services import OperationRejected
from processes.roles import Role, RoleRequired
from tests.operations import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def job() -> Any:
    definition = f.definition()
    root = f.instance(process_definition=definition)
    return f.job(f.element(root, "diagnose"), state="activated")


CALLS = {
    "complete": lambda actor, job: services.operation_complete_job(
        actor=actor, job=job, variables={"ok": True}
    ),
    "fail": lambda actor, job: services.operation_fail_job(
        actor=actor, job=job, retries=0, error_message="worker gone"
    ),
    "throw": lambda actor, job: services.operation_throw_error(
        actor=actor, job=job, error_code="NOT_REPAIRABLE", error_message="", variables={"why": "psu"}
    ),
}


def nothing_written() -> bool:
    # Logins are audited too (processes.auth_audit): only operation rows count here.
    return not Operation.objects.exists() and not AuditEntry.objects.filter(operation__isnull=False).exists()


@pytest.mark.parametrize("name", sorted(CALLS))
def test_roles_and_what_is_queued(name, job, django_capture_on_commit_callbacks):
    for actor in (AnonymousUser(), f.user("nobody"), f.user("vera", Role.VIEWER)):
        with pytest.raises(RoleRequired):
            CALLS[name](actor, job)
    assert nothing_written()
    operator = f.user("otto", Role.OPERATOR)
    with django_capture_on_commit_callbacks() as callbacks:
        operation = CALLS[name](operator, job)
    assert len(callbacks) == 1
    operation.refresh_from_db()
    assert operation.state == OperationState.QUEUED and operation.target_key == job.key
    assert operation.cluster_id == 1 and operation.process_instance_key == job.process_instance_id
    assert operation.parameters["element_id"] == "diagnose" and operation.parameters["actor"] == "otto"
    assert AuditEntry.objects.get(operation=operation).event == "requested"


def rejected(call: Any, field: str, match: str) -> None:
    with pytest.raises(OperationRejected, match=match) as info:
        call()
    assert info.value.field == field
    assert nothing_written()


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize(
    ("state", "match"),
    [
        ("failed", "no retries left and waits on an incident"),
        ("completed", "has ended"),
        ("canceled", "has ended"),
    ],
)
def test_a_job_zeebe_would_refuse_is_refused_first(name, state, match, job):
    job.state = state
    job.save()
    rejected(lambda: CALLS[name](f.user("otto", Role.OPERATOR), job), "job", match)


def test_bad_input_names_the_field(job):
    otto = f.user("otto", Role.OPERATOR)
    rejected(
        lambda: services.operation_complete_job(actor=otto, job=job, variables=[1]),
        "variables",
        "JSON object",
    )
    rejected(
        lambda: services.operation_complete_job(actor=otto, job=job, variables={"x": float("nan")}),
        "variables",
        "plain JSON",
    )
    rejected(
        lambda: services.operation_complete_job(actor=otto, job=job, variables={"x": "y" * 300_000}),
        "variables",
        "bytes",
    )
    for retries in (-1, True, "2", 2**31):
        rejected(
            lambda retries=retries: services.operation_fail_job(
                actor=otto, job=job, retries=retries, error_message="m"
            ),
            "retries",
            "whole number",
        )
    rejected(
        lambda: services.operation_fail_job(actor=otto, job=job, retries=1, error_message="  "),
        "error_message",
        "Say why",
    )
    rejected(
        lambda: services.operation_fail_job(actor=otto, job=job, retries=1, error_message="m" * 5000),
        "error_message",
        "At most",
    )
    rejected(
        lambda: services.operation_fail_job(
            actor=otto, job=job, retries=1, error_message="m", retry_backoff_ms=-5
        ),
        "retry_backoff_ms",
        "whole number",
    )
    rejected(
        lambda: services.operation_throw_error(actor=otto, job=job, error_code=" ", variables={}),
        "error_code",
        "may not be empty",
    )
    rejected(
        lambda: services.operation_throw_error(actor=otto, job=job, error_code="x" * 300, variables={}),
        "error_code",
        "At most",
    )


def test_confirmation_from_the_job_row(job):
    otto = f.user("otto", Role.OPERATOR)
    completed = CALLS["complete"](otto, job)
    failed = CALLS["fail"](otto, job)
    thrown = CALLS["throw"](otto, job)
    # Running (the engine's answer not recorded yet): a completed job may be the worker's win, so
    # it confirms nothing; the operation may still end failed with NOT_FOUND.
    Operation.objects.update(state=OperationState.RUNNING)
    job.state = "completed"
    job.save()
    assert confirm.confirm_imported(jobs=[{"key": job.key}]) == 0
    job.state = "activated"
    job.save()
    Operation.objects.update(state=OperationState.SUCCEEDED)
    # The job still activated: nothing is confirmed.
    assert confirm.confirm_imported(jobs=[{"key": job.key}]) == 0
    # Failed with another message than requested: the fail is not confirmed by it.
    job.state, job.retries, job.error_message = "failed", 0, "someone else's message"
    job.save()
    assert confirm.confirm_imported(jobs=[{"key": job.key}]) == 0
    job.error_message = "worker gone"
    job.save()
    assert confirm.confirm_imported(jobs=[{"key": job.key}]) == 1
    assert Operation.objects.get(pk=failed.pk).state == OperationState.CONFIRMED
    job.state = "error_thrown"
    job.save()
    assert confirm.confirm_imported(jobs=[{"key": job.key}]) == 1
    assert Operation.objects.get(pk=thrown.pk).state == OperationState.CONFIRMED
    assert Operation.objects.get(pk=completed.pk).state == OperationState.SUCCEEDED  # not completed


class _Router:
    """Answers like Zeebe for a job that is gone (the executor's only input is the router)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def complete_job(self, job_key: int, variables: Any = None) -> None:
        import grpc

        from routing.client import GatewayError

        self.calls.append("complete")
        raise GatewayError(
            grpc.StatusCode.NOT_FOUND,
            f"Expected to complete job with key '{job_key}', but no such job was found",
            cluster_id=1,
        )


def test_not_found_fails_the_first_attempt_and_is_already_done_on_a_rerun():
    """First attempt: a worker completed the job first, the operator's variables were not applied
    (failed, Zeebe's answer verbatim). A re-run after a lost outcome: our own earlier call may
    have ended it (already done)."""
    snapshot = OperationSnapshot(
        id=1, action=OperationAction.COMPLETE_JOB, target_key=5, cluster_id=1, parameters={}, attempts=1
    )
    first = execute(_Router(), snapshot, max_backoff=1)  # type: ignore[arg-type]
    assert first.state == OperationState.FAILED and first.error_code == "NOT_FOUND"
    assert "no such job" in first.error
    again = execute(
        _Router(),  # type: ignore[arg-type]
        OperationSnapshot(**{**snapshot.__dict__, "attempts": 2}),
        max_backoff=1,
    )
    assert again.state == OperationState.SUCCEEDED and again.already_done


# -- API and console -----------------------------------------------------------------------------------


def logged_in(role: Role | None) -> Client:
    client = Client()
    client.force_login(f.user(f"u-{role}", role))
    return client


@pytest.mark.parametrize(
    ("path", "body", "action"),
    [
        ("complete", {"variables": {"ok": True}}, "complete_job"),
        ("fail", {"retries": 2, "error_message": "worker gone", "retry_backoff_ms": 100}, "fail_job"),
        ("throw-error", {"error_code": "NOT_REPAIRABLE", "variables": {"a": 1}}, "throw_error"),
    ],
)
def test_api_answers_202_with_the_operation(path, body, action, job):
    url = f"/api/v1/jobs/{job.key}/{path}/"
    assert logged_in(Role.VIEWER).post(url, body, content_type="application/json").status_code == 403
    assert nothing_written()
    response = logged_in(Role.OPERATOR).post(url, body, content_type="application/json")
    assert response.status_code == 202, response.content
    data = response.json()
    operation = Operation.objects.get()
    assert data["id"] == operation.id and operation.action == action and operation.target_key == job.key


def test_api_bad_input_is_400_naming_the_field(job):
    client = logged_in(Role.OPERATOR)
    response = client.post(
        f"/api/v1/jobs/{job.key}/fail/",
        {"retries": -1, "error_message": "x"},
        content_type="application/json",
    )
    assert response.status_code == 400 and "retries" in json.dumps(response.json())
    response = client.post(f"/api/v1/jobs/{job.key}/throw-error/", {}, content_type="application/json")
    assert response.status_code == 400 and "error_code" in json.dumps(response.json())
    job.state = "failed"
    job.save()
    response = client.post(f"/api/v1/jobs/{job.key}/complete/", {}, content_type="application/json")
    assert response.status_code == 400 and "waits on an incident" in json.dumps(response.json())
    assert nothing_written()


def test_console_dialog_and_buttons(job):
    client = logged_in(Role.OPERATOR)
    dialog = client.get(f"/actions/throw-error/{job.key}/")
    assert dialog.status_code == 200
    html = dialog.content.decode()
    assert "What will happen" in html and 'name="error_code"' in html and 'name="variables"' in html
    # Bad input comes back into the dialog; nothing written.
    refused = client.post(f"/actions/fail-job/{job.key}/", {"retries": "1", "error_message": ""})
    assert refused.status_code == 422 and "Say why" in refused.content.decode()
    assert nothing_written()
    done = client.post(f"/actions/complete-job/{job.key}/", {"variables": '{"ok": true}'})
    assert done.status_code == 200
    assert Operation.objects.get().parameters["variables"] == {"ok": True}
    # Viewers get no dialog.
    assert logged_in(Role.VIEWER).get(f"/actions/complete-job/{job.key}/").status_code == 403
