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
