"""Reads of the processes app (CONVENTIONS §4)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

from django.conf import settings
from django.db import connection
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Count,
    ExpressionWrapper,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Cast, Coalesce, Now

from processes.choices import (
    CLUSTER_PLACEMENT_STATES,
    INCIDENT_ACTIVE_STATES,
    INSTANCE_ACTIVE_STATES,
    JOB_ACTIVE_STATES,
)
from processes.models import (
    Cluster,
    ElementInstance,
    ImporterProcess,
    ImportLease,
    ImportPosition,
    Incident,
    InstanceCount,
    Job,
    ProcessDefinition,
    ProcessInstance,
    RecordImportError,
    Variable,
    VariableValue,
)

logger = logging.getLogger(__name__)

HEALTH_VALUES = frozenset({"up", "down", "unknown"})


def cluster_list() -> QuerySet[Cluster]:
    return Cluster.objects.order_by("id")


def cluster_placement_candidates() -> QuerySet[Cluster]:
    """Clusters that may receive new instances (health is checked by the routing layer)."""
    return Cluster.objects.filter(state__in=CLUSTER_PLACEMENT_STATES, weight__gt=0).order_by("id")


def proxy_cluster_health() -> dict[int, str]:
    """Health per cluster id as the gateway proxy last published it in ``<state-dir>/metrics.json``
    (routing/metrics.py; found through FLEETFLOW_PROXY_STATE_DIR). Empty when this process cannot see
    the file: health is then unknown, never guessed (DESIGN §2: health is separate from state)."""
    state_dir = getattr(settings, "FLEETFLOW_PROXY_STATE_DIR", None) or os.environ.get(
        "FLEETFLOW_PROXY_STATE_DIR"
    )
    if not state_dir:
        return {}
    path = Path(state_dir) / "metrics.json"
    try:
        published = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        logger.warning("cannot read %s: %s", path, error)
        return {}
    clusters = published.get("clusters") if isinstance(published, dict) else None
    if not isinstance(clusters, dict):
        return {}
    health: dict[int, str] = {}
    for cluster_id, figures in clusters.items():
        value = figures.get("health") if isinstance(figures, dict) else None
        if str(cluster_id).isdigit() and value in HEALTH_VALUES:
            health[int(cluster_id)] = value
    return health


# -- Query models (DESIGN §5, §7) -------------------------------------------------------------------


def instance_subtree(*, instance: ProcessInstance, include_self: bool = True) -> QuerySet[ProcessInstance]:
    """The instance and every instance it called, at any depth: one prefix scan on pi_tree_path_idx."""
    subtree = ProcessInstance.objects.filter(tree_path__startswith=instance.tree_path)
    if not include_self:
        subtree = subtree.exclude(pk=instance.pk)
    return subtree.order_by("depth", "start_date", "key")


def instance_children(*, instance: ProcessInstance) -> QuerySet[ProcessInstance]:
    """Instances called directly by `instance` (lazy loading of the tree, pi_parent_idx)."""
    return ProcessInstance.objects.filter(parent=instance).order_by("start_date", "key")


def instance_ancestors(*, instance: ProcessInstance) -> QuerySet[ProcessInstance]:
    """Root first, down to the parent, from the keys in the tree path (one pk lookup)."""
    keys = [int(part) for part in instance.tree_path.split("/") if part][:-1]
    return ProcessInstance.objects.filter(pk__in=keys).order_by("depth")


def instance_variables(*, instance: ProcessInstance) -> QuerySet[Variable]:
    """Variables of every scope of one instance (variable_instance_name_idx); large values deferred."""
    return Variable.objects.filter(process_instance=instance).order_by("scope_key", "name")


def variable_full_value(*, variable: Variable) -> Any:
    """The variable's value; for a value above the preview threshold, fetched from VariableValue."""
    if not variable.truncated:
        return variable.value
    full = VariableValue.objects.filter(variable=variable).values_list("json_text", flat=True).first()
    if full is None:
        return None
    return json.loads(full)


class IncidentGroup(TypedDict):
    error_type: str
    error_message: str
    count: int


