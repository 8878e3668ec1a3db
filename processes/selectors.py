"""Reads of the processes app (CONVENTIONS §4)."""

from __future__ import annotations

from django.db.models import QuerySet

from processes.choices import CLUSTER_PLACEMENT_STATES
from processes.models import Cluster


def cluster_list() -> QuerySet[Cluster]:
    return Cluster.objects.order_by("id")


def cluster_placement_candidates() -> QuerySet[Cluster]:
    """Clusters that may receive new instances (health is checked by the routing layer)."""
    return Cluster.objects.filter(state__in=CLUSTER_PLACEMENT_STATES, weight__gt=0).order_by("id")
