"""The engine's truth, computed straight from its log records, independently of the projection.

Deliberately naive: it walks EVENT records in log order and keeps the last word per key, with
the state tables written out from reference §3.5/§3.8 rather than shared with the importer.
Keys are turned into global keys with the DESIGN §2 formula, written out here on purpose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from routing.keys import CLUSTER_SHIFT

INSTANCE_END_STATES = {"ELEMENT_COMPLETED": "completed", "ELEMENT_TERMINATED": "terminated"}
JOB_STATE_BY_INTENT = {
    "CREATED": "created",
    "TIMED_OUT": "created",
    "RECURRED_AFTER_BACKOFF": "created",
    "YIELDED": "created",
    "COMPLETED": "completed",
    "CANCELED": "canceled",
    "ERROR_THROWN": "error_thrown",
}


def g(cluster_id: int, key: int | None) -> int | None:
    if key is None or key <= 0:
        return None
    return (cluster_id << CLUSTER_SHIFT) | key


@dataclass
class Truth:
    instances: dict[int, dict[str, Any]] = field(default_factory=dict)
    elements: dict[int, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[int, dict[str, Any]] = field(default_factory=dict)
    incidents: dict[int, dict[str, Any]] = field(default_factory=dict)
    variables: dict[int, dict[str, Any]] = field(default_factory=dict)
    definitions: dict[int, dict[str, Any]] = field(default_factory=dict)


def engine_truth(records_by_cluster: dict[int, list[dict[str, Any]]]) -> Truth:
    truth = Truth()
    for cluster_id, records in records_by_cluster.items():
        ordered = sorted(records, key=lambda r: (r["partitionId"], r["position"]))
        for record in ordered:
            if record["recordType"] != "EVENT":
                continue
            _apply(truth, cluster_id, record)
    _derive_trees(truth)
    return truth


def _apply(truth: Truth, cluster_id: int, record: dict[str, Any]) -> None:
    value = record["value"]
    value_type = record["valueType"]
    intent = record["intent"]
    key = g(cluster_id, record["key"])
    if value_type == "PROCESS":
        truth.definitions[key] = {"bpmn_process_id": value["bpmnProcessId"], "version": value["version"]}
    elif value_type == "PROCESS_INSTANCE":
        element_type = value["bpmnElementType"]
        if element_type == "SEQUENCE_FLOW":
            return
        target = truth.instances if element_type == "PROCESS" else truth.elements
        row = target.setdefault(
            key,
            {
                "state": "active",
                "bpmn_process_id": value["bpmnProcessId"],
                "element_id": value["elementId"],
                "element_type": element_type,
                "process_instance": g(cluster_id, value["processInstanceKey"]),
                "parent": g(cluster_id, value.get("parentProcessInstanceKey", -1)),
                "cluster": cluster_id,
            },
        )
        if intent in INSTANCE_END_STATES:
            row["state"] = INSTANCE_END_STATES[intent]
    elif value_type == "JOB":
        row = truth.jobs.setdefault(key, {"worker": "", "cluster": cluster_id})
        row.update(
            job_type=value["type"],
            retries=value["retries"],
            process_instance=g(cluster_id, value["processInstanceKey"]),
            element_instance=g(cluster_id, value["elementInstanceKey"]),
        )
        if value.get("worker"):
            row["worker"] = value["worker"]
        if intent == "FAILED":
            row["state"] = "failed" if value["retries"] <= 0 else "created"
        elif intent in JOB_STATE_BY_INTENT:
            row["state"] = JOB_STATE_BY_INTENT[intent]
    elif value_type == "JOB_BATCH" and intent == "ACTIVATED":
        for job_key, job in zip(value["jobKeys"], value["jobs"], strict=True):
            row = truth.jobs.setdefault(g(cluster_id, job_key), {"cluster": cluster_id})
            row.update(state="activated", worker=job["worker"], retries=job["retries"])
    elif value_type == "INCIDENT":
        row = truth.incidents.setdefault(
            key,
            {
                "error_type": value["errorType"],
                "process_instance": g(cluster_id, value["processInstanceKey"]),
                "job": g(cluster_id, value.get("jobKey", -1)),
            },
        )
        row["state"] = "resolved" if intent == "RESOLVED" else "active"
        if (
            intent == "RESOLVED"
            and row["job"] in truth.jobs
            and truth.jobs[row["job"]].get("state") == "failed"
        ):
            truth.jobs[row["job"]]["state"] = "created"
    elif value_type == "VARIABLE":
        truth.variables[key] = {
            "name": value["name"],
            "scope": g(cluster_id, value["scopeKey"]),
            "process_instance": g(cluster_id, value["processInstanceKey"]),
            "value": json.loads(value["value"]),
        }


def _derive_trees(truth: Truth) -> None:
    """Root, depth and subtree incident flags by walking parents (no materialized paths)."""

    def ancestors(key: int) -> list[int]:
        chain = [key]
        while truth.instances[chain[-1]]["parent"] is not None:
            chain.append(truth.instances[chain[-1]]["parent"])
        return chain

    for key, row in truth.instances.items():
        chain = ancestors(key)
        row["root"] = chain[-1]
        row["depth"] = len(chain) - 1
        row["subtree_incident"] = False
        row["incident"] = False
    for incident in truth.incidents.values():
        if incident["state"] != "active":
            continue
        truth.instances[incident["process_instance"]]["incident"] = True
        for ancestor in ancestors(incident["process_instance"]):
            truth.instances[ancestor]["subtree_incident"] = True
