"""Choice classes for the processes app, with named groups of states (CONVENTIONS §6)."""

from django.db import models


class ClusterState(models.TextChoices):
    """Routing state of a cluster (DESIGN §2). Health (up/down) is separate and not stored here."""

    ACTIVE = "active", "Active"  # gets new instances, serves jobs and operations
    DRAINING = "draining", "Draining"  # no new instances; still serves jobs and operations
    DISABLED = "disabled", "Disabled"  # nothing is routed to it


# States in which the routing layer sends jobs and operations to the cluster.
CLUSTER_SERVING_STATES = frozenset({ClusterState.ACTIVE, ClusterState.DRAINING})
# States in which the cluster receives new process instances.
CLUSTER_PLACEMENT_STATES = frozenset({ClusterState.ACTIVE})


class RecordSource(models.TextChoices):
    """Where the importer reads a cluster's exported records from (DESIGN §5)."""

    ENGINE_LOG = "engine_log", "Embedded engine log"
    REDIS = "redis", "Redis streams (zeebe-redis-exporter, JSON)"
    ELASTICSEARCH = "elasticsearch", "Elasticsearch (zeebe-record_* indices)"


class InstanceState(models.TextChoices):
    """Lifecycle of a process instance or an element instance, folded from PROCESS_INSTANCE intents
    (reference §3.5): ELEMENT_ACTIVATING..ELEMENT_COMPLETING and ELEMENT_TERMINATING are still active."""

    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    TERMINATED = "terminated", "Terminated"  # canceled, or ended by an interrupting event / its parent


INSTANCE_ACTIVE_STATES = frozenset({InstanceState.ACTIVE})
INSTANCE_TERMINAL_STATES = frozenset({InstanceState.COMPLETED, InstanceState.TERMINATED})


class JobState(models.TextChoices):
    """State of a job, folded from JOB intents and JOB_BATCH ACTIVATED (reference §3.5, §3.8)."""

    CREATED = "created", "Activatable"  # created, timed out, yielded, failed with retries left, recurred
    ACTIVATED = "activated", "Activated"  # handed to a worker until its deadline
    FAILED = "failed", "Failed (no retries left)"  # an incident waits for update retries + resolve
    COMPLETED = "completed", "Completed"
    ERROR_THROWN = "error_thrown", "Error thrown"
    CANCELED = "canceled", "Canceled"


JOB_ACTIVE_STATES = frozenset({JobState.CREATED, JobState.ACTIVATED, JobState.FAILED})
JOB_TERMINAL_STATES = frozenset({JobState.COMPLETED, JobState.ERROR_THROWN, JobState.CANCELED})


class IncidentState(models.TextChoices):
    """An incident is active from INCIDENT CREATED until INCIDENT RESOLVED."""

    ACTIVE = "active", "Active"
    RESOLVED = "resolved", "Resolved"


INCIDENT_ACTIVE_STATES = frozenset({IncidentState.ACTIVE})
INCIDENT_TERMINAL_STATES = frozenset({IncidentState.RESOLVED})
