"""Operation services without a cluster: roles for every action, input validation, leases,
confirmation from rows, batch planning. The end-to-end tests (test_end_to_end.py) run them
against real engines."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from processes.operations import confirm, selectors, services
from processes.operations.choices import BatchState, OperationState
from processes.operations.executor import Outcome
from processes.operations.models import AuditEntry, BatchOperation, Operation
from processes.operations.services import OperationRejected
from processes.roles import Role, RoleRequired
from tests.operations import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> dict[str, Any]:
    definition = f.definition()
    root = f.instance(process_definition=definition)
    child = f.instance(parent=root, process_definition=definition)
    step = f.element(root, "diagnose")
    return {
        "definition": definition,
        "root": root,
        "child": child,
        "step": step,
        "job": f.job(step),
        "incident": f.incident(step),
        "batch": None,
    }


ACTIONS = {
    "retry": lambda actor, w: services.operation_retry(actor=actor, incident=w["incident"], retries=2),
    "resolve": lambda actor, w: services.operation_resolve_incident(actor=actor, incident=w["incident"]),
    "skip": lambda actor, w: services.operation_skip(
        actor=actor, element_instance=w["step"], variables={"a": 1}
    ),
    "reassign": lambda actor, w: services.operation_reassign(
        actor=actor, element_instance=w["step"], assignee="bob", candidate_groups=None
    ),
    "cancel": lambda actor, w: services.operation_cancel(actor=actor, process_instance=w["root"]),
    "set_variables": lambda actor, w: services.operation_set_variables(
        actor=actor, scope_key=w["root"].key, variables={"x": 1}
    ),
    "update_retries": lambda actor, w: services.operation_update_retries(
        actor=actor, job=w["job"], retries=5
    ),
    "publish": lambda actor, w: services.operation_publish_message(
        actor=actor, name="vendor-answer", correlation_key="SN1", variables={}
    ),
    "batch_dry_run": lambda actor, w: services.batch_operation_dry_run(
        actor=actor, action="retry", filter={}
    ),
    "batch_start": lambda actor, w: services.batch_operation_start(
        actor=actor, action="retry", filter={}, parameters={}
    ),
}


def personas() -> dict[str, Any]:
    return {
        "anonymous": AnonymousUser(),
        "no-role": f.user("nobody"),
        "viewer": f.user("vera", Role.VIEWER),
        "operator": f.user("otto", Role.OPERATOR),
        "admin": f.user("ada", Role.ADMIN),
    }


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_action_for_every_role(action, world, django_capture_on_commit_callbacks):
    people = personas()
    for name in ("anonymous", "no-role", "viewer"):
        with pytest.raises(RoleRequired, match="Operator role required"):
            ACTIONS[action](people[name], world)
    assert not Operation.objects.exists() and not AuditEntry.objects.exists()
    assert not BatchOperation.objects.exists()
    for name in ("operator", "admin"):
        with django_capture_on_commit_callbacks() as callbacks:
            result = ACTIONS[action](people[name], world)
        if action == "batch_dry_run":
            assert result == 1
            continue
        assert len(callbacks) == 1, "one task queued on commit"
        result.refresh_from_db()
        if isinstance(result, Operation):
            assert result.state == OperationState.QUEUED
            assert result.actor == people[name] and result.actor_name == people[name].username
            entry = AuditEntry.objects.get(operation=result)
            assert entry.event == "requested" and entry.actor == people[name]
        else:
            assert result.state == BatchState.PLANNING and result.dry_run_count == 1
            assert AuditEntry.objects.get(batch=result).event == "batch_started"


def test_batch_cancel_for_every_role(world):
    people = personas()
    batch = services.batch_operation_start(actor=people["operator"], action="retry", filter={}, parameters={})
    for name in ("anonymous", "no-role", "viewer"):
        with pytest.raises(RoleRequired):
            services.batch_operation_cancel(actor=people[name], batch=batch)
    batch.refresh_from_db()
    assert batch.state == BatchState.PLANNING
    cancelled = services.batch_operation_cancel(actor=people["admin"], batch=batch)
    assert cancelled.state == BatchState.CANCELLED and cancelled.cancelled_by == "ada"
    with pytest.raises(OperationRejected, match="already cancelled") as info:
        services.batch_operation_cancel(actor=people["operator"], batch=batch)
    assert info.value.field == "batch"


# -- bad input: a clear error naming the field, nothing written ------------------------------------


def rejected(call, field: str, match: str) -> None:
    before = (Operation.objects.count(), AuditEntry.objects.count(), BatchOperation.objects.count())
    with pytest.raises(OperationRejected, match=match or None) as info:
        call()
    assert info.value.field == field, info.value.field
    assert info.value.as_dict() == {field: [info.value.message]}
    assert (Operation.objects.count(), AuditEntry.objects.count(), BatchOperation.objects.count()) == before


@pytest.mark.parametrize("retries", [0, -1, 2**31, "1", True, 1.5, None])
def test_retry_refuses_bad_retries(world, retries):
    actor = f.user("otto", Role.OPERATOR)
    rejected(
        lambda: services.operation_retry(actor=actor, incident=world["incident"], retries=retries),
        "retries",
        "",
    )
    rejected(
        lambda: services.operation_update_retries(actor=actor, job=world["job"], retries=retries),
        "retries",
        "",
    )


@pytest.mark.parametrize(
    ("variables", "match"),
    [
        ([1, 2], "JSON object"),
        ("x=1", "JSON object"),
        ({"": 1}, "non-empty"),
        ({"x": {1, 2}}, "plain JSON"),
        ({"x": float("nan")}, "plain JSON"),
        ({"x": "y" * (300 * 1024)}, "at most"),
        ({"n" * 300: 1}, "longer than"),
    ],
)
def test_bad_variables_are_refused(world, variables, match):
    actor = f.user("otto", Role.OPERATOR)
    rejected(
        lambda: services.operation_set_variables(
            actor=actor, scope_key=world["root"].key, variables=variables
        ),
        "variables",
        match,
    )
    rejected(
        lambda: services.operation_skip(actor=actor, element_instance=world["step"], variables=variables),
        "variables",
        match,
    )


def test_resolved_incident_and_ended_targets_are_refused(world):
    actor = f.user("otto", Role.OPERATOR)
    world["incident"].state = "resolved"
    rejected(
        lambda: services.operation_retry(actor=actor, incident=world["incident"]),
        "incident",
        "already resolved",
    )
    rejected(
        lambda: services.operation_resolve_incident(actor=actor, incident=world["incident"]),
        "incident",
        "already resolved",
    )
    world["root"].state = "completed"
    rejected(
        lambda: services.operation_cancel(actor=actor, process_instance=world["root"]),
        "process_instance",
        "ended",
    )
    world["job"].state = "completed"
    rejected(
        lambda: services.operation_update_retries(actor=actor, job=world["job"], retries=1), "job", "ended"
    )
    world["step"].state = "completed"
    rejected(
        lambda: services.operation_skip(actor=actor, element_instance=world["step"], variables={}),
        "element_instance",
        "not active",
    )


def test_cancel_of_a_called_instance_names_the_root(world):
    actor = f.user("otto", Role.OPERATOR)
    rejected(
        lambda: services.operation_cancel(actor=actor, process_instance=world["child"]),
        "process_instance",
        f"cancel its root instance {world['root'].key} instead",
    )


@pytest.mark.parametrize(
    ("element_id", "element_type", "match"),
    [
        (
            "repair",
            "SERVICE_TASK",
            "joins|2 outgoing",
        ),  # leads to a gateway with a condition: fine? see below
        ("decide", "EXCLUSIVE_GATEWAY", "not a step"),
        ("rack", "SERVICE_TASK", "joins at parallelGateway 'join'"),
        ("last", "SERVICE_TASK", "multi-instance"),
        ("cond", "SERVICE_TASK", "has a condition"),
        ("dead-end", "SERVICE_TASK", "no outgoing sequence flow"),
        ("ghost", "SERVICE_TASK", "not in the process definition"),
    ],
)
def test_skip_refuses_where_there_is_no_single_path(world, element_id, element_type, match):
    actor = f.user("otto", Role.OPERATOR)
    step = f.element(world["root"], element_id, element_type=element_type)
    if element_id == "repair":
        # repair -> decide is a single unconditional flow into a gateway: skip is allowed.
        operation = services.operation_skip(actor=actor, element_instance=step, variables={})
        assert operation.parameters["successor_id"] == "decide"
        return
    rejected(
        lambda: services.operation_skip(actor=actor, element_instance=step, variables={}),
        "element_instance",
        match,
    )


def test_skip_records_the_successor_and_flow_scope(world):
    actor = f.user("otto", Role.OPERATOR)
    operation = services.operation_skip(
        actor=actor, element_instance=world["step"], variables={"verdict": "ok"}
    )
    assert operation.parameters == {
        "process_instance_key": world["root"].key,
        "flow_scope_key": world["root"].key,
        "element_id": "diagnose",
        "successor_id": "repair",
        "variables": {"verdict": "ok"},
    }
    assert (operation.confirm_kind, operation.confirm_key, operation.cluster_id) == (
        "element_skipped",
        world["step"].key,
        1,
    )


def test_skip_without_an_imported_definition_is_refused(world):
    actor = f.user("otto", Role.OPERATOR)
    bare = f.element(f.instance(), "diagnose")
    rejected(
        lambda: services.operation_skip(actor=actor, element_instance=bare, variables={}),
        "element_instance",
        "not imported yet",
    )


def test_skip_refuses_hostile_xml(world):
    actor = f.user("otto", Role.OPERATOR)
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        '<definitions><process id="p"><serviceTask id="diagnose"/>&lol2;</process></definitions>'
    )
    definition = f.definition(bpmn_xml=bomb)
    step = f.element(f.instance(process_definition=definition), "diagnose")
    rejected(
        lambda: services.operation_skip(actor=actor, element_instance=step, variables={}),
        "element_instance",
        "cannot be read",
    )


def test_reassign_input(world):
    actor = f.user("otto", Role.OPERATOR)
    step = world["step"]
    rejected(
        lambda: services.operation_reassign(
            actor=actor, element_instance=step, assignee=None, candidate_groups=None
        ),
        "assignee",
        "assignee or at least one",
    )
    rejected(
        lambda: services.operation_reassign(
            actor=actor, element_instance=step, assignee="  ", candidate_groups=None
        ),
        "assignee",
        "empty",
    )
    rejected(
        lambda: services.operation_reassign(
            actor=actor, element_instance=step, assignee=None, candidate_groups="l2"
        ),
        "candidate_groups",
        "list",
    )
    operation = services.operation_reassign(
        actor=actor, element_instance=step, assignee=None, candidate_groups=["l2", "vendor"]
    )
    assert operation.parameters["variables"] == {"assignee": None, "candidateGroups": ["l2", "vendor"]}
    assert operation.parameters["job_key"] == world["job"].key


def test_set_variables_scope_checks(world):
    actor = f.user("otto", Role.OPERATOR)
    rejected(
        lambda: services.operation_set_variables(
            actor=actor, scope_key=f.key(1, 999_999), variables={"x": 1}
        ),
        "scope_key",
        "No process instance or element instance",
    )
    rejected(
        lambda: services.operation_set_variables(actor=actor, scope_key=f.key(9, 1), variables={"x": 1}),
        "scope_key",
        "cluster 9, which is not known",
    )
    rejected(
        lambda: services.operation_set_variables(actor=actor, scope_key=5, variables={"x": 1}),
        "scope_key",
        "",
    )
    rejected(
        lambda: services.operation_set_variables(actor=actor, scope_key="1", variables={"x": 1}),  # type: ignore[arg-type]
        "scope_key",
        "integer",
    )
    on_step = services.operation_set_variables(
        actor=actor, scope_key=world["step"].key, variables={"x": 1}, local=True
    )
    assert (on_step.process_instance_key, on_step.confirm_key) == (world["root"].key, world["root"].key)


def test_publish_message_input(world):
    actor = f.user("otto", Role.OPERATOR)
    publish = services.operation_publish_message
    rejected(lambda: publish(actor=actor, name=" ", correlation_key="a", variables={}), "name", "empty")
    rejected(
        lambda: publish(actor=actor, name="m", correlation_key=7, variables={}), "correlation_key", "text"
    )  # type: ignore[arg-type]
    rejected(
        lambda: publish(actor=actor, name="m", correlation_key="a", variables={}, time_to_live_ms=-1),
        "time_to_live_ms",
        "between",
    )
    operation = publish(actor=actor, name="m", correlation_key="", variables={"a": 1}, time_to_live_ms=1000)
    assert operation.target_key is None and operation.confirm_kind == ""


def test_batch_input(world):
    actor = f.user("otto", Role.OPERATOR)
    start = services.batch_operation_start
    rejected(
        lambda: start(actor=actor, action="skip", filter={}, parameters={}), "action", "not a batch action"
    )
    rejected(
        lambda: start(actor=actor, action="retry", filter={"colour": "red"}, parameters={}),
        "filter.colour",
        "Unknown",
    )
    rejected(
        lambda: start(actor=actor, action="retry", filter={"state": "sleeping"}, parameters={}),
        "filter.state",
        "",
    )
    rejected(
        lambda: start(actor=actor, action="retry", filter=["x"], parameters={}),
        "filter.filter",
        "JSON object",
    )
    rejected(
        lambda: start(actor=actor, action="retry", filter={}, parameters={"force": 1}), "parameters", "force"
    )
    rejected(
        lambda: start(actor=actor, action="retry", filter={}, parameters={"rate_per_second": 0}),
        "parameters.rate_per_second",
        "above 0",
    )
    rejected(
        lambda: start(actor=actor, action="retry", filter={}, parameters={"retries": 0}),
        "parameters.retries",
        "",
    )
    rejected(
        lambda: start(actor=actor, action="retry", filter={"error_type": "NOPE"}, parameters={}),
        "filter",
        "selects no targets",
    )
    rejected(
        lambda: start(actor=actor, action="set_variables", filter={}, parameters={}),
        "parameters.variables",
        "",
    )


# -- leases and outcomes ---------------------------------------------------------------------------


def make_operation(world) -> Operation:
    return services.operation_retry(actor=f.user("otto", Role.OPERATOR), incident=world["incident"])


def test_a_claimed_operation_is_not_claimed_again(world):
    operation = make_operation(world)
    first = services.operations_claim(operation_ids=[operation.id], owner="a")
    assert [op.id for op in first] == [operation.id] and first[0].attempts == 1
    assert services.operations_claim(operation_ids=[operation.id], owner="b") == []
    services.operations_record_outcomes(
        outcomes=[Outcome(operation.id, OperationState.SUCCEEDED, result="ok")], owner="a"
    )
    assert services.operations_claim(operation_ids=[operation.id], owner="c") == []
    operation.refresh_from_db()
    assert (operation.state, operation.result, operation.lease_owner) == ("succeeded", "ok", "")
    assert list(
        AuditEntry.objects.filter(operation=operation).values_list("event", flat=True).order_by("id")
    ) == [
        "requested",
        "succeeded",
    ]


def test_an_expired_lease_is_claimed_again_and_the_old_owner_cannot_write(world):
    operation = make_operation(world)
    services.operations_claim(operation_ids=[operation.id], owner="killed")
    Operation.objects.filter(id=operation.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    again = services.operations_claim(operation_ids=[operation.id], owner="successor")
    assert again[0].attempts == 2 and again[0].lease_owner == "successor"
    # The first owner comes back from a pause and tries to record: ignored.
    services.operations_record_outcomes(
        outcomes=[Outcome(operation.id, OperationState.FAILED, error="x")], owner="killed"
    )
    operation.refresh_from_db()
    assert operation.state == "running" and operation.error == ""


def test_waiting_is_claimable_only_when_due(world):
    operation = make_operation(world)
    services.operations_claim(operation_ids=[operation.id], owner="a")
    services.operations_record_outcomes(
        outcomes=[Outcome(operation.id, OperationState.WAITING, result="waiting: down", retry_in=60)],
        owner="a",
    )
    operation.refresh_from_db()
    assert operation.state == "waiting" and operation.finished_at is None
    assert services.operations_claim(operation_ids=[operation.id], owner="b") == []
    Operation.objects.filter(id=operation.id).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert len(services.operations_claim(operation_ids=[operation.id], owner="b")) == 1


def test_confirmed_by_the_importer_before_the_outcome_stays_confirmed(world):
    operation = make_operation(world)
    services.operations_claim(operation_ids=[operation.id], owner="a")
    Operation.objects.filter(id=operation.id).update(state=OperationState.CONFIRMED)
    services.operations_record_outcomes(
        outcomes=[Outcome(operation.id, OperationState.SUCCEEDED, result="ok")], owner="a"
    )
    operation.refresh_from_db()
    assert operation.state == "confirmed" and operation.result == "ok"


# -- confirmation from imported rows ---------------------------------------------------------------


def test_confirm_by_imported_rows(world):
    operation = make_operation(world)
    services.operations_claim(operation_ids=[operation.id], owner="a")
    incident = world["incident"]
    # A batch that shows the incident still active confirms nothing.
    assert confirm.confirm_imported(incidents=[{"key": incident.key, "state": "active"}]) == 0
    incident.state = "resolved"
    incident.save()
    assert confirm.confirm_imported(incidents=[{"key": incident.key, "state": "resolved"}]) == 1
    operation.refresh_from_db()
    assert operation.state == "confirmed" and operation.confirmed_at is not None
    assert AuditEntry.objects.filter(operation=operation, event="confirmed").count() == 1
    # Seen again (a replayed batch): nothing changes.
    assert confirm.confirm_imported(incidents=[{"key": incident.key, "state": "resolved"}]) == 0


def test_confirm_skip_needs_termination_and_successor(world):
    actor = f.user("otto", Role.OPERATOR)
    operation = services.operation_skip(actor=actor, element_instance=world["step"], variables={})
    Operation.objects.filter(id=operation.id).update(state=OperationState.SUCCEEDED)
    step = world["step"]
    step.state = "terminated"
    step.save()
    assert (
        confirm.confirm_imported(
            elements=[
                {"key": step.key, "state": "terminated", "process_instance_id": step.process_instance_id}
            ]
        )
        == 0
    )
    successor = f.element(world["root"], "repair")
    row = {"key": successor.key, "state": "active", "process_instance_id": successor.process_instance_id}
    assert confirm.confirm_imported(elements=[row]) == 1


def test_confirm_variables_local_and_global(world):
    from processes.models import Variable

    actor = f.user("otto", Role.OPERATOR)
    local = services.operation_reassign(
        actor=actor, element_instance=world["step"], assignee="bob", candidate_groups=None
    )
    Operation.objects.filter(id=local.id).update(state=OperationState.SUCCEEDED)
    root = world["root"]

    def var(name: str, value: Any, scope: int) -> dict[str, Any]:
        row = Variable.objects.create(
            key=f.key(),
            cluster_id=1,
            partition_id=1,
            name=name,
            scope_key=scope,
            process_instance=root,
            value=value,
        )
        return {"key": row.key, "process_instance_id": root.key}

    # Set on the process instance scope, not the step: a local reassign is not confirmed by it.
    rows = [var("assignee", "bob", root.key), var("candidateGroups", [], root.key)]
    assert confirm.confirm_imported(variables=rows) == 0
    rows = [var("assignee", "bob", world["step"].key), var("candidateGroups", [], world["step"].key)]
    assert confirm.confirm_imported(variables=rows) == 1


def test_confirm_visible_after_the_fact(world):
    operation = make_operation(world)
    Operation.objects.filter(id=operation.id).update(state=OperationState.SUCCEEDED)
    assert confirm.confirm_visible(operation_ids=[operation.id]) == 0
    world["incident"].state = "resolved"
    world["incident"].save()
    assert confirm.confirm_visible(operation_ids=[operation.id]) == 1


def test_the_importer_finds_awaiting_operations_by_index():
    """The confirmation query is answered by the small partial index, on a table shaped like a
    real one (thousands of finished operations, a few awaiting) with fresh statistics. An empty
    table's plan depends on whatever statistics earlier tests left (CI once picked op_created_idx)."""
    from django.db import connection

    finished = [
        Operation(
            action="retry",
            actor_name="otto",
            state=OperationState.CONFIRMED,
            confirm_kind="incident_resolved",
            confirm_key=10_000 + i,
        )
        for i in range(5_000)
    ]
    awaiting = [
        Operation(
            action="retry",
            actor_name="otto",
            state=OperationState.SUCCEEDED,
            confirm_kind="incident_resolved",
            confirm_key=key,
        )
        for key in (1, 2, 3)
    ]
    Operation.objects.bulk_create(finished + awaiting, batch_size=1_000)
    query = confirm._awaiting().filter(confirm_kind="incident_resolved", confirm_key__in=[1, 2]).values("id")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE operations_operation")
        sql, params = query.query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "op_awaiting_confirm_idx" in plan, plan
    assert query.count() == 2


