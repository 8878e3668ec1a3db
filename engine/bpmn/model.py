"""The in-memory process model the embedded engine executes.

`engine.bpmn.parser.parse_bpmn` turns a deployed BPMN resource into one `ProcessModel` per
executable process. The runtime only ever reads these objects: they are built once at deploy
time, never mutated afterwards, and may be shared between partitions and threads.

Names follow Zeebe's own terms (reference/zeebe-protocol.md §3.6): `ElementType` values are the
`BpmnElementType` names and `EventType` values the `BpmnEventType` names that go verbatim into
PROCESS_INSTANCE records (`bpmnElementType`, `bpmnEventType`).

Stability contract (the runtime codes against this file): fields are only ever added, never
renamed or removed.

Graph shape:
- every flow node (`Element`) knows its `flow_scope` (the enclosing PROCESS, SUB_PROCESS or
  EVENT_SUB_PROCESS element; None for the PROCESS element itself), its `incoming` and
  `outgoing` sequence flows;
- a scope (PROCESS, SUB_PROCESS, EVENT_SUB_PROCESS) lists its direct `children` (flow nodes,
  boundary events and event subprocesses included), its `start_events` (all kinds), its
  `none_start_event`, its `event_sub_processes` and its `link_catch_events` by name;
- an activity lists its `boundary_events`; a boundary event points back via `attached_to`.
  A boundary event's `flow_scope` is the scope that contains the activity it is attached to
  (as in Zeebe: the boundary event is a sibling of its activity);
- an event carries its definition in one typed field: `timer`, `message`, `signal`,
  `escalation`, `link_name`, `compensation`, or the error fields; `event_type` says which.
  Message throw events, send tasks and job-based script/business-rule tasks have a `job_type`
  (`is_job_worker`); an activity may have `multi_instance`.

The object graph is cyclic, so `Element` and `SequenceFlow` compare by identity and print
only their ids.

What the deployment accepts is narrower than what the model holds: `engine.bpmn.support`
rejects elements the execution does not run yet (`parse_bpmn(..., check_support=False)` gives
the whole model, for tools and for building the execution of a new element).

Execution notes for the runtime (what validation guarantees and what it leaves open):
- every SUB_PROCESS has a `none_start_event`; a PROCESS has at most one, and at least one
  start event of any kind (timer, message, signal start events only: `none_start_event` is
  None); an EVENT_SUB_PROCESS has exactly one start event, typed (timer, message, error,
  signal, escalation), with `interrupting`;
- `outgoing` is in document order of the sequenceFlow elements (the exclusive gateway takes
  the first flow whose condition is true, else `default_flow`; the inclusive gateway takes
  every flow whose condition is true, else `default_flow`);
- a flow node without outgoing flows ends its path (implicit end, as in Zeebe); a node
  without incoming flows (other than start and boundary events) is accepted and never reached;
- conditions exist only on flows leaving an exclusive or inclusive gateway, and are always
  FEEL; every non-default flow of such a gateway with several outgoing flows has one;
- an event-based gateway has at least two outgoing flows, each to a message, timer or signal
  intermediate catch event that has no other incoming flow;
- `inputs` occur only on activities (tasks, SUB_PROCESS, EVENT_SUB_PROCESS, CALL_ACTIVITY) and
  throw events; `outputs` also on catching events; output sources are always FEEL;
- error boundary events are interrupting and attached to an activity of the same scope; at
  most one catch-all and one per errorCode per activity (likewise for escalations, and for
  the start events of the event subprocesses of one scope); message and signal names are
  unique among the boundary events of an activity, the targets of an event-based gateway and
  the start events of a scope;
- timers: a static value has been parsed at deploy time (`engine.bpmn.timers`); an
  intermediate catch event's timer is a duration or a date; an interrupting boundary or
  event-subprocess timer is not a cycle;
- a catching message (not a start event) has a FEEL `correlation_key`; a message start event
  or signal start event whose name is FEEL evaluated to a string without variables;
- every link throw event has a catch event of its name in its scope;
- a compensation boundary event has no outgoing flow and a `compensation_handler`; a handler
  (`is_for_compensation`) has no flows and no boundary events.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from collections.abc import Mapping as TypingMapping


class ElementType(enum.StrEnum):
    """Zeebe's `BpmnElementType` names (reference §3.6). Only some are executable here."""

    UNSPECIFIED = "UNSPECIFIED"
    PROCESS = "PROCESS"
    SUB_PROCESS = "SUB_PROCESS"
    EVENT_SUB_PROCESS = "EVENT_SUB_PROCESS"
    START_EVENT = "START_EVENT"
    INTERMEDIATE_CATCH_EVENT = "INTERMEDIATE_CATCH_EVENT"
    INTERMEDIATE_THROW_EVENT = "INTERMEDIATE_THROW_EVENT"
    BOUNDARY_EVENT = "BOUNDARY_EVENT"
    END_EVENT = "END_EVENT"
    SERVICE_TASK = "SERVICE_TASK"
    RECEIVE_TASK = "RECEIVE_TASK"
    USER_TASK = "USER_TASK"
    MANUAL_TASK = "MANUAL_TASK"
    TASK = "TASK"
    EXCLUSIVE_GATEWAY = "EXCLUSIVE_GATEWAY"
    PARALLEL_GATEWAY = "PARALLEL_GATEWAY"
    EVENT_BASED_GATEWAY = "EVENT_BASED_GATEWAY"
    INCLUSIVE_GATEWAY = "INCLUSIVE_GATEWAY"
    SEQUENCE_FLOW = "SEQUENCE_FLOW"
    MULTI_INSTANCE_BODY = "MULTI_INSTANCE_BODY"
    CALL_ACTIVITY = "CALL_ACTIVITY"
    BUSINESS_RULE_TASK = "BUSINESS_RULE_TASK"
    SCRIPT_TASK = "SCRIPT_TASK"
    SEND_TASK = "SEND_TASK"


