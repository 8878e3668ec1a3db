"""Reads of the processes app (CONVENTIONS §4)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import Count, Max, QuerySet, Sum

from processes.choices import CLUSTER_PLACEMENT_STATES, INCIDENT_ACTIVE_STATES
from processes.models import (
    Cluster,
    ImportPosition,
    Incident,
    ProcessInstance,
    RecordImportError,
    Variable,
    VariableValue,
)


def cluster_list() -> QuerySet[Cluster]:
    return Cluster.objects.order_by("id")


def cluster_placement_candidates() -> QuerySet[Cluster]:
    """Clusters that may receive new instances (health is checked by the routing layer)."""
    return Cluster.objects.filter(state__in=CLUSTER_PLACEMENT_STATES, weight__gt=0).order_by("id")


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


def root_instances() -> QuerySet[ProcessInstance]:
    """Top-level instances, newest first (pi_roots_idx)."""
    return ProcessInstance.objects.filter(parent__isnull=True).order_by("-start_date", "-key")


def instances_with_incidents() -> QuerySet[ProcessInstance]:
    """Instances whose subtree holds an active incident (pi_subtree_incident_idx)."""
    return ProcessInstance.objects.filter(subtree_incident=True).order_by("-start_date", "-key")


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


def incidents_by_error() -> QuerySet[Incident]:
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


def import_errors(*, cluster: Cluster | None = None) -> QuerySet[RecordImportError]:
    """Records the importer could not read, newest first (import_error_cluster_idx)."""
    errors = RecordImportError.objects.all()
    if cluster is not None:
        errors = errors.filter(cluster=cluster)
    return errors.order_by("-created_at", "-id")
