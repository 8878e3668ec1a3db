"""Django admin for clusters; state changes go through the services so their rules apply."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from processes import services
from processes.models import Cluster


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "gateway_address", "weight", "state", "record_source", "updated_at")
    list_filter = ("state", "record_source")
    search_fields = ("name", "gateway_address")
    readonly_fields = ("state", "created_at", "updated_at")
    actions = ("drain", "activate", "disable")

    def get_readonly_fields(self, request: HttpRequest, obj: Cluster | None = None) -> tuple[str, ...]:
        # The id is encoded into global keys: it is fixed once the cluster exists.
        return (*self.readonly_fields, "id") if obj is not None else self.readonly_fields

    def _apply(self, request: HttpRequest, queryset: QuerySet[Cluster], change) -> None:  # type: ignore[no-untyped-def]
        for cluster in queryset:
            try:
                change(cluster=cluster)
            except ValidationError as error:
                self.message_user(request, f"{cluster}: {'; '.join(error.messages)}", messages.ERROR)
            else:
                self.message_user(request, f"{cluster}: now {cluster.state}", messages.SUCCESS)

    @admin.action(description="Drain (no new instances)")
    def drain(self, request: HttpRequest, queryset: QuerySet[Cluster]) -> None:
        self._apply(request, queryset, services.cluster_drain)

    @admin.action(description="Activate")
    def activate(self, request: HttpRequest, queryset: QuerySet[Cluster]) -> None:
        self._apply(request, queryset, services.cluster_activate)

    @admin.action(description="Disable (route nothing)")
    def disable(self, request: HttpRequest, queryset: QuerySet[Cluster]) -> None:
        self._apply(request, queryset, services.cluster_disable)