class EventType(enum.StrEnum):
    """Zeebe's `BpmnEventType` names. Non-event elements carry UNSPECIFIED (reference §3.6)."""

    UNSPECIFIED = "UNSPECIFIED"
    CONDITIONAL = "CONDITIONAL"
    ERROR = "ERROR"
    ESCALATION = "ESCALATION"
    LINK = "LINK"
    MESSAGE = "MESSAGE"
    NONE = "NONE"
    SIGNAL = "SIGNAL"
    TERMINATE = "TERMINATE"
    TIMER = "TIMER"
    COMPENSATION = "COMPENSATION"


#: Element types that own child elements and a variable scope of their own.
SCOPE_TYPES = frozenset({ElementType.PROCESS, ElementType.SUB_PROCESS, ElementType.EVENT_SUB_PROCESS})

#: Element types that create a job when activated (when they have a `job_type`: a script or
#: business rule task may instead be FEEL- or DMN-based, a message throw event is always a job).
JOB_WORKER_TYPES = frozenset(
    {
        ElementType.SERVICE_TASK,
        ElementType.USER_TASK,
        ElementType.SEND_TASK,
        ElementType.SCRIPT_TASK,
        ElementType.BUSINESS_RULE_TASK,
        ElementType.INTERMEDIATE_THROW_EVENT,
        ElementType.END_EVENT,
    }
)

#: Element types to which boundary events may be attached (Zeebe's activities, without the
#: event subprocess).
ACTIVITY_TYPES = frozenset(
    {
        ElementType.SERVICE_TASK,
        ElementType.USER_TASK,
        ElementType.MANUAL_TASK,
        ElementType.TASK,
        ElementType.SUB_PROCESS,
        ElementType.CALL_ACTIVITY,
        ElementType.RECEIVE_TASK,
        ElementType.SEND_TASK,
        ElementType.SCRIPT_TASK,
        ElementType.BUSINESS_RULE_TASK,
    }
)

#: Element types that may carry multiInstanceLoopCharacteristics (every activity).
MULTI_INSTANCE_TYPES = ACTIVITY_TYPES

#: Task types Zeebe accepts as compensation handlers (CompensationTaskValidator).
COMPENSATION_HANDLER_TYPES = frozenset(
    {
        ElementType.SERVICE_TASK,
        ElementType.USER_TASK,
        ElementType.SEND_TASK,
        ElementType.SCRIPT_TASK,
        ElementType.MANUAL_TASK,
        ElementType.TASK,
    }
)

#: Job type of a job-based user task (reference §5.2 "User tasks").
USER_TASK_JOB_TYPE = "io.camunda.zeebe:userTask"

