"""Reads that only console pages need (CONVENTIONS §4): dashboard figures, diagram overlays, the
instance tree page by page, "why is it stuck" sentences, the proxy's published metrics.

Shared reads (subtrees, import lag, incidents by error) stay in processes.selectors; everything here
is a query over the same query models, bounded in rows, and uses the indexes the models declare.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncHour, TruncMinute

from processes.choices import (
    INCIDENT_ACTIVE_STATES,
    INSTANCE_ACTIVE_STATES,
    IncidentState,
    InstanceState,
    JobState,
)
from processes.models import ElementInstance, Incident, Job, ProcessInstance, Variable

logger = logging.getLogger(__name__)

USER_TASK_JOB_TYPE = "io.camunda.zeebe:userTask"  # job-based user tasks (zeebe-protocol.md §2.1)
ASSIGNEE_HEADER = "io.camunda.zeebe:assignee"
CANDIDATE_GROUPS_HEADER = "io.camunda.zeebe:candidateGroups"
# Local variables an operator's reassign writes on the step's scope (DESIGN §6); they override the
# headers for the workers that honour them.
ASSIGNEE_VARIABLE = "assignee"
CANDIDATE_GROUPS_VARIABLE = "candidateGroups"

TREE_PAGE_SIZE = 100
LIST_PAGE_SIZE = 50
HISTORY_LIMIT = 500
VARIABLES_LIMIT = 1000


# -- keyset cursors ---------------------------------------------------------------------------------


class BadCursor(ValueError):
    pass


def encode_cursor(start_date: datetime | None, key: int) -> str:
    stamp = start_date.isoformat() if start_date is not None else ""
    return base64.urlsafe_b64encode(f"{stamp}|{key}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime | None, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, key = text.split("|", 1)
        return (datetime.fromisoformat(stamp) if stamp else None, int(key))
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise BadCursor(f"not a page cursor: {cursor[:40]!r}") from error


def newest_first_page(
    queryset: QuerySet[ProcessInstance], *, after: str | None, size: int = LIST_PAGE_SIZE
) -> tuple[list[ProcessInstance], str | None]:
    """One page of instances newest first by (start_date, key), after the cursor of the previous page.

    Keyset paging (no OFFSET): page 1000 costs what page 1 costs on pi_start_key_idx and the
    filtered indexes. Rows without a start date (a record not imported yet) sort last.
    """
    queryset = queryset.order_by("-start_date", "-key")
    if after:
        start_date, key = decode_cursor(after)
        if start_date is None:
            queryset = queryset.filter(start_date__isnull=True, key__lt=key)
        else:
            queryset = queryset.filter(
                Q(start_date__lt=start_date)
                | Q(start_date=start_date, key__lt=key)
                | Q(start_date__isnull=True)
            )
    rows = list(queryset[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return rows, (encode_cursor(rows[-1].start_date, rows[-1].key) if more and rows else None)


# -- dashboard --------------------------------------------------------------------------------------


def dashboard_counts() -> dict[str, int]:
    active = ProcessInstance.objects.filter(state__in=INSTANCE_ACTIVE_STATES)
    return {
        "running": active.count(),
        "running_roots": active.filter(parent__isnull=True).count(),
        "with_incidents": ProcessInstance.objects.filter(subtree_incident=True, parent__isnull=True).count(),
        "incidents": Incident.objects.filter(state__in=INCIDENT_ACTIVE_STATES).count(),
    }


def incidents_by_process(*, limit: int = 20) -> list[dict[str, Any]]:
    """Active incidents per process id (incident_state_process_idx)."""
    rows = (
        Incident.objects.filter(state__in=INCIDENT_ACTIVE_STATES)
        .values("bpmn_process_id")
        .annotate(count=Count("key"))
        .order_by("-count", "bpmn_process_id")[:limit]
    )
    return [dict(row) for row in rows]


@dataclass
class TimeSeries:
    """Counts per bucket over a window, as parallel lists (what uPlot draws)."""

    bucket_seconds: int
    times: list[int] = field(default_factory=list)  # bucket starts, epoch seconds
    series: dict[str, list[int]] = field(default_factory=dict)


def dashboard_series(*, hours: int = 24, now: datetime | None = None) -> TimeSeries:
    """Instances started/finished and incidents opened/resolved per bucket over the last `hours`.

    Hour buckets beyond 6 hours, minute buckets up to 6 hours: a few hundred points at most.
    """
    now = now or datetime.now(tz=UTC)
    hours = max(1, min(hours, 24 * 14))
    if hours > 6:
        trunc: Any = TruncHour
        step = 3600
    else:
        trunc = TruncMinute
        step = 60
    since = now - timedelta(hours=hours)
    start = int(since.timestamp()) // step * step
    end = int(now.timestamp()) // step * step
    times = list(range(start, end + step, step))
    index = {stamp: position for position, stamp in enumerate(times)}

    def bucketed(queryset: QuerySet[Any], column: str) -> list[int]:
        counts = [0] * len(times)
        rows = (
            queryset.filter(**{f"{column}__gte": since})
            .annotate(bucket=trunc(column))
            .values("bucket")
            .annotate(count=Count("pk"))
        )
        for row in rows:
            position = index.get(int(row["bucket"].timestamp()) // step * step)
            if position is not None:
                counts[position] += row["count"]
        return counts

    series = TimeSeries(bucket_seconds=step, times=times)
    series.series["started"] = bucketed(ProcessInstance.objects.all(), "start_date")
    series.series["finished"] = bucketed(
        ProcessInstance.objects.exclude(state=InstanceState.ACTIVE), "end_date"
    )
    series.series["incidents_opened"] = bucketed(Incident.objects.all(), "created_at")
    series.series["incidents_resolved"] = bucketed(
        Incident.objects.filter(state=IncidentState.RESOLVED), "resolved_at"
    )
    return series


# -- the proxy's published figures ------------------------------------------------------------------


def proxy_metrics() -> dict[str, Any] | None:
    """The gateway proxy's metrics.json (routing/metrics.py), or None when it is not published here.

    The proxy rewrites the file atomically every second in its --state-dir; the console finds it
    through settings.FLEETFLOW_PROXY_STATE_DIR (environment variable of the same name).
    """
    state_dir = getattr(settings, "FLEETFLOW_PROXY_STATE_DIR", None) or os.environ.get(
        "FLEETFLOW_PROXY_STATE_DIR"
    )
    if not state_dir:
        return None
    path = Path(state_dir) / "metrics.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        logger.warning("cannot read %s: %s", path, error)
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class JobTypePolls:
    """What the proxy saw of the workers asking for one job type (all clusters together)."""

    job_type: str
    last_poll_at: datetime | None
    workers: tuple[str, ...]


def job_type_polls(metrics: dict[str, Any] | None) -> dict[str, JobTypePolls] | None:
    """Per job type, the newest poll and the worker names, from metrics.json; None when the proxy does
    not publish per-job-type poll information (then nobody can say who polls: the records do not).

    Read shape (routing/activation.py ``JobActivation.metrics``), per cluster:
    ``"activation": {"clusters": {"<id>": {"jobTypes": {"<type>": {"lastPollAt": <epoch s> | null,
    "workers": {"<name>": <epoch s>}, "parkedPolls": n, "openStreams": n}}}}}``. A parked long poll
    or an open job stream means a worker is asking right now.
    """
    if metrics is None:
        return None
    activation = metrics.get("activation")
    clusters = activation.get("clusters") if isinstance(activation, dict) else None
    if not isinstance(clusters, dict):
        return None
    generated = metrics.get("generatedAt")
    merged: dict[str, tuple[float | None, set[str]]] = {}
    for cluster in clusters.values():
        job_types = cluster.get("jobTypes") if isinstance(cluster, dict) else None
        if not isinstance(job_types, dict):
            continue
        for job_type, info in job_types.items():
            if not isinstance(info, dict):
                continue
            last, workers = merged.get(job_type, (None, set()))
            polled = info.get("lastPollAt")
            if (info.get("parkedPolls") or info.get("openStreams")) and isinstance(generated, int | float):
                polled = max(float(polled or 0), float(generated))  # waiting for jobs right now
            if isinstance(polled, int | float) and polled > 0 and (last is None or polled > last):
                last = float(polled)
            names = info.get("workers")
            if isinstance(names, dict | list):
                workers |= {str(name) for name in names}
            merged[job_type] = (last, workers)
    return {
        job_type: JobTypePolls(
            job_type=job_type,
            last_poll_at=datetime.fromtimestamp(last, tz=UTC) if last is not None else None,
            workers=tuple(sorted(workers)),
        )
        for job_type, (last, workers) in merged.items()
    }


# -- instance detail --------------------------------------------------------------------------------


def element_statistics(*, instance: ProcessInstance) -> dict[str, dict[str, int]]:
    """Per BPMN element id of one instance: active, completed, terminated and incident counts
    (ei_instance_element_idx, incident_instance_idx), for the diagram overlays."""
    stats: dict[str, dict[str, int]] = {}
    rows = (
        ElementInstance.objects.filter(process_instance=instance)
        .values("element_id", "state")
        .annotate(count=Count("key"))
    )
    for row in rows:
        entry = stats.setdefault(
            row["element_id"], {"active": 0, "completed": 0, "terminated": 0, "incidents": 0}
        )
        entry[row["state"]] = entry.get(row["state"], 0) + row["count"]
    incidents = (
        Incident.objects.filter(process_instance=instance, state__in=INCIDENT_ACTIVE_STATES)
        .values("element_id")
        .annotate(count=Count("key"))
    )
    for incident_row in incidents:
        entry = stats.setdefault(
            incident_row["element_id"], {"active": 0, "completed": 0, "terminated": 0, "incidents": 0}
        )
        entry["incidents"] += incident_row["count"]
    return stats


@dataclass(frozen=True)
class TreeNode:
    instance: ProcessInstance
    child_count: int


def tree_children(
    *, parent_key: int, after: str | None = None, size: int = TREE_PAGE_SIZE
) -> tuple[list[TreeNode], str | None]:
    """One page of the instances called by `parent_key`, oldest first, each with its own number of
    children, so a node shows "N called" without loading them (lazy tree; pi_parent_idx)."""
    queryset = ProcessInstance.objects.filter(parent_id=parent_key).annotate(child_count=Count("children"))
    queryset = queryset.order_by("start_date", "key")
    if after:
        start_date, key = decode_cursor(after)
        if start_date is not None:
            queryset = queryset.filter(Q(start_date__gt=start_date) | Q(start_date=start_date, key__gt=key))
        else:
            queryset = queryset.filter(key__gt=key)
    rows = list(queryset[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    nodes = [TreeNode(instance=row, child_count=row.child_count) for row in rows]
    return nodes, (encode_cursor(rows[-1].start_date, rows[-1].key) if more and rows else None)


def child_count(*, instance: ProcessInstance) -> int:
    return ProcessInstance.objects.filter(parent=instance).count()


@dataclass
class Scope:
    key: int
    label: str
    variables: list[Variable]


def variables_by_scope(*, instance: ProcessInstance) -> list[Scope]:
    """The instance's variables grouped per scope (process first, then element scopes); the large
    values stay out (``value`` is NULL for them, the preview is shown, the full value on demand)."""
    variables = list(
        Variable.objects.filter(process_instance=instance)
        .order_by("scope_key", "name")
        .only("key", "name", "scope_key", "truncated", "preview", "size", "value", "updated_at")[
            :VARIABLES_LIMIT
        ]
    )
    for variable in variables:
        # JSON text as the engine has it (strings quoted), for display.
        variable.value_json = "" if variable.truncated else json.dumps(variable.value, ensure_ascii=False)  # type: ignore[attr-defined]
    scope_keys = {variable.scope_key for variable in variables}
    labels = dict(
        ElementInstance.objects.filter(key__in=scope_keys - {instance.key}).values_list("key", "element_id")
    )
    scopes: dict[int, Scope] = {}
    for variable in variables:
        if variable.scope_key == instance.key:
            label = f"process {instance.bpmn_process_id}"
        else:
            label = labels.get(variable.scope_key, "unknown scope")
        scopes.setdefault(variable.scope_key, Scope(key=variable.scope_key, label=label, variables=[]))
        scopes[variable.scope_key].variables.append(variable)
    return sorted(scopes.values(), key=lambda scope: (scope.key != instance.key, scope.key))


def instance_history(*, instance: ProcessInstance, limit: int = HISTORY_LIMIT) -> list[ElementInstance]:
    return list(
        ElementInstance.objects.filter(process_instance=instance).order_by("start_date", "key")[:limit]
    )


def instance_jobs(*, instance: ProcessInstance, limit: int = 200) -> list[Job]:
    return list(Job.objects.filter(process_instance=instance).order_by("-created_at", "-key")[:limit])


def instance_incidents(*, instance: ProcessInstance) -> list[Incident]:
    return list(Incident.objects.filter(process_instance=instance).order_by("state", "-created_at"))


def subtree_active_incident_count(*, instance: ProcessInstance) -> int:
    """Active incidents deeper in the tree than this instance (incident_root_state_idx + prefix)."""
    return (
        Incident.objects.filter(
            root_key=instance.root_id or instance.key,
            state__in=INCIDENT_ACTIVE_STATES,
            tree_path__startswith=instance.tree_path,
        )
        .exclude(process_instance=instance)
        .count()
    )


# -- why is it stuck --------------------------------------------------------------------------------

WAITING_ELEMENT_TYPES = frozenset(
    {
        "SERVICE_TASK",
        "USER_TASK",
        "SEND_TASK",
        "SCRIPT_TASK",
        "BUSINESS_RULE_TASK",
        "RECEIVE_TASK",
        "CALL_ACTIVITY",
        "INTERMEDIATE_CATCH_EVENT",
        "EVENT_BASED_GATEWAY",
        "MANUAL_TASK",
        "TASK",
    }
)


@dataclass(frozen=True)
class StuckReason:
    """One waiting step and the plain sentence saying why it waits."""

    element_id: str
    element_instance_key: int | None
    process_instance_key: int
    sentence: str
    kind: str  # incident | locked | backoff | manual | no_worker | waiting | called
    incident: Incident | None = None
    job: Job | None = None


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "an unknown time"
    return _span((now - moment).total_seconds())


def _span(total_seconds: float) -> str:
    seconds = max(0, int(total_seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _stamp(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "an unknown time"


def why_stuck(
    *,
    instances: list[ProcessInstance],
    now: datetime | None = None,
    polls: dict[str, JobTypePolls] | None = None,
    polls_known: bool = False,
) -> list[StuckReason]:
    """One sentence per waiting step of the given (active) instances, from what Fleetflow knows:
    the step's active incident, its open job (locked by a worker until its deadline, in retry
    backoff, a manual step waiting for its assignee, or waiting for a worker of its type, with
    the proxy's last poll of that type when the proxy publishes it), or what else it waits for.

    ``polls_known`` says whether the proxy publishes per-job-type poll information at all.
    Queries: one per model, bounded by the instances given (a page's worth).
    """
    now = now or datetime.now(tz=UTC)
    active = [instance for instance in instances if instance.state == InstanceState.ACTIVE]
    if not active:
        return []
    keys = [instance.key for instance in active]
    elements = list(
        ElementInstance.objects.filter(
            process_instance_id__in=keys, state=InstanceState.ACTIVE, element_type__in=WAITING_ELEMENT_TYPES
        ).order_by("start_date", "key")[:500]
    )
    element_keys = [element.key for element in elements]
    incidents: dict[int, Incident] = {}
    for incident in Incident.objects.filter(
        process_instance_id__in=keys, state__in=INCIDENT_ACTIVE_STATES
    ).order_by("created_at"):
        incidents.setdefault(incident.element_instance_id or 0, incident)
    jobs: dict[int, Job] = {}
    for job in Job.objects.filter(
        element_instance_id__in=element_keys,
        state__in=[JobState.CREATED, JobState.ACTIVATED, JobState.FAILED],
    ).order_by("created_at"):
        jobs[job.element_instance_id or 0] = job  # the newest open job of the step
    local_assignees: dict[int, dict[str, Any]] = {}
    for variable in Variable.objects.filter(
        scope_key__in=element_keys, name__in=[ASSIGNEE_VARIABLE, CANDIDATE_GROUPS_VARIABLE]
    ).only("scope_key", "name", "value"):
        local_assignees.setdefault(variable.scope_key, {})[variable.name] = variable.value
    called = {
        row.parent_element_instance_key: row
        for row in ProcessInstance.objects.filter(parent_element_instance_key__in=element_keys).only(
            "key", "bpmn_process_id", "state", "subtree_incident", "parent_element_instance_key"
        )
    }

    reasons: list[StuckReason] = []
    seen_incidents: set[int] = set()
    for element in elements:
        step = element.element_id
        step_incident = incidents.get(element.key)
        step_job = jobs.get(element.key)
        base: dict[str, Any] = {
            "element_id": step,
            "element_instance_key": element.key,
            "process_instance_key": element.process_instance_id or 0,
        }
        if step_incident is not None:
            seen_incidents.add(step_incident.key)
            message = step_incident.error_message.strip() or "no message"
            reasons.append(
                StuckReason(
                    **base,
                    kind="incident",
                    incident=step_incident,
                    job=step_job,
                    sentence=f"Step {step} has an incident ({step_incident.error_type}) since "
                    f"{_stamp(step_incident.created_at)}: {message}",
                )
            )
            continue
        if step_job is not None:
            reasons.append(_job_sentence(base, step_job, element, now, polls, polls_known, local_assignees))
            continue
        if element.element_type == "CALL_ACTIVITY":
            child = called.get(element.key)
            if child is not None:
                extra = " (which has an incident in its tree)" if child.subtree_incident else ""
                sentence = f"Step {step} waits for the called {child.bpmn_process_id} instance {child.key} to finish{extra}."
            else:
                sentence = f"Step {step} waits for its called instance, which has not been imported yet."
            reasons.append(StuckReason(**base, kind="called", sentence=sentence))
            continue
        what = {
            "RECEIVE_TASK": "a message",
            "INTERMEDIATE_CATCH_EVENT": "its event (a message, a timer or a signal)",
            "EVENT_BASED_GATEWAY": "the first of its events",
        }.get(element.element_type, "its job to be created")
        reasons.append(
            StuckReason(
                **base,
                kind="waiting",
                sentence=f"Step {step} waits for {what} since {_stamp(element.start_date)} ({_ago(element.start_date, now)}).",
            )
        )
    # Incidents not on a waiting step (an output mapping on an end event, a condition on a gateway).
    for incident in incidents.values():
        if incident.key in seen_incidents:
            continue
        message = incident.error_message.strip() or "no message"
        reasons.append(
            StuckReason(
                element_id=incident.element_id,
                element_instance_key=incident.element_instance_id,
                process_instance_key=incident.process_instance_id or 0,
                kind="incident",
                incident=incident,
                sentence=f"Step {incident.element_id} has an incident ({incident.error_type}) since "
                f"{_stamp(incident.created_at)}: {message}",
            )
        )
    return reasons


def _job_sentence(
    base: dict[str, Any],
    job: Job,
    element: ElementInstance,
    now: datetime,
    polls: dict[str, JobTypePolls] | None,
    polls_known: bool,
    local_assignees: dict[int, dict[str, Any]],
) -> StuckReason:
    step = base["element_id"]
    if job.state == JobState.ACTIVATED and job.deadline is not None and job.deadline > now:
        worker = job.worker or "an unnamed worker"
        return StuckReason(
            **base,
            kind="locked",
            job=job,
            sentence=f"Step {step}: its {job.job_type} job is locked by worker {worker} until "
            f"{_stamp(job.deadline)} (in {_span((job.deadline - now).total_seconds())}).",
        )
    if job.state == JobState.CREATED and job.retry_backoff_ms > 0 and job.updated_at is not None:
        until = job.updated_at + timedelta(milliseconds=job.retry_backoff_ms)
        if until > now:
            failed = (
                "was handed back by the routing proxy (not a worker failure)"
                if job.handed_back
                else f"failed ({job.error_message or 'no message'})"
            )
            return StuckReason(
                **base,
                kind="backoff",
                job=job,
                sentence=f"Step {step}: its {job.job_type} job {failed} "
                f"and waits out a retry backoff until {_stamp(until)}; {job.retries} retries left.",
            )
    headers = job.custom_headers if isinstance(job.custom_headers, dict) else {}
    local = local_assignees.get(element.key, {})
    assignee = local.get(ASSIGNEE_VARIABLE) or headers.get(ASSIGNEE_HEADER)
    groups = local.get(CANDIDATE_GROUPS_VARIABLE) or headers.get(CANDIDATE_GROUPS_HEADER)
    if job.job_type == USER_TASK_JOB_TYPE or assignee or (element.element_type == "USER_TASK"):
        who = f"assignee {assignee}" if assignee else "an assignee"
        if groups:
            group_text = ", ".join(groups) if isinstance(groups, list) else str(groups)
            who += f" (groups {group_text})"
        waited_since = job.created_at or element.start_date
        return StuckReason(
            **base,
            kind="manual",
            job=job,
            sentence=f"Manual step {step} is waiting for {who} since {_stamp(waited_since)} "
            f"({_ago(waited_since, now)}).",
        )
    waited_since = job.updated_at or job.created_at
    if polls_known and polls is not None:
        seen = polls.get(job.job_type)
        if seen is None or seen.last_poll_at is None:
            sentence = (
                f"Step {step}: no worker has polled job type {job.job_type} since the proxy started; "
                f"the job waits since {_stamp(waited_since)} ({_ago(waited_since, now)})."
            )
            return StuckReason(**base, kind="no_worker", job=job, sentence=sentence + _hand_back_note(job))
        idle = now - seen.last_poll_at
        if idle > timedelta(seconds=60):
            minutes = int(idle.total_seconds() // 60)
            names = f" (last seen: {', '.join(seen.workers)})" if seen.workers else ""
            return StuckReason(
                **base,
                kind="no_worker",
                job=job,
                sentence=f"Step {step}: no worker has polled job type {job.job_type} for {minutes} minutes{names}."
                + _hand_back_note(job),
            )
        names = ", ".join(seen.workers) or "unnamed workers"
        return StuckReason(
            **base,
            kind="waiting",
            job=job,
            sentence=f"Step {step}: its {job.job_type} job waits since {_stamp(waited_since)}; workers "
            f"{names} polled this type {_ago(seen.last_poll_at, now)} ago." + _hand_back_note(job),
        )
    unknown = (
        "" if polls_known else " (the proxy publishes no per-job-type poll times, so who polls is unknown)"
    )
    return StuckReason(
        **base,
        kind="waiting",
        job=job,
        sentence=f"Step {step}: its {job.job_type} job waits for a worker since {_stamp(waited_since)} "
        f"({_ago(waited_since, now)}){unknown}." + _hand_back_note(job),
    )


def _hand_back_note(job: Job) -> str:
    """A job the routing proxy handed back (it activated the job for a caller that was gone) waits
    again with its retries unchanged: say so, so nobody reads it as the worker's failure."""
    if not job.handed_back:
        return ""
    return (
        f" The routing proxy handed it back at {_stamp(job.updated_at)} (it could not deliver it; "
        "not a worker failure, retries unchanged)."
    )