def incidents_by_error() -> QuerySet[Incident, IncidentGroup]:
    """Active incidents counted per error type and message (incident_state_type_idx)."""
    return (
        Incident.objects.filter(state__in=INCIDENT_ACTIVE_STATES)
        .values("error_type", "error_message")
        .annotate(count=Count("key"))
        .order_by("-count", "error_type")
    )


@dataclass(frozen=True)
class PartitionLag:
    """Import progress of one cluster partition (all its streams together)."""

    cluster_id: int
    partition_id: int
    position: int
    last_record_timestamp: datetime | None
    lag_seconds: float | None
    imported_count: int
    skipped_count: int
    error_count: int
    updated_at: datetime | None


def import_lag(*, cluster: Cluster | None = None, now: datetime | None = None) -> list[PartitionLag]:
    """Lag per cluster and partition: now minus the newest imported record's timestamp (DESIGN §5).

    Partition 0 (records whose partition was unreadable) only carries error counters.
    """
    now = now or datetime.now(tz=UTC)
    rows = ImportPosition.objects.all()
    if cluster is not None:
        rows = rows.filter(cluster=cluster)
    grouped = (
        rows.values("cluster_id", "partition_id")
        .annotate(
            position=Max("position"),
            last_record_timestamp=Max("last_record_timestamp"),
            imported_count=Sum("imported_count"),
            skipped_count=Sum("skipped_count"),
            error_count=Sum("error_count"),
            updated_at=Max("updated_at"),
        )
        .order_by("cluster_id", "partition_id")
    )
    return [
        PartitionLag(
            cluster_id=row["cluster_id"],
            partition_id=row["partition_id"],
            position=row["position"],
            last_record_timestamp=row["last_record_timestamp"],
            lag_seconds=(now - row["last_record_timestamp"]).total_seconds()
            if row["last_record_timestamp"] is not None
            else None,
            imported_count=row["imported_count"],
            skipped_count=row["skipped_count"],
            error_count=row["error_count"],
            updated_at=row["updated_at"],
        )
        for row in grouped
    ]


@dataclass(frozen=True)
class LeaseHolding:
    """Who imports one (cluster, partition): its ImportLease (processes/importer/leases.py)."""

    cluster_id: int
    partition_id: int  # 0: the whole cluster (a source not split by partition, e.g. Redis)
    holder: str  # "" when free
    token: int
    acquired_at: datetime | None
    expires_at: datetime | None
    expired: bool  # by the database's clock, as the importers judge it


@dataclass(frozen=True)
class PartitionImport:
    """A row of the console's import table: a partition's progress and who imports it."""

    lag: PartitionLag
    lease: LeaseHolding | None


def import_leases() -> dict[tuple[int, int], LeaseHolding]:
    """Every import lease by (cluster id, partition id); expiry judged by the database clock."""
    rows = ImportLease.objects.annotate(
        expired=ExpressionWrapper(Q(expires_at__lt=Now()), output_field=BooleanField())
    ).order_by("cluster_id", "partition_id")
    return {
        (row.cluster_id, row.partition_id): LeaseHolding(
            cluster_id=row.cluster_id,
            partition_id=row.partition_id,
            holder=row.holder,
            token=row.token,
            acquired_at=row.acquired_at,
            expires_at=row.expires_at,
            expired=bool(row.expired),  # annotated above
        )
        for row in rows
    }


def partition_imports(*, now: datetime | None = None) -> list[PartitionImport]:
    """import_lag rows with the lease that covers each: the partition's own, else the cluster's
    (partition 0, a source read as one unit). None: no importer with leases has seen it."""
    leases = import_leases()
    return [
        PartitionImport(
            lag=lag,
            lease=leases.get((lag.cluster_id, lag.partition_id)) or leases.get((lag.cluster_id, 0)),
        )
        for lag in import_lag(now=now)
    ]


@dataclass(frozen=True)
class ImporterRow:
    holder: str
    started_at: datetime
    expires_at: datetime
    alive: bool  # its heartbeat has not expired (database clock)
    leases: int  # units it holds


