"""Models of the processes app: clusters now; query models are added by the importer (DESIGN §5)."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from processes.choices import ClusterState, RecordSource

# Cluster ids live in bits 58..62 of a global key (DESIGN §2): 1..31, 0 is never a cluster.
CLUSTER_ID_MIN = 1
CLUSTER_ID_MAX = 31
CLUSTER_WEIGHT_MAX = 10_000


class Cluster(models.Model):
    """One Zeebe cluster (real, or the embedded engine) behind the routing layer.

    The primary key is the cluster id that the routing layer encodes into every global key, so it is
    chosen by the operator and never reused for another cluster while keys of the old one exist.
    """

    id = models.PositiveSmallIntegerField(
        primary_key=True,
        validators=[MinValueValidator(CLUSTER_ID_MIN), MaxValueValidator(CLUSTER_ID_MAX)],
        help_text="Cluster id encoded in global keys (1..31).",
    )
    name = models.CharField(max_length=100, unique=True)
    gateway_address = models.CharField(max_length=255, help_text="host:port of the Zeebe gateway (gRPC).")
    weight = models.PositiveIntegerField(
        default=1,
        validators=[MaxValueValidator(CLUSTER_WEIGHT_MAX)],
        help_text="Relative share of new instances among active clusters.",
    )
    state = models.CharField(max_length=16, choices=ClusterState.choices, default=ClusterState.ACTIVE)
    record_source = models.CharField(
        max_length=16, choices=RecordSource.choices, default=RecordSource.ENGINE_LOG
    )
    # Source settings: engine_log {"data_dir"}, redis {"url", "stream_prefix"}, elasticsearch {"url", "index_prefix"}.
    record_source_config = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(id__gte=CLUSTER_ID_MIN) & models.Q(id__lte=CLUSTER_ID_MAX),
                name="cluster_id_in_key_range",
            ),
            models.CheckConstraint(
                condition=models.Q(weight__lte=CLUSTER_WEIGHT_MAX), name="cluster_weight_bounded"
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=[choice.value for choice in ClusterState]),
                name="cluster_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.id})"
