"""Writes of the servers app (CONVENTIONS §2)."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from servers.choices import ServerState
from servers.models import SERIAL_NUMBER_MAX_LENGTH, Server


def normalize_serial_number(raw: object) -> str | None:
    """The serial number a variable value names, or None when it names none.

    Workflows carry it as a JSON string; a number is accepted as its decimal text. Anything else
    (null, objects, lists, empty or overlong text) links no server.
    """
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        raw = str(raw)
    if not isinstance(raw, str):
        return None
    serial = raw.strip()
    if not serial or len(serial) > SERIAL_NUMBER_MAX_LENGTH:
        return None
    return serial


def server_ensure_stubs(*, serial_numbers: Iterable[str]) -> None:
    """Create a stub row (state unknown) for every serial number without a row; keep existing rows."""
    stubs = [
        Server(serial_number=serial, state=ServerState.UNKNOWN, is_stub=True)
        for serial in sorted(set(serial_numbers))
    ]
    if stubs:
        Server.objects.bulk_create(stubs, ignore_conflicts=True)


@transaction.atomic
def server_upsert(
    *,
    serial_number: str,
    hostname: str = "",
    hardware_model: str = "",
    rack: str = "",
    data_centre: str = "",
    state: str = ServerState.IN_SERVICE,
) -> Server:
    """Create or update an inventory row; a stub becomes a full row."""
    serial = normalize_serial_number(serial_number)
    if serial is None:
        raise ValidationError(
            f"Serial number {serial_number!r} is empty or longer than {SERIAL_NUMBER_MAX_LENGTH}"
        )
    if state not in ServerState.values:
        raise ValidationError(f"Unknown server state {state!r}; expected one of {ServerState.values}")
    server, _ = Server.objects.select_for_update().get_or_create(serial_number=serial)
    server.hostname = hostname
    server.hardware_model = hardware_model
    server.rack = rack
    server.data_centre = data_centre
    server.state = state
    server.is_stub = False
    server.full_clean()
    server.save()
    return server
