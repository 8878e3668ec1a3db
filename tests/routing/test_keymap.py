"""The key-field table (routing/keymap.py): complete for the proto, and each entry rewritten."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from pyzeebe.proto import gateway_pb2 as pb

from routing.keymap import (
    NOT_KEYS,
    REQUEST_KEY_FIELDS,
    RESPONSE_KEY_FIELDS,
    KeyRewriteError,
    globalize_job,
    globalize_response,
    localize_request,
)
from routing.keys import to_global

P1 = 2251799813685249  # first key of partition 1 (reference §2.1)
P2 = 4503599627370497  # first key of partition 2


def _all_descriptors() -> list[Descriptor]:
    found: list[Descriptor] = []

    def walk(descriptor: Descriptor) -> None:
        found.append(descriptor)
        for nested in descriptor.nested_types:
            walk(nested)

    for descriptor in pb.DESCRIPTOR.message_types_by_name.values():
        walk(descriptor)
    return found


def _request_leaf_fields() -> set[tuple[str, str]]:
    leaves = set()
    for message_name, fields in REQUEST_KEY_FIELDS.items():
        descriptor = pb.DESCRIPTOR.pool.FindMessageTypeByName(message_name)
        for key_field in fields:
            *parents, leaf = key_field.path.split(".")
            holder = descriptor
            for parent in parents:
                holder = holder.fields_by_name[parent].message_type
            assert leaf in holder.fields_by_name, key_field.path
            leaves.add((holder.full_name, leaf))
    return leaves


def test_every_64_bit_field_of_the_proto_is_classified() -> None:
    listed = _request_leaf_fields()
    listed |= {(m, f) for m, fields in RESPONSE_KEY_FIELDS.items() for f in fields}
    listed |= {(m, f) for m, fields in NOT_KEYS.items() for f in fields}
    unclassified = []
    for descriptor in _all_descriptors():
        for field in descriptor.fields:
            is_64_bit = field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64)
            if is_64_bit and (descriptor.full_name, field.name) not in listed:
                unclassified.append(f"{descriptor.full_name}.{field.name}")
    assert unclassified == []


def test_response_table_names_real_fields() -> None:
    for message_name, fields in RESPONSE_KEY_FIELDS.items():
        descriptor = pb.DESCRIPTOR.pool.FindMessageTypeByName(message_name)
        for name in fields:
            assert descriptor.fields_by_name[name].type == FieldDescriptor.TYPE_INT64


G1 = to_global(1, P1)
G2 = to_global(2, P2)


@pytest.mark.parametrize(
    ("request_message", "field"),
    [
        (pb.CompleteJobRequest(jobKey=G2), "jobKey"),
        (pb.FailJobRequest(jobKey=G2), "jobKey"),
        (pb.ThrowErrorRequest(jobKey=G2), "jobKey"),
        (pb.UpdateJobRetriesRequest(jobKey=G2), "jobKey"),
        (pb.UpdateJobTimeoutRequest(jobKey=G2), "jobKey"),
        (pb.ResolveIncidentRequest(incidentKey=G2), "incidentKey"),
        (pb.CancelProcessInstanceRequest(processInstanceKey=G2), "processInstanceKey"),
        (pb.SetVariablesRequest(elementInstanceKey=G2), "elementInstanceKey"),
        (pb.DeleteResourceRequest(resourceKey=G2), "resourceKey"),
        (pb.CreateProcessInstanceRequest(processDefinitionKey=G2), "processDefinitionKey"),
        (pb.EvaluateDecisionRequest(decisionKey=G2), "decisionKey"),
    ],
)
def test_key_addressed_requests_route_and_strip(request_message, field: str) -> None:  # type: ignore[no-untyped-def]
    route = localize_request(request_message)
    assert route.cluster_id == 2
    assert getattr(request_message, field) == P2


def test_create_with_result_routes_by_nested_definition_key() -> None:
    request = pb.CreateProcessInstanceWithResultRequest(
        request=pb.CreateProcessInstanceRequest(processDefinitionKey=G1)
    )
    assert localize_request(request).cluster_id == 1
    assert request.request.processDefinitionKey == P1


@pytest.mark.parametrize("none", [0, -1])
def test_create_by_process_id_is_placed(none: int) -> None:
    request = pb.CreateProcessInstanceRequest(bpmnProcessId="p", processDefinitionKey=none)
    assert localize_request(request).cluster_id is None
    assert request.processDefinitionKey == none


def test_modify_rewrites_every_instruction_and_passes_minus_one() -> None:
    request = pb.ModifyProcessInstanceRequest(
        processInstanceKey=G2,
        activateInstructions=[
            pb.ModifyProcessInstanceRequest.ActivateInstruction(elementId="a", ancestorElementInstanceKey=-1),
            pb.ModifyProcessInstanceRequest.ActivateInstruction(
                elementId="b", ancestorElementInstanceKey=to_global(2, P2 + 5)
            ),
        ],
        terminateInstructions=[
            pb.ModifyProcessInstanceRequest.TerminateInstruction(elementInstanceKey=to_global(2, P2 + 7))
        ],
    )
    assert localize_request(request).cluster_id == 2
    assert request.processInstanceKey == P2
    assert [i.ancestorElementInstanceKey for i in request.activateInstructions] == [-1, P2 + 5]
    assert request.terminateInstructions[0].elementInstanceKey == P2 + 7


def test_modify_across_clusters_is_refused() -> None:
    request = pb.ModifyProcessInstanceRequest(
        processInstanceKey=G2,
        terminateInstructions=[pb.ModifyProcessInstanceRequest.TerminateInstruction(elementInstanceKey=G1)],
    )
    with pytest.raises(KeyRewriteError, match="cannot address two clusters"):
        localize_request(request)


def test_migrate_target_definition_must_be_on_the_same_cluster() -> None:
    request = pb.MigrateProcessInstanceRequest(
        processInstanceKey=G2,
        migrationPlan=pb.MigrateProcessInstanceRequest.MigrationPlan(
            targetProcessDefinitionKey=to_global(2, P1)
        ),
    )
    assert localize_request(request).cluster_id == 2
    assert request.migrationPlan.targetProcessDefinitionKey == P1
    request = pb.MigrateProcessInstanceRequest(
        processInstanceKey=G2,
        migrationPlan=pb.MigrateProcessInstanceRequest.MigrationPlan(targetProcessDefinitionKey=G1),
    )
    with pytest.raises(KeyRewriteError, match="targetProcessDefinitionKey"):
        localize_request(request)


@pytest.mark.parametrize("bad", [0, -1])
def test_required_key_missing_is_an_error(bad: int) -> None:
    with pytest.raises(KeyRewriteError, match="a key is required") as caught:
        localize_request(pb.CompleteJobRequest(jobKey=bad))
    assert caught.value.reason == "invalid"


def test_plain_zeebe_key_is_an_error_naming_the_field() -> None:
    with pytest.raises(KeyRewriteError, match=f"jobKey {P1}: .*cluster id 0") as caught:
        localize_request(pb.CompleteJobRequest(jobKey=P1))
    assert caught.value.reason == "unknown-cluster"


def test_requests_without_keys_are_untouched() -> None:
    request = pb.PublishMessageRequest(name="m", correlationKey="c", timeToLive=1000)
    assert localize_request(request).cluster_id is None
    assert request.timeToLive == 1000


def test_activated_job_fields() -> None:
    response = pb.ActivateJobsResponse(
        jobs=[
            pb.ActivatedJob(
                key=P1,
                processInstanceKey=P1 + 1,
                processDefinitionKey=P1 + 2,
                elementInstanceKey=P1 + 3,
                deadline=1_700_000_000_000,
                retries=3,
            )
        ]
    )
    globalize_response(3, response)
    job = response.jobs[0]
    assert (job.key, job.processInstanceKey, job.processDefinitionKey, job.elementInstanceKey) == (
        to_global(3, P1),
        to_global(3, P1 + 1),
        to_global(3, P1 + 2),
        to_global(3, P1 + 3),
    )
    assert job.deadline == 1_700_000_000_000 and job.retries == 3
    plain = pb.ActivatedJob(
        key=P1,
        processInstanceKey=P1 + 1,
        processDefinitionKey=P1 + 2,
        elementInstanceKey=P1 + 3,
        deadline=1_700_000_000_000,
        retries=3,
    )
    assert globalize_job(3, plain) == job


def test_deploy_response_nested_metadata() -> None:
    response = pb.DeployResourceResponse(
        key=P1,
        deployments=[
            pb.Deployment(process=pb.ProcessMetadata(bpmnProcessId="p", processDefinitionKey=P1 + 1)),
            pb.Deployment(decision=pb.DecisionMetadata(decisionKey=P1 + 2, decisionRequirementsKey=P1 + 3)),
            pb.Deployment(
                decisionRequirements=pb.DecisionRequirementsMetadata(decisionRequirementsKey=P1 + 3)
            ),
            pb.Deployment(form=pb.FormMetadata(formKey=P1 + 4)),
        ],
    )
    globalize_response(2, response)
    g = lambda k: to_global(2, k)  # noqa: E731
    assert response.key == g(P1)
    assert response.deployments[0].process.processDefinitionKey == g(P1 + 1)
    assert response.deployments[1].decision.decisionKey == g(P1 + 2)
    assert response.deployments[1].decision.decisionRequirementsKey == g(P1 + 3)
    assert response.deployments[2].decisionRequirements.decisionRequirementsKey == g(P1 + 3)
    assert response.deployments[3].form.formKey == g(P1 + 4)
    old = pb.DeployProcessResponse(key=P1, processes=[pb.ProcessMetadata(processDefinitionKey=P1 + 1)])
    globalize_response(2, old)
    assert (old.key, old.processes[0].processDefinitionKey) == (g(P1), g(P1 + 1))


@pytest.mark.parametrize(
    ("message", "fields"),
    [
        (
            pb.CreateProcessInstanceResponse(processDefinitionKey=P1, processInstanceKey=P1 + 1),
            ("processDefinitionKey", "processInstanceKey"),
        ),
        (
            pb.CreateProcessInstanceWithResultResponse(processDefinitionKey=P1, processInstanceKey=P1 + 1),
            ("processDefinitionKey", "processInstanceKey"),
        ),
        (pb.SetVariablesResponse(key=P1), ("key",)),
        (pb.PublishMessageResponse(key=P1), ("key",)),
        (pb.BroadcastSignalResponse(key=P1), ("key",)),
        (
            pb.EvaluateDecisionResponse(
                decisionKey=P1, decisionRequirementsKey=P1 + 1, decisionInstanceKey=P1 + 2
            ),
            ("decisionKey", "decisionRequirementsKey", "decisionInstanceKey"),
        ),
    ],
)
def test_flat_response_keys(message, fields) -> None:  # type: ignore[no-untyped-def]
    before = {f: getattr(message, f) for f in fields}
    globalize_response(4, message)
    assert {f: getattr(message, f) for f in fields} == {f: to_global(4, v) for f, v in before.items()}


def test_evaluated_decisions_nested_and_unset_keys_pass() -> None:
    response = pb.EvaluateDecisionResponse(
        decisionKey=P1, evaluatedDecisions=[pb.EvaluatedDecision(decisionKey=P1 + 1)], decisionInstanceKey=0
    )
    globalize_response(5, response)
    assert response.evaluatedDecisions[0].decisionKey == to_global(5, P1 + 1)
    assert response.decisionInstanceKey == 0


def test_response_key_too_large_is_an_error() -> None:
    from routing.keys import InvalidKeyError

    with pytest.raises(InvalidKeyError, match="partition id 200"):
        globalize_response(1, pb.SetVariablesResponse(key=(200 << 51) + 1))
