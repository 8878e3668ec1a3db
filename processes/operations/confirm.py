"""Confirmation: an operation is ``confirmed`` when the imported records show its effect (DESIGN §6).

The importer calls :func:`confirm_applied_batch` (registered by the app config) inside the transaction that writes a batch's rows
(processes.importer.projection), after the rows are written: operations are found by the keys the
batch touched through the partial index ``op_awaiting_confirm_idx`` (only operations awaiting
confirmation are in it), never by scanning, and the effect is checked against the rows by key.
A task calls :func:`confirm_visible` after recording a success, for effects imported before it
wrote its outcome or already there before it ran ("already done").

Effects (ConfirmKind), checked on the query models:
  incident_resolved    the incident row is resolved (retry, resolve incident)
  element_skipped      the step's element instance has ended and its successor has an element
                       instance created after it in the same process instance (skip)
  instance_terminated  the process instance has ended (cancel)
  job_retries          the job row has the requested retries (update retries)
  modified             every terminated element instance has ended and every activated element has an
                       element instance with a key above the plan's key floor (modify)
  migrated             the process instance row is on the target definition (migrate)
  job_ended            the job row is in one of the requested end states (complete, throw error)
  job_failed           the job row has the requested retries and error message (fail by hand)
  variables            every requested variable has the requested value: on the scope itself for
                       local variables, in any scope of the instance otherwise (set variables,
                       reassign)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from processes.choices import INSTANCE_TERMINAL_STATES, IncidentState, InstanceState
from processes.models import ElementInstance, Incident, Job, ProcessInstance, Variable
from processes.operations.choices import (
    OPERATION_CONFIRMABLE_STATES,
    ConfirmKind,
    OperationState,
)
from processes.operations.models import AuditEntry, Operation

Row = Mapping[str, Any]
_FIELDS = ("id", "state", "confirm_kind", "confirm_key", "process_instance_key", "target_key", "parameters")
# A job ended by its worker looks like a job ended by hand: these confirm only once the task has
# recorded that the engine accepted this operation's own call (state succeeded), never while the
# call may still be answered NOT_FOUND because the worker won the race.
# A modification's effect (a token gone, a new one further on) is also what the flow does by itself.
_OWN_CALL_KINDS = frozenset({ConfirmKind.JOB_ENDED, ConfirmKind.JOB_FAILED, ConfirmKind.MODIFIED})


def confirm_applied_batch(batch: Any) -> None:
    """The importer's AFTER_APPLY hook (processes.importer.projection.register_after_apply)."""
    confirm_batch_fold(batch.fold)


def confirm_batch_fold(fold: Any) -> int:
    """Confirm what one projected batch shows. Returns how many."""
    return confirm_imported(
        incidents=[fold.incidents[key] for key in fold.dirty_incidents],
        elements=[fold.elements[key] for key in fold.dirty_elements],
        instances=[fold.instances[key] for key in fold.dirty_instances],
        jobs=[fold.jobs[key] for key in fold.dirty_jobs],
        variables=[fold.variables[key] for key in fold.dirty_variables],
    )


def confirm_imported(
    *,
    incidents: Iterable[Row] = (),
    elements: Iterable[Row] = (),
    instances: Iterable[Row] = (),
    jobs: Iterable[Row] = (),
    variables: Iterable[Row] = (),
) -> int:
    """Confirm operations whose effect the given (just written) rows may show; rows are dicts of
    model attribute names, as the importer's fold holds them."""
    # Usually nothing awaits confirmation: one probe of the (then empty) partial index, and the
    # importer's batch pays nothing more.
    if not _awaiting().exists():
        return 0
    resolved = {row["key"] for row in incidents if row.get("state") == IncidentState.RESOLVED.value}
    ended_instances = {
        row["key"] for row in instances if row.get("state") in {s.value for s in INSTANCE_TERMINAL_STATES}
    }
    element_rows = list(elements)
    ended_elements = {row["key"] for row in element_rows if row.get("state") != InstanceState.ACTIVE.value}
    element_instances = {row["process_instance_id"] for row in element_rows if row.get("process_instance_id")}
    job_keys = {row["key"] for row in jobs}
    variable_instances = {row["process_instance_id"] for row in variables if row.get("process_instance_id")}

    by_key: list[tuple[str, set[int]]] = [
        (ConfirmKind.INCIDENT_RESOLVED, resolved),
        (ConfirmKind.INSTANCE_TERMINATED, ended_instances),
        (ConfirmKind.ELEMENT_SKIPPED, ended_elements),
        (ConfirmKind.JOB_RETRIES, job_keys),
        (ConfirmKind.VARIABLES, variable_instances),
        (ConfirmKind.JOB_ENDED, job_keys),
        (ConfirmKind.JOB_FAILED, job_keys),
        # ELEMENT_MIGRATED of the process element rewrites the instance row's definition.
        (ConfirmKind.MIGRATED, {row["key"] for row in instances}),
    ]
    query = Q()
    for kind, keys in by_key:
        if keys:
            query |= Q(confirm_kind=kind, confirm_key__in=sorted(keys))
    if element_instances:
        # A skip's successor may be imported in a later batch than the step's termination.
        query |= Q(
            confirm_kind__in=[ConfirmKind.ELEMENT_SKIPPED, ConfirmKind.MODIFIED],
            process_instance_key__in=sorted(element_instances),
        )
    if not query:
        return 0
    candidates = list(_awaiting().filter(query).values(*_FIELDS))
    return _confirm(candidates, states=OPERATION_CONFIRMABLE_STATES)


