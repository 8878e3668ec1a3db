"""Every real BPMN model of ../shared/data/bpmn either deploys or is rejected with a message
naming the offending element; nothing else may happen (no crash, no silent acceptance).

The table says, per file, which outcome is expected and why (MANIFEST.tsv describes the files).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.bpmn import BpmnValidationError, ElementType, parse_bpmn
from tests.engine_bpmn import gate
from tests.requirements import requires

DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "bpmn"

UNSUPPORTED = gate.UNSUPPORTED


@dataclass(frozen=True)
class Gated:
    """An expected rejection by the deployment gate: expected while `feature` is still gated
    (engine.bpmn.support), with the gate's exact message; gone once the execution runs it."""

    feature: str


#: file -> (expected process ids, or None when rejected; expected problems as
#: (element identifier, message substring or Gated); why). A file expected to be rejected only
#: through gated features deploys once those features run.
EXPECTATIONS: dict[str, tuple[list[str] | None, list[tuple[str | None, str | Gated]], str]] = {
    "c8-js-sdk__Signal.bpmn": (
        None,
        [("StartEvent_1", Gated("signal-start"))],
        "signal start event: signals are unsupported",
    ),
    "c8-js-sdk__zeebe-user-task.bpmn": (
        None,
        [("Activity_1d6heog > extensionElements > userTask", Gated("zeebe-user-task"))],
        "zeebe:userTask (Camunda user task) is unsupported; job-based user tasks are",
    ),
    "camunda-modeler__bar.bpmn": (
        None,
        [
            ("BusinessRuleTask_1", Gated("decision-business-rule-task")),
            ("UserTask_1 > extensionElements > formDefinition", Gated("linked-form")),
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
            ("Activity_1e5gui8", Gated("error-event-sub-process")),
            ("Activity_00ef2n2", Gated("send-task")),
            ("Activity_0h20swu", Gated("decision-business-rule-task")),
        ],
        "INVALID (MANIFEST): service task without job type, as Zeebe says; plus unsupported kinds",
    ),
    "camunda__ModelWalkerTest.bpmn": (
        None,
        [("timer", Gated("timer-intermediate-catch"))],
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
            ("send-task", Gated("send-task")),
            ("script-task", Gated("feel-script-task")),
            ("business-rule-task", Gated("decision-business-rule-task")),
        ],
        "TRICKY (MANIFEST): send/script/business-rule tasks, all unsupported",
    ),
    "connectors__single-webhook-boundary.bpmn": (
        None,
        [("boundary_event", Gated("message-boundary"))],
        "message boundary event",
    ),
    "connectors__single-webhook-subprocess.bpmn": (
        None,
        [
            ("Event_15nnjqo", Gated("escalation-intermediate-throw")),
            ("Event_18ffnpr", Gated("escalation-boundary")),
            ("Gateway_1w4dq6i", Gated("event-based-gateway")),
            ("Event_0tqfqwi", Gated("timer-intermediate-catch")),
            ("webhook_in_subprocess", Gated("message-intermediate-catch")),
        ],
        "escalation, event-based gateway, timer and message events",
    ),
    "easy-zeebe__membership.bpmn": (
        None,
        [
            ("startEvent_MembershipRequested", Gated("message-start")),
            ("userTask_ConfirmMembership > extensionElements > userTask", Gated("zeebe-user-task")),
            ("endEvent_MembershipActivated", Gated("signal-end")),
            ("event_ReminderDue", Gated("timer-boundary")),
            ("event_ConfirmationRejected", Gated("message-boundary")),
            ("endEvent_MembershipDeclined", Gated("compensation-end")),
            ("serviceTask_RevokeClaim", Gated("compensation-handler")),
            ("event_ClaimCompensation", Gated("compensation-boundary")),
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
        [("Gateway_01wr5g0", Gated("inclusive-gateway"))],
        "inclusive gateway",
    ),
    "lib-bpmn-engine__message-intermediate-invalid-timer-event.bpmn": (
        None,
        [("Event_1uc8qla", Gated("timer-intermediate-catch"))],
        "INVALID (MANIFEST): empty timer definition; timers are unsupported here in any case",
    ),
    "lib-bpmn-engine__message-intermediate-timer-event-expression.bpmn": (
        None,
        [
            ("timer1", Gated("timer-intermediate-catch")),
            ("event-based-gateway", Gated("event-based-gateway")),
            ("message", Gated("message-intermediate-catch")),
        ],
        "event-based gateway racing message and timer",
    ),
    "lib-bpmn-engine__ordering-items-workflow.bpmn": (
        None,
        [
            ("Gateway_1p6s0kg", Gated("event-based-gateway")),
            ("payment-received", Gated("message-intermediate-catch")),
            ("wait-10min-timer", Gated("timer-intermediate-catch")),
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
            ("Link-A-Throw", Gated("link-intermediate-throw")),
            ("Link-B-Catch", Gated("link-intermediate-catch")),
        ],
        "INVALID (MANIFEST): unpaired link; link events are unsupported here in any case",
    ),
    "lib-bpmn-engine__subprocess-simple-link-events.bpmn": (
        None,
        [("Sub-Link-A-Catch", Gated("link-intermediate-catch"))],
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
            ("Activity_0sw5ued", Gated("escalation-event-sub-process")),
            ("Event_WaitForEmail", Gated("message-start")),
        ],
        "ad-hoc subprocess, event subprocess, zeebe:userTask, escalation, message start",
    ),
    "process-test-coverage__eventBasedGateway.bpmn": (
        None,
        [
            ("EventBasedGateway", Gated("event-based-gateway")),
            ("SignalEvent", Gated("signal-intermediate-catch")),
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
            ("ConditionalStartEvent_1", Gated("conditional-start")),
            ("BoundaryEvent_1", "Must have exactly one event definition"),
        ],
        "modeler UI fixture: broad coverage, not meant to run",
    ),
    "zeebe-cherry-runtime__LoadTest.bpmn": (
        None,
        [
            ("Activity_Multi_LoadFile > multiInstanceLoopCharacteristics", Gated("multi-instance")),
            ("Gateway_LoadDecision", Gated("inclusive-gateway")),
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
            ("Activity_05mc79l", Gated("message-event-sub-process")),
            ("Activity_1yxzu88", Gated("decision-business-rule-task")),
        ],
        "event subprocess, business rule task, event-based gateway, timers",
    ),
    "zeebe-process-test__alternate-start-end.bpmn": (["alternate-start-end"], [], "start -> end"),
    "zeebe-process-test__automated-tests.bpmn": (
        None,
        [("Activity_1kq2g9a > multiInstanceLoopCharacteristics", Gated("multi-instance"))],
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
            ("prCreated", Gated("message-start")),
            ("Gateway_1wymgxc", Gated("event-based-gateway")),
        ],
        "message start event, event-based gateway",
    ),
    "zeebe-process-test__start-end.bpmn": (["start-end"], [], "start -> end"),
    "zeebe-process-test__test_timer_events.bpmn": (
        None,
        [("TimerEvent_Wait1s", Gated("timer-intermediate-catch"))],
        "timer catch events",
    ),
    "zeebe-process-test__timer-start-event-daily.bpmn": (
        None,
        [("timer", Gated("timer-start"))],
        "timer start event",
    ),
    "zeebe-redis-exporter__process.bpmn": (
        None,
        [
            ("receive-task", Gated("receive-task")),
            ("timer", Gated("timer-boundary")),
        ],
        "TRICKY (MANIFEST): default-namespace BPMN, zeebe prefix 'ns0'; parsed, then receive task and timer rejected",
    ),
    "zeebe-spec__demo2.bpmn": (
        None,
        [("Event_0tf6wgs", Gated("message-intermediate-catch"))],
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
    expected_ids, all_expected_problems, _why = EXPECTATIONS[file_name]
    expected_problems: list[tuple[str | None, str]] = []
    for identifier, fragment in all_expected_problems:
        if not isinstance(fragment, Gated):
            expected_problems.append((identifier, fragment))
        elif gate.is_gated(fragment.feature):
            expected_problems.append((identifier, gate.message(fragment.feature)))
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
    if expected_ids is None:
        # Expected to be rejected only for features the execution has since learned to run.
        assert not expected_problems, f"{file_name} should have been rejected: {expected_problems}"
    else:
        assert [m.bpmn_process_id for m in models] == expected_ids
    for model in models:
        assert model.resource_name == file_name
        assert model.process.start_events  # a none start event, or timer/message/signal ones
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

    Parsed without the gate, nothing is reported: the service task's ns0:taskDefinition and
    input mapping, the receive task's message and the timer were understood.
    """
    name = "zeebe-redis-exporter__process.bpmn"
    (model,) = parse_bpmn(name, (DATA_DIR / name).read_bytes(), check_support=False)
    task = model.element("task")
    assert task.job_type is not None and task.job_type.raw == "test" and task.inputs
    receive = model.element("receive-task")
    assert receive.message is not None and receive.message.correlation_key is not None
    timer = model.element("timer")
    assert timer.timer is not None and timer.timer.expression.raw == "PT1M"


def test_uncontrolled_join_task_has_two_incoming_flows() -> None:
    name = "lib-bpmn-engine__fork-uncontrolled-join.bpmn"
    (model,) = parse_bpmn(name, (DATA_DIR / name).read_bytes())
    merged = [e for e in model.elements_by_id.values() if len(e.incoming) == 2]
    assert len(merged) == 1
    assert merged[0].element_type is ElementType.SERVICE_TASK