#: Reserved custom-header names of a job-based user task (Zeebe `Protocol.USER_TASK_*_HEADER_NAME`).
USER_TASK_ASSIGNEE_HEADER = "io.camunda.zeebe:assignee"
USER_TASK_CANDIDATE_GROUPS_HEADER = "io.camunda.zeebe:candidateGroups"
USER_TASK_CANDIDATE_USERS_HEADER = "io.camunda.zeebe:candidateUsers"
USER_TASK_FORM_KEY_HEADER = "io.camunda.zeebe:formKey"
USER_TASK_DUE_DATE_HEADER = "io.camunda.zeebe:dueDate"
USER_TASK_FOLLOW_UP_DATE_HEADER = "io.camunda.zeebe:followUpDate"

#: Default job retries when zeebe:taskDefinition has no `retries` (reference §5.1).
DEFAULT_JOB_RETRIES = "3"

#: Retries of a job-based user task's job (Zeebe UserTaskTransformer: `StaticExpression("1")`).
USER_TASK_JOB_RETRIES = "1"


class HeaderEvaluationError(ValueError):
    """A user-task assignment/schedule expression gave a value of the wrong type."""


def list_literal(items: list[str]) -> str:
    """Zeebe's header encoding of candidate groups/users: `["a","b"]` (JSON, no spaces)."""
    return json.dumps(items, separators=(",", ":"), ensure_ascii=False)


def format_user_task_header(header_name: str, value: Any, expression: Expression) -> str | None:
    """Encode an evaluated assignment/schedule value as a header string; None omits it."""
    if value is None or value == "":
        return None
    if header_name in (USER_TASK_CANDIDATE_GROUPS_HEADER, USER_TASK_CANDIDATE_USERS_HEADER):
        if isinstance(value, str):
            # a static value arrives here only through a FEEL string; treat it like the CSV form
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise HeaderEvaluationError(
                f"Expected result of the expression '{expression.text}' to be 'ARRAY' "
                f"of strings, but was '{value!r}'."
            )
        return list_literal(value)
    if isinstance(value, datetime):  # a FEEL date and time for dueDate/followUpDate
        return value.isoformat()
    if not isinstance(value, str):
        raise HeaderEvaluationError(
            f"Expected result of the expression '{expression.text}' to be 'STRING', but was '{value!r}'."
        )
    return value


@dataclass(frozen=True, slots=True)
class Expression:
    """A Zeebe expression attribute: static text, or FEEL when it starts with `=`.

    `raw` is the attribute text exactly as written. `text` is what gets evaluated: the FEEL
    source without the leading `=` for FEEL, or the literal itself for a static value.
    `compiled` holds the compiled FEEL expression (an `engine.feel` CompiledExpression) the
    parser made; it is None for static values and for expressions built by hand (then
    `evaluate` uses the cached compilation of `text`).
    """

    raw: str
    compiled: Any = field(default=None, compare=False, repr=False)

    @property
    def is_feel(self) -> bool:
        """True for a FEEL expression.

        Zeebe's FeelExpressionLanguage matches the whole text against `=(.+)` (DOTALL): the
        `=` must be the very first character and at least one character must follow it.
        Attribute values are taken verbatim (no trimming); the parser trims element text
        such as a conditionExpression body first, as the BPMN model API does.
        """
        return len(self.raw) > 1 and self.raw.startswith("=")

    @property
    def is_static(self) -> bool:
        return not self.is_feel

    @property
    def text(self) -> str:
        """FEEL source without the `=` marker, or the static literal unchanged."""
        if self.is_feel:
            return self.raw[1:]
        return self.raw

    def evaluate(self, variables: TypingMapping[str, Any]) -> Any:
        """Return the static literal (a str), or the JSON value the FEEL expression yields.

        Raises whatever `engine.feel` raises for a failing evaluation; the caller turns that
        into an incident (IO_MAPPING_ERROR, CONDITION_ERROR, ...).
        """
        if not self.is_feel:
            return self.raw
        compiled = self.compiled
        if compiled is None:
            # Built by hand, not by the parser: compile_expression caches by text, so the
            # frozen Expression itself never changes.
            from engine.feel import compile_expression

            compiled = compile_expression(self.text)
        return compiled.evaluate(dict(variables))

    @classmethod
    def static(cls, value: str) -> Expression:
        """A static (non-FEEL) expression, e.g. a default such as retries "3"."""
        return cls(raw=value)