def _awaiting() -> Any:
    """Operations that wait for their effect to be imported (exactly op_awaiting_confirm_idx)."""
    return Operation.objects.filter(state__in=OPERATION_CONFIRMABLE_STATES).exclude(confirm_kind="")


def confirm_visible(*, operation_ids: Iterable[int]) -> int:
    """Confirm succeeded operations whose effect the query models already show."""
    candidates = list(
        Operation.objects.filter(id__in=list(operation_ids), state=OperationState.SUCCEEDED)
        .exclude(confirm_kind="")
        .values(*_FIELDS)
    )
    return _confirm(candidates, states=frozenset({OperationState.SUCCEEDED}))


def _confirm(candidates: list[dict[str, Any]], *, states: frozenset[OperationState]) -> int:
    if not candidates:
        return 0
    shown = _effects_shown(candidates)
    if not shown:
        return 0
    now = timezone.now()
    with transaction.atomic():
        # Lock in id order, as the outcome writer does, so the two never deadlock.
        locked = list(
            Operation.objects.select_for_update()
            .filter(id__in=sorted(shown), state__in=states)
            .order_by("id")
            .values_list("id", "batch_id", "action")
        )
        if not locked:
            return 0
        ids = [row[0] for row in locked]
        # finished_at stays empty for an operation confirmed while its task is still running (or
        # was killed after its calls applied): the task's outcome, if it comes, fills it in.
        Operation.objects.filter(id__in=ids).update(state=OperationState.CONFIRMED, confirmed_at=now)
        AuditEntry.objects.bulk_create(
            [
                AuditEntry(
                    event="confirmed",
                    operation_id=operation_id,
                    batch_id=batch_id,
                    message=f"{action}: effect seen in the imported records",
                )
                for operation_id, batch_id, action in locked
            ]
        )
    return len(ids)