def importer_processes() -> list[ImporterRow]:
    """The registered import_records processes and how many units each holds."""
    held = dict(
        ImportLease.objects.exclude(holder="")
        .values("holder")
        .annotate(count=Count("id"))
        .values_list("holder", "count")
    )
    rows = ImporterProcess.objects.annotate(
        alive=ExpressionWrapper(Q(expires_at__gte=Now()), output_field=BooleanField())
    ).order_by("holder")
    return [
        ImporterRow(
            holder=row.holder,
            started_at=row.started_at,
            expires_at=row.expires_at,
            alive=bool(row.alive),  # annotated above
            leases=held.get(row.holder, 0),
        )
        for row in rows
    ]


def import_errors(*, cluster: Cluster | None = None) -> QuerySet[RecordImportError]:
    """Records the importer could not read, newest first (import_error_cluster_idx)."""
    errors = RecordImportError.objects.all()
    if cluster is not None:
        errors = errors.filter(cluster=cluster)
    return errors.order_by("-created_at", "-id")


# -- API and console lists (DESIGN §7, issue 11) -------------------------------------------------------


def process_definition_list() -> QuerySet[ProcessDefinition]:
    """Definitions without their BPMN XML (a list never needs the diagrams)."""
    return ProcessDefinition.objects.defer("bpmn_xml").order_by("bpmn_process_id", "-version", "key")


def process_definition_detail() -> QuerySet[ProcessDefinition]:
    return ProcessDefinition.objects.all()


def process_instance_list() -> QuerySet[ProcessInstance]:
    """Instances newest first (pi_start_key_idx); keys of related rows are read from the row itself,
    so listing needs no join. ``tree_path`` is deferred: it can be 2000 characters and no list shows it."""
    return ProcessInstance.objects.defer("tree_path").order_by("-start_date", "-key")


def process_instance_detail() -> QuerySet[ProcessInstance]:
    """Instances with ``children_count`` (instances they called directly, pi_parent_idx)."""
    children = (
        ProcessInstance.objects.filter(parent_id=OuterRef("key"))
        .order_by()
        .values("parent_id")
        .annotate(count=Count("key"))
        .values("count")
    )
    return ProcessInstance.objects.annotate(
        children_count=Coalesce(Subquery(children, output_field=IntegerField()), 0)
    )


def instance_element_instances(*, instance: ProcessInstance) -> QuerySet[ElementInstance]:
    """History of one instance in time order (ei_instance_start_idx)."""
    return ElementInstance.objects.filter(process_instance_id=instance.key).order_by("start_date", "key")


def instance_jobs(*, instance: ProcessInstance) -> QuerySet[Job]:
    return Job.objects.filter(process_instance_id=instance.key).order_by("-created_at", "-key")


def instance_incidents(*, instance: ProcessInstance) -> QuerySet[Incident]:
    return Incident.objects.filter(process_instance_id=instance.key).order_by("-created_at", "-key")


def element_instance_detail() -> QuerySet[ElementInstance]:
    return ElementInstance.objects.all()


def job_detail() -> QuerySet[Job]:
    return Job.objects.all()


def incident_list() -> QuerySet[Incident]:
    """Incidents newest first (incident_state_created_idx once filtered by state)."""
    return Incident.objects.defer("tree_path").order_by("-created_at", "-key")


def instance_counts_by_state() -> dict[str, int]:
    """Instances per state, over every instance.

    On PostgreSQL from the counters its triggers keep (InstanceCount: a few rows per partition and
    process instead of every instance); elsewhere (the SQLite demo) counted live.
    """
    if connection.vendor == "postgresql":
        counters = (
            InstanceCount.objects.order_by()
            .values("state")
            .annotate(count=Cast(Sum("count"), BigIntegerField()))  # SUM(bigint) is numeric
            .filter(count__gt=0)
        )
        return {row["state"]: row["count"] for row in counters}
    rows = ProcessInstance.objects.order_by().values("state").annotate(count=Count("key"))
    return {row["state"]: row["count"] for row in rows}


class ProcessInstanceCount(TypedDict):
    bpmn_process_id: str
    version: int
    count: int


