"""Choice classes of the operations app, with named groups of states (CONVENTIONS §6)."""

from django.db import models


class OperationAction(models.TextChoices):
    """What an operation does (DESIGN §6). The target key's kind depends on the action."""

    RETRY = "retry", "Retry"  # incident: update the job's retries (job incidents), then resolve
    RESOLVE_INCIDENT = "resolve_incident", "Resolve incident"
    SKIP = "skip", "Skip step"  # element instance: terminate it, activate its single successor
    REASSIGN = "reassign", "Reassign step"  # element instance: local variables + release its job
    CANCEL = "cancel", "Cancel instance"  # process instance (its called instances follow)
    SET_VARIABLES = "set_variables", "Set variables"  # scope (element or process instance)
    UPDATE_RETRIES = "update_retries", "Update job retries"  # job
    PUBLISH_MESSAGE = "publish_message", "Publish message"  # no key: every cluster
    # By hand on a job whose worker is gone (issue 19).
    COMPLETE_JOB = "complete_job", "Complete job by hand"  # job: CompleteJob with variables
    FAIL_JOB = "fail_job", "Fail job by hand"  # job: FailJob with retries and a message
    THROW_ERROR = "throw_error", "Throw BPMN error"  # job: ThrowError with a code and variables
    MODIFY = "modify", "Modify instance"  # process instance: one ModifyProcessInstance plan
    MIGRATE = "migrate", "Migrate instance"  # process instance: one MigrateProcessInstance plan


class OperationState(models.TextChoices):
    """queued -> running -> succeeded | failed; succeeded -> confirmed when the importer sees the
    effect. waiting: the owning cluster was unreachable; it is retried with backoff."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting for the cluster"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CONFIRMED = "confirmed", "Confirmed"
    CANCELLED = "cancelled", "Cancelled"  # its batch was cancelled before it ran


# A task may (re)claim an operation in these states (running only once its lease expired).
OPERATION_CLAIMABLE_STATES = frozenset({OperationState.QUEUED, OperationState.WAITING})
# Not finished: the batch is still in progress while any operation is in one of these.
OPERATION_OPEN_STATES = frozenset({OperationState.QUEUED, OperationState.RUNNING, OperationState.WAITING})
# The action ran (or found its effect already there); waiting for or past confirmation.
OPERATION_DONE_STATES = frozenset({OperationState.SUCCEEDED, OperationState.CONFIRMED})
OPERATION_TERMINAL_STATES = frozenset(
    {OperationState.SUCCEEDED, OperationState.FAILED, OperationState.CONFIRMED, OperationState.CANCELLED}
)
# The importer may confirm an operation in these states: the effect can be imported before the task
# has written its outcome (the engine answers, exports and the importer commits in milliseconds).
OPERATION_CONFIRMABLE_STATES = frozenset({OperationState.RUNNING, OperationState.SUCCEEDED})


class ConfirmKind(models.TextChoices):
    """Which imported change proves an operation's effect (matched by ``confirm_key``)."""

    NONE = "", "No confirmation"  # publish message: its effect has no key to watch
    INCIDENT_RESOLVED = "incident_resolved", "Incident resolved"
    ELEMENT_SKIPPED = "element_skipped", "Element terminated and its successor activated"
    INSTANCE_TERMINATED = "instance_terminated", "Process instance terminated"
    JOB_RETRIES = "job_retries", "Job retries updated"
    VARIABLES = "variables", "Variables set"
    JOB_ENDED = "job_ended", "Job ended as requested"  # complete / throw error by hand
    JOB_FAILED = "job_failed", "Job failed as requested"  # fail by hand: retries and message
    MODIFIED = "modified", "Plan applied"  # modify: terminated ended, activated elements appeared
    MIGRATED = "migrated", "Instance migrated"  # migrate: the instance is on the target definition


class BatchState(models.TextChoices):
    PLANNING = "planning", "Selecting targets"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


BATCH_OPEN_STATES = frozenset({BatchState.PLANNING, BatchState.RUNNING})
BATCH_TERMINAL_STATES = frozenset({BatchState.COMPLETED, BatchState.CANCELLED})
