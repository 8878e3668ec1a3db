"""Helpers of the importer tests: clusters fed by a source, full imports and table snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from processes.importer.runner import Importer
from processes.models import (
    Cluster,
    ElementInstance,
    Incident,
    Job,
    ProcessDefinition,
    ProcessInstance,
    Variable,
    VariableValue,
)
from processes.services import cluster_create
from servers.models import Server

QUERY_MODELS = (ProcessDefinition, ProcessInstance, ElementInstance, Job, Incident, Variable, VariableValue)


def log_cluster(cluster_id: int, data_dir: Path) -> Cluster:
    return cluster_create(
        cluster_id=cluster_id,
        name=f"cluster-{cluster_id}",
        gateway_address=f"127.0.0.1:{26500 + cluster_id}",
        record_source="engine_log",
        record_source_config={"data_dir": str(data_dir)},
    )


def import_all(cluster: Cluster, batch_size: int = 5000) -> int:
    importer = Importer(cluster=cluster, batch_size=batch_size)
    try:
        return importer.drain()
    finally:
        importer.close()


def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every query-model row (and the servers), ordered, without wall-clock columns."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for model in QUERY_MODELS:
        tables[model.__name__] = list(model.objects.order_by("pk").values())
    tables["Server"] = list(
        Server.objects.order_by("pk").values("serial_number", "state", "is_stub", "hostname")
    )
    return tables


def wipe_query_models() -> None:
    from processes.models import ImportPosition, RecordImportError

    for model in (*QUERY_MODELS, ImportPosition, RecordImportError, Server):
        model.objects.all().delete()


def snapshot_diff(got: dict[str, list[dict[str, Any]]], want: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Readable differences between two snapshots (for assertion messages)."""
    lines: list[str] = []
    for table in sorted(set(got) | set(want)):
        got_rows = {
            row.get("key", row.get("serial_number", row.get("variable_id"))): row
            for row in got.get(table, [])
        }
        want_rows = {
            row.get("key", row.get("serial_number", row.get("variable_id"))): row
            for row in want.get(table, [])
        }
        for key in sorted(set(got_rows) | set(want_rows), key=str):
            a, b = got_rows.get(key), want_rows.get(key)
            if a == b:
                continue
            if a is None or b is None:
                lines.append(f"{table} {key}: only in {'want' if a is None else 'got'}")
                continue
            fields = {
                name: (a.get(name), b.get(name)) for name in set(a) | set(b) if a.get(name) != b.get(name)
            }
            lines.append(f"{table} {key}: {fields}")
    return lines[:40]