def active_instance_counts_by_process() -> list[ProcessInstanceCount]:
    """Active instances per process id and version, largest first (counters as in
    instance_counts_by_state on PostgreSQL, counted live elsewhere)."""
    if connection.vendor == "postgresql":
        return list(
            InstanceCount.objects.filter(state__in=INSTANCE_ACTIVE_STATES)
            .order_by()
            .values("bpmn_process_id", "version")
            .annotate(count=Cast(Sum("count"), BigIntegerField()))
            .filter(count__gt=0)
            .order_by("-count", "bpmn_process_id", "version")
        )
    return list(
        ProcessInstance.objects.filter(state__in=INSTANCE_ACTIVE_STATES)
        .order_by()
        .values("bpmn_process_id", "version")
        .annotate(count=Count("key"))
        .order_by("-count", "bpmn_process_id", "version")
    )


class ProcessIncidentCount(TypedDict):
    bpmn_process_id: str
    count: int


def active_incident_counts_by_process() -> list[ProcessIncidentCount]:
    """Active incidents per process id (incident_state_process_idx)."""
    return list(
        Incident.objects.filter(state__in=INCIDENT_ACTIVE_STATES)
        .order_by()
        .values("bpmn_process_id")
        .annotate(count=Count("key"))
        .order_by("-count", "bpmn_process_id")
    )


# -- Server timelines (issue 9: a server's timeline is a query over process data, so it lives here and
# servers/ never imports processes) ---------------------------------------------------------------------


def server_instances(*, server_id: str) -> QuerySet[ProcessInstance]:
    """Every process and sub-process instance that touched the server, newest first (pi_server_start_idx).

    Called instances inherit their parent's server (DESIGN §5), so nested instances are included.
    """
    return (
        ProcessInstance.objects.defer("tree_path").filter(server_id=server_id).order_by("-start_date", "-key")
    )


def server_instance_steps(*, instance_keys: list[int]) -> QuerySet[ElementInstance]:
    """The steps of some instances, per instance in time order (ei_instance_start_idx)."""
    return ElementInstance.objects.filter(process_instance_id__in=instance_keys).order_by(
        "process_instance_id", "start_date", "key"
    )


# A server's active instances considered for "what is stuck now" (a server runs a handful at a time).
SERVER_ACTIVE_INSTANCES_LIMIT = 10_000


def server_active_instance_keys(*, server_id: str) -> list[int]:
    """Keys of the server's active instances (pi_server_start_idx). Open incidents and jobs only exist
    on active instances; asking by these keys (incident_instance_idx, job_instance_idx) instead of
    a semi-join over all the server's instances took the two "stuck now" queries of the busiest
    server from 36-48 ms to 6-27 ms, and the slowest of 50 ordinary servers from 318 ms to 38 ms
    (200,000 generated instances, bench/api.py's data, a busy machine)."""
    return list(
        ProcessInstance.objects.filter(server_id=server_id, state__in=INSTANCE_ACTIVE_STATES).values_list(
            "key", flat=True
        )[:SERVER_ACTIVE_INSTANCES_LIMIT]
    )


def server_open_incidents(*, server_id: str, active_keys: list[int] | None = None) -> QuerySet[Incident]:
    """What is stuck now: active incidents of the server's instances (``active_keys`` from
    server_active_instance_keys when the caller has them, else one query for them)."""
    if active_keys is None:
        active_keys = server_active_instance_keys(server_id=server_id)
    return (
        Incident.objects.defer("tree_path")
        .filter(
            state__in=INCIDENT_ACTIVE_STATES,
            process_instance_id__in=active_keys,
        )
        .order_by("-created_at", "-key")
    )


def server_open_jobs(*, server_id: str, active_keys: list[int] | None = None) -> QuerySet[Job]:
    """Open jobs (activatable, activated, failed) of the server's active instances (see above)."""
    if active_keys is None:
        active_keys = server_active_instance_keys(server_id=server_id)
    return Job.objects.filter(
        state__in=JOB_ACTIVE_STATES,
        process_instance_id__in=active_keys,
    ).order_by("-created_at", "-key")
