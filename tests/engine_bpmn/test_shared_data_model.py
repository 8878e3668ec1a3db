"""Every real model of ../shared/data/bpmn parses into the typed model (check_support=False:
what the parser reads, before the deployment gate), unless its MANIFEST marks it invalid or
malformed, or Zeebe itself would reject it (listed below with the reason). Invalid and
malformed ones are rejected with messages naming the element, never a crash. pyzeebe 4.7.0's
integration-suite BPMN (its sdist, outside the repo) parses too.

test_shared_data.py checks the same files through the gate (what a deployment gets today).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from engine.bpmn import BpmnValidationError, Element, ElementType, EventType, ProcessModel, parse_bpmn
from engine.bpmn.model import JOB_WORKER_TYPES, SCOPE_TYPES
from tests.engine_bpmn import gate
from tests.requirements import requires
from tests.routing.pyzeebe_suite import SuiteUnavailable, sdist_member

DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "bpmn"
UNSUPPORTED = "not supported by the Fleetflow embedded engine"

#: Files the MANIFEST does not mark invalid, that Zeebe 8.5 would reject too: (element
#: identifier, message fragment) of the problem that says so, and why.
ZEEBE_REJECTS: dict[str, tuple[str | None, str, str]] = {
    "camunda-modeler__bar.bpmn": (
        "BusinessRuleTask_1 > extensionElements > calledDecision",
        "Attribute 'resultVariable' must be present and not empty",
        "zeebe:calledDecision without resultVariable (Zeebe's ZeebeCalledDecision validator requires it)",
    ),
    "connectors__outbound-task-types.bpmn": (
        "send-task",
        "Must have either one 'zeebe:publishMessage' or one 'zeebe:taskDefinition' extension element",
        "TRICKY (MANIFEST): element templates without a job type or script ('Zeebe should reject')",
    ),
    "lib-bpmn-engine__inclusive-gateway-with-condition-and-default.bpmn": (
        "price-gt-zero > conditionExpression",
        "Expected expression but found static value 'price > 0'",
        "a condition without '=' is a static value; Zeebe requires FEEL conditions",
    ),
    "platform-tutorials__AI-Email-Support-Agent.bpmn": (
        "Activity_04glkkx",
        f"Elements of type 'adHocSubProcess' are {UNSUPPORTED}",
        "ad-hoc subprocess (AI agent, Zeebe 8.7+): not part of issues 14/15",
    ),
    "properties-panel__ExecutionListenerProps.bpmn": (
        "ComplexGateway",
        f"Elements of type 'complexGateway' are {UNSUPPORTED}",
        "TRICKY (MANIFEST): complex gateway (Zeebe rejects it) and execution listeners (8.6+)",
    ),
    "properties-panel__ZeebePropertiesProvider.bpmn": (
        "TimerStartEvent_1 > timerEventDefinition",
        "Must be exactly one type of timer",
        "modeler UI fixture, not meant to run: empty timers, tasks without job types (as Zeebe says)",
    ),
    "zeebe-play__is_legal_good.dmn": (None, "Expected a BPMN document", "a DMN resource, not BPMN"),
}

#: Processes in the valid files (check that each file gave the model it should).
EXPECTED_PROCESSES = {
    "easy-zeebe__membership.bpmn": ["miravelo-membership"],
    "zeebe-process-test__pr-created.bpmn": ["prCreatedProcess"],
    "zeebe-play__solos-transport-process.bpmn": ["solos-transport-process"],
}

pytestmark = requires(DATA_DIR.is_dir(), f"shared reference data not present at {DATA_DIR}")


def manifest() -> dict[str, str]:
    """file -> 'INVALID', 'MALFORMED' or '' (MANIFEST.tsv notes start with the mark)."""
    if not DATA_DIR.is_dir():
        return {}
    with (DATA_DIR / "MANIFEST.tsv").open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    marks = {}
    for row in rows:
        notes = row["notes"].lstrip('"')
        marks[row["file"]] = next((mark for mark in ("INVALID", "MALFORMED") if notes.startswith(mark)), "")
    return marks


MARKS = manifest()


def walk(model: ProcessModel) -> list[Element]:
    return list(model.elements_by_id.values())


def assert_typed(model: ProcessModel) -> None:
    """The model is complete: every event carries the typed definition its event type names."""
    for element in walk(model):
        if element.element_type is ElementType.PROCESS:
            assert element.flow_scope is None
            continue
        scope = element.flow_scope
        assert scope is not None and scope.element_type in SCOPE_TYPES and element in scope.children, element
        kind = element.event_type
        catching = element.element_type in (
            ElementType.START_EVENT,
            ElementType.INTERMEDIATE_CATCH_EVENT,
            ElementType.BOUNDARY_EVENT,
        )
        if kind is EventType.TIMER:
            assert element.timer is not None, element
        if kind is EventType.MESSAGE:
            assert element.message is not None, element
            needs_key = element.element_type in (
                ElementType.INTERMEDIATE_CATCH_EVENT,
                ElementType.BOUNDARY_EVENT,
            ) or (
                element.element_type is ElementType.START_EVENT
                and scope.element_type is ElementType.EVENT_SUB_PROCESS
            )
            if needs_key:
                assert element.message.correlation_key is not None, element
            if not catching:
                assert element.is_job_worker, element
        if kind is EventType.SIGNAL:
            assert element.signal is not None, element
        if kind is EventType.LINK:
            assert element.link_name is not None, element
        if kind is EventType.ESCALATION:
            assert element.escalation is not None, element
        if kind is EventType.COMPENSATION:
            assert element.compensation is not None, element
        if element.element_type is ElementType.BOUNDARY_EVENT:
            assert element.attached_to is not None and element in element.attached_to.boundary_events
        if element.element_type is ElementType.RECEIVE_TASK:
            assert element.message is not None and element.message.correlation_key is not None
        if element.element_type in JOB_WORKER_TYPES and element.job_type is not None:
            assert element.is_job_worker and element.job_retries is not None
        if element.element_type is ElementType.EVENT_SUB_PROCESS:
            assert element in scope.event_sub_processes and len(element.start_events) == 1
        for flow in element.outgoing:
            assert flow.source is element and flow in flow.target.incoming


@pytest.mark.parametrize("file_name", sorted(MARKS))
def test_real_model_parses_or_is_rejected_naming_the_element(file_name: str) -> None:
    content = (DATA_DIR / file_name).read_bytes()
    mark = MARKS[file_name]
    try:
        models = parse_bpmn(file_name, content, check_support=False)
    except BpmnValidationError as error:
        found = [(p.element_identifier, p.message) for p in error.problems]
        if mark == "MALFORMED":
            assert [identifier for identifier, _ in found] == [None]
            return
        if mark == "INVALID":
            assert all(identifier is not None for identifier, _ in found), found
            return
        assert file_name in ZEEBE_REJECTS, f"{file_name} should parse:\n{error.zeebe_message()}"
        identifier, fragment, _why = ZEEBE_REJECTS[file_name]
        assert any(i == identifier and fragment in m for i, m in found), found
        return
    assert not mark, f"{file_name} is marked {mark} in the MANIFEST but parsed"
    assert file_name not in ZEEBE_REJECTS, (
        f"{file_name} parsed, but Zeebe rejects it: {ZEEBE_REJECTS[file_name][2]}"
    )
    assert models
    if file_name in EXPECTED_PROCESSES:
        assert [m.bpmn_process_id for m in models] == EXPECTED_PROCESSES[file_name]
    for model in models:
        assert_typed(model)


def test_every_valid_file_but_the_listed_ones_parses() -> None:
    """The exception list stays short and honest: every listed file exists and is not marked."""
    assert set(ZEEBE_REJECTS) <= set(MARKS)
    assert all(MARKS[name] == "" for name in ZEEBE_REJECTS)
    parsed = [name for name, mark in MARKS.items() if not mark and name not in ZEEBE_REJECTS]
    assert len(parsed) >= 25


def test_membership_model_in_detail() -> None:
    """easy-zeebe's membership process: message start, non-interrupting timer cycle boundary,
    compensation boundary with its handler, signal and compensation end events."""
    (model,) = parse_bpmn(
        "m.bpmn", (DATA_DIR / "easy-zeebe__membership.bpmn").read_bytes(), check_support=False
    )
    start = model.element("startEvent_MembershipRequested")
    assert (
        start.event_type is EventType.MESSAGE and start.message is not None and model.none_start_event is None
    )
    reminder = model.element("event_ReminderDue")
    assert reminder.timer is not None and reminder.timer.expression.raw
    compensations = [
        e for e in walk(model) if e.element_type is ElementType.BOUNDARY_EVENT and e.compensation
    ]
    assert [e.compensation_handler.id for e in compensations if e.compensation_handler] == [
        "serviceTask_RevokeClaim"
    ]
    assert model.element("serviceTask_RevokeClaim").is_for_compensation
    assert model.element("endEvent_MembershipActivated").signal is not None


def test_solos_transport_model_in_detail() -> None:
    (model,) = parse_bpmn(
        "s.bpmn", (DATA_DIR / "zeebe-play__solos-transport-process.bpmn").read_bytes(), check_support=False
    )
    (event_sub_process,) = model.process.event_sub_processes
    (start,) = event_sub_process.start_events
    assert start.event_type is EventType.MESSAGE and start.interrupting is False
    rules = [e for e in walk(model) if e.element_type is ElementType.BUSINESS_RULE_TASK]
    assert [r.called_decision_id.raw for r in rules if r.called_decision_id] == ["is_legal_item"]
    multi = [e for e in walk(model) if e.multi_instance is not None]
    assert multi and all(m.multi_instance and m.multi_instance.input_collection.is_feel for m in multi)
    assert any(e.element_type is ElementType.EVENT_BASED_GATEWAY for e in walk(model))


@pytest.fixture(scope="module")
def pyzeebe_test_bpmn(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """pyzeebe's test.bpmn from its verified PyPI sdist (tests/routing/pyzeebe_suite.py)."""
    try:
        return sdist_member(tmp_path_factory.mktemp("pyzeebe-sdist"), "tests/integration/test.bpmn")
    except SuiteUnavailable as error:
        pytest.skip(f"pyzeebe's sdist is unavailable: {error}")


def test_pyzeebe_integration_bpmn_parses_with_its_message_start_event(pyzeebe_test_bpmn: bytes) -> None:
    content = pyzeebe_test_bpmn
    (model,) = parse_bpmn("test.bpmn", content, check_support=False)
    assert model.bpmn_process_id == "test"
    message_start = model.element("Event_0hg01mt")
    assert message_start.event_type is EventType.MESSAGE and message_start.message is not None
    assert message_start.message.name is not None and message_start.message.name.raw == "start_test_process"
    assert model.none_start_event is model.element("StartEvent_1")
    assert [f.source.id for f in model.element("test-task").incoming] == ["StartEvent_1", "Event_0hg01mt"]
    # Through the gate (a deployment) it is refused until message start events run.
    if not gate.is_gated("message-start"):
        parse_bpmn("test.bpmn", content)
        return
    with pytest.raises(BpmnValidationError) as caught:
        parse_bpmn("test.bpmn", content)
    assert [(p.element_identifier, p.message) for p in caught.value.problems] == gate.expected(
        [("Event_0hg01mt", "message-start")]
    )