@dataclass(frozen=True, slots=True)
class Mapping:
    """One zeebe:input or zeebe:output entry: evaluate `source`, write it to `target`.

    `target` may be a dotted path (`order.customer.name`); missing parents are created
    (reference §5.2 "Variables").
    """

    source: Expression
    target: str


class TimerKind(enum.StrEnum):
    """Which child of a bpmn:timerEventDefinition holds the timer (its tag name)."""

    DURATION = "timeDuration"
    DATE = "timeDate"
    CYCLE = "timeCycle"


@dataclass(frozen=True, slots=True)
class TimerDefinition:
    """A timer event definition: one of duration, date or cycle, static or FEEL.

    `engine.bpmn.timers` turns the (evaluated) text into a due date: `parse_duration`,
    `parse_date`, `parse_cycle`. A static value has been checked at deploy time; so has a FEEL
    one on a process-level timer start event (Zeebe evaluates those at deploy, without variables).
    """

    kind: TimerKind
    expression: Expression


@dataclass(frozen=True, slots=True)
class MessageDefinition:
    """The bpmn:message an event or receive task refers to (reference §5.2 "Messages").

    `name` may be FEEL (for start events evaluated at deploy time without variables).
    `correlation_key` (zeebe:subscription, always FEEL) is set on catching elements other than
    message start events, where Zeebe requires it; None on start events and throw events.
    `message_ref` is the id of the bpmn:message; None for a job-based throw event without one.
    """

    message_ref: str | None
    name: Expression | None
    correlation_key: Expression | None = None


@dataclass(frozen=True, slots=True)
class SignalDefinition:
    """The bpmn:signal of a signal event; `name` may be FEEL (start events: no variables)."""

    signal_ref: str
    name: Expression


@dataclass(frozen=True, slots=True)
class EscalationDefinition:
    """An escalation event definition.

    On a throw event (intermediate throw, end) `code` is the escalationCode (static or FEEL).
    On a catch event (boundary, event subprocess start) `code` is static or None: None means
    catch-all (no escalationRef), as for errors.
    """

    escalation_ref: str | None
    code: Expression | None


@dataclass(eq=False, slots=True)
class CompensationDefinition:
    """A compensateEventDefinition.

    On a throw event: `activity` is the referenced activity to compensate (None: compensate
    every completed activity of the scope), `wait_for_completion` is always True in Zeebe.
    On a boundary event both are unset; the handler is `Element.compensation_handler`.
    """

    activity_ref: str | None = None
    activity: Element | None = field(default=None, repr=False)
    wait_for_completion: bool = True


@dataclass(frozen=True, slots=True)
class MultiInstance:
    """multiInstanceLoopCharacteristics with zeebe:loopCharacteristics (reference §5.1).

    `input_collection` is FEEL; `input_element` and `output_collection` are variable names;
    `output_element` is FEEL; `completion_condition` is the bpmn:completionCondition (FEEL).
    The runtime wraps the activity in a MULTI_INSTANCE_BODY element instance, as Zeebe does.
    """

    is_sequential: bool
    input_collection: Expression
    input_element: str | None = None
    output_collection: str | None = None
    output_element: Expression | None = None
    completion_condition: Expression | None = None


@dataclass(eq=False, slots=True)
class SequenceFlow:
    """A bpmn:sequenceFlow. Compared by identity; `condition` is None when there is none."""

    id: str
    name: str | None
    source: Element = field(repr=False)
    target: Element = field(repr=False)
    flow_scope: Element = field(repr=False)
    condition: Expression | None = None

    element_type = ElementType.SEQUENCE_FLOW

    def __repr__(self) -> str:
        return f"SequenceFlow({self.id!r}: {self.source.id!r} -> {self.target.id!r})"


