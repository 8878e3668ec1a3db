"""Operations (DESIGN §6): one row per operator action, batches of them, and the audit trail.

An Operation is written in the same transaction as its first audit row and executed afterwards by
a Celery task (processes.operations.tasks) through the routing client. The lease columns
(``lease_owner``, ``lease_expires_at``) make execution at-most-once per claim: a task only runs an
operation it claimed with a conditional UPDATE, so a task delivered twice, or a second worker,
finds it claimed or finished and does nothing; a worker killed mid-way leaves a lease that expires,
after which the operation is claimed again (its action answers "already done" if it had applied).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from processes.operations.choices import (
    BatchState,
    ConfirmKind,
    OperationAction,
    OperationState,
)


class BatchOperation(models.Model):
    """One action applied to every target a filter selects (incidents or process instances).

    Targets are turned into Operation rows in key order, a chunk at a time (``planned_through_key``
    is the cursor, committed with the chunk), so a batch of any size never loads all its targets
    and a planner that dies resumes where it stopped. Progress is counted from its operations.
    """

    action = models.CharField(max_length=32, choices=OperationAction.choices)
    filter = models.JSONField(default=dict, blank=True, help_text="FilterSet parameters of the targets.")
    parameters = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=BatchState.choices, default=BatchState.PLANNING)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, help_text="Username at the time of the request.")
    dry_run_count = models.PositiveIntegerField(help_text="Targets the filter matched when it was started.")
    total = models.PositiveIntegerField(default=0, help_text="Operations created so far.")
    planned_through_key = models.BigIntegerField(
        null=True, blank=True, help_text="Highest target key turned into an operation (planner cursor)."
    )
    planning_done = models.BooleanField(default=False)
    planned_at = models.DateTimeField(
        null=True, blank=True, help_text="Last planning step; the sweeper restarts a planner that stopped."
    )
    rate_per_second = models.FloatField(
        null=True, blank=True, help_text="Most operations started per second; empty: as fast as workers go."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "-created_at"], name="batch_state_created_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=[choice.value for choice in BatchState]),
                name="batch_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"batch {self.id}: {self.action} ({self.state})"


class Operation(models.Model):
    """One operator action on one target, from request to confirmation (DESIGN §6).

    ``target_key`` is the global key of what the action addresses (incident, element instance,
    process instance, job or variable scope); ``cluster_id`` is decoded from it. ``result`` keeps
    the engine's answer, ``error`` Zeebe's message verbatim; ``already_done`` marks Zeebe answers
    that mean the effect was already there (incident already resolved, element already ended).
    ``confirm_kind``/``confirm_key`` name the imported change that proves the effect.
    """

    action = models.CharField(max_length=32, choices=OperationAction.choices)
    state = models.CharField(max_length=16, choices=OperationState.choices, default=OperationState.QUEUED)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, help_text="Username at the time of the request.")
    batch = models.ForeignKey(
        BatchOperation,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="operations",
        db_index=False,  # op_batch_state_idx starts with it
    )
    cluster_id = models.PositiveSmallIntegerField(null=True, blank=True)
    target_key = models.BigIntegerField(null=True, blank=True)
    process_instance_key = models.BigIntegerField(null=True, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    confirm_kind = models.CharField(max_length=32, choices=ConfirmKind.choices, blank=True, default="")
    confirm_key = models.BigIntegerField(null=True, blank=True)
    result = models.TextField(blank=True, default="", help_text="The engine's answer.")
    error = models.TextField(blank=True, default="", help_text="Zeebe's error message, verbatim.")
    error_code = models.CharField(max_length=32, blank=True, default="", help_text="gRPC status name.")
    already_done = models.BooleanField(default=False)
    # Sub-steps of a multi-call action that have applied (e.g. {"variables": true}), so a re-run
    # after a crash does not repeat them.
    progress = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=200, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Batch progress (counts by state) and the batch executor's chunks.
            models.Index(fields=["batch", "state"], name="op_batch_state_idx"),
            # Operations log, newest first; operations on one target or one instance.
            models.Index(fields=["-created_at", "-id"], name="op_created_idx"),
            models.Index(fields=["target_key", "-created_at"], name="op_target_idx"),
            models.Index(fields=["process_instance_key", "-created_at"], name="op_instance_idx"),
            # The sweeper: unfinished operations whose lease or backoff ran out.
            models.Index(
                fields=["state", "next_attempt_at"],
                name="op_open_idx",
                condition=models.Q(state__in=["queued", "running", "waiting"]),
            ),
            # The importer's confirmation: awaited effects by key, a small partial index.
            models.Index(
                fields=["confirm_key"],
                name="op_awaiting_confirm_idx",
                condition=models.Q(state__in=["running", "succeeded"]) & ~models.Q(confirm_kind=""),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=[choice.value for choice in OperationState]),
                name="operation_state_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(action__in=[choice.value for choice in OperationAction]),
                name="operation_action_valid",
            ),
            # A batch turns each target into one operation, even if its planner runs twice.
            models.UniqueConstraint(
                fields=["batch", "target_key"],
                name="operation_batch_target_unique",
                condition=models.Q(batch__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        target = f" #{self.target_key}" if self.target_key else ""
        return f"{self.get_action_display()}{target} ({self.state})"


class AuditEntry(models.Model):
    """Who did what, when: requests, batch starts and cancels, and every outcome of an operation.

    Rows are only ever added. ``actor_name`` is kept as text so the trail survives a deleted user.
    """

    created_at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True, default="")
    event = models.CharField(max_length=32)  # requested, succeeded, failed, waiting, confirmed, ...
    operation = models.ForeignKey(
        Operation, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_entries"
    )
    batch = models.ForeignKey(
        BatchOperation, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_entries"
    )
    message = models.TextField(blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["-created_at", "-id"], name="audit_created_idx")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name or 'system'} {self.event}"
