"""BPMN documents for tests, built from a few parts.

sequence_process("order", "reserve", "ship")      # start -> task(reserve) -> task(ship) -> end
process_xml("p", body)                             # any hand-written flow nodes and flows
service_task("t", "job-type", "f1", "f2"), flow("f1", "start", "t")
START + end_event("end", "f0")                     # none start event "start" -> f0, end event
catch_event("wait", "f0", "f1", timer_definition("timeDuration", "PT1S"))
boundary_event("late", "task", "f2", definition, interrupting=False)
node("inclusiveGateway", "fork", ["f0"], ["fa", "fb"])  # any element, inner content first

The event builders take the event definition as a full XML string (`definition`) and place it
after the sequence flows, in the BPMN schema's order; `node` places its `inner` content before
them, which the engine's parser accepts as well (the tests that use it deploy it that way).
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="defs" targetNamespace="http://fleetflow.test">
"""


def process_xml(process_id: str, body: str, extra: str = "") -> bytes:
    """One executable process whose content is `body`; `extra` goes before it (messages, errors)."""
    return (
        f'{HEADER}{extra}<bpmn:process id={quoteattr(process_id)} isExecutable="true">{body}</bpmn:process>'
        "</bpmn:definitions>"
    ).encode()


def service_task(
    task_id: str, job_type: str, incoming: str, outgoing: str, *, extension: str = "", retries: str = "3"
) -> str:
    return (
        f"<bpmn:serviceTask id={quoteattr(task_id)}><bpmn:extensionElements>"
        f"<zeebe:taskDefinition type={quoteattr(job_type)} retries={quoteattr(retries)}/>{extension}"
        f"</bpmn:extensionElements><bpmn:incoming>{incoming}</bpmn:incoming>"
        f"<bpmn:outgoing>{outgoing}</bpmn:outgoing></bpmn:serviceTask>"
    )


def flow(flow_id: str, source: str, target: str, condition: str | None = None) -> str:
    if condition is None:
        return f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}"/>'
    return (
        f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}">'
        f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}</bpmn:conditionExpression>'
        "</bpmn:sequenceFlow>"
    )


def sequence_process(process_id: str, *job_types: str, retries: str = "3", comment: str = "") -> bytes:
    """start -> one service task per job type (ids task1, task2, ...) -> end. A `comment` changes
    the content only, so deploying it again makes a new version."""
    nodes = ['<bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>']
    flows = []
    previous = "start"
    for index, job_type in enumerate(job_types, start=1):
        task_id = f"task{index}"
        nodes.append(service_task(task_id, job_type, f"f{index - 1}", f"f{index}", retries=retries))
        flows.append(flow(f"f{index - 1}", previous, task_id))
        previous = task_id
    last = len(job_types)
    nodes.append(f'<bpmn:endEvent id="end"><bpmn:incoming>f{last}</bpmn:incoming></bpmn:endEvent>')
    flows.append(flow(f"f{last}", previous, "end"))
    extra = f"<!-- {comment} -->" if comment else ""
    return process_xml(process_id, "".join(nodes + flows), extra)


def start_event(element_id: str = "start", outgoing: str = "f0", *, definition: str = "") -> str:
    return (
        f'<bpmn:startEvent id="{element_id}"><bpmn:outgoing>{outgoing}</bpmn:outgoing>{definition}'
        "</bpmn:startEvent>"
    )


# The none start event most processes begin with: "start", leaving by flow f0.
START = start_event()

TERMINATE = "<bpmn:terminateEventDefinition/>"


def end_event(end_id: str, incoming: str, definition: str = "") -> str:
    return (
        f'<bpmn:endEvent id="{end_id}"><bpmn:incoming>{incoming}</bpmn:incoming>{definition}</bpmn:endEvent>'
    )


def catch_event(event_id: str, incoming: str, outgoing: str, definition: str) -> str:
    return (
        f'<bpmn:intermediateCatchEvent id="{event_id}"><bpmn:incoming>{incoming}</bpmn:incoming>'
        f"<bpmn:outgoing>{outgoing}</bpmn:outgoing>{definition}</bpmn:intermediateCatchEvent>"
    )


def throw_event(event_id: str, incoming: str, outgoing: str, definition: str = "") -> str:
    return (
        f'<bpmn:intermediateThrowEvent id="{event_id}"><bpmn:incoming>{incoming}</bpmn:incoming>'
        f"<bpmn:outgoing>{outgoing}</bpmn:outgoing>{definition}</bpmn:intermediateThrowEvent>"
    )


def boundary_event(
    boundary_id: str, attached: str, outgoing: str, definition: str, *, interrupting: bool = True
) -> str:
    cancel = "" if interrupting else ' cancelActivity="false"'
    return (
        f'<bpmn:boundaryEvent id="{boundary_id}" attachedToRef="{attached}"{cancel}>'
        f"<bpmn:outgoing>{outgoing}</bpmn:outgoing>{definition}</bpmn:boundaryEvent>"
    )


def timer_definition(kind: str, value: str) -> str:
    """`kind` is timeDuration, timeCycle or timeDate; `value` an ISO 8601 text, a cron or a FEEL expression."""
    return (
        f'<bpmn:timerEventDefinition><bpmn:{kind} xsi:type="bpmn:tFormalExpression">{value}</bpmn:{kind}>'
        "</bpmn:timerEventDefinition>"
    )


def node(
    tag: str, node_id: str, incoming: list[str], outgoing: list[str], inner: str = "", attrs: str = ""
) -> str:
    """Any element `<bpmn:{tag}>`: `inner` (event definition, extension elements, a sub-process body)
    comes before its sequence flows; `attrs` is raw attribute text with its leading space."""
    flows = "".join(f"<bpmn:incoming>{f}</bpmn:incoming>" for f in incoming)
    flows += "".join(f"<bpmn:outgoing>{f}</bpmn:outgoing>" for f in outgoing)
    return f'<bpmn:{tag} id="{node_id}"{attrs}>{inner}{flows}</bpmn:{tag}>'