@dataclass(eq=False, slots=True)
class Element:
    """A flow node or scope of an executable process (an `ElementType` other than SEQUENCE_FLOW).

    Fields that do not apply to an element type keep their defaults (empty list, None...).
    """

    id: str
    name: str | None
    element_type: ElementType
    event_type: EventType = EventType.UNSPECIFIED
    #: Enclosing PROCESS or SUB_PROCESS element; None only for the PROCESS element.
    flow_scope: Element | None = field(default=None, repr=False)
    incoming: list[SequenceFlow] = field(default_factory=list, repr=False)
    outgoing: list[SequenceFlow] = field(default_factory=list, repr=False)

    # --- scopes (PROCESS, SUB_PROCESS) ------------------------------------------------------
    #: Direct child flow nodes in document order (boundary events included).
    children: list[Element] = field(default_factory=list, repr=False)
    #: The single none start event of this scope (None only where validation allowed none).
    none_start_event: Element | None = field(default=None, repr=False)

    # --- variable mappings (zeebe:ioMapping), in document order ----------------------------
    inputs: list[Mapping] = field(default_factory=list, repr=False)
    outputs: list[Mapping] = field(default_factory=list, repr=False)

    # --- jobs (SERVICE_TASK, job-based USER_TASK) -----------------------------------------
    #: zeebe:taskDefinition type; for a user task the static `io.camunda.zeebe:userTask`.
    job_type: Expression | None = None
    #: zeebe:taskDefinition retries (default static "3"); the runtime converts to int. A
    #: job-based user task gets static "1", as Zeebe's UserTaskTransformer sets.
    job_retries: Expression | None = None
    #: zeebe:taskHeaders in document order, plus the reserved user-task headers.
    task_headers: dict[str, str] = field(default_factory=dict, repr=False)

    # --- user task assignment (job-based USER_TASK) -----------------------------------------
    #: zeebe:assignmentDefinition / zeebe:taskSchedule attributes written as FEEL, by reserved
    #: header name (`io.camunda.zeebe:assignee`...). Static ones are not here: they are already
    #: encoded in `task_headers`. The FEEL ones are evaluated per job at activation;
    #: `job_custom_headers(variables)` does that and encodes the values as Zeebe does.
    user_task_header_expressions: dict[str, Expression] = field(default_factory=dict, repr=False)
    #: USER_TASK with zeebe:userTask: a Zeebe user task (no job; `job_type` is None).
    zeebe_user_task: bool = False
    #: zeebe:formDefinition formId / externalReference (linked forms, 8.5+).
    form_id: str | None = None
    external_form_reference: str | None = None

    # --- call activities ------------------------------------------------------------------
    called_process_id: Expression | None = None
    propagate_all_child_variables: bool = True
    propagate_all_parent_variables: bool = True

    # --- gateways ---------------------------------------------------------------------------
    #: Exclusive gateway `default` flow (one of `outgoing`), or None.
    default_flow: SequenceFlow | None = field(default=None, repr=False)

    # --- boundary events ------------------------------------------------------------------
    #: Boundary events attached to this activity, in document order.
    boundary_events: list[Element] = field(default_factory=list, repr=False)
    #: For a BOUNDARY_EVENT: the activity it is attached to.
    attached_to: Element | None = field(default=None, repr=False)
    #: For a BOUNDARY_EVENT: cancelActivity (interrupting). Error boundaries are always True.
    cancel_activity: bool = True

    # --- error events (ERROR boundary event, ERROR end event, ERROR start event of an
    # --- event subprocess) -----------------------------------------------------------------
    #: Static errorCode. For an error catch event None means catch-all (no errorRef).
    #: For an error end event with a FEEL errorCode it is None: use `error_code_expression`.
    error_code: str | None = None
    #: For an ERROR end event: its errorCode as an expression (static or FEEL).
    error_code_expression: Expression | None = None
    #: The id of the referenced bpmn:error, if any.
    error_ref: str | None = None

    # --- event definitions (part 2) ------------------------------------------------------
    #: MESSAGE events and RECEIVE_TASK: the message (None on other elements).
    message: MessageDefinition | None = None
    #: TIMER events: the timer.
    timer: TimerDefinition | None = None
    #: SIGNAL events: the signal.
    signal: SignalDefinition | None = None
    #: ESCALATION events: the escalation.
    escalation: EscalationDefinition | None = None
    #: LINK intermediate catch/throw events: the link name (throw jumps to the catch event
    #: with this name in the same scope: `flow_scope.link_catch_events[name]`).
    link_name: str | None = None
    #: COMPENSATION events: the compensate event definition.
    compensation: CompensationDefinition | None = None
    #: Start events of an EVENT_SUB_PROCESS: isInterrupting (BPMN default True). Other start
    #: events keep True. Boundary events use `cancel_activity`.
    interrupting: bool = True

    # --- scopes (part 2) ---------------------------------------------------------------------
    #: Every start event of this scope (typed ones included), in document order.
    start_events: list[Element] = field(default_factory=list, repr=False)
    #: EVENT_SUB_PROCESS children of this scope, in document order (also in `children`).
    event_sub_processes: list[Element] = field(default_factory=list, repr=False)
    #: LINK intermediate catch events of this scope by link name.
    link_catch_events: dict[str, Element] = field(default_factory=dict, repr=False)

    # --- activities (part 2) ----------------------------------------------------------------
    #: multiInstanceLoopCharacteristics, or None for a single-instance activity.
    multi_instance: MultiInstance | None = None
    #: isForCompensation="true": a compensation handler, started only by compensation.
    is_for_compensation: bool = False
    #: For a COMPENSATION BOUNDARY_EVENT: the handler its association points to.
    compensation_handler: Element | None = field(default=None, repr=False)
    #: FEEL-based SCRIPT_TASK: zeebe:script expression (job-based script tasks use job_type).
    script_expression: Expression | None = None
    #: zeebe:script / zeebe:calledDecision resultVariable.
    result_variable: str | None = None
    #: DMN-based BUSINESS_RULE_TASK: zeebe:calledDecision decisionId (static or FEEL).
    called_decision_id: Expression | None = None

    @property
    def is_scope(self) -> bool:
        return self.element_type in SCOPE_TYPES

    def job_custom_headers(self, variables: TypingMapping[str, Any]) -> dict[str, str]:
        """The `customHeaders` of this element's job: `task_headers` plus the user-task
        assignment/schedule headers whose FEEL expressions are evaluated now.

        Raises `HeaderEvaluationError` when such an expression yields a value of the wrong
        type (Zeebe raises an incident at activation then); FEEL failures propagate as is.
        """
        headers = dict(self.task_headers)
        for header_name, expression in self.user_task_header_expressions.items():
            value = expression.evaluate(variables)
            formatted = format_user_task_header(header_name, value, expression)
            if formatted is not None:
                headers[header_name] = formatted
        return headers

    @property
    def is_job_worker(self) -> bool:
        """True for elements that create a job: service and user tasks, and job-based send,
        script and business rule tasks and message throw/end events (they have a job type)."""
        return self.job_type is not None and self.element_type in JOB_WORKER_TYPES

    @property
    def is_event_sub_process(self) -> bool:
        return self.element_type is ElementType.EVENT_SUB_PROCESS

    def __repr__(self) -> str:
        return f"Element({self.element_type.value} {self.id!r})"


