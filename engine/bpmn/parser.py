"""Turn a deployed BPMN resource into `ProcessModel`s, or reject it the way Zeebe would.

`parse_bpmn(resource_name, content)` reads the XML safely (`safe_xml`), builds one model per
executable process, then runs the structural checks of `validation`. Every problem found is
collected, so the client sees all of them at once, and is reported as a `BpmnValidationError`
naming the element (reference/zeebe-protocol.md §1.3 DeployResource: INVALID_ARGUMENT).

What is read into the model (everything else inside an executable process is rejected as
unsupported, never silently skipped):
- processes (`isExecutable="true"`; others are documentation and are not read or validated),
- start events (none, timer, message, signal; in event subprocesses also error and escalation),
  intermediate catch events (message, timer, signal, link), intermediate throw events (none,
  message, signal, escalation, link, compensation), boundary events (timer, message, error,
  signal, escalation, compensation; cancelActivity), end events (none, terminate, error,
  message, signal, escalation, compensation),
- service tasks, job-based user tasks, manual and undefined tasks, receive tasks, send tasks,
  script tasks (zeebe:script or job-based), business rule tasks (zeebe:calledDecision or
  job-based), compensation handlers (isForCompensation) and compensation associations,
- exclusive, parallel, inclusive and event-based gateways, embedded subprocesses, event
  subprocesses, call activities (zeebe:calledElement), multi-instance loop characteristics,
- zeebe:ioMapping, zeebe:taskHeaders, zeebe:assignmentDefinition, zeebe:taskSchedule,
  zeebe:formDefinition formKey, zeebe:versionTag, zeebe:subscription, zeebe:loopCharacteristics,
  zeebe:script, zeebe:calledDecision.
Reading is not running: `engine.bpmn.support` rejects, at deployment, what the execution
cannot run yet ("... not supported by the Fleetflow embedded engine").
Elements and attributes of foreign namespaces (camunda 7, modeler, custom) are ignored, as
Zeebe ignores them; BPMN DI is ignored.

Deliberate differences from Zeebe, all towards giving a clear error instead of a broken run:
- a sequence flow must connect two elements of the scope it is declared in;
- a referenced bpmn:error of an error boundary event must have an errorCode;
- incoming/outgoing flows are taken from the sequenceFlow sourceRef/targetRef (the
  `bpmn:incoming`/`bpmn:outgoing` children are redundant copies and are not read);
- non-executable processes are not validated (Zeebe validates them and rejects e.g. a service
  task without a job type there too).
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable

from engine.bpmn import expressions, support, validation
from engine.bpmn.errors import BpmnValidationError, Problem
from engine.bpmn.events import EventReader
from engine.bpmn.model import (
    ACTIVITY_TYPES,
    DEFAULT_JOB_RETRIES,
    MULTI_INSTANCE_TYPES,
    USER_TASK_ASSIGNEE_HEADER,
    USER_TASK_CANDIDATE_GROUPS_HEADER,
    USER_TASK_CANDIDATE_USERS_HEADER,
    USER_TASK_DUE_DATE_HEADER,
    USER_TASK_FOLLOW_UP_DATE_HEADER,
    USER_TASK_FORM_KEY_HEADER,
    USER_TASK_JOB_RETRIES,
    USER_TASK_JOB_TYPE,
    Element,
    ElementType,
    EventType,
    Expression,
    Mapping,
    MultiInstance,
    ProcessModel,
    SequenceFlow,
    list_literal,
)
from engine.bpmn.safe_xml import MAX_RESOURCE_BYTES, XmlRejection, parse_xml
from engine.bpmn.xml_access import BPMN_NS, ZEEBE_NS, bpmn_children, is_true, split, zeebe_extensions

#: Resource names the engine treats as BPMN (Zeebe: `.bpmn` and `.xml`).
BPMN_RESOURCE_SUFFIXES = (".bpmn", ".xml")

#: Zeebe's reserved custom-header prefix (Protocol.RESERVED_HEADER_NAME_PREFIX).
RESERVED_HEADER_PREFIX = "io.camunda.zeebe:"

_ENGINE = "the Fleetflow embedded engine"

# xs:ID / NCName, simplified to the characters that occur in practice plus unicode letters.
_NCNAME = re.compile(r"[^\W\d][\w.\-]*")

# BPMN children of a process or subprocess that carry no execution semantics.
_IGNORED_SCOPE_CHILDREN = frozenset(
    {
        "documentation",
        "extensionElements",
        "laneSet",
        "textAnnotation",
        "group",
        "dataObject",
        "dataObjectReference",
        "dataStoreReference",
        "property",
        "ioSpecification",
        "auditing",
        "monitoring",
        "incoming",
        "outgoing",
        "supportedInterfaceRef",
        "correlationSubscription",
        "resourceRole",
        "performer",
        "humanPerformer",
        "potentialOwner",
        # children of an activity that is itself a scope (subprocess); read per activity
        "multiInstanceLoopCharacteristics",
        "standardLoopCharacteristics",
        "dataInputAssociation",
        "dataOutputAssociation",
        "completionCondition",
    }
)

# Zeebe extension elements we read somewhere, or that only annotate (ignored everywhere).
_ZEEBE_READ = frozenset(
    {
        "taskDefinition",
        "ioMapping",
        "taskHeaders",
        "calledElement",
        "assignmentDefinition",
        "taskSchedule",
        "formDefinition",
        "versionTag",
        "loopCharacteristics",
        "calledDecision",
        "script",
    }
)
# Extension elements Zeebe allows at most once per element (ExtensionElementDuplicationValidators).
_SINGLE_EXTENSIONS = frozenset(
    {
        "versionTag",
        "ioMapping",
        "executionListeners",
        "taskHeaders",
        "linkedResources",
        "userTask",
        "assignmentDefinition",
        "formDefinition",
        "taskSchedule",
        "priorityDefinition",
        "taskListeners",
    }
)
_ZEEBE_ANNOTATIONS = frozenset({"properties", "userTaskForm", "priorityDefinition"})
# Zeebe extension elements that change execution and that this engine does not implement.
_ZEEBE_REJECTED = {
    "executionListeners": "Execution listeners (zeebe:executionListeners)",
    "taskListeners": "Task listeners (zeebe:taskListeners)",
    "userTask": "Zeebe user tasks (zeebe:userTask)",
    "linkedResources": "Linked resources (zeebe:linkedResources)",
    "jobPriorityDefinition": "Job priorities (zeebe:jobPriorityDefinition)",
    # Zeebe 8.7+: a message throw event / send task publishing without a job worker.
    "publishMessage": "Message publication without a job worker (zeebe:publishMessage)",
}
# Known Zeebe extension elements that belong to element types rejected anyway (script task,
# message events, multi-instance...). On a supported element Zeebe ignores them; so do we.
_ZEEBE_MISPLACED_IGNORED = frozenset(
    {
        "subscription",
        "adHoc",
        "conditionalFilter",
        "agentDefinition",
        "header",
        "input",
        "output",
    }
)

_ACTIVITY_TAGS = {
    "serviceTask": ElementType.SERVICE_TASK,
    "userTask": ElementType.USER_TASK,
    "manualTask": ElementType.MANUAL_TASK,
    "task": ElementType.TASK,
    "callActivity": ElementType.CALL_ACTIVITY,
    "subProcess": ElementType.SUB_PROCESS,
    "receiveTask": ElementType.RECEIVE_TASK,
    "sendTask": ElementType.SEND_TASK,
    "scriptTask": ElementType.SCRIPT_TASK,
    "businessRuleTask": ElementType.BUSINESS_RULE_TASK,
}
_UNSUPPORTED_FLOW_NODES = frozenset(
    {
        "complexGateway",
        "adHocSubProcess",
        "transaction",
        "callChoreography",
        "choreographyTask",
        "subChoreography",
        "implicitThrowEvent",
    }
)


def resource_checksum(content: bytes) -> bytes:
    """MD5 digest of the resource bytes: the `checksum` of Zeebe's PROCESS record (§3.4)."""
    return hashlib.md5(content, usedforsecurity=False).digest()