# -- batches ---------------------------------------------------------------------------------------


def many_incidents(count: int) -> list[int]:
    from processes.models import Incident

    root = f.instance()
    step = f.element(root)
    rows = [
        Incident(
            key=f.key(1 + n % 2, 100_000 + n),
            cluster=f.cluster(1 + n % 2),
            partition_id=1,
            process_instance=root,
            element_instance=step,
            error_type="JOB_NO_RETRIES",
            error_message="fan failure",
        )
        for n in range(count)
    ]
    Incident.objects.bulk_create(rows)
    return sorted(row.key for row in rows)


def test_batch_plans_in_pages_without_doubles(django_capture_on_commit_callbacks):
    keys = many_incidents(1201)
    actor = f.user("otto", Role.OPERATOR)
    assert (
        services.batch_operation_dry_run(actor=actor, action="retry", filter={"error_message": "fan"}) == 1201
    )
    batch = services.batch_operation_start(
        actor=actor, action="retry", filter={"error_message": "fan"}, parameters={"retries": 3}
    )
    steps = []
    with django_capture_on_commit_callbacks() as callbacks:
        while True:
            step = services.batch_plan_step(batch_id=batch.id)
            steps.append(step.planned)
            if step.done:
                break
    assert steps == [500, 500, 201]
    assert len(callbacks) == 5 + 5 + 3  # one task per 100 operations of each page
    assert services.batch_plan_step(batch_id=batch.id).planned == 0  # a second planner: nothing more
    batch.refresh_from_db()
    assert (batch.total, batch.planning_done, batch.state) == (1201, True, "running")
    targets = list(
        Operation.objects.filter(batch=batch).order_by("target_key").values_list("target_key", flat=True)
    )
    assert targets == keys
    assert {op.parameters["retries"] for op in Operation.objects.filter(batch=batch)} == {3}
    progress = selectors.batch_progress(batch=batch)
    assert (progress.total, progress.pending, progress.done) == (1201, 1201, 0)
    cancelled = services.batch_operation_cancel(actor=actor, batch=batch)
    assert cancelled.state == "cancelled"
    progress = selectors.batch_progress(batch=batch)
    assert (progress.cancelled, progress.pending) == (1201, 0)
    assert (
        services.operations_claim(
            operation_ids=list(Operation.objects.values_list("id", flat=True)), owner="x"
        )
        == []
    )


