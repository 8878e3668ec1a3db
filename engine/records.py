"""Record builders: the exact JSON shape of Zeebe records (reference §3.3-3.4).

Every record the engine writes goes through `make_record`; value builders keep field names and
defaults identical to Zeebe 8.5's `Record.toJson()` so that the importer, the ES-exporter emulation
and tests can treat our log like a real broker's.
"""

from __future__ import annotations

import base64
from typing import Any

BROKER_VERSION = "8.5.0"
DEFAULT_TENANT = "<default>"
PARTITION_BITS_SHIFT = 51
KEY_MASK = (1 << PARTITION_BITS_SHIFT) - 1

# recordType
EVENT = "EVENT"
COMMAND = "COMMAND"
COMMAND_REJECTION = "COMMAND_REJECTION"

# rejectionType (reference §3.6)
NULL_VAL = "NULL_VAL"
INVALID_ARGUMENT = "INVALID_ARGUMENT"
NOT_FOUND = "NOT_FOUND"
ALREADY_EXISTS = "ALREADY_EXISTS"
INVALID_STATE = "INVALID_STATE"
PROCESSING_ERROR = "PROCESSING_ERROR"
EXCEEDED_BATCH_RECORD_SIZE = "EXCEEDED_BATCH_RECORD_SIZE"


def encode_key(partition_id: int, local_key: int) -> int:
    """Zeebe key layout (reference §2.1): partition id in bits 51..63."""
    return (partition_id << PARTITION_BITS_SHIFT) + local_key


def decode_partition(key: int) -> int:
    return key >> PARTITION_BITS_SHIFT


def decode_local_key(key: int) -> int:
    return key & KEY_MASK


def make_record(
    *,
    partition_id: int,
    key: int,
    value_type: str,
    intent: str,
    value: dict[str, Any],
    timestamp: int,
    record_type: str = EVENT,
    source_record_position: int = -1,
    rejection_type: str = NULL_VAL,
    rejection_reason: str = "",
) -> dict[str, Any]:
    """A record in the §3.3 shape; `position` is filled in when the record is appended."""
    return {
        "partitionId": partition_id,
        "position": -1,
        "sourceRecordPosition": source_record_position,
        "key": key,
        "timestamp": timestamp,
        "recordType": record_type,
        "valueType": value_type,
        "intent": intent,
        "rejectionType": rejection_type,
        "rejectionReason": rejection_reason,
        "brokerVersion": BROKER_VERSION,
        "recordVersion": 1,
        "authorizations": {"authorized_tenants": [DEFAULT_TENANT]},
        "value": value,
    }


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def process_instance_value(
    *,
    bpmn_element_type: str,
    element_id: str,
    bpmn_process_id: str,
    version: int,
    process_definition_key: int,
    process_instance_key: int,
    flow_scope_key: int,
    bpmn_event_type: str,
    parent_process_instance_key: int = -1,
    parent_element_instance_key: int = -1,
) -> dict[str, Any]:
    """PROCESS_INSTANCE value (reference §3.4), field order as in Zeebe 8.5 toJson."""
    return {
        "bpmnElementType": bpmn_element_type,
        "elementId": element_id,
        "bpmnProcessId": bpmn_process_id,
        "version": version,
        "processDefinitionKey": process_definition_key,
        "processInstanceKey": process_instance_key,
        "flowScopeKey": flow_scope_key,
        "bpmnEventType": bpmn_event_type,
        "parentProcessInstanceKey": parent_process_instance_key,
        "parentElementInstanceKey": parent_element_instance_key,
        "tenantId": DEFAULT_TENANT,
    }


def job_value(
    *,
    job_type: str,
    retries: int,
    custom_headers: dict[str, str],
    element_id: str,
    element_instance_key: int,
    bpmn_process_id: str,
    process_definition_version: int,
    process_definition_key: int,
    process_instance_key: int,
) -> dict[str, Any]:
    """JOB value as written on CREATED (reference §3.4: deadline -1, worker "", variables {})."""
    return {
        "type": job_type,
        "worker": "",
        "retries": retries,
        "retryBackoff": 0,
        "recurringTime": -1,
        "deadline": -1,
        "timeout": -1,
        "errorMessage": "",
        "errorCode": "",
        "customHeaders": custom_headers,
        "variables": {},
        "elementId": element_id,
        "elementInstanceKey": element_instance_key,
        "bpmnProcessId": bpmn_process_id,
        "processDefinitionVersion": process_definition_version,
        "processDefinitionKey": process_definition_key,
        "processInstanceKey": process_instance_key,
        "tenantId": DEFAULT_TENANT,
    }


