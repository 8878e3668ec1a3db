"""Django admin for clusters; every cluster write goes through processes.services so its rules apply."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework.authtoken.admin import TokenAdmin as DrfTokenAdmin
from rest_framework.authtoken.models import TokenProxy

from processes import services
from processes.models import (
    ApiToken,
    Cluster,
    ImportPosition,
    Incident,
    Job,
    ProcessInstance,
    RecordImportError,
)


class ClusterAdminForm(forms.ModelForm):
    """Runs the services' own checks while the form validates, so a refusal is shown on its field
    with the operator's input kept (the save itself goes through the services again)."""

    class Meta:
        model = Cluster
        fields = (
            "id",
            "name",
            "gateway_address",
            "weight",
            "record_source",
            "record_source_config",
            "gateway_security",
        )

    def clean_gateway_address(self) -> str:
        return services.validate_gateway_address(self.cleaned_data["gateway_address"])


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    form = ClusterAdminForm
    list_display = ("id", "name", "gateway_address", "weight", "state", "record_source", "updated_at")
    list_filter = ("state", "record_source")
    search_fields = ("name", "gateway_address")
    readonly_fields = ("state", "created_at", "updated_at")
    actions = ("drain", "activate", "disable")

    def get_readonly_fields(self, request: HttpRequest, obj: Cluster | None = None) -> tuple[str, ...]:
        # The id is encoded into global keys: it is fixed once the cluster exists.
        return (*self.readonly_fields, "id") if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Cluster, form: forms.ModelForm, change: bool) -> None:
        data: dict[str, Any] = form.cleaned_data
        if change:
            saved = services.cluster_update(
                cluster=obj,
                name=data["name"],
                gateway_address=data["gateway_address"],
                weight=data["weight"],
                record_source=data["record_source"],
                record_source_config=data["record_source_config"],
                gateway_security=data["gateway_security"],
            )
        else:
            saved = services.cluster_create(
                cluster_id=data["id"],
                name=data["name"],
                gateway_address=data["gateway_address"],
                weight=data["weight"],
                record_source=data["record_source"],
                record_source_config=data["record_source_config"],
                gateway_security=data["gateway_security"],
            )
        # The admin goes on with `obj` (log entry, redirect): make it the row the service wrote.
        for field in Cluster._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state = saved._state

    def has_delete_permission(self, request: HttpRequest, obj: Cluster | None = None) -> bool:
        # No service deletes a cluster: its id lives on in global keys (reusing it would make them
        # ambiguous) and deleting would cascade over every imported row of it in one request.
        # Disable it instead (the "Disable" action).
        return False

    def _apply(self, request: HttpRequest, queryset: QuerySet[Cluster], change: Any) -> None:
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


class ReadOnlyAdmin(admin.ModelAdmin):
    """Query models are written only by the importer; the admin shows them and never edits them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ProcessInstance)
class ProcessInstanceAdmin(ReadOnlyAdmin):
    list_display = (
        "key",
        "bpmn_process_id",
        "version",
        "state",
        "cluster",
        "depth",
        "server",
        "subtree_incident",
        "start_date",
    )
    list_filter = ("state", "subtree_incident", "cluster")
    search_fields = ("=key", "bpmn_process_id", "=server__serial_number")
    list_select_related = ("cluster", "server")
    show_full_result_count = False  # counting a large instance table on every page costs more than the page


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = ("key", "error_type", "bpmn_process_id", "element_id", "state", "created_at")
    list_filter = ("state", "error_type")
    search_fields = ("=key", "=process_instance__key", "error_message")


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ("key", "job_type", "element_id", "state", "retries", "worker", "updated_at")
    list_filter = ("state", "job_type")
    search_fields = ("=key", "=process_instance__key")
    show_full_result_count = False


@admin.register(ImportPosition)
class ImportPositionAdmin(ReadOnlyAdmin):
    list_display = (
        "cluster",
        "partition_id",
        "stream",
        "source",
        "position",
        "last_record_timestamp",
        "imported_count",
        "skipped_count",
        "error_count",
    )
    list_filter = ("cluster", "source")


@admin.register(RecordImportError)
class RecordImportErrorAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "cluster", "partition_id", "position", "message")
    list_filter = ("cluster",)


class TokenAdmin(DrfTokenAdmin):
    """DRF's token admin (list, revoke) over ApiToken: its list showed every key in full, to anyone
    who sees the screen; here a key's first characters tell tokens apart, and no page names one."""

    list_display = ("key_hint", "user", "created")

    @admin.display(description="key")
    def key_hint(self, token: ApiToken) -> str:
        return f"{token.key[:4]}…"


admin.site.unregister(TokenProxy)
admin.site.register(ApiToken, TokenAdmin)