def is_bpmn_resource(resource_name: str) -> bool:
    """True for resource names Zeebe hands to its BPMN transformer."""
    return resource_name.lower().endswith(BPMN_RESOURCE_SUFFIXES)


def parse_bpmn(
    resource_name: str,
    content: bytes | str,
    *,
    max_resource_bytes: int = MAX_RESOURCE_BYTES,
    check_support: bool = True,
) -> list[ProcessModel]:
    """Parse and validate one BPMN resource; one `ProcessModel` per executable process.

    With `check_support` (the default, what a deployment gets) a process using an element the
    execution cannot run yet is rejected too (`engine.bpmn.support`); without it the full model
    of every valid process is returned (for tools and for the execution's own tests).
    Raises `BpmnValidationError` listing every problem (never another exception for bad input).
    """
    if isinstance(content, str):
        content = content.encode("utf-8")
    try:
        root = parse_xml(content, max_bytes=max_resource_bytes)
    except XmlRejection as rejection:
        raise BpmnValidationError(resource_name, [Problem(None, rejection.message)]) from None
    return _DefinitionsReader(resource_name, content, root, check_support=check_support).read()


class _Problems:
    """Collects problems in the order found."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, element_id: str | None, message: str, path: str | None = None) -> None:
        self.items.append(Problem(element_id, message, path))

    def extend(self, element_id: str, messages: Iterable[str], path: str | None = None) -> None:
        for message in messages:
            self.add(element_id, message, path)

    def add_once(self, element_id: str, message: str, path: str | None = None) -> None:
        """For problems of shared definitions (a bpmn:message used by several events)."""
        problem = Problem(element_id, message, path)
        if problem not in self.items:
            self.items.append(problem)


class _DefinitionsReader:
    def __init__(
        self, resource_name: str, content: bytes, root: ET.Element, *, check_support: bool = True
    ) -> None:
        self.resource_name = resource_name
        self.content = content
        self.root = root
        self.check_support = check_support
        self.problems = _Problems()
        #: bpmn:error id -> errorCode (None when the attribute is missing)
        self.errors: dict[str, str | None] = {}
        #: bpmn:message / bpmn:signal / bpmn:escalation id -> its XML element
        self.messages: dict[str, ET.Element] = {}
        self.signals: dict[str, ET.Element] = {}
        self.escalations: dict[str, ET.Element] = {}

    def read(self) -> list[ProcessModel]:
        namespace, local = split(self.root.tag)
        if (namespace, local) != (BPMN_NS, "definitions"):
            raise BpmnValidationError(
                self.resource_name,
                [
                    Problem(
                        None,
                        f"Expected a BPMN document (root element 'definitions' in namespace "
                        f"'{BPMN_NS}'), but found '{local}' in namespace '{namespace}'",
                    )
                ],
            )
        self._check_unique_ids()
        for error in bpmn_children(self.root, "error"):
            error_id = error.get("id")
            if error_id:
                self.errors[error_id] = error.get("errorCode")
        for local, table in (
            ("message", self.messages),
            ("signal", self.signals),
            ("escalation", self.escalations),
        ):
            for definition in bpmn_children(self.root, local):
                definition_id = definition.get("id")
                if definition_id:
                    table[definition_id] = definition

        processes = bpmn_children(self.root, "process")
        executable = [p for p in processes if is_true(p.get("isExecutable"))]
        models: list[ProcessModel] = []
        if not executable:
            self.problems.add(
                self.root.get("id") or "definitions", "Must contain at least one executable process"
            )
        checksum = resource_checksum(self.content)
        for process_xml in executable:
            model = _ProcessReader(self, process_xml, checksum).read()
            if model is not None:
                models.append(model)
        if self.problems.items:
            raise BpmnValidationError(self.resource_name, self.problems.items)
        return models

    def _check_unique_ids(self) -> None:
        # The BPMN schema types ids as xs:ID, unique in the document; Zeebe rejects duplicates
        # while parsing. Only BPMN elements count here (DI and extensions have their own ids).
        seen: set[str] = set()
        reported: set[str] = set()
        for xml in self.root.iter():
            if not isinstance(xml.tag, str) or split(xml.tag)[0] != BPMN_NS:
                continue
            element_id = xml.get("id")
            if element_id is None:
                continue
            if element_id in seen and element_id not in reported:
                reported.add(element_id)
                self.problems.add(element_id, f"The id '{element_id}' is used by more than one element")
            seen.add(element_id)


class _ProcessReader(EventReader):
    """Builds the model of one executable process and collects its problems (events are read
    by `engine.bpmn.events.EventReader`)."""

    def __init__(self, definitions: _DefinitionsReader, xml: ET.Element, checksum: bytes) -> None:
        self.definitions = definitions
        self.problems = definitions.problems
        self.xml = xml
        self.checksum = checksum
        self.elements_by_id: dict[str, Element] = {}
        self.flows_by_id: dict[str, SequenceFlow] = {}
        #: ids of elements that exist but were rejected: flows touching them are not reported twice
        self.rejected_ids: set[str] = set()
        self.pending_flows: list[tuple[ET.Element, Element]] = []
        self.pending_boundaries: list[tuple[Element, str | None]] = []
        self.pending_defaults: list[tuple[Element, str]] = []
        #: (source ref, target ref) of every bpmn:association (compensation handlers)
        self.pending_associations: list[tuple[str, str]] = []
        #: compensation throw events with an activityRef to resolve
        self.pending_compensations: list[Element] = []
        #: scope id -> (number of start events of any kind, list of none start events)
        self.start_events: dict[str, tuple[int, list[Element]]] = {}

    # --- entry -------------------------------------------------------------------------------
    def read(self) -> ProcessModel | None:
        process_id = self.xml.get("id")
        if not process_id:
            self.problems.add("process", "Attribute 'id' must be present and not empty")
            return None
        if not _NCNAME.fullmatch(process_id):
            self.problems.add(
                process_id, f"Attribute 'id' must be a valid XML name (NCName), but is '{process_id}'"
            )
        process = Element(id=process_id, name=self.xml.get("name"), element_type=ElementType.PROCESS)
        self.elements_by_id[process_id] = process
        version_tag = self._read_process_extensions(process)
        problems_before = len(self.problems.items)
        self._read_scope(self.xml, process)
        self._resolve_flows()
        self._resolve_boundaries()
        self._resolve_defaults()
        self._resolve_associations()
        self._resolve_compensations()
        validation.validate_process(process, self.start_events, self.rejected_ids, self.problems.add)
        if self.definitions.check_support:
            for problem in support.unsupported_problems(self.elements_by_id.values()):
                self.problems.add(problem.element_id, problem.message, problem.path)
        if len(self.problems.items) != problems_before:
            return None
        return ProcessModel(
            bpmn_process_id=process_id,
            name=process.name,
            version_tag=version_tag,
            resource_name=self.definitions.resource_name,
            process=process,
            elements_by_id=self.elements_by_id,
            flows_by_id=self.flows_by_id,
            resource=self.definitions.content,
            checksum=self.checksum,
        )

    def _read_process_extensions(self, process: Element) -> str | None:
        version_tag = None
        for name, extension in zeebe_extensions(self.xml):
            path = f"extensionElements > {name}"
            if name == "versionTag":
                version_tag = extension.get("value") or None
            elif name in _ZEEBE_REJECTED:
                self._unsupported(process.id, f"{_ZEEBE_REJECTED[name]} are", path)
            elif name in _ZEEBE_ANNOTATIONS:
                continue
            else:
                self._unsupported(process.id, f"Extension element 'zeebe:{name}' on a process is", path)
        self._check_duplicate_extensions(self.xml, process.id)
        return version_tag

    def _check_duplicate_extensions(self, xml: ET.Element, element_id: str) -> None:
        # Zeebe ExtensionElementsDuplicationValidator: these may appear at most once.
        names = [name for name, _ in zeebe_extensions(xml) if name in _SINGLE_EXTENSIONS]
        for name in dict.fromkeys(names):
            if names.count(name) > 1:
                self.problems.add(
                    element_id,
                    f"Must have exactly one 'zeebe:{name}' extension element when exists. "
                    "Please check process definition XML and retain only one extension element.",
                )

    # --- scopes ----------------------------------------------------------------------------------
    def _read_scope(self, scope_xml: ET.Element, scope: Element) -> None:
        self.start_events.setdefault(scope.id, (0, []))
        for child in scope_xml:
            if not isinstance(child.tag, str):
                continue  # comments, processing instructions
            namespace, local = split(child.tag)
            if namespace != BPMN_NS:
                continue  # foreign extensions are ignored, as in Zeebe
            if local == "sequenceFlow":
                self.pending_flows.append((child, scope))
            elif local == "association":
                self.pending_associations.append(
                    ((child.get("sourceRef") or "").strip(), (child.get("targetRef") or "").strip())
                )
            elif local in _IGNORED_SCOPE_CHILDREN:
                continue
            elif local in self._READERS:
                element = self._READERS[local](self, child, scope)
                if element is not None:
                    scope.children.append(element)
            else:
                element_id = child.get("id")
                if element_id:
                    self.rejected_ids.add(element_id)
                self._unsupported(element_id or f"{scope.id} > {local}", f"Elements of type '{local}' are")

    def _unsupported(self, element_id: str, what_is: str, path: str | None = None) -> None:
        self.problems.add(element_id, f"{what_is} not supported by {_ENGINE}", path)

    # --- flow nodes: common part ------------------------------------------------------------
    def _new_element(
        self,
        xml: ET.Element,
        scope: Element,
        element_type: ElementType,
        event_type: EventType = EventType.UNSPECIFIED,
    ) -> Element | None:
        element_id = xml.get("id")
        if not element_id:
            self.problems.add(
                f"{scope.id} > {split(xml.tag)[1]}", "Attribute 'id' must be present and not empty"
            )
            return None
        if not _NCNAME.fullmatch(element_id):
            self.problems.add(
                element_id, f"Attribute 'id' must be a valid XML name (NCName), but is '{element_id}'"
            )
        element = Element(
            id=element_id,
            name=xml.get("name"),
            element_type=element_type,
            event_type=event_type,
            flow_scope=scope,
        )
        if element_id in self.elements_by_id:
            return None  # already reported by the document-wide id check
        self.elements_by_id[element_id] = element

        loops = bpmn_children(xml, "multiInstanceLoopCharacteristics")
        if loops:
            self._read_multi_instance(loops[0], element)
        if bpmn_children(xml, "standardLoopCharacteristics"):
            self._unsupported(element_id, "Loop activities (standardLoopCharacteristics) are")
        if is_true(xml.get("isForCompensation")):
            element.is_for_compensation = True
        self._read_extensions(xml, element)
        return element

    def _read_multi_instance(self, loop: ET.Element, element: Element) -> None:
        path = "multiInstanceLoopCharacteristics"
        if element.element_type not in MULTI_INSTANCE_TYPES:
            self.problems.add(
                element.id, "Multi-instance loop characteristics are only allowed on activities", path
            )
            return
        found = [ext for name, ext in zeebe_extensions(loop) if name == "loopCharacteristics"]
        if len(found) != 1:
            self.problems.add(
                element.id, "Must have exactly one 'zeebe:loopCharacteristics' extension element", path
            )
            return
        characteristics = found[0]
        extension_path = f"{path} > extensionElements > loopCharacteristics"
        raw_collection = characteristics.get("inputCollection")
        input_collection = None
        if not raw_collection:
            self.problems.add(
                element.id, "Attribute 'inputCollection' must be present and not empty", extension_path
            )
        else:
            input_collection, problems = expressions.check_expression(
                raw_collection, mandatory=True, non_static=True, attribute="inputCollection"
            )
            self.problems.extend(element.id, problems, extension_path)
        input_element = characteristics.get("inputElement") or None
        output_collection = characteristics.get("outputCollection") or None
        raw_output_element = characteristics.get("outputElement") or None
        for attribute, name in (("inputElement", input_element), ("outputCollection", output_collection)):
            if name is not None:
                self.problems.extend(
                    element.id,
                    [f"{message} (attribute '{attribute}')" for message in expressions.check_path(name)],
                    extension_path,
                )
        output_element = None
        if raw_output_element is not None:
            output_element, problems = expressions.check_expression(
                raw_output_element, mandatory=True, non_static=True, attribute="outputElement"
            )
            self.problems.extend(element.id, problems, extension_path)
        if output_collection and not raw_output_element:
            self.problems.add(
                element.id,
                "Attribute 'outputElement' must be present if the attribute 'outputCollection' is set",
                extension_path,
            )
        elif raw_output_element and not output_collection:
            self.problems.add(
                element.id,
                "Attribute 'outputCollection' must be present if the attribute 'outputElement' is set",
                extension_path,
            )
        completion_condition = None
        conditions = bpmn_children(loop, "completionCondition")
        if conditions:
            text = "".join(conditions[0].itertext()).strip()
            if text:
                completion_condition, problems = expressions.check_expression(
                    text, mandatory=True, attribute="completionCondition"
                )
                self.problems.extend(element.id, problems, f"{path} > completionCondition")
        if input_collection is None:
            return
        element.multi_instance = MultiInstance(
            is_sequential=is_true(loop.get("isSequential")),
            input_collection=input_collection,
            input_element=input_element,
            output_collection=output_collection,
            output_element=output_element,
            completion_condition=completion_condition,
        )

    def _read_extensions(self, xml: ET.Element, element: Element) -> None:
        io_mappings = []
        for name, extension in zeebe_extensions(xml):
            path = f"extensionElements > {name}"
            if name in _ZEEBE_REJECTED:
                if name == "userTask" and element.element_type is ElementType.USER_TASK:
                    continue  # reported by the user task reader with a better message
                self._unsupported(element.id, f"{_ZEEBE_REJECTED[name]} are", path)
            elif name == "ioMapping":
                io_mappings.append(extension)
            elif name in _ZEEBE_READ or name in _ZEEBE_ANNOTATIONS or name in _ZEEBE_MISPLACED_IGNORED:
                continue
            else:
                self._unsupported(element.id, f"Extension element 'zeebe:{name}' is", path)
        self._check_duplicate_extensions(xml, element.id)
        for io_mapping in io_mappings[:1]:
            self._read_io_mapping(io_mapping, element)

    def _read_io_mapping(self, io_mapping: ET.Element, element: Element) -> None:
        # Zeebe: inputs on activities (event subprocesses included) and on throw events
        # (intermediate throw, and end events other than none/terminate/error); outputs on
        # those and on every catching event.
        takes_inputs = element.element_type in ACTIVITY_TYPES or element.element_type in (
            ElementType.EVENT_SUB_PROCESS,
            ElementType.INTERMEDIATE_THROW_EVENT,
        )
        if element.element_type is ElementType.END_EVENT and element.event_type in (
            EventType.MESSAGE,
            EventType.SIGNAL,
            EventType.ESCALATION,
            EventType.COMPENSATION,
        ):
            takes_inputs = True
        takes_outputs = takes_inputs or element.element_type in (
            ElementType.START_EVENT,
            ElementType.END_EVENT,
            ElementType.BOUNDARY_EVENT,
            ElementType.INTERMEDIATE_CATCH_EVENT,
        )
        for child in io_mapping:
            if not isinstance(child.tag, str):
                continue
            namespace, kind = split(child.tag)
            if namespace != ZEEBE_NS or kind not in ("input", "output"):
                continue
            path = f"extensionElements > ioMapping > {kind}"
            allowed = takes_inputs if kind == "input" else takes_outputs
            if not allowed:
                self.problems.add(
                    element.id,
                    f"{'Input' if kind == 'input' else 'Output'} mappings are not supported on "
                    f"elements of type {element.element_type.value} by {_ENGINE}",
                    path,
                )
                continue
            # Inputs may be static values; outputs must be FEEL (ZeebeRuntimeValidators).
            source, source_problems = expressions.check_expression(
                child.get("source"), mandatory=True, non_static=(kind == "output"), attribute="source"
            )
            target = child.get("target")
            target_problems = expressions.check_path(target)
            self.problems.extend(element.id, source_problems + target_problems, path)
            if source is not None and target is not None and not target_problems:
                (element.inputs if kind == "input" else element.outputs).append(
                    Mapping(source=source, target=target)
                )

    def _read_task_headers(self, xml: ET.Element, element: Element) -> None:
        seen: set[str] = set()
        for name, extension in zeebe_extensions(xml):
            if name != "taskHeaders":
                continue
            path = "extensionElements > taskHeaders"
            for header in extension:
                if not isinstance(header.tag, str) or split(header.tag) != (ZEEBE_NS, "header"):
                    continue
                key, value = header.get("key"), header.get("value")
                if key is None or value is None:
                    continue  # Zeebe's transformer skips incomplete headers
                if key.startswith(RESERVED_HEADER_PREFIX):
                    self.problems.add(
                        element.id,
                        f"Attribute 'key' contains '{key}', but header keys starting with "
                        f"'{RESERVED_HEADER_PREFIX}' are reserved for internal use.",
                        path,
                    )
                    continue
                if key in seen:
                    self.problems.add(element.id, f"Headers contain duplicate entries for key '{key}'", path)
                    continue
                seen.add(key)
                element.task_headers[key] = value

    def _single_extension(self, xml: ET.Element, element: Element, name: str) -> ET.Element | None:
        found = [ext for ext_name, ext in zeebe_extensions(xml) if ext_name == name]
        if len(found) != 1:
            self.problems.add(element.id, f"Must have exactly one 'zeebe:{name}' extension element")
            return None
        return found[0]

    def _expression_attribute(
        self,
        element: Element,
        extension: ET.Element,
        extension_name: str,
        attribute: str,
        *,
        default: str | None = None,
        non_static: bool = False,
    ) -> Expression | None:
        """A mandatory, non-empty expression attribute of a zeebe extension element."""
        path = f"extensionElements > {extension_name}"
        raw = extension.get(attribute, default)
        if raw is None or raw == "":
            self.problems.add(element.id, f"Attribute '{attribute}' must be present and not empty", path)
            return None
        expression, problems = expressions.check_expression(
            raw, mandatory=True, non_static=non_static, attribute=attribute
        )
        self.problems.extend(element.id, problems, path)
        return expression

    def _read_service_task(self, xml: ET.Element, scope: Element) -> Element | None:
        element = self._new_element(xml, scope, ElementType.SERVICE_TASK)
        if element is None:
            return None
        task_definition = self._single_extension(xml, element, "taskDefinition")
        if task_definition is not None:
            element.job_type = self._expression_attribute(element, task_definition, "taskDefinition", "type")
            element.job_retries = self._expression_attribute(
                element, task_definition, "taskDefinition", "retries", default=DEFAULT_JOB_RETRIES
            )
        self._read_task_headers(xml, element)
        return element

    def _read_user_task(self, xml: ET.Element, scope: Element) -> Element | None:
        element = self._new_element(xml, scope, ElementType.USER_TASK)
        if element is None:
            return None
        extensions = zeebe_extensions(xml)
        if any(name == "userTask" for name, _ in extensions):
            # A Zeebe user task (8.5+) is no job: USER_TASK records, completed over REST. Its
            # assignment and schedule are read below like a job-based one's (as headers).
            element.zeebe_user_task = True
        else:
            element.job_type = Expression.static(USER_TASK_JOB_TYPE)
            element.job_retries = Expression.static(USER_TASK_JOB_RETRIES)
        self._read_task_headers(xml, element)
        for name, extension in extensions:
            if name == "assignmentDefinition":
                self._user_task_header(element, extension, name, "assignee", USER_TASK_ASSIGNEE_HEADER)
                self._user_task_header(
                    element, extension, name, "candidateGroups", USER_TASK_CANDIDATE_GROUPS_HEADER
                )
                self._user_task_header(
                    element, extension, name, "candidateUsers", USER_TASK_CANDIDATE_USERS_HEADER
                )
            elif name == "taskSchedule":
                self._user_task_header(element, extension, name, "dueDate", USER_TASK_DUE_DATE_HEADER)
                self._user_task_header(
                    element, extension, name, "followUpDate", USER_TASK_FOLLOW_UP_DATE_HEADER
                )
            elif name == "formDefinition":
                self._read_form_definition(element, extension)
        return element

    def _user_task_header(
        self, element: Element, extension: ET.Element, extension_name: str, attribute: str, header: str
    ) -> None:
        raw = extension.get(attribute)
        if raw is None or raw == "":
            return
        path = f"extensionElements > {extension_name}"
        expression, problems = expressions.check_expression(raw, mandatory=False, attribute=attribute)
        self.problems.extend(element.id, problems, path)
        if expression is None:
            return
        if expression.is_feel:
            element.user_task_header_expressions[header] = expression
            return
        if attribute in ("candidateGroups", "candidateUsers"):
            items = expressions.parse_csv_list(raw)
            if items is None:
                self.problems.add(
                    element.id,
                    "Expected static value to be a list of comma-separated values, "
                    f"e.g. 'a,b,c', but found '{raw}'.",
                    path,
                )
                return
            element.task_headers[header] = list_literal(items)
        elif attribute in ("dueDate", "followUpDate"):
            if not expressions.is_zoned_date_time(raw):
                self.problems.add(
                    element.id,
                    "Expected static value to be a valid DateTime String, "
                    f"e.g. '2023-03-02T15:35+02:00', but found '{raw}'.",
                    path,
                )
                return
            element.task_headers[header] = raw
        else:
            element.task_headers[header] = raw

    def _read_form_definition(self, element: Element, extension: ET.Element) -> None:
        if extension.get("formId") or extension.get("externalReference"):
            element.form_id = extension.get("formId") or None
            element.external_form_reference = extension.get("externalReference") or None
            return
        form_key = extension.get("formKey")
        if form_key:
            element.task_headers[USER_TASK_FORM_KEY_HEADER] = form_key

    def _read_receive_task(self, xml: ET.Element, scope: Element) -> Element | None:
        element = self._new_element(xml, scope, ElementType.RECEIVE_TASK, EventType.UNSPECIFIED)
        if element is None:
            return None
        element.message = self._read_message_ref(
            element, xml.get("messageRef"), None, subscription=True, at_deploy=False
        )
        return element

    def _read_send_task(self, xml: ET.Element, scope: Element) -> Element | None:
        element = self._new_element(xml, scope, ElementType.SEND_TASK)
        if element is None:
            return None
        task_definitions = [ext for name, ext in zeebe_extensions(xml) if name == "taskDefinition"]
        if len(task_definitions) != 1:
            self.problems.add(
                element.id,
                "Must have either one 'zeebe:publishMessage' or one 'zeebe:taskDefinition' extension element",
            )
            return element
        self._read_job(element, task_definitions[0])
        self._read_task_headers(xml, element)
        return element

    def _read_script_task(self, xml: ET.Element, scope: Element) -> Element | None:
        element = self._new_element(xml, scope, ElementType.SCRIPT_TASK)
        if element is None:
            return None
        scripts = [ext for name, ext in zeebe_extensions(xml) if name == "script"]
        task_definitions = [ext for name, ext in zeebe_extensions(xml) if name == "taskDefinition"]
        if (len(scripts), len(task_definitions)) not in ((1, 0), (0, 1)):
            self.problems.add(
                element.id,
                "Must have either one 'zeebe:script' or one 'zeebe:taskDefinition' extension element",
            )
            return element
        if task_definitions:
            self._read_job(element, task_definitions[0])
            self._read_task_headers(xml, element)
            return element
        script = scripts[0]
        path = "extensionElements > script"
        raw = script.get("expression")
        if not raw:
            self.problems.add(element.id, "Attribute 'expression' must be present and not empty", path)
        else:
            expression, problems = expressions.check_expression(
                raw, mandatory=True, non_static=True, attribute="expression"
            )
            self.problems.extend(element.id, problems, path)
            element.script_expression = expression
        element.result_variable = self._result_variable(element, script, path)
        return element

    def _result_variable(self, element: Element, extension: ET.Element, path: str) -> str | None:
        result_variable = extension.get("resultVariable")
        if not result_variable:
            self.problems.add(element.id, "Attribute 'resultVariable' must be present and not empty", path)
            return None
        problems = expressions.check_path(result_variable)
        self.problems.extend(element.id, [f"{p} (attribute 'resultVariable')" for p in problems], path)
        return None if problems else result_variable

    def _read_business_rule_task(self, xml: ET.Element, scope: Element) -> Element | None:
        element = self._new_element(xml, scope, ElementType.BUSINESS_RULE_TASK)
        if element is None:
            return None
        decisions = [ext for name, ext in zeebe_extensions(xml) if name == "calledDecision"]
        task_definitions = [ext for name, ext in zeebe_extensions(xml) if name == "taskDefinition"]
        if (len(decisions), len(task_definitions)) not in ((1, 0), (0, 1)):
            self.problems.add(
                element.id,
                "Must have either one 'zeebe:calledDecision' or one 'zeebe:taskDefinition' extension element",
            )
            return element
        if task_definitions:
            self._read_job(element, task_definitions[0])
            self._read_task_headers(xml, element)
            return element
        decision = decisions[0]
        path = "extensionElements > calledDecision"
        element.called_decision_id = self._expression_attribute(
            element, decision, "calledDecision", "decisionId"
        )
        element.result_variable = self._result_variable(element, decision, path)
        binding_type = decision.get("bindingType")
        if binding_type not in (None, "", "latest"):
            self._unsupported(
                element.id, f"Business rule tasks with bindingType '{binding_type}' (only 'latest') are", path
            )
        return element

    def _read_plain_task(self, xml: ET.Element, scope: Element) -> Element | None:
        element_type = ElementType.MANUAL_TASK if split(xml.tag)[1] == "manualTask" else ElementType.TASK
        return self._new_element(xml, scope, element_type)

    def _read_call_activity(self, xml: ET.Element, scope: Element) -> Element | None:
        element = self._new_element(xml, scope, ElementType.CALL_ACTIVITY)
        if element is None:
            return None
        called = self._single_extension(xml, element, "calledElement")
        if called is None:
            return element
        element.called_process_id = self._expression_attribute(element, called, "calledElement", "processId")
        path = "extensionElements > calledElement"
        for attribute in ("propagateAllChildVariables", "propagateAllParentVariables"):
            value = called.get(attribute)
            if value is None:
                continue
            if value.strip() not in ("true", "false", "1", "0"):
                self.problems.add(
                    element.id, f"Attribute '{attribute}' must be 'true' or 'false', but is '{value}'", path
                )
            elif attribute == "propagateAllChildVariables":
                element.propagate_all_child_variables = is_true(value)
            else:
                element.propagate_all_parent_variables = is_true(value)
        binding_type = called.get("bindingType")
        if binding_type not in (None, "", "latest"):
            self._unsupported(
                element.id, f"Call activities with bindingType '{binding_type}' (only 'latest') are", path
            )
        return element

    def _read_sub_process(self, xml: ET.Element, scope: Element) -> Element | None:
        if is_true(xml.get("triggeredByEvent")):
            event_sub_process = self._new_element(xml, scope, ElementType.EVENT_SUB_PROCESS)
            if event_sub_process is None:
                return None
            if event_sub_process.multi_instance is not None:
                self.problems.add(event_sub_process.id, "An event subprocess cannot be multi-instance")
            scope.event_sub_processes.append(event_sub_process)
            self._read_scope(xml, event_sub_process)
            return event_sub_process
        element = self._new_element(xml, scope, ElementType.SUB_PROCESS)
        if element is None:
            return None
        self._read_scope(xml, element)
        return element

    def _read_exclusive_gateway(self, xml: ET.Element, scope: Element) -> Element | None:
        element = self._new_element(xml, scope, ElementType.EXCLUSIVE_GATEWAY)
        if element is not None and xml.get("default"):
            self.pending_defaults.append((element, xml.get("default", "").strip()))
        return element

    def _read_parallel_gateway(self, xml: ET.Element, scope: Element) -> Element | None:
        return self._new_element(xml, scope, ElementType.PARALLEL_GATEWAY)

    def _read_inclusive_gateway(self, xml: ET.Element, scope: Element) -> Element | None:
        element = self._new_element(xml, scope, ElementType.INCLUSIVE_GATEWAY)
        if element is not None and xml.get("default"):
            self.pending_defaults.append((element, xml.get("default", "").strip()))
        return element

    def _read_event_based_gateway(self, xml: ET.Element, scope: Element) -> Element | None:
        return self._new_element(xml, scope, ElementType.EVENT_BASED_GATEWAY)

    def _read_unsupported_flow_node(self, xml: ET.Element, scope: Element) -> Element | None:
        local = split(xml.tag)[1]
        element_id = xml.get("id") or f"{scope.id} > {local}"
        self.rejected_ids.add(element_id)
        self._unsupported(element_id, f"Elements of type '{local}' are")
        return None

    _READERS: dict[str, Callable[[_ProcessReader, ET.Element, Element], Element | None]] = {}

    # --- cross references --------------------------------------------------------------------
    def _resolve_flows(self) -> None:
        for xml, scope in self.pending_flows:
            flow_id = xml.get("id")
            if not flow_id:
                self.problems.add(
                    f"{scope.id} > sequenceFlow", "Attribute 'id' must be present and not empty"
                )
                continue
            source_ref = (xml.get("sourceRef") or "").strip()
            target_ref = (xml.get("targetRef") or "").strip()
            if source_ref in self.rejected_ids or target_ref in self.rejected_ids:
                self.rejected_ids.add(flow_id)  # the element itself is reported
                continue
            source = self.elements_by_id.get(source_ref)
            target = self.elements_by_id.get(target_ref)
            if not source_ref:
                self.problems.add(flow_id, "SequenceFlow is missing required attribute sourceRef")
            elif source is None:
                self.problems.add(
                    flow_id, f"SequenceFlow has sourceRef '{source_ref}' which cannot be resolved"
                )
            if not target_ref:
                self.problems.add(flow_id, "SequenceFlow is missing required attribute targetRef")
            elif target is None:
                # (sic) Zeebe's SequenceFlowValidator has two spaces in this message.
                self.problems.add(
                    flow_id, f"SequenceFlow has targetRef '{target_ref}'  which cannot be resolved"
                )
            condition = self._read_condition(xml, flow_id)
            if source is None or target is None:
                continue
            wrong_scope = [e for e in (source, target) if e.flow_scope is not scope]
            if wrong_scope:
                self.problems.add(
                    flow_id,
                    f"A sequence flow must connect two elements of the scope it is declared in "
                    f"('{scope.id}'), but '{wrong_scope[0].id}' belongs to "
                    f"'{wrong_scope[0].flow_scope.id if wrong_scope[0].flow_scope else '-'}'",
                )
                continue
            flow = SequenceFlow(
                id=flow_id,
                name=xml.get("name"),
                source=source,
                target=target,
                flow_scope=scope,
                condition=condition,
            )
            self.flows_by_id[flow_id] = flow
            source.outgoing.append(flow)
            target.incoming.append(flow)

    def _read_condition(self, xml: ET.Element, flow_id: str) -> Expression | None:
        conditions = bpmn_children(xml, "conditionExpression")
        if not conditions:
            return None
        # getTextContent() of the BPMN model API trims the element text.
        text = "".join(conditions[0].itertext()).strip()
        if not text:
            self.problems.add(
                flow_id, "Attribute 'condition' must be present and not empty", "conditionExpression"
            )
        else:
            expression, problems = expressions.check_expression(text, mandatory=True, non_static=True)
            self.problems.extend(flow_id, problems, "conditionExpression")
            if expression is not None:
                return expression
        # The flow does have a (broken, already reported) condition: keep a placeholder so the
        # gateway check does not also claim it has none. The process is rejected anyway.
        return Expression(raw=text)

    def _resolve_boundaries(self) -> None:
        for boundary, attached_ref in self.pending_boundaries:
            attached_ref = (attached_ref or "").strip()
            if attached_ref in self.rejected_ids:
                continue
            activity = self.elements_by_id.get(attached_ref)
            if activity is None or activity.element_type not in ACTIVITY_TYPES:
                self.problems.add(boundary.id, "Must be attached to an activity")
                continue
            if activity.flow_scope is not boundary.flow_scope:
                self.problems.add(
                    boundary.id, "Must be declared in the same scope as the activity it is attached to"
                )
                continue
            boundary.attached_to = activity
            activity.boundary_events.append(boundary)

    def _resolve_defaults(self) -> None:
        for gateway, flow_id in self.pending_defaults:
            flow = self.flows_by_id.get(flow_id)
            if flow is None:
                if flow_id not in self.rejected_ids:
                    self.problems.add(gateway.id, f"Default flow '{flow_id}' cannot be resolved")
                continue
            if flow.source is not gateway:
                self.problems.add(gateway.id, "Default flow must start at gateway")
                continue
            gateway.default_flow = flow

    def _resolve_associations(self) -> None:
        # A compensation boundary event is connected to its handler by an association
        # (BoundaryEventValidator); other associations (text annotations) carry nothing.
        for source_ref, target_ref in self.pending_associations:
            source = self.elements_by_id.get(source_ref)
            target = self.elements_by_id.get(target_ref)
            if source is None or target is None:
                continue
            if (
                source.element_type is ElementType.BOUNDARY_EVENT
                and source.event_type is EventType.COMPENSATION
            ) and source.compensation_handler is None:
                source.compensation_handler = target

    def _resolve_compensations(self) -> None:
        # CompensationEventDefinitionValidator: the activityRef of a compensation throw event.
        for element in self.pending_compensations:
            assert element.compensation is not None and element.compensation.activity_ref is not None
            activity_ref = element.compensation.activity_ref
            activity = self.elements_by_id.get(activity_ref)
            if activity is None or activity.element_type not in ACTIVITY_TYPES:
                self.problems.add(
                    element.id, f"The referenced compensation activity '{activity_ref}' doesn't exist"
                )
                continue
            has_compensation_boundary = any(
                boundary.event_type is EventType.COMPENSATION for boundary in activity.boundary_events
            )
            if not has_compensation_boundary and activity.element_type is not ElementType.SUB_PROCESS:
                self.problems.add(
                    element.id,
                    f"The referenced compensation activity '{activity_ref}' must have either a "
                    "compensation boundary event or be a subprocess",
                )
            if activity.flow_scope is not element.flow_scope:
                self.problems.add(
                    element.id,
                    f"The referenced compensation activity '{activity_ref}' must be in the same scope "
                    "as the compensation throw event",
                )
            element.compensation.activity = activity


_ProcessReader._READERS = {
    "startEvent": _ProcessReader._read_start_event,
    "endEvent": _ProcessReader._read_end_event,
    "boundaryEvent": _ProcessReader._read_boundary_event,
    "serviceTask": _ProcessReader._read_service_task,
    "userTask": _ProcessReader._read_user_task,
    "manualTask": _ProcessReader._read_plain_task,
    "task": _ProcessReader._read_plain_task,
    "callActivity": _ProcessReader._read_call_activity,
    "subProcess": _ProcessReader._read_sub_process,
    "exclusiveGateway": _ProcessReader._read_exclusive_gateway,
    "parallelGateway": _ProcessReader._read_parallel_gateway,
    "inclusiveGateway": _ProcessReader._read_inclusive_gateway,
    "eventBasedGateway": _ProcessReader._read_event_based_gateway,
    "intermediateCatchEvent": _ProcessReader._read_intermediate_catch_event,
    "intermediateThrowEvent": _ProcessReader._read_intermediate_throw_event,
    "receiveTask": _ProcessReader._read_receive_task,
    "sendTask": _ProcessReader._read_send_task,
    "scriptTask": _ProcessReader._read_script_task,
    "businessRuleTask": _ProcessReader._read_business_rule_task,
    **{tag: _ProcessReader._read_unsupported_flow_node for tag in _UNSUPPORTED_FLOW_NODES},
}
