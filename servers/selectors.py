"""Reads of the servers app (CONVENTIONS §4)."""

from __future__ import annotations

from django.db.models import QuerySet

from processes.choices import INCIDENT_ACTIVE_STATES, INSTANCE_ACTIVE_STATES, JOB_ACTIVE_STATES
from processes.models import Incident, Job, ProcessInstance
from servers.models import Server


def server_list() -> QuerySet[Server]:
    return Server.objects.order_by("serial_number")


def server_instances(*, server: Server) -> QuerySet[ProcessInstance]:
    """Every process and sub-process instance that touched the server, newest first (pi_server_start_idx)."""
    return ProcessInstance.objects.filter(server=server).order_by("-start_date", "-key")


def server_open_incidents(*, server: Server) -> QuerySet[Incident]:
    """What is stuck now: active incidents of the server's instances."""
    return Incident.objects.filter(
        state__in=INCIDENT_ACTIVE_STATES,
        process_instance_id__in=ProcessInstance.objects.filter(server=server).values("key"),
    ).order_by("-created_at")


def server_open_jobs(*, server: Server) -> QuerySet[Job]:
    """Open jobs (activatable, activated, failed) of the server's active instances."""
    return Job.objects.filter(
        state__in=JOB_ACTIVE_STATES,
        process_instance_id__in=ProcessInstance.objects.filter(
            server=server, state__in=INSTANCE_ACTIVE_STATES
        ).values("key"),
    ).order_by("-created_at")