def test_rate_limited_batch_plans_small_pages():
    many_incidents(30)
    actor = f.user("otto", Role.OPERATOR)
    batch = services.batch_operation_start(
        actor=actor, action="resolve_incident", filter={}, parameters={"rate_per_second": 5}
    )
    step = services.batch_plan_step(batch_id=batch.id)
    assert (step.planned, step.done, step.rate_per_second) == (10, False, 5.0)


def test_cancel_batch_selects_roots_only(world):
    actor = f.user("otto", Role.OPERATOR)
    assert (
        services.batch_operation_dry_run(actor=actor, action="cancel", filter={}) == 1
    )  # root, not its child


def test_sweeper_requeues_expired_leases(world, django_capture_on_commit_callbacks):
    operation = make_operation(world)
    services.operations_claim(operation_ids=[operation.id], owner="killed")
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.operations_sweep().enqueued == 0
    assert not callbacks
    Operation.objects.filter(id=operation.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks() as callbacks:
        report = services.operations_sweep()
    assert report.enqueued == 1 and report.open_operations and len(callbacks) == 1


def test_an_unreachable_cluster_makes_the_operation_wait_without_a_broker(world):
    """Eager mode (no broker, the demo without Redis): a waiting operation is not re-run in a
    loop; it stays waiting with the routing client's reason."""
    from processes.models import Cluster
    from processes.operations import tasks
    from tests.services import free_port

    Cluster.objects.filter(pk=1).update(gateway_address=f"127.0.0.1:{free_port()}")  # nobody listens
    operation = make_operation(world)
    result = tasks.run_operations.apply(args=([operation.id],)).get()
    assert result["claimed"] == 1 and result["waiting"] == 1
    operation.refresh_from_db()
    assert operation.state == "waiting" and operation.error_code == "unreachable"
    assert operation.result.startswith("waiting: cluster") and operation.next_attempt_at is not None
    assert AuditEntry.objects.filter(operation=operation, event="waiting").count() == 1


def test_a_disabled_cluster_makes_operations_wait(world):
    from processes.models import Cluster
    from processes.operations import tasks

    operation = make_operation(world)
    Cluster.objects.filter(pk=1).update(state="disabled")
    tasks.run_operations.apply(args=([operation.id],)).get()
    operation.refresh_from_db()
    assert operation.state == "waiting" and operation.error_code == "disabled"


def test_sweeper_confirms_an_effect_imported_before_the_operation_ran(world):
    """The incident was resolved by someone else and imported while the retry was still queued:
    the task answers "already done", the importer's hook had nothing to match; the sweep
    confirms it."""
    operation = make_operation(world)
    Operation.objects.filter(id=operation.id).update(
        state=OperationState.SUCCEEDED, already_done=True, finished_at=timezone.now() - timedelta(seconds=5)
    )
    assert services.operations_sweep().confirmed == 0  # not visible yet
    world["incident"].state = "resolved"
    world["incident"].save()
    assert services.operations_sweep().confirmed == 1
    operation.refresh_from_db()
    assert operation.state == "confirmed"
