"""Derived fields the records do not carry: server links and incident trees (DESIGN §5).

link_servers            `server` on instances from the configured variable (default serverSn)
                        on the process scope; children inherit their root's server; a serial
                        seen for the first time gets a stub Server row
resolve_incident_trees  root key and tree path of incidents (also of incidents imported before
                        their instance: streams of different value types, reference §3.9)
write_derived           after the rows are written: a server set on an existing instance
                        reaches the descendants that inherit it, and the `incident` /
                        `subtree_incident` flags of every instance of the touched trees
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Exists, OuterRef

from processes.choices import IncidentState
from processes.importer.bulk import READ_CHUNK, chunks
from processes.importer.fold import INCIDENT_FIELDS, BatchFold, Row
from processes.models import Incident, ProcessInstance, Variable
from servers.services import normalize_serial_number, server_ensure_stubs

KNOWN_SERVERS_MAX = 100_000


def link_servers(fold: BatchFold, *, server_variable: str, known_servers: set[str]) -> list[Row]:
    """Set `server` on instances; returns pre-existing instances whose own server changed.

    `known_servers` holds serial numbers known to have a Server row (rows are never deleted by
    the importer, so a hit saves the stub INSERT); it is updated once the batch commits.
    """
    server_values = dict(fold.server_values)
    new_instances = fold.new_instances
    # A root's variables are written before the PROCESS element is activated (reference §3.8),
    # possibly in an earlier batch: look them up for the batch's new instances.
    missing = [key for key in new_instances if key not in server_values]
    for chunk in chunks(missing, READ_CHUNK):
        for scope_key, value in Variable.objects.filter(
            name=server_variable, scope_key__in=chunk, truncated=False
        ).values_list("scope_key", "value"):
            server_values.setdefault(scope_key, value)
    new_set = set(new_instances)
    serials: set[str] = set()
    changed_existing: list[Row] = []
    for instance_key, raw in server_values.items():
        row = fold.instances.get(instance_key)
        serial = normalize_serial_number(raw)
        if row is None or serial is None:
            continue  # an instance not imported yet gets it from the Variable table on arrival
        serials.add(serial)
        if row["server_id"] != serial or not row["server_from_variable"]:
            row["server_id"] = serial
            row["server_from_variable"] = True
            fold.dirty_instances.add(instance_key)
            if instance_key not in new_set:
                changed_existing.append(row)
    # Instances without their own server variable inherit their parent's (parents come first).
    for instance_key in new_instances:
        row = fold.instances[instance_key]
        if row["server_from_variable"] or row["parent_id"] is None:
            continue
        parent = fold.instances.get(row["parent_id"])
        if parent is not None and parent["server_id"] is not None:
            row["server_id"] = parent["server_id"]
    serials -= known_servers
    if serials:
        server_ensure_stubs(serial_numbers=serials)
        if len(known_servers) > KNOWN_SERVERS_MAX:
            known_servers.clear()
        # Only after the commit do we know the rows exist.
        transaction.on_commit(lambda: known_servers.update(serials))
    return changed_existing


def resolve_incident_trees(fold: BatchFold, *, existing_incidents: set[int]) -> None:
    """Root key and tree path of the batch's incidents; `existing_incidents` (keys found in the
    table) gains the incidents loaded here, which are then updated rather than inserted."""
    for incident_key in fold.dirty_incidents:
        row = fold.incidents[incident_key]
        if row["tree_path"] == "" and row["process_instance_id"] is not None:
            instance = fold.instances.get(row["process_instance_id"])
            if instance is not None:
                row["root_key"] = instance["root_id"]
                row["tree_path"] = instance["tree_path"]
    # Incidents imported before their instance (streams of different value types): complete
    # them now that the instance is here.
    for chunk in chunks(fold.new_instances, READ_CHUNK):
        for row in Incident.objects.filter(tree_path="", process_instance_id__in=chunk).values(
            *INCIDENT_FIELDS
        ):
            row = fold.incidents.setdefault(row["key"], row)
            existing_incidents.add(row["key"])
            instance = fold.instances[row["process_instance_id"]]
            row["root_key"] = instance["root_id"]
            row["tree_path"] = instance["tree_path"]
            fold.dirty_incidents.add(row["key"])


def write_derived(fold: BatchFold, changed_servers: list[Row]) -> None:
    """SQL-kept derivations, once the batch's rows are written (see the module docstring)."""
    for row in changed_servers:
        # A server set on an existing instance reaches descendants that inherit it.
        ProcessInstance.objects.filter(
            tree_path__startswith=row["tree_path"], server_from_variable=False
        ).exclude(pk=row["key"]).update(server_id=row["server_id"])
    roots = sorted(
        {
            fold.incidents[key]["root_key"]
            for key in fold.dirty_incidents
            if fold.incidents[key]["root_key"] is not None
        }
    )
    for chunk in chunks(roots, READ_CHUNK):
        active = Incident.objects.filter(state=IncidentState.ACTIVE)
        ProcessInstance.objects.filter(root_id__in=chunk).update(
            incident=Exists(active.filter(process_instance_id=OuterRef("key"))),
            subtree_incident=Exists(
                active.filter(root_key=OuterRef("root_id"), tree_path__startswith=OuterRef("tree_path"))
            ),
        )