def _effects_shown(candidates: list[dict[str, Any]]) -> set[int]:
    """Ids of the candidate operations whose effect the rows show (one query per kind)."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for op in candidates:
        if op["confirm_kind"] in _OWN_CALL_KINDS and op["state"] != OperationState.SUCCEEDED:
            continue
        by_kind.setdefault(op["confirm_kind"], []).append(op)
    shown: set[int] = set()

    ops = by_kind.get(ConfirmKind.INCIDENT_RESOLVED, [])
    if ops:
        done = set(
            Incident.objects.filter(
                key__in=[op["confirm_key"] for op in ops], state=IncidentState.RESOLVED
            ).values_list("key", flat=True)
        )
        shown.update(op["id"] for op in ops if op["confirm_key"] in done)

    ops = by_kind.get(ConfirmKind.INSTANCE_TERMINATED, [])
    if ops:
        done = set(
            ProcessInstance.objects.filter(
                key__in=[op["confirm_key"] for op in ops], state__in=INSTANCE_TERMINAL_STATES
            ).values_list("key", flat=True)
        )
        shown.update(op["id"] for op in ops if op["confirm_key"] in done)

    ops = by_kind.get(ConfirmKind.JOB_RETRIES, [])
    if ops:
        retries = dict(
            Job.objects.filter(key__in=[op["confirm_key"] for op in ops]).values_list("key", "retries")
        )
        shown.update(
            op["id"]
            for op in ops
            if retries.get(op["confirm_key"]) == int(op["parameters"].get("retries", -1))
        )

    ops = by_kind.get(ConfirmKind.MODIFIED, [])
    if ops:
        rows = list(
            ElementInstance.objects.filter(
                process_instance_id__in=sorted({op["process_instance_key"] for op in ops})
            ).values_list("process_instance_id", "key", "element_id", "state")
        )
        for op in ops:
            params = op["parameters"]
            mine = [row for row in rows if row[0] == op["process_instance_key"]]
            ended = {key for _, key, _, state in mine if state != InstanceState.ACTIVE}
            latest: dict[str, int] = {}
            for _, key, element_id, _ in mine:
                latest[element_id] = max(latest.get(element_id, 0), key)
            floor = int(params.get("key_floor") or 0)
            if all(int(key) in ended for key in params.get("terminate") or ()) and all(
                latest.get(str(item["element_id"]), 0) > floor for item in params.get("activate") or ()
            ):
                shown.add(op["id"])

    ops = by_kind.get(ConfirmKind.MIGRATED, [])
    if ops:
        definitions = dict(
            ProcessInstance.objects.filter(key__in=[op["confirm_key"] for op in ops]).values_list(
                "key", "process_definition_id"
            )
        )
        shown.update(
            op["id"]
            for op in ops
            if definitions.get(op["confirm_key"])
            == int(op["parameters"].get("target_process_definition_key", -1))
        )

    ops = by_kind.get(ConfirmKind.JOB_ENDED, [])
    if ops:
        states = dict(
            Job.objects.filter(key__in=[op["confirm_key"] for op in ops]).values_list("key", "state")
        )
        shown.update(
            op["id"]
            for op in ops
            if states.get(op["confirm_key"]) in set(op["parameters"].get("expect_states") or ())
        )

    ops = by_kind.get(ConfirmKind.JOB_FAILED, [])
    if ops:
        found_jobs = {
            key: (retries, message)
            for key, retries, message in Job.objects.filter(
                key__in=[op["confirm_key"] for op in ops]
            ).values_list("key", "retries", "error_message")
        }
        shown.update(
            op["id"]
            for op in ops
            if found_jobs.get(op["confirm_key"])
            == (int(op["parameters"].get("retries", -1)), str(op["parameters"].get("error_message")))
        )

    ops = by_kind.get(ConfirmKind.ELEMENT_SKIPPED, [])
    if ops:
        ended = set(
            ElementInstance.objects.filter(key__in=[op["confirm_key"] for op in ops])
            .exclude(state=InstanceState.ACTIVE)
            .values_list("key", flat=True)
        )
        waiting = [op for op in ops if op["confirm_key"] in ended]
        if waiting:
            successors: dict[tuple[int, str], int] = {}
            for instance_key, element_id, key in ElementInstance.objects.filter(
                process_instance_id__in=sorted({op["process_instance_key"] for op in waiting}),
                element_id__in=sorted({str(op["parameters"].get("successor_id")) for op in waiting}),
            ).values_list("process_instance_id", "element_id", "key"):
                pair = (instance_key, element_id)
                successors[pair] = max(successors.get(pair, 0), key)
            for op in waiting:
                newest = successors.get(
                    (op["process_instance_key"], str(op["parameters"].get("successor_id")))
                )
                # Keys grow per partition and an instance lives on one: a successor instance with a
                # larger key than the skipped step was created after it.
                if newest is not None and newest > op["confirm_key"]:
                    shown.add(op["id"])

    ops = by_kind.get(ConfirmKind.VARIABLES, [])
    if ops:
        names = sorted({name for op in ops for name in (op["parameters"].get("variables") or {})})
        found: dict[tuple[int, str], list[tuple[int, Any]]] = {}
        for instance_key, scope_key, name, value, truncated, full in Variable.objects.filter(
            process_instance_id__in=sorted({op["confirm_key"] for op in ops}), name__in=names
        ).values_list("process_instance_id", "scope_key", "name", "value", "truncated", "full__json_text"):
            actual = json.loads(full) if truncated and full is not None else value
            found.setdefault((instance_key, name), []).append((scope_key, actual))
        for op in ops:
            wanted = op["parameters"].get("variables") or {}
            local_scope = op["target_key"] if op["parameters"].get("local") else None
            if wanted and all(
                any(
                    actual == value and (local_scope is None or scope_key == local_scope)
                    for scope_key, actual in found.get((op["confirm_key"], name), [])
                )
                for name, value in wanted.items()
            ):
                shown.add(op["id"])
    return shown
