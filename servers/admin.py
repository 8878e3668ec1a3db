"""Django admin for the server inventory; writes go through servers.services."""

from __future__ import annotations

from django.contrib import admin

from servers.models import Server


@admin.register(Server)
# ModelAdmin is generic only in the stubs (subscripting it at run time needs django_stubs_ext).
class ServerAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("serial_number", "hostname", "hardware_model", "data_centre", "rack", "state", "is_stub")
    list_filter = ("state", "is_stub", "data_centre")
    search_fields = ("serial_number", "hostname", "rack")
    readonly_fields = ("first_seen_at", "updated_at")
