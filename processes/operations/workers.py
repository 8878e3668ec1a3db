"""A pyzeebe job worker helper that only works on jobs meant for its assignee or groups.

Zeebe hands a job to whichever worker asks for its type; it has no notion of "this job is for
alice". Manual steps (manual analysis, vendor diagnosis) carry who they are for, and the reassign
action (DESIGN §6) changes it, so workers must look before they work:

* the step's ``assignee`` / ``candidateGroups`` variables win (reassign writes them as local
  variables on the step's scope, and the nearest scope's variable is the one a job sees; a
  variable set to null or [] clears the header's value);
* otherwise Zeebe's user task headers ``io.camunda.zeebe:assignee`` and
  ``io.camunda.zeebe:candidateGroups`` (a JSON list or a comma-separated list);
* a step with an assignee is for that assignee only; one with candidate groups only, for members
  of one of them; one with neither, for any worker that takes unassigned work.

A job that is not for this worker is handed back at once with FailJob at its *current* retries (no
retry is used up) and a short back-off, so the other workers' polls get it::

    worker = ZeebeWorker(create_insecure_channel("127.0.0.1:26500"))

    @assigned_task(worker, "manual-analysis", assignee="alice", groups=["l2"])
    async def analyse(job: Job) -> dict:
        return {"verdict": "replace-dimm"}
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pyzeebe import Job, JobController, ZeebeWorker
from pyzeebe.errors import JobAlreadyDeactivatedError, JobNotFoundError
from pyzeebe.task.exception_handler import default_exception_handler

logger = logging.getLogger(__name__)

ASSIGNEE_VARIABLE = "assignee"
CANDIDATE_GROUPS_VARIABLE = "candidateGroups"
ASSIGNEE_HEADER = "io.camunda.zeebe:assignee"
CANDIDATE_GROUPS_HEADER = "io.camunda.zeebe:candidateGroups"

Handler = Callable[[Job], Awaitable[Mapping[str, Any] | None]]


@dataclass(frozen=True)
class Assignment:
    """Who a job is for: one assignee, or candidate groups, or (neither) anyone."""

    assignee: str | None
    candidate_groups: tuple[str, ...]


def _groups(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                raw = json.loads(text)
            except ValueError:
                raw = text.strip("[]").split(",")
        else:
            raw = text.split(",")
    if isinstance(raw, list | tuple):
        return tuple(str(group).strip().strip('"') for group in raw if str(group).strip())
    return ()


def assignment_of(job: Job) -> Assignment:
    """The job's assignment: its variables first (see the module docstring), then its headers."""
    variables = job.variables or {}
    headers = job.custom_headers or {}
    if ASSIGNEE_VARIABLE in variables:
        assignee = variables[ASSIGNEE_VARIABLE]
    else:
        assignee = headers.get(ASSIGNEE_HEADER)
    if CANDIDATE_GROUPS_VARIABLE in variables:
        groups = _groups(variables[CANDIDATE_GROUPS_VARIABLE])
    else:
        groups = _groups(headers.get(CANDIDATE_GROUPS_HEADER))
    assignee = str(assignee).strip() if assignee not in (None, "") else None
    return Assignment(assignee=assignee or None, candidate_groups=groups)


def is_for(
    job: Job, *, assignee: str | None, groups: Iterable[str] = (), take_unassigned: bool = False
) -> bool:
    """Whether a worker acting for ``assignee`` (member of ``groups``) should work on ``job``."""
    assignment = assignment_of(job)
    if assignment.assignee is not None:
        return assignee is not None and assignment.assignee == assignee
    if assignment.candidate_groups:
        return bool(set(assignment.candidate_groups) & set(groups))
    return take_unassigned


class NotForThisWorker(Exception):
    """Raised inside the task to hand the job back (see assigned_task)."""


def assigned_task(
    worker: ZeebeWorker,
    task_type: str,
    *,
    assignee: str | None = None,
    groups: Iterable[str] = (),
    take_unassigned: bool = False,
    release_backoff_ms: int = 500,
    timeout_ms: int = 30_000,
    max_jobs_to_activate: int = 8,
    on_release: Callable[[Job], None] | None = None,
) -> Callable[[Handler], Handler]:
    """Register ``handler`` for ``task_type`` on ``worker``, for jobs meant for this worker only.

    The handler receives the pyzeebe Job and returns the variables to complete it with. Jobs for
    someone else are failed with their retries unchanged and ``release_backoff_ms`` back-off
    (``on_release`` is called for each, e.g. for logging or tests). A handler that raises fails
    the job the usual pyzeebe way (one retry used).
    """
    if assignee is None and not groups and not take_unassigned:
        raise ValueError("an assigned_task needs an assignee, groups or take_unassigned=True")
    my_groups = tuple(groups)

    async def on_exception(error: Exception, job: Job, controller: JobController) -> None:
        if not isinstance(error, NotForThisWorker):
            await default_exception_handler(error, job, controller)
            return
        if on_release is not None:
            on_release(job)
        # Cancelled or taken over meanwhile: nothing to hand back.
        with contextlib.suppress(JobNotFoundError, JobAlreadyDeactivatedError):
            # Not controller.set_failure_status: that spends a retry. The same retries: none spent.
            await worker.zeebe_adapter.fail_job(
                job_key=job.key,
                retries=job.retries,
                message=f"not for {assignee or '/'.join(my_groups)}: handed back",
                retry_back_off_ms=release_backoff_ms,
                variables={},
            )

    def register(handler: Handler) -> Handler:
        async def run(job: Job) -> dict[str, Any]:
            if not is_for(job, assignee=assignee, groups=my_groups, take_unassigned=take_unassigned):
                raise NotForThisWorker(job.key)
            result = await handler(job)
            return dict(result or {})

        # pyzeebe injects the job into a parameter annotated with the Job class itself; with
        # postponed annotations the annotation is a string, so the signature is given explicitly.
        run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter("job", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Job)]
        )
        worker.task(
            task_type,
            exception_handler=on_exception,
            timeout_ms=timeout_ms,
            max_jobs_to_activate=max_jobs_to_activate,
        )(run)  # type: ignore[arg-type]  # pyzeebe's ParamSpec typing cannot express "takes a Job"
        return handler

    return register
