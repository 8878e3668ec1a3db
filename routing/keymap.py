"""Every key-carrying field of the gateway protocol, in one place, and the rewriting that uses it.

The proxy turns Zeebe keys into global keys in every response and back in every request
(DESIGN §2-3). The two tables below are the whole list; ``tests/routing/test_keymap.py`` checks
that every ``int64`` field of every message in pyzeebe's ``gateway.proto`` is either listed here
or in :data:`NOT_KEYS`, so a new proto field cannot slip through unrewritten.

Requests (client -> cluster): each entry names a field path (a dotted path; a repeated field in
the path applies to each element) and its role:

* ``ROUTES``: the key names the cluster the request goes to; required (``0``/``-1`` is an error).
* ``ROUTES_IF_SET``: as ``ROUTES`` when set; ``0``/``-1`` mean "not given" (e.g.
  CreateProcessInstance by bpmnProcessId) and the request is placed instead.
* ``SAME_CLUSTER``: another key of the same request; it must name the same cluster as the
  routing key (a request cannot span clusters), ``-1``/``0`` pass through where Zeebe means "none"
  (``ancestorElementInstanceKey = -1``).

Responses (cluster -> client): per message type, the scalar fields holding keys. Nested messages
(ActivateJobsResponse.jobs, DeployResourceResponse.deployments[].process ...) are reached by
walking sub-messages, so each key field is listed once, under the message that declares it.
``0`` and ``-1`` in a response mean "none" and pass through.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from pyzeebe.proto import gateway_pb2

from routing.keys import (
    CLUSTER_SHIFT,
    INT64_MAX,
    NONE_VALUES,
    ZEEBE_KEY_LIMIT,
    InvalidKeyError,
    UnknownClusterError,
    from_global,
    to_global,
)


class Role(enum.Enum):
    ROUTES = "routes"
    ROUTES_IF_SET = "routes-if-set"
    SAME_CLUSTER = "same-cluster"


@dataclass(frozen=True)
class KeyField:
    path: str
    role: Role


_P = "gateway_protocol."

REQUEST_KEY_FIELDS: dict[str, tuple[KeyField, ...]] = {
    _P + "CompleteJobRequest": (KeyField("jobKey", Role.ROUTES),),
    _P + "FailJobRequest": (KeyField("jobKey", Role.ROUTES),),
    _P + "ThrowErrorRequest": (KeyField("jobKey", Role.ROUTES),),
    _P + "UpdateJobRetriesRequest": (KeyField("jobKey", Role.ROUTES),),
    _P + "UpdateJobTimeoutRequest": (KeyField("jobKey", Role.ROUTES),),
    _P + "ResolveIncidentRequest": (KeyField("incidentKey", Role.ROUTES),),
    _P + "CancelProcessInstanceRequest": (KeyField("processInstanceKey", Role.ROUTES),),
    _P + "SetVariablesRequest": (KeyField("elementInstanceKey", Role.ROUTES),),
    _P + "ModifyProcessInstanceRequest": (
        KeyField("processInstanceKey", Role.ROUTES),
        # -1 = "use the existing flow-scope instance" (reference §1.2): passes through.
        KeyField("activateInstructions.ancestorElementInstanceKey", Role.SAME_CLUSTER),
        KeyField("terminateInstructions.elementInstanceKey", Role.SAME_CLUSTER),
    ),
    _P + "MigrateProcessInstanceRequest": (
        KeyField("processInstanceKey", Role.ROUTES),
        KeyField("migrationPlan.targetProcessDefinitionKey", Role.SAME_CLUSTER),
    ),
    _P + "DeleteResourceRequest": (KeyField("resourceKey", Role.ROUTES),),
    # By key: to the key's cluster; by bpmnProcessId (key 0 or -1): placed by weight.
    _P + "CreateProcessInstanceRequest": (KeyField("processDefinitionKey", Role.ROUTES_IF_SET),),
    _P + "CreateProcessInstanceWithResultRequest": (
        KeyField("request.processDefinitionKey", Role.ROUTES_IF_SET),
    ),
    _P + "EvaluateDecisionRequest": (KeyField("decisionKey", Role.ROUTES_IF_SET),),
}

RESPONSE_KEY_FIELDS: dict[str, tuple[str, ...]] = {
    _P + "ActivatedJob": ("key", "processInstanceKey", "processDefinitionKey", "elementInstanceKey"),
    _P + "CreateProcessInstanceResponse": ("processDefinitionKey", "processInstanceKey"),
    _P + "CreateProcessInstanceWithResultResponse": ("processDefinitionKey", "processInstanceKey"),
    _P + "DeployResourceResponse": ("key",),
    _P + "DeployProcessResponse": ("key",),
    _P + "ProcessMetadata": ("processDefinitionKey",),
    _P + "DecisionMetadata": ("decisionKey", "decisionRequirementsKey"),
    _P + "DecisionRequirementsMetadata": ("decisionRequirementsKey",),
    _P + "FormMetadata": ("formKey",),
    _P + "SetVariablesResponse": ("key",),
    _P + "PublishMessageResponse": ("key",),
    _P + "BroadcastSignalResponse": ("key",),
    _P + "EvaluateDecisionResponse": (
        "decisionKey",
        "decisionRequirementsKey",
        "decisionInstanceKey",
    ),
    _P + "EvaluatedDecision": ("decisionKey",),
}

NOT_KEYS: dict[str, tuple[str, ...]] = {
    # 64-bit integer fields that are not keys, with why: durations/timestamps and a
    # client-chosen opaque reference that Zeebe echoes into records.
    _P + "ActivateJobsRequest": ("timeout", "requestTimeout"),
    _P + "StreamActivatedJobsRequest": ("timeout",),
    _P + "ActivatedJob": ("deadline",),
    _P + "FailJobRequest": ("retryBackOff",),
    _P + "UpdateJobTimeoutRequest": ("timeout", "operationReference"),
    _P + "CreateProcessInstanceWithResultRequest": ("requestTimeout",),
    _P + "PublishMessageRequest": ("timeToLive",),
    _P + "CreateProcessInstanceRequest": ("operationReference",),
    _P + "CancelProcessInstanceRequest": ("operationReference",),
    _P + "ResolveIncidentRequest": ("operationReference",),
    _P + "UpdateJobRetriesRequest": ("operationReference",),
    _P + "SetVariablesRequest": ("operationReference",),
    _P + "ModifyProcessInstanceRequest": ("operationReference",),
    _P + "MigrateProcessInstanceRequest": ("operationReference",),
    _P + "DeleteResourceRequest": ("operationReference",),
}


class KeyRewriteError(ValueError):
    """A key in a request cannot be routed; carries the field path and the offending value.

    ``reason`` is ``"invalid"`` (not a global key at all, or fields naming different clusters)
    or ``"unknown-cluster"`` (a well-formed key whose cluster id is not 1..31).
    """

    def __init__(self, message: str, *, field: str, value: int, reason: str) -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        self.reason = reason


@dataclass
class RequestRoute:
    """What :func:`localize_request` found: the cluster to send to (None: place it)."""

    cluster_id: int | None
    field: str | None = None
    global_key: int | None = None


def _leaf_holders(message: Message, path: list[str]) -> list[tuple[Message, str]]:
    """The (message, field name) pairs a dotted path addresses, expanding repeated fields."""
    holders: list[Message] = [message]
    for name in path[:-1]:
        next_holders: list[Message] = []
        for holder in holders:
            field = holder.DESCRIPTOR.fields_by_name[name]
            if field.is_repeated:
                next_holders.extend(getattr(holder, name))
            elif holder.HasField(name):
                next_holders.append(getattr(holder, name))
        holders = next_holders
    return [(holder, path[-1]) for holder in holders]


def localize_request(request: Message) -> RequestRoute:
    """Turn every global key in ``request`` into its Zeebe key, in place; return the route.

    Raises KeyRewriteError (the proxy answers INVALID_ARGUMENT) for a routing key that is not a
    global key, or keys of one request that name different clusters.
    """
    simple = _SINGLE_ROUTING_FIELD.get(type(request))
    if simple is not None:
        # Fast path for the hot calls (CompleteJob, FailJob..., creates by process id): one
        # top-level key, required or not.
        name, required = simple
        candidate: int = getattr(request, name)
        if 0 < candidate <= INT64_MAX and (candidate >> CLUSTER_SHIFT) and (candidate & _ZEEBE_MASK):
            setattr(request, name, candidate & _ZEEBE_MASK)
            return RequestRoute(cluster_id=candidate >> CLUSTER_SHIFT, field=name, global_key=candidate)
        if not required and candidate in NONE_VALUES:
            return RequestRoute(cluster_id=None)  # not given: the request is placed
    message_name = request.DESCRIPTOR.full_name
    fields = REQUEST_KEY_FIELDS.get(message_name)
    if not fields:
        return RequestRoute(cluster_id=None)
    route = RequestRoute(cluster_id=None)
    pending_same_cluster: list[tuple[Message, str, str, int, int]] = []
    for key_field in fields:
        path = key_field.path.split(".")
        for holder, name in _leaf_holders(request, path):
            value: int = getattr(holder, name)
            if value in NONE_VALUES:
                if key_field.role is Role.ROUTES:
                    raise KeyRewriteError(
                        f"{key_field.path} is {value}, but a key is required: expected a global key "
                        "handed out by the Fleetflow routing proxy",
                        field=key_field.path,
                        value=value,
                        reason="invalid",
                    )
                continue  # "none" (-1) / unset (0): passes through untranslated
            try:
                cluster_id, zeebe_key = from_global(value)
            except UnknownClusterError as error:
                raise KeyRewriteError(
                    f"{key_field.path} {value}: {error}",
                    field=key_field.path,
                    value=value,
                    reason="unknown-cluster",
                ) from None
            except InvalidKeyError as error:
                raise KeyRewriteError(
                    f"{key_field.path} {value}: {error}",
                    field=key_field.path,
                    value=value,
                    reason="invalid",
                ) from None
            if key_field.role is Role.SAME_CLUSTER:
                pending_same_cluster.append((holder, name, key_field.path, value, cluster_id))
            else:
                route = RequestRoute(cluster_id=cluster_id, field=key_field.path, global_key=value)
            setattr(holder, name, zeebe_key)
    for _holder, _name, path_text, value, cluster_id in pending_same_cluster:
        if route.cluster_id is not None and cluster_id != route.cluster_id:
            raise KeyRewriteError(
                f"{path_text} {value} belongs to cluster {cluster_id}, but {route.field} "
                f"{route.global_key} belongs to cluster {route.cluster_id}: one request cannot "
                "address two clusters",
                field=path_text,
                value=value,
                reason="invalid",
            )
    return route


_SINGLE_ROUTING_FIELD: dict[type, tuple[str, bool]] = {
    getattr(gateway_pb2, name.rpartition(".")[2]): (fields[0].path, fields[0].role is Role.ROUTES)
    for name, fields in REQUEST_KEY_FIELDS.items()
    if len(fields) == 1 and fields[0].role in (Role.ROUTES, Role.ROUTES_IF_SET) and "." not in fields[0].path
}
"""Request class -> (its only key, a top-level field; whether it is required): translated without
the general walk (invalid values fall through to it, which produces the descriptive error). Keyed
by class, not by descriptor name, which costs a descriptor lookup per call; a message class of
another generated copy of the protocol misses here and takes the general walk."""

_ZEEBE_MASK = ZEEBE_KEY_LIMIT - 1


def _build_response_plan() -> dict[str, tuple[tuple[str, ...], tuple[tuple[str, bool], ...]]]:
    """Per message type: its key fields and the sub-message fields that (transitively) hold keys."""
    descriptors: dict[str, Descriptor] = {}

    def collect(descriptor: Descriptor) -> None:
        descriptors[descriptor.full_name] = descriptor
        for nested in descriptor.nested_types:
            collect(nested)

    for descriptor in gateway_pb2.DESCRIPTOR.message_types_by_name.values():
        collect(descriptor)

    holds_keys: dict[str, bool] = {}

    def has_keys(descriptor: Descriptor, visiting: frozenset[str] = frozenset()) -> bool:
        name = descriptor.full_name
        if name in holds_keys:
            return holds_keys[name]
        if name in visiting:
            return False
        result = name in RESPONSE_KEY_FIELDS
        for field in descriptor.fields:
            if field.type == FieldDescriptor.TYPE_MESSAGE and has_keys(field.message_type, visiting | {name}):
                result = True
        holds_keys[name] = result
        return result

    plan: dict[str, tuple[tuple[str, ...], tuple[tuple[str, bool], ...]]] = {}
    for name, descriptor in descriptors.items():
        if not has_keys(descriptor):
            continue
        sub_messages = tuple(
            (field.name, field.is_repeated)
            for field in descriptor.fields
            if field.type == FieldDescriptor.TYPE_MESSAGE and has_keys(field.message_type)
        )
        plan[name] = (RESPONSE_KEY_FIELDS.get(name, ()), sub_messages)
    return plan


_RESPONSE_PLAN = _build_response_plan()
_PLAN_BY_CLASS: dict[type, tuple[tuple[str, ...], tuple[tuple[str, bool], ...]] | None] = {}


def globalize_response(cluster_id: int, response: Message) -> Message:
    """Turn every Zeebe key in ``response`` (nested included) into a global key, in place.

    Raises InvalidKeyError if a cluster hands out a key whose partition id does not fit (>= 128).
    """
    kind = type(response)
    if kind in _PLAN_BY_CLASS:
        plan = _PLAN_BY_CLASS[kind]
    else:  # first time this class is seen (a descriptor lookup per call costs more)
        plan = _PLAN_BY_CLASS[kind] = _RESPONSE_PLAN.get(response.DESCRIPTOR.full_name)
    if plan is None:
        return response
    key_fields, sub_messages = plan
    for name in key_fields:
        value = getattr(response, name)
        if value not in NONE_VALUES:
            setattr(response, name, to_global(cluster_id, value))
    for name, repeated in sub_messages:
        if repeated:
            for item in getattr(response, name):
                globalize_response(cluster_id, item)
        elif response.HasField(name):
            globalize_response(cluster_id, getattr(response, name))
    return response


def globalize_job(cluster_id: int, job: Any) -> Any:
    """Fast path for the hottest message (ActivatedJob): same effect as globalize_response."""
    shifted = cluster_id << CLUSTER_SHIFT
    for name in ("key", "processInstanceKey", "processDefinitionKey", "elementInstanceKey"):
        value = getattr(job, name)
        if value in NONE_VALUES:
            continue
        if not 0 < value < ZEEBE_KEY_LIMIT:
            to_global(cluster_id, value)  # raises the descriptive InvalidKeyError
        setattr(job, name, shifted | value)
    return job
