"""Value types and intents the importer knows (reference §3.5), and what each one does.

A record of a value type or an intent not listed here is counted as skipped (the broker is newer
than this code); a known one that the query models do not need (messages, timers, deployments...)
is counted as imported and produces no rows.
"""

from __future__ import annotations

# Every ValueType name of Zeebe 8.x records (older and newer brokers included).
KNOWN_VALUE_TYPES = frozenset(
    {
        "ADHOC_SUB_PROCESS_ACTIVITY_ACTIVATION",
        "AD_HOC_SUB_PROCESS_INSTRUCTION",
        "ASYNC_REQUEST",
        "AUTHORIZATION",
        "BATCH_OPERATION_CHUNK",
        "BATCH_OPERATION_CREATION",
        "BATCH_OPERATION_EXECUTION",
        "BATCH_OPERATION_INITIALIZATION",
        "BATCH_OPERATION_LIFECYCLE_MANAGEMENT",
        "BATCH_OPERATION_PARTITION_LIFECYCLE",
        "CHECKPOINT",
        "CLOCK",
        "COMMAND_DISTRIBUTION",
        "COMPENSATION_SUBSCRIPTION",
        "DECISION",
        "DECISION_EVALUATION",
        "DECISION_REQUIREMENTS",
        "DEPLOYMENT",
        "DEPLOYMENT_DISTRIBUTION",
        "ERROR",
        "ESCALATION",
        "FORM",
        "GROUP",
        "IDENTITY_SETUP",
        "INCIDENT",
        "JOB",
        "JOB_BATCH",
        "MAPPING_RULE",
        "MESSAGE",
        "MESSAGE_BATCH",
        "MESSAGE_CORRELATION",
        "MESSAGE_START_EVENT_SUBSCRIPTION",
        "MESSAGE_SUBSCRIPTION",
        "MULTI_INSTANCE",
        "PROCESS",
        "PROCESS_EVENT",
        "PROCESS_INSTANCE",
        "PROCESS_INSTANCE_BATCH",
        "PROCESS_INSTANCE_CREATION",
        "PROCESS_INSTANCE_MIGRATION",
        "PROCESS_INSTANCE_MODIFICATION",
        "PROCESS_INSTANCE_RESULT",
        "PROCESS_MESSAGE_SUBSCRIPTION",
        "RESOURCE",
        "RESOURCE_DELETION",
        "ROLE",
        "SCALE",
        "SIGNAL",
        "SIGNAL_SUBSCRIPTION",
        "TENANT",
        "TIMER",
        "USAGE_METRIC",
        "USER",
        "USER_TASK",
        "VARIABLE",
        "VARIABLE_DOCUMENT",
        "WORKFLOW_INSTANCE",  # Zeebe < 0.23 name; known, not projected
    }
)

# Event intents of the projected value types. Intents in the *_NO_EFFECT sets are known and
# change nothing the query models hold.
PROCESS_INSTANCE_INTENTS = frozenset(
    {
        "ELEMENT_ACTIVATING",
        "ELEMENT_ACTIVATED",
        "ELEMENT_COMPLETING",
        "ELEMENT_COMPLETED",
        "ELEMENT_TERMINATING",
        "ELEMENT_TERMINATED",
        "ELEMENT_MIGRATED",
        "ANCESTOR_MIGRATED",
        "SEQUENCE_FLOW_TAKEN",
        "SEQUENCE_FLOW_DELETED",
    }
)
JOB_INTENTS = frozenset(
    {
        "CREATED",
        "COMPLETED",
        "TIMED_OUT",
        "FAILED",
        "RETRIES_UPDATED",
        "CANCELED",
        "ERROR_THROWN",
        "RECURRED_AFTER_BACKOFF",
        "YIELDED",
        "TIMEOUT_UPDATED",
        "MIGRATED",
        "UPDATED",
    }
)
JOB_BATCH_INTENTS = frozenset({"ACTIVATED"})
INCIDENT_INTENTS = frozenset({"CREATED", "RESOLVED", "MIGRATED"})
VARIABLE_INTENTS = frozenset({"CREATED", "UPDATED", "MIGRATED"})
PROCESS_INTENTS = frozenset({"CREATED", "DELETING", "DELETED"})

PROJECTED_INTENTS: dict[str, frozenset[str]] = {
    "PROCESS_INSTANCE": PROCESS_INSTANCE_INTENTS,
    "JOB": JOB_INTENTS,
    "JOB_BATCH": JOB_BATCH_INTENTS,
    "INCIDENT": INCIDENT_INTENTS,
    "VARIABLE": VARIABLE_INTENTS,
    "PROCESS": PROCESS_INTENTS,
}

EVENT = "EVENT"
