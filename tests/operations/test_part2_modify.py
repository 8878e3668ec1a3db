"""Process instance modification plans without a cluster (issue 19): what Zeebe refuses is refused
before sending, with its reason and nothing written; a valid plan is queued once and confirmed
from the imported rows; the API's preview and 202. The end-to-end test runs plans on engines."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from processes.operations import confirm, services
from processes.operations.choices import OperationState
from processes.operations.models import AuditEntry, Operation
from processes.operations.modify import read_diagram
from processes.operations.services import OperationRejected
from processes.roles import Role, RoleRequired
from tests.operations import factories as f

pytestmark = pytest.mark.django_db

ZEEBE_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="linear" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="diagnose"/>
    <bpmn:serviceTask id="diagnose" name="Diagnose"/>
    <bpmn:boundaryEvent id="timeout" attachedToRef="diagnose"><bpmn:timerEventDefinition/></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="diagnose" targetRef="repair"/>
    <bpmn:serviceTask id="repair"/>
    <bpmn:sequenceFlow id="f3" sourceRef="repair" targetRef="sub"/>
    <bpmn:subProcess id="sub">
      <bpmn:startEvent id="sub-start"/>
      <bpmn:serviceTask id="inner"/>
    </bpmn:subProcess>
    <bpmn:subProcess id="each">
      <bpmn:multiInstanceLoopCharacteristics/>
      <bpmn:startEvent id="each-start"/>
      <bpmn:serviceTask id="per-disk"/>
    </bpmn:subProcess>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""


@pytest.fixture
def world() -> dict[str, Any]:
    definition = f.definition(bpmn_xml=ZEEBE_BPMN)
    root = f.instance(process_definition=definition)
    return {"root": root, "step": f.element(root, "diagnose"), "operator": f.user("otto", Role.OPERATOR)}


def nothing_written() -> bool:
    return not Operation.objects.exists() and not AuditEntry.objects.filter(operation__isnull=False).exists()


def refused(world: dict[str, Any], activate: Any, terminate: Any, field: str, message: str) -> None:
    with pytest.raises(OperationRejected) as info:
        services.operation_modify(
            actor=world["operator"], process_instance=world["root"], activate=activate, terminate=terminate
        )
    assert info.value.field == field, info.value.field
    assert message in info.value.message, info.value.message
    assert nothing_written()


PREFIX = "Expected to modify instance of process 'linear' but it contains one or more"


@pytest.mark.parametrize(
    ("element_id", "element_type"),
    [
        ("start", "START_EVENT"),
        ("timeout", "BOUNDARY_EVENT"),
        ("sub", "SUB_PROCESS"),
        ("f2", "SEQUENCE_FLOW"),
    ],
)
def test_unsupported_activations_are_refused_with_zeebes_message(world, element_id, element_type):
    refused(
        world,
        [{"element_id": element_id}],
        [],
        "activate",
        f"{PREFIX} activate instructions for elements that are unsupported: '{element_id}'. "
        f"The activation of elements with type '{element_type}' is not supported.",
    )


def test_other_refusals(world):
    refused(
        world,
        [{"element_id": "nope"}],
        [],
        "activate",
        f"{PREFIX} activate instructions with an element that could not be found: 'nope'",
    )
    refused(
        world, [{"element_id": "per-disk"}], [], "activate", "inside a multi-instance element: 'per-disk'"
    )
    gone = f.element(world["root"], "repair", state="completed")
    refused(
        world,
        [],
        [gone.key, 12345],
        "terminate",
        f"{PREFIX} terminate instructions with an element instance that could not be found: '{gone.key}', '12345'",
    )
    refused(world, [], [], "activate", "The plan is empty")
    refused(world, "repair", [], "activate", "must be a list")
    refused(world, [{"element_id": "repair", "colour": "red"}], [], "activate", "Unknown field(s)")
    refused(world, [], [world["step"].key, world["step"].key], "terminate", "listed twice")
    refused(world, [{"element_id": "repair", "variables": [1]}], [], "activate", "JSON object")
    refused(world, [{"element_id": "repair"}] * 101, [], "activate", "At most 100")
    # An ancestor that is not an ancestor of the element.
    refused(
        world,
        [{"element_id": "inner", "ancestor_key": world["step"].key}],
        [],
        "activate",
        "is not an ancestor of element 'inner'",
    )
    # Two active instances of the subprocess and no ancestor chosen.
    first = f.element(world["root"], "sub", element_type="SUB_PROCESS")
    f.element(world["root"], "sub", element_type="SUB_PROCESS")
    refused(
        world,
        [{"element_id": "inner"}],
        [],
        "activate",
        "flow scope with more than one active instance: 'sub'",
    )
    # Choosing one makes it valid.
    operation = services.operation_modify(
        actor=world["operator"],
        process_instance=world["root"],
        activate=[{"element_id": "inner", "ancestor_key": first.key}],
        terminate=[],
    )
    assert operation.parameters["activate"][0]["ancestor_key"] == first.key


def test_ended_instance_roles_and_hostile_xml(world):
    root = world["root"]
    for actor in (AnonymousUser(), f.user("vera", Role.VIEWER)):
        with pytest.raises(RoleRequired):
            services.operation_modify(
                actor=actor, process_instance=root, activate=[{"element_id": "repair"}], terminate=[]
            )
    root.state = "completed"
    root.save()
    refused(world, [{"element_id": "repair"}], [], "process_instance", "has already ended")
    bomb = f.definition(
        bpmn_xml='<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>'
    )
    world["root"] = f.instance(process_definition=bomb)
    refused(world, [{"element_id": "repair"}], [], "process_instance", "cannot be read")


def test_diagram_picker_lists_what_can_be_activated():
    diagram = read_diagram(ZEEBE_BPMN, process_id="linear")
    assert [e.element_id for e in diagram.activatable()] == ["diagnose", "repair", "inner", "end"]
    assert diagram.elements["inner"].scopes == ("sub",)


def test_move_a_token_is_queued_and_confirmed_from_rows(world, django_capture_on_commit_callbacks):
    step = world["step"]
    with django_capture_on_commit_callbacks() as callbacks:
        operation = services.operation_modify(
            actor=world["operator"],
            process_instance=world["root"],
            activate=[{"element_id": "repair", "variables": {"fixed": True}}],
            terminate=[step.key],
        )
    assert len(callbacks) == 1
    assert operation.parameters["plan"] == [
        "Add a token before 'repair' (SERVICE_TASK) with variables ['fixed'].",
        f"Cancel the token at 'diagnose' (element instance {step.key}).",
    ]
    assert operation.parameters["key_floor"] == step.key
    Operation.objects.update(state=OperationState.SUCCEEDED)
    # The step ended but no new 'repair' yet: not confirmed.
    step.state = "terminated"
    step.save()
    rows = [{"key": step.key, "state": "terminated", "process_instance_id": world["root"].key}]
    assert confirm.confirm_imported(elements=rows) == 0
    repair = f.element(world["root"], "repair")
    assert repair.key > step.key
    assert (
        confirm.confirm_imported(
            elements=[{"key": repair.key, "state": "active", "process_instance_id": world["root"].key}]
        )
        == 1
    )
    assert Operation.objects.get().state == OperationState.CONFIRMED


def logged_in(role: Role) -> Client:
    client = Client()
    client.force_login(f.user(f"u-{role}", role))
    return client


def test_api_preview_apply_and_refusal(world):
    url = f"/api/v1/process-instances/{world['root'].key}/modify/"
    plan = {"activate": [{"element_id": "repair"}], "terminate": [str(world["step"].key)]}
    assert logged_in(Role.VIEWER).post(url, plan, content_type="application/json").status_code == 403
    client = logged_in(Role.OPERATOR)
    preview = client.post(url, {**plan, "preview": True}, content_type="application/json")
    assert preview.status_code == 200, preview.content
    assert preview.json()["plan"][0].startswith("Add a token before 'repair'")
    assert nothing_written()
    bad = client.post(url, {"activate": [{"element_id": "start"}]}, content_type="application/json")
    assert bad.status_code == 400
    assert "The activation of elements with type 'START_EVENT' is not supported" in json.dumps(bad.json())
    assert nothing_written()
    applied = client.post(url, plan, content_type="application/json")
    assert applied.status_code == 202, applied.content
    operation = Operation.objects.get()
    assert operation.action == "modify" and operation.parameters["terminate"] == [world["step"].key]
