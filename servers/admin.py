"""Django admin for the server inventory; adds and changes go through servers.services."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from servers import services
from servers.models import Server


# ModelAdmin is generic only in the stubs (subscripting it at run time needs django_stubs_ext).
@admin.register(Server)
class ServerAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("serial_number", "hostname", "hardware_model", "data_centre", "rack", "state", "is_stub")
    list_filter = ("state", "is_stub", "data_centre")
    search_fields = ("serial_number", "hostname", "rack")
    readonly_fields = ("is_stub", "first_seen_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Server | None = None) -> tuple[str, ...]:
        # The serial number is the key process variables link by: changing it would make a new row.
        return (*self.readonly_fields, "serial_number") if obj is not None else self.readonly_fields

    def save_model(
        self,
        request: HttpRequest,
        obj: Server,
        form: forms.ModelForm,  # type: ignore[type-arg]
        change: bool,
    ) -> None:
        saved = services.server_upsert(
            serial_number=obj.serial_number,
            hostname=obj.hostname,
            hardware_model=obj.hardware_model,
            rack=obj.rack,
            data_centre=obj.data_centre,
            state=obj.state,
        )
        # The admin goes on with `obj` (log entry, redirect): make it the row the service wrote.
        for field in Server._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state = saved._state
