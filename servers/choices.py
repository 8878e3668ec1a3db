"""Choice classes for the servers app, with named groups of states (CONVENTIONS §6)."""

from django.db import models


class ServerState(models.TextChoices):
    """Where a server is in its life in the fleet."""

    UNKNOWN = "unknown", "Unknown"  # a stub: first seen in a process variable, not yet in the inventory
    IN_SERVICE = "in_service", "In service"
    IN_REPAIR = "in_repair", "In repair"
    RETIRED = "retired", "Retired"


SERVER_OPERATIONAL_STATES = frozenset({ServerState.IN_SERVICE})
SERVER_OUT_OF_SERVICE_STATES = frozenset({ServerState.IN_REPAIR, ServerState.RETIRED})
