"""The server inventory: one row per physical machine, keyed by its serial number.

Process instances link to a server through a process variable (settings.FLEETFLOW_SERVER_VARIABLE,
DESIGN §5); the importer creates a stub row (state unknown) for a serial number it has not seen.
"""

from __future__ import annotations

from django.db import models

from servers.choices import ServerState

SERIAL_NUMBER_MAX_LENGTH = 128


class Server(models.Model):
    """A physical server. The serial number is the primary key because it is what workflows carry
    (the `serverSn` variable), so the importer links instances without a lookup per record."""

    serial_number = models.CharField(primary_key=True, max_length=SERIAL_NUMBER_MAX_LENGTH)
    hostname = models.CharField(max_length=255, blank=True, default="")
    hardware_model = models.CharField("model", max_length=255, blank=True, default="")
    rack = models.CharField(max_length=64, blank=True, default="")
    data_centre = models.CharField(max_length=64, blank=True, default="")
    state = models.CharField(max_length=16, choices=ServerState.choices, default=ServerState.UNKNOWN)
    # True while the row only exists because a workflow named the serial number.
    is_stub = models.BooleanField(default=False)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["serial_number"]
        indexes = [
            # Inventory pages filter by location and by state.
            models.Index(fields=["data_centre", "rack"], name="server_location_idx"),
            models.Index(fields=["state"], name="server_state_idx"),
            models.Index(fields=["hostname"], name="server_hostname_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=[choice.value for choice in ServerState]),
                name="server_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.hostname or self.serial_number
