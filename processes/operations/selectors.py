"""Reads of the operations app (CONVENTIONS §4): operations log, per-target history, batch progress."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, QuerySet

from processes.operations.choices import OperationState
from processes.operations.models import AuditEntry, BatchOperation, Operation


def operation_list() -> QuerySet[Operation]:
    """Newest first (op_created_idx)."""
    return Operation.objects.order_by("-created_at", "-id")


def operations_for_target(*, target_key: int) -> QuerySet[Operation]:
    return Operation.objects.filter(target_key=target_key).order_by("-created_at", "-id")


def operations_for_instance(*, process_instance_key: int) -> QuerySet[Operation]:
    return Operation.objects.filter(process_instance_key=process_instance_key).order_by("-created_at", "-id")


def batch_list() -> QuerySet[BatchOperation]:
    return BatchOperation.objects.order_by("-created_at", "-id")


def audit_log() -> QuerySet[AuditEntry]:
    return AuditEntry.objects.order_by("-created_at", "-id")


@dataclass(frozen=True)
class BatchProgress:
    """Counts of a batch's operations. ``done`` = succeeded + confirmed; ``pending`` = queued +
    running + waiting + targets not yet turned into operations."""

    total: int
    planned: int
    done: int
    confirmed: int
    failed: int
    waiting: int
    pending: int
    cancelled: int
    by_state: dict[str, int]


def batch_progress(*, batch: BatchOperation) -> BatchProgress:
    """One grouped count over op_batch_state_idx."""
    counts = {state.value: 0 for state in OperationState}
    for row in Operation.objects.filter(batch=batch).values("state").annotate(count=Count("id")).order_by():
        counts[row["state"]] = row["count"]
    planned = sum(counts.values())
    not_planned = 0 if batch.planning_done else max(0, batch.dry_run_count - planned)
    return BatchProgress(
        total=max(batch.dry_run_count, planned) if not batch.planning_done else planned,
        planned=planned,
        done=counts["succeeded"] + counts["confirmed"],
        confirmed=counts["confirmed"],
        failed=counts["failed"],
        waiting=counts["waiting"],
        pending=counts["queued"] + counts["running"] + counts["waiting"] + not_planned,
        cancelled=counts["cancelled"],
        by_state=counts,
    )
