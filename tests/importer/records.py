"""Hand-written records in the exact reference §3.3/§3.4 JSON shape (Zeebe 8.5 field names)."""

from __future__ import annotations

import json
from typing import Any

P1 = 1 << 51  # first key of partition 1 is P1 + 1 (reference §2.1)


def record(
    position: int,
    value_type: str,
    intent: str,
    key: int,
    value: dict[str, Any],
    *,
    partition_id: int = 1,
    record_type: str = "EVENT",
    timestamp: int | None = None,
) -> dict[str, Any]:
    return {
        "partitionId": partition_id,
        "position": position,
        "sourceRecordPosition": -1,
        "key": key,
        "timestamp": timestamp if timestamp is not None else 1_700_000_000_000 + position,
        "recordType": record_type,
        "valueType": value_type,
        "intent": intent,
        "rejectionType": "NULL_VAL",
        "rejectionReason": "",
        "brokerVersion": "8.5.0",
        "recordVersion": 1,
        "value": value,
    }


def process_element(
    position: int,
    intent: str,
    instance_key: int,
    *,
    process_id: str = "repair",
    parent_instance_key: int = -1,
    parent_element_key: int = -1,
) -> dict[str, Any]:
    return record(
        position,
        "PROCESS_INSTANCE",
        intent,
        instance_key,
        {
            "bpmnElementType": "PROCESS",
            "elementId": process_id,
            "bpmnProcessId": process_id,
            "version": 1,
            "processDefinitionKey": P1 + 1,
            "processInstanceKey": instance_key,
            "flowScopeKey": -1,
            "bpmnEventType": "UNSPECIFIED",
            "parentProcessInstanceKey": parent_instance_key,
            "parentElementInstanceKey": parent_element_key,
            "tenantId": "<default>",
        },
    )


def element(
    position: int,
    intent: str,
    key: int,
    instance_key: int,
    element_id: str,
    element_type: str = "SERVICE_TASK",
) -> dict[str, Any]:
    return record(
        position,
        "PROCESS_INSTANCE",
        intent,
        key,
        {
            "bpmnElementType": element_type,
            "elementId": element_id,
            "bpmnProcessId": "repair",
            "version": 1,
            "processDefinitionKey": P1 + 1,
            "processInstanceKey": instance_key,
            "flowScopeKey": instance_key,
            "bpmnEventType": "UNSPECIFIED",
            "parentProcessInstanceKey": -1,
            "parentElementInstanceKey": -1,
            "tenantId": "<default>",
        },
    )


def variable(
    position: int, intent: str, key: int, name: str, value: Any, scope_key: int, instance_key: int
) -> dict[str, Any]:
    return record(
        position,
        "VARIABLE",
        intent,
        key,
        {
            "name": name,
            "value": json.dumps(value),
            "scopeKey": scope_key,
            "processInstanceKey": instance_key,
            "processDefinitionKey": P1 + 1,
            "bpmnProcessId": "repair",
            "tenantId": "<default>",
        },
    )


def incident(position: int, intent: str, key: int, instance_key: int, element_key: int) -> dict[str, Any]:
    return record(
        position,
        "INCIDENT",
        intent,
        key,
        {
            "errorType": "IO_MAPPING_ERROR",
            "errorMessage": "failed to evaluate expression 'x': no variable found with name 'x'",
            "bpmnProcessId": "repair",
            "processDefinitionKey": P1 + 1,
            "processInstanceKey": instance_key,
            "elementId": "task",
            "elementInstanceKey": element_key,
            "jobKey": -1,
            "variableScopeKey": element_key,
            "tenantId": "<default>",
        },
    )