def incident_value(
    *,
    error_type: str,
    error_message: str,
    bpmn_process_id: str,
    process_definition_key: int,
    process_instance_key: int,
    element_id: str,
    element_instance_key: int,
    job_key: int = -1,
    variable_scope_key: int | None = None,
) -> dict[str, Any]:
    return {
        "errorType": error_type,
        "errorMessage": error_message,
        "bpmnProcessId": bpmn_process_id,
        "processDefinitionKey": process_definition_key,
        "processInstanceKey": process_instance_key,
        "elementId": element_id,
        "elementInstanceKey": element_instance_key,
        "jobKey": job_key,
        "variableScopeKey": element_instance_key if variable_scope_key is None else variable_scope_key,
        "tenantId": DEFAULT_TENANT,
    }


def variable_value(
    *,
    name: str,
    value_json: str,
    scope_key: int,
    process_instance_key: int,
    process_definition_key: int,
    bpmn_process_id: str,
) -> dict[str, Any]:
    """VARIABLE value: `value` is the JSON *text* of the variable (reference §3.3)."""
    return {
        "name": name,
        "value": value_json,
        "scopeKey": scope_key,
        "processInstanceKey": process_instance_key,
        "processDefinitionKey": process_definition_key,
        "bpmnProcessId": bpmn_process_id,
        "tenantId": DEFAULT_TENANT,
    }


def timer_value(
    *,
    element_instance_key: int,
    process_instance_key: int,
    due_date: int,
    target_element_id: str,
    repetitions: int,
    process_definition_key: int,
) -> dict[str, Any]:
    """TIMER value (reference §3.4): -1 instance keys for a timer start event; repetitions 1 for
    a date or duration, the remaining count of a cycle, -1 for a cycle without end."""
    return {
        "elementInstanceKey": element_instance_key,
        "processInstanceKey": process_instance_key,
        "dueDate": due_date,
        "targetElementId": target_element_id,
        "repetitions": repetitions,
        "processDefinitionKey": process_definition_key,
        "tenantId": DEFAULT_TENANT,
    }


def variable_document_value(*, scope_key: int, local: bool, variables: dict[str, Any]) -> dict[str, Any]:
    return {
        "scopeKey": scope_key,
        "updateSemantics": "LOCAL" if local else "PROPAGATE",
        "variables": variables,
        "tenantId": DEFAULT_TENANT,
    }


def process_instance_creation_value(
    *,
    bpmn_process_id: str,
    process_definition_key: int,
    version: int,
    process_instance_key: int,
    variables: dict[str, Any],
    start_instructions: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "bpmnProcessId": bpmn_process_id,
        "processDefinitionKey": process_definition_key,
        "version": version,
        "variables": variables,
        "fetchVariables": [],
        "startInstructions": start_instructions or [],
        "processInstanceKey": process_instance_key,
        "tenantId": DEFAULT_TENANT,
    }


def process_value(
    *,
    bpmn_process_id: str,
    version: int,
    process_definition_key: int,
    resource_name: str,
    resource: bytes,
    checksum: bytes,
    duplicate: bool,
    deployment_key: int,
) -> dict[str, Any]:
    return {
        "bpmnProcessId": bpmn_process_id,
        "version": version,
        "processDefinitionKey": process_definition_key,
        "resourceName": resource_name,
        "checksum": b64(checksum),
        "resource": b64(resource),
        "duplicate": duplicate,
        "tenantId": DEFAULT_TENANT,
        "deploymentKey": deployment_key,
        "versionTag": "",
    }


def process_metadata(process: dict[str, Any], duplicate: bool) -> dict[str, Any]:
    """DEPLOYMENT.processesMetadata entry from a PROCESS value."""
    return {
        "bpmnProcessId": process["bpmnProcessId"],
        "version": process["version"],
        "processDefinitionKey": process["processDefinitionKey"],
        "resourceName": process["resourceName"],
        "checksum": process["checksum"],
        "duplicate": duplicate,
        "tenantId": DEFAULT_TENANT,
        "deploymentKey": process["deploymentKey"],
        "versionTag": "",
    }


def deployment_value(
    *, resources: list[dict[str, str]], processes_metadata: list[dict[str, Any]], deployment_key: int
) -> dict[str, Any]:
    return {
        "resources": resources,
        "processesMetadata": processes_metadata,
        "decisionsMetadata": [],
        "decisionRequirementsMetadata": [],
        "formMetadata": [],
        "tenantId": DEFAULT_TENANT,
        "deploymentKey": deployment_key,
    }