@dataclass(eq=False, slots=True)
class ProcessModel:
    """One executable bpmn:process of a deployed resource.

    `process` is the PROCESS element (its id is `bpmn_process_id`); `elements_by_id` holds
    every flow node including the PROCESS element, `flows_by_id` every sequence flow.
    `resource`/`checksum` describe the whole resource the process came from (Zeebe's PROCESS
    record carries the resource bytes and the MD5 `checksum` of the resource, reference §3.4).
    """

    bpmn_process_id: str
    name: str | None
    version_tag: str | None
    resource_name: str
    process: Element = field(repr=False)
    elements_by_id: dict[str, Element] = field(repr=False)
    flows_by_id: dict[str, SequenceFlow] = field(repr=False)
    resource: bytes = field(default=b"", repr=False)
    checksum: bytes = field(default=b"", repr=False)

    @property
    def none_start_event(self) -> Element | None:
        """The process-level none start event (CreateProcessInstance starts here)."""
        return self.process.none_start_event

    def start_events_of(self, event_type: EventType) -> list[Element]:
        """The process-level start events of one kind (TIMER, MESSAGE, SIGNAL...), in document
        order: what a deployment subscribes (timer and message start events are scheduled or
        opened when the process is deployed, reference §5.2)."""
        return [start for start in self.process.start_events if start.event_type is event_type]

    def element(self, element_id: str) -> Element:
        """The flow node with that id; KeyError if unknown."""
        return self.elements_by_id[element_id]

    def flow(self, flow_id: str) -> SequenceFlow:
        """The sequence flow with that id; KeyError if unknown."""
        return self.flows_by_id[flow_id]

    def contains(self, element_id: str) -> bool:
        """True if `element_id` names a flow node or a sequence flow of this process."""
        return element_id in self.elements_by_id or element_id in self.flows_by_id
