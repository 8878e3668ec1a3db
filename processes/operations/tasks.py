"""Celery tasks of the operations app: thin, they take ids and call services (CONVENTIONS §7).

Tasks are acknowledged late (settings: CELERY_TASK_ACKS_LATE, reject on worker lost), so a worker
killed mid-task leaves its message to be delivered again; the operation lease (services.
operations_claim) makes that second delivery, or any duplicate, apply nothing twice.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from processes.operations import services

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, name="operations.run_operations")
def run_operations(self, operation_ids: list[int]) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Run these operations (those still claimable); queue the waiting ones again after backoff."""
    report = services.operations_run(
        operation_ids=operation_ids, owner=services.new_lease_owner(self.request.id)
    )
    if report.waiting:
        if self.request.is_eager:
            # No broker (CELERY_TASK_ALWAYS_EAGER): a countdown is ignored, so queueing again would
            # run again at once, for ever while the cluster is down. The operations stay waiting
            # (visible as such) until a sweep or a new request runs them.
            logger.warning(
                "operations %s wait for their cluster; no broker to retry them later", report.waiting
            )
        else:
            run_operations.apply_async((report.waiting,), countdown=report.retry_in)
    return {
        "claimed": report.claimed,
        "outcomes": report.outcomes,
        "waiting": len(report.waiting),
        "ms": report.timings_ms,
    }


@shared_task(bind=True, acks_late=True, name="operations.plan_batch")
def plan_batch(self, batch_id: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Plan a batch page by page. Unpaced: pages until done (bounded by the target count);
    paced: one page, then this task again after the page's share of the rate."""
    planned = 0
    for _ in range(10_000):  # 10,000 pages of 500: far beyond any batch the console can start
        step = services.batch_plan_step(batch_id=batch_id)
        planned += step.planned
        if step.done:
            break
        if step.rate_per_second and not self.request.is_eager:  # eager: no countdown, plan on
            plan_batch.apply_async((batch_id,), countdown=step.planned / step.rate_per_second)
            break
    return {"batch": batch_id, "planned": planned}


@shared_task(bind=True, acks_late=True, name="operations.sweep")
def sweep_operations(self) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Queue stalled operations and planners again (services.operations_sweep). Runs on Celery
    beat every FLEETFLOW_OPERATION_SWEEP_SECONDS (settings.CELERY_BEAT_SCHEDULE: run the worker
    with --beat, or a beat process) and once when a worker starts."""
    report = services.operations_sweep()
    return {
        "enqueued": report.enqueued,
        "batches_resumed": report.batches_resumed,
        "confirmed": report.confirmed,
    }


@worker_ready.connect
def _sweep_when_a_worker_starts(sender=None, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    # A worker (re)started, perhaps after a crash: what its predecessor held is claimable once
    # the lease runs out, so look just after that.
    sweep_operations.apply_async(countdown=settings.FLEETFLOW_OPERATION_LEASE_SECONDS + 1.0)
