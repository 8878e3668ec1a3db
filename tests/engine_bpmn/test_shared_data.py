"""Every real BPMN model of ../shared/data/bpmn either deploys or is rejected with a message
naming the offending element; nothing else may happen (no crash, no silent acceptance).

The table says, per file, which outcome is expected and why (MANIFEST.tsv describes the files).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.bpmn import BpmnValidationError, ElementType, parse_bpmn
from tests.requirements import requires

DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "bpmn"

UNSUPPORTED = "not supported by the Fleetflow embedded engine"

#: file -> (expected process ids, or None when rejected; expected problems as
#: (element identifier, message substring); why)
EXPECTATIONS: dict[str, tuple[list[str] | None, list[tuple[str | None, str]], str]] = {
    "c8-js-sdk__Signal.bpmn": (
        None,
        [("StartEvent_1", f"Signal start events are {UNSUPPORTED}")],
        "signal start event: signals are unsupported",
    ),
    "c8-js-sdk__zeebe-user-task.bpmn": (
        None,
        [
            (
                "Activity_1d6heog > extensionElements > userTask",
                f"Zeebe user tasks (zeebe:userTask) are {UNSUPPORTED}",
            )
        ],
        "zeebe:userTask (Camunda user task) is unsupported; job-based user tasks are",
    ),
    "camunda-modeler__bar.bpmn": (
        None,
        [
            ("BusinessRuleTask_1", f"Elements of type 'businessRuleTask' are {UNSUPPORTED}"),
            (
                "UserTask_1 > extensionElements > formDefinition",
                f"Linked forms (zeebe:formDefinition formId/externalReference) are {UNSUPPORTED}",
            ),
        ],
        "business rule task and a linked form (formId) are unsupported",
    ),
    "camunda-modeler__foo.bpmn": (
        ["FooProcess"],
        [],
        "start -> call activity (BarProcess) -> end: all supported",
    ),
    "camunda-modeler__lint-errors.bpmn": (
        None,
        [
            (
                "Activity_084s4zz > extensionElements > taskDefinition",
                "Attribute 'type' must be present and not empty",
            ),
            ("Activity_1e5gui8", f"Event subprocesses are {UNSUPPORTED}"),
            ("Activity_00ef2n2", f"Elements of type 'sendTask' are {UNSUPPORTED}"),
            ("Activity_0h20swu", f"Elements of type 'businessRuleTask' are {UNSUPPORTED}"),
        ],
        "INVALID (MANIFEST): service task without job type, as Zeebe says; plus unsupported kinds",
    ),
    "camunda__ModelWalkerTest.bpmn": (
        None,
        [("timer", f"Timer intermediate catch events are {UNSUPPORTED}")],
        "valid for Zeebe (foreign extensions ignored) but has a timer catch event",
    ),
    "camunda__sequence-flow-missing-target.bpmn": (
        None,
        [("flow1", "SequenceFlow has targetRef 'no_such_task'  which cannot be resolved")],
        "INVALID (MANIFEST): targetRef of a missing element; Zeebe's own message",
    ),
    "connectors__outbound-task-types.bpmn": (
        None,
        [
            ("send-task", f"Elements of type 'sendTask' are {UNSUPPORTED}"),
            ("script-task", f"Elements of type 'scriptTask' are {UNSUPPORTED}"),
            ("business-rule-task", f"Elements of type 'businessRuleTask' are {UNSUPPORTED}"),
        ],
        "TRICKY (MANIFEST): send/script/business-rule tasks, all unsupported",
    ),
    "connectors__single-webhook-boundary.bpmn": (
        None,
        [("boundary_event", f"Message boundary events are {UNSUPPORTED}")],
        "message boundary event",
    ),
    "connectors__single-webhook-subprocess.bpmn": (
        None,
        [
            ("Event_15nnjqo", f"Escalation intermediate throw events are {UNSUPPORTED}"),
            ("Event_18ffnpr", f"Escalation boundary events are {UNSUPPORTED}"),
            ("Gateway_1w4dq6i", f"Elements of type 'eventBasedGateway' are {UNSUPPORTED}"),
            ("Event_0tqfqwi", f"Timer intermediate catch events are {UNSUPPORTED}"),
            ("webhook_in_subprocess", f"Message intermediate catch events are {UNSUPPORTED}"),
        ],
        "escalation, event-based gateway, timer and message events",
    ),
    "easy-zeebe__membership.bpmn": (
        None,
        [
            ("startEvent_MembershipRequested", f"Message start events are {UNSUPPORTED}"),
            ("userTask_ConfirmMembership > extensionElements > userTask", "zeebe:userTask"),
            ("endEvent_MembershipActivated", f"Signal end events are {UNSUPPORTED}"),
            ("event_ReminderDue", f"Timer boundary events are {UNSUPPORTED}"),
            ("event_ConfirmationRejected", f"Message boundary events are {UNSUPPORTED}"),
            ("endEvent_MembershipDeclined", f"Compensation end events are {UNSUPPORTED}"),
            ("serviceTask_RevokeClaim", f"Compensation handlers (isForCompensation) are {UNSUPPORTED}"),
            ("event_ClaimCompensation", f"Compensation boundary events are {UNSUPPORTED}"),
        ],
        "message start, zeebe:userTask, signal, timer, message and compensation events",
    ),
    "lib-bpmn-engine__fork-uncontrolled-join.bpmn": (
        ["fork-uncontrolled-join"],
        [],
        "parallel fork with an implicit (uncontrolled) merge: supported, the task runs twice",
    ),
    "lib-bpmn-engine__inclusive-gateway-with-condition-and-default.bpmn": (
        None,
        [("Gateway_01wr5g0", f"Elements of type 'inclusiveGateway' are {UNSUPPORTED}")],
        "inclusive gateway",
    ),
    "lib-bpmn-engine__message-intermediate-invalid-timer-event.bpmn": (
        None,
        [("Event_1uc8qla", f"Timer intermediate catch events are {UNSUPPORTED}")],
        "INVALID (MANIFEST): empty timer definition; timers are unsupported here in any case",
    ),
    "lib-bpmn-engine__message-intermediate-timer-event-expression.bpmn": (
        None,
        [
            ("timer1", f"Timer intermediate catch events are {UNSUPPORTED}"),
            ("event-based-gateway", f"Elements of type 'eventBasedGateway' are {UNSUPPORTED}"),
            ("message", f"Message intermediate catch events are {UNSUPPORTED}"),
        ],
        "event-based gateway racing message and timer",
    ),
    "lib-bpmn-engine__ordering-items-workflow.bpmn": (
        None,
        [
            ("Gateway_1p6s0kg", f"Elements of type 'eventBasedGateway' are {UNSUPPORTED}"),
            ("payment-received", f"Message intermediate catch events are {UNSUPPORTED}"),
            ("wait-10min-timer", f"Timer intermediate catch events are {UNSUPPORTED}"),
        ],
        "event-based gateways with message and timer catch events",
    ),
    "lib-bpmn-engine__service-task-invalid-output.bpmn": (
        None,
        [("invalid-output > extensionElements > ioMapping > output", "failed to parse expression")],
        "INVALID (MANIFEST): output mapping source is not parseable FEEL; Zeebe rejects at deploy",
    ),
    "lib-bpmn-engine__simple-link-event-broken.bpmn": (
        None,
        [
            ("Link-A-Throw", f"Link intermediate throw events are {UNSUPPORTED}"),
            ("Link-B-Catch", f"Link intermediate catch events are {UNSUPPORTED}"),
        ],
        "INVALID (MANIFEST): unpaired link; link events are unsupported here in any case",
    ),
    "lib-bpmn-engine__subprocess-simple-link-events.bpmn": (
        None,
        [("Sub-Link-A-Catch", f"Link intermediate catch events are {UNSUPPORTED}")],
        "link events inside a subprocess",
    ),
    "linting__correctness.bpmn": (
        None,
        [
            ("START_1", "Start events in subprocesses must be of type none"),
            ("NO_INTERMEDIATE_START", f"Elements of type 'adHocSubProcess' are {UNSUPPORTED}"),
            (
                "Event_0pmkqs1",
                "Start events in event subprocesses must be one of: message, timer, error, signal or escalation",
            ),
            ("Process_0t5648m", "Must have at least one start event"),
        ],
        "INVALID (MANIFEST): no process start event, typed start event in a subprocess (Zeebe's messages)",
    ),
    "platform-tutorials__AI-Email-Support-Agent.bpmn": (
        None,
        [
            ("Activity_04glkkx", f"Elements of type 'adHocSubProcess' are {UNSUPPORTED}"),
            ("Activity_0sw5ued", f"Event subprocesses are {UNSUPPORTED}"),
            ("Event_WaitForEmail", f"Message start events are {UNSUPPORTED}"),
        ],
        "ad-hoc subprocess, event subprocess, zeebe:userTask, escalation, message start",
    ),
    "process-test-coverage__eventBasedGateway.bpmn": (
        None,
        [
            ("EventBasedGateway", f"Elements of type 'eventBasedGateway' are {UNSUPPORTED}"),
            ("SignalEvent", f"Signal intermediate catch events are {UNSUPPORTED}"),
        ],
        "event-based gateway with signal and message catch events",
    ),
    "properties-panel__ExecutionListenerProps.bpmn": (
        None,
        [
            (
                "Process > extensionElements > executionListeners",
                f"Execution listeners (zeebe:executionListeners) are {UNSUPPORTED}",
            ),
            ("ComplexGateway", f"Elements of type 'complexGateway' are {UNSUPPORTED}"),
            ("ErrorEndEvent > errorEventDefinition", "Must reference an error"),
        ],
        "TRICKY (MANIFEST): execution listeners everywhere, complex gateway, error end without error",
    ),
    "properties-panel__ZeebePropertiesProvider.bpmn": (
        None,
        [
            (
                "CallActivity_1 > extensionElements > calledElement",
                "Attribute 'processId' must be present and not empty",
            ),
            ("ConditionalStartEvent_1", f"Conditional start events are {UNSUPPORTED}"),
            ("BoundaryEvent_1", "Must have exactly one event definition"),
        ],
        "modeler UI fixture: broad coverage, not meant to run",
    ),
    "zeebe-cherry-runtime__LoadTest.bpmn": (
        None,
        [
            (
                "Activity_Multi_LoadFile > multiInstanceLoopCharacteristics",
                f"Multi-instance activities are {UNSUPPORTED}",
            ),
            ("Gateway_LoadDecision", f"Elements of type 'inclusiveGateway' are {UNSUPPORTED}"),
        ],
        "multi-instance, inclusive gateway, timers",
    ),
    "zeebe-node__Client-BrokenBpmn.bpmn": (
        None,
        [
            (
                "ServiceTask_0g6tf5f > extensionElements > taskDefinition",
                "Attribute 'type' must be present and not empty",
            )
        ],
        "INVALID (MANIFEST): empty job type; Zeebe's own message",
    ),
    "zeebe-node__Client-ThrowError.bpmn": (
        ["throw-bpmn-error"],
        [],
        "service task in a subprocess with an error boundary event: supported",
    ),
    "zeebe-node__modeller7File.bpmn": (
        None,
        [(None, "Failed to parse the XML: no element found (line 107, column 39)")],
        "MALFORMED (MANIFEST): truncated document",
    ),
    "zeebe-play__is_legal_good.dmn": (
        None,
        [(None, "Expected a BPMN document")],
        "a DMN resource is not BPMN (the engine should route .dmn elsewhere: is_bpmn_resource)",
    ),
    "zeebe-play__solos-transport-process.bpmn": (
        None,
        [
            ("Activity_05mc79l", f"Event subprocesses are {UNSUPPORTED}"),
            ("Activity_1yxzu88", f"Elements of type 'businessRuleTask' are {UNSUPPORTED}"),
        ],
        "event subprocess, business rule task, event-based gateway, timers",
    ),
    "zeebe-process-test__alternate-start-end.bpmn": (["alternate-start-end"], [], "start -> end"),
    "zeebe-process-test__automated-tests.bpmn": (
        None,
        [
            (
                "Activity_1kq2g9a > multiInstanceLoopCharacteristics",
                f"Multi-instance activities are {UNSUPPORTED}",
            )
        ],
        "parallel multi-instance subprocess",
    ),
    "zeebe-process-test__call-activity.bpmn": (["call-activity"], [], "call activity to start-end"),
    "zeebe-process-test__looping-servicetask.bpmn": (
        ["looping-servicetask"],
        [],
        "service task loop through an exclusive gateway with an output mapping",
    ),
    "zeebe-process-test__multiple-call-activity.bpmn": (
        ["multiple-call-activity"],
        [],
        "two call activities, propagateAllChildVariables=false",
    ),
    "zeebe-process-test__pr-created.bpmn": (
        None,
        [
            ("prCreated", f"Message start events are {UNSUPPORTED}"),
            ("Gateway_1wymgxc", f"Elements of type 'eventBasedGateway' are {UNSUPPORTED}"),
        ],
        "message start event, event-based gateway",
    ),
    "zeebe-process-test__start-end.bpmn": (["start-end"], [], "start -> end"),
    "zeebe-process-test__test_timer_events.bpmn": (
        None,
        [("TimerEvent_Wait1s", f"Timer intermediate catch events are {UNSUPPORTED}")],
        "timer catch events",
    ),
    "zeebe-process-test__timer-start-event-daily.bpmn": (
        None,
        [("timer", f"Timer start events are {UNSUPPORTED}")],
        "timer start event",
    ),
    "zeebe-redis-exporter__process.bpmn": (
        None,
        [
            ("receive-task", f"Elements of type 'receiveTask' are {UNSUPPORTED}"),
            ("timer", f"Timer boundary events are {UNSUPPORTED}"),
        ],
        "TRICKY (MANIFEST): default-namespace BPMN, zeebe prefix 'ns0'; parsed, then receive task and timer rejected",
    ),
    "zeebe-spec__demo2.bpmn": (
        None,
        [("Event_0tf6wgs", f"Message intermediate catch events are {UNSUPPORTED}")],
        "message catch event",
    ),
}


def _data_files() -> list[str]:
    if not DATA_DIR.is_dir():
        return []
    return sorted(p.name for p in DATA_DIR.iterdir() if p.suffix in (".bpmn", ".dmn"))


pytestmark = requires(DATA_DIR.is_dir(), f"shared reference data not present at {DATA_DIR}")


def test_every_data_file_has_an_expectation() -> None:
    assert set(_data_files()) == set(EXPECTATIONS)


@pytest.mark.parametrize("file_name", sorted(EXPECTATIONS))
def test_data_file_outcome(file_name: str) -> None:
    expected_ids, expected_problems, _why = EXPECTATIONS[file_name]
    content = (DATA_DIR / file_name).read_bytes()
    try:
        models = parse_bpmn(file_name, content)
    except BpmnValidationError as error:
        assert expected_ids is None, f"{file_name} was rejected:\n{error.zeebe_message()}"
        found = [(p.element_identifier, p.message) for p in error.problems]
        for identifier, fragment in expected_problems:
            assert any(i == identifier and fragment in m for i, m in found), (
                f"{file_name}: no problem {identifier!r} ~ {fragment!r} in {found}"
            )
        message = error.zeebe_message()
        assert message.startswith(
            f"Expected to deploy new resources, but encountered the following errors:\n'{file_name}': "
        )
        for identifier, _fragment in expected_problems:
            if identifier is not None:
                assert f"- Element: {identifier}\n    - ERROR: " in message
        return
    assert expected_ids is not None, f"{file_name} should have been rejected"
    assert [m.bpmn_process_id for m in models] == expected_ids
    for model in models:
        assert model.resource_name == file_name
        assert model.none_start_event is not None
        assert model.process.element_type is ElementType.PROCESS


def test_call_chain_models_link_by_process_id() -> None:
    """multiple-call-activity calls call-activity (which calls start-end) and alternate-start-end."""
    by_id = {}
    for name in (
        "zeebe-process-test__multiple-call-activity.bpmn",
        "zeebe-process-test__call-activity.bpmn",
        "zeebe-process-test__start-end.bpmn",
        "zeebe-process-test__alternate-start-end.bpmn",
    ):
        (model,) = parse_bpmn(name, (DATA_DIR / name).read_bytes())
        by_id[model.bpmn_process_id] = model
    root = by_id["multiple-call-activity"]
    calls = [e for e in root.elements_by_id.values() if e.element_type is ElementType.CALL_ACTIVITY]
    called = {e.called_process_id.text for e in calls if e.called_process_id is not None}
    assert called <= set(by_id)
    assert all(e.propagate_all_child_variables is False for e in calls)


def test_default_namespace_bpmn_with_other_zeebe_prefix_is_read() -> None:
    """zeebe-redis-exporter's model: BPMN as default namespace, zeebe extensions as 'ns0'.

    It is rejected for its receive task and timer, so nothing else must be reported: the
    service task's ns0:taskDefinition and input mapping were understood.
    """
    name = "zeebe-redis-exporter__process.bpmn"
    with pytest.raises(BpmnValidationError) as caught:
        parse_bpmn(name, (DATA_DIR / name).read_bytes())
    error = caught.value
    assert all(UNSUPPORTED in p.message for p in error.problems), error.zeebe_message()
    assert {p.element_id for p in error.problems} == {"receive-task", "timer"}


def test_uncontrolled_join_task_has_two_incoming_flows() -> None:
    name = "lib-bpmn-engine__fork-uncontrolled-join.bpmn"
    (model,) = parse_bpmn(name, (DATA_DIR / name).read_bytes())
    merged = [e for e in model.elements_by_id.values() if len(e.incoming) == 2]
    assert len(merged) == 1
    assert merged[0].element_type is ElementType.SERVICE_TASK
