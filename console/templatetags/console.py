"""Template helpers of the console pages."""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import Count

register = template.Library()


@register.simple_tag
def batch_counts(batch: Any) -> dict[str, Any]:
    """Done, failed and pending operations of a batch (one query on op_batch_state_idx), with the
    bar's percentages. Pending counts targets not yet turned into operations too."""
    from processes.operations.choices import OPERATION_DONE_STATES, OperationState

    rows = batch.operations.order_by().values("state").annotate(count=Count("pk"))
    by_state = {row["state"]: row["count"] for row in rows}
    done = sum(count for state, count in by_state.items() if state in OPERATION_DONE_STATES)
    failed = by_state.get(OperationState.FAILED, 0)
    cancelled = by_state.get(OperationState.CANCELLED, 0)
    created = sum(by_state.values())
    total = max(batch.dry_run_count if not batch.planning_done else created, created)
    pending = max(0, total - done - failed - cancelled)
    finished = done + failed + cancelled
    scale = 100.0 / total if total else 0.0
    return {
        "done": done,
        "failed": failed,
        "cancelled": cancelled,
        "pending": pending,
        "total": total,
        "finished": finished,
        "done_pct": round(done * scale, 2),
        "failed_pct": round(failed * scale, 2),
    }
