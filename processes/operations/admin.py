"""Read-only admin views of operations, batches and the audit trail (changes go through services)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from processes.operations.models import AuditEntry, BatchOperation, Operation


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Operation)
class OperationAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "action",
        "state",
        "target_key",
        "cluster_id",
        "actor_name",
        "attempts",
        "created_at",
    )
    list_filter = ("state", "action", "cluster_id")
    search_fields = ("=target_key", "=process_instance_key", "actor_name")
    show_full_result_count = False


@admin.register(BatchOperation)
class BatchOperationAdmin(ReadOnlyAdmin):
    list_display = ("id", "action", "state", "dry_run_count", "total", "actor_name", "created_at")
    list_filter = ("state", "action")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor_name", "event", "operation_id", "batch_id", "message")
    list_filter = ("event",)
    show_full_result_count = False
