"""BPMN execution: the element lifecycle, variables, incidents and error propagation.

`BpmnExecution` is the part of a partition's processor that moves tokens. It writes the records
Zeebe writes (reference §3.8) in Zeebe's order: follow-up work that Zeebe would write as a
command (ACTIVATE_ELEMENT, COMPLETE_ELEMENT) is put on a FIFO queue and processed after the
current step, inside the same command's processing, so the records of one command form one
atomic log batch.
"""

from __future__ import annotations

import contextlib
import functools
from collections import deque
from collections.abc import Callable
from typing import Any

from engine.records import incident_value, job_value, process_instance_value, variable_value
from engine.state import ACTIVATABLE, ACTIVATED, ERROR_THROWN, FAILED, PartitionState
from engine.values import document_problem, feel_type_name, json_text, put_path, to_json_compatible

PI = "PROCESS_INSTANCE"
PI_FIELDS = (
    "bpmnElementType",
    "elementId",
    "bpmnProcessId",
    "version",
    "processDefinitionKey",
    "processInstanceKey",
    "flowScopeKey",
    "bpmnEventType",
    "parentProcessInstanceKey",
    "parentElementInstanceKey",
    "tenantId",
)
PASS_THROUGH_TYPES = {"START_EVENT", "TASK", "MANUAL_TASK", "INTERMEDIATE_THROW_EVENT", "BOUNDARY_EVENT"}
JOB_TYPES = {"SERVICE_TASK", "USER_TASK", "SEND_TASK", "BUSINESS_RULE_TASK", "SCRIPT_TASK"}


class MappingFailure(Exception):
    """An expression failed; carries the incident error type and message."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type
        self.message = message


class BpmnExecution:
    state: PartitionState
    emit: Callable[..., dict[str, Any]]

    def __init__(self) -> None:
        self.queue: deque[Callable[[], object]] = deque()
        # Completion variables handed from an activation to the queued completion (in-memory
        # only: both happen inside the same command's processing).
        self.completion_variables: dict[int, dict[str, Any]] = {}
        # Sub-process instances created by a modification: activated without their start event.
        self.scopes_without_start: set[int] = set()
        # Scopes ended by a terminate end event in the current command: no new activations.
        self.closing_scopes: set[int] = set()
        # Hooks set by the partition: process instance finished (for CreateWithResult).
        self.on_process_completed: Callable[[int, dict[str, Any]], None] = lambda key, variables: None
        # Run once the current command succeeded (a rolled-back command must not answer anyone).
        self.after_command: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ helpers
    def drain(self) -> None:
        while self.queue:
            self.queue.popleft()()
        self.closing_scopes.clear()

    def pi_value(self, instance: dict[str, Any]) -> dict[str, Any]:
        return {field: instance[field] for field in PI_FIELDS}

    def emit_pi(self, key: int, instance: dict[str, Any], intent: str) -> None:
        self.emit(PI, intent, key, self.pi_value(instance))

    def element_of(self, instance: dict[str, Any]) -> Any:
        return self.state.model(instance["processDefinitionKey"]).elements_by_id[instance["elementId"]]

    def process_info(self, instance: dict[str, Any]) -> dict[str, Any]:
        return {
            "bpmnProcessId": instance["bpmnProcessId"],
            "version": instance["version"],
            "processDefinitionKey": instance["processDefinitionKey"],
            "processInstanceKey": instance["processInstanceKey"],
            "parentProcessInstanceKey": instance["parentProcessInstanceKey"],
            "parentElementInstanceKey": instance["parentElementInstanceKey"],
        }

    def evaluate(self, expression: Any, variables: dict[str, Any], error_type: str) -> Any:
        try:
            value = to_json_compatible(expression.evaluate(variables))
        except MappingFailure:
            raise
        except Exception as exc:  # FEEL evaluation errors become incidents (reference §5.2)
            raise MappingFailure(error_type, _failure_message(expression, exc)) from exc
        # A result the log cannot encode (e.g. `from json("\"\\ud800\"")`) is the expression's
        # failure, raised as its incident here, not an encoding error half-way through a command.
        problem = document_problem(value)
        if problem is not None:
            raise MappingFailure(
                error_type,
                f"failed to evaluate expression '{getattr(expression, 'text', '')}': "
                f"the result cannot be stored as a variable: {problem}",
            )
        return value

    # ------------------------------------------------------------------ variables
    def set_variable(self, scope_key: int, name: str, value: Any, proc: dict[str, Any]) -> None:
        scope = self.state.variables.get(scope_key, {})
        existing = scope.get(name)
        text = json_text(value)
        if existing is not None:
            if existing[1] == value and json_text(existing[1]) == text:
                return  # Zeebe writes nothing for an unchanged value
            intent, key = "UPDATED", existing[0]
        else:
            intent, key = "CREATED", self.state.new_key()
        self.emit(
            "VARIABLE",
            intent,
            key,
            variable_value(
                name=name,
                value_json=text,
                scope_key=scope_key,
                process_instance_key=proc["processInstanceKey"],
                process_definition_key=proc["processDefinitionKey"],
                bpmn_process_id=proc["bpmnProcessId"],
            ),
        )

    def set_local_variables(self, scope_key: int, document: dict[str, Any], proc: dict[str, Any]) -> None:
        for name, value in document.items():
            self.set_variable(scope_key, name, value, proc)

    def merge_variables(self, start_scope_key: int, document: dict[str, Any], proc: dict[str, Any]) -> None:
        """Propagate: each variable goes to the first scope upward that has it, else the root
        (reference §5.2)."""
        chain = self.state.scope_chain(start_scope_key)
        if not chain:
            return
        root = chain[-1]
        for name, value in document.items():
            target = root
            for scope in chain:
                if name in self.state.variables.get(scope, {}):
                    target = scope
                    break
            self.set_variable(target, name, value, proc)

    def evaluate_mappings(self, mappings: list[Any], variables: dict[str, Any]) -> dict[str, Any]:
        """Evaluate zeebe:input/output mappings in order; later sources see earlier targets."""
        result: dict[str, Any] = {}
        for mapping in mappings:
            context = dict(variables)
            context.update(result)
            value = self.evaluate(mapping.source, context, "IO_MAPPING_ERROR")
            put_path(result, mapping.target, value, variables)
        return result

    # ------------------------------------------------------------------ incidents
    def raise_incident(
        self, instance: dict[str, Any], error_type: str, message: str, job_key: int = -1
    ) -> int:
        key = self.state.new_key()
        self.emit(
            "INCIDENT",
            "CREATED",
            key,
            incident_value(
                error_type=error_type,
                error_message=message,
                bpmn_process_id=instance["bpmnProcessId"],
                process_definition_key=instance["processDefinitionKey"],
                process_instance_key=instance["processInstanceKey"],
                element_id=instance["elementId"],
                element_instance_key=instance["key"],
                job_key=job_key,
            ),
        )
        return key

    def resolve_incidents_of(self, element_instance_key: int) -> None:
        # An element is stuck in at most one incident at a time: the index is enough.
        incident_key = self.state.element_incidents.get(element_instance_key)
        if incident_key is not None and incident_key in self.state.incidents:
            self.emit("INCIDENT", "RESOLVED", incident_key, dict(self.state.incidents[incident_key]))

    # ------------------------------------------------------------------ activation
    def activate_element(
        self,
        element: Any,
        flow_scope_key: int,
        proc: dict[str, Any],
        key: int | None = None,
        completion_variables: dict[str, Any] | None = None,
    ) -> int | None:
        if flow_scope_key > 0:
            scope = self.state.element_instances.get(flow_scope_key)
            if (
                scope is None
                or scope["state"] not in ("ELEMENT_ACTIVATED", "ELEMENT_ACTIVATING")
                or flow_scope_key in self.closing_scopes
            ):
                return None  # the scope was terminated or is ending: the token is gone
        if key is None:
            key = self.state.new_key()
        value = process_instance_value(
            bpmn_element_type=element.element_type.value,
            element_id=element.id,
            bpmn_process_id=proc["bpmnProcessId"],
            version=proc["version"],
            process_definition_key=proc["processDefinitionKey"],
            process_instance_key=proc["processInstanceKey"],
            flow_scope_key=flow_scope_key,
            bpmn_event_type=element.event_type.value,
            parent_process_instance_key=proc["parentProcessInstanceKey"],
            parent_element_instance_key=proc["parentElementInstanceKey"],
        )
        if completion_variables:
            self.completion_variables[key] = completion_variables
        self.emit(PI, "ELEMENT_ACTIVATING", key, value)
        self.on_activate(key)
        return key

    def queue_activate(self, element: Any, flow_scope_key: int, proc: dict[str, Any]) -> None:
        self.queue.append(lambda: self.activate_element(element, flow_scope_key, proc))

    def on_activate(self, key: int) -> None:
        """Type-specific activation; re-run when an incident in ACTIVATING is resolved."""
        instance = self.state.element_instances[key]
        element = self.element_of(instance)
        element_type = instance["bpmnElementType"]
        try:
            if element_type == "PROCESS":
                self.emit_pi(key, instance, "ELEMENT_ACTIVATED")
                start = element.none_start_event
                if start is not None and key not in self.scopes_without_start:
                    self.queue_activate(start, key, self.process_info(instance))
            elif element_type == "SUB_PROCESS":
                self.apply_input_mappings(instance, element)
                self.emit_pi(key, instance, "ELEMENT_ACTIVATED")
                if element.none_start_event is not None and key not in self.scopes_without_start:
                    self.queue_activate(element.none_start_event, key, self.process_info(instance))
            elif element_type in JOB_TYPES and element.job_type is not None:
                self.apply_input_mappings(instance, element)
                self.create_job(instance, element)
                self.emit_pi(key, instance, "ELEMENT_ACTIVATED")
            elif element_type == "EXCLUSIVE_GATEWAY":
                flow = self.choose_exclusive_flow(instance, element)
                self.emit_pi(key, instance, "ELEMENT_ACTIVATED")
                self.emit_pi(key, instance, "ELEMENT_COMPLETING")
                self.emit_pi(key, instance, "ELEMENT_COMPLETED")
                self.take_flow(flow, instance)
            elif element_type == "PARALLEL_GATEWAY":
                self.emit_pi(key, instance, "ELEMENT_ACTIVATED")
                self.emit_pi(key, instance, "ELEMENT_COMPLETING")
                self.emit_pi(key, instance, "ELEMENT_COMPLETED")
                self.take_outgoing(instance, element)
            elif element_type == "CALL_ACTIVITY":
                self.apply_input_mappings(instance, element)
                self.activate_call_activity(instance, element)
            elif element_type == "END_EVENT" and instance["bpmnEventType"] == "ERROR":
                self.emit_pi(key, instance, "ELEMENT_ACTIVATED")
                self.throw_end_event_error(instance, element)
            else:
                # none start/end events, terminate end events, undefined and manual tasks,
                # none throw events and boundary events pass straight through.
                if element.inputs and element_type not in ("START_EVENT", "BOUNDARY_EVENT"):
                    self.apply_input_mappings(instance, element)
                self.emit_pi(key, instance, "ELEMENT_ACTIVATED")
                variables = self.completion_variables.pop(key, None)
                self.queue.append(lambda: self.complete_element(key, variables))
        except MappingFailure as failure:
            self.raise_incident(self.state.element_instances[key], failure.error_type, failure.message)

    def apply_input_mappings(self, instance: dict[str, Any], element: Any) -> None:
        if not element.inputs:
            return
        variables = (
            self.state.visible_variables(instance["flowScopeKey"]) if instance["flowScopeKey"] > 0 else {}
        )
        document = self.evaluate_mappings(element.inputs, variables)
        self.set_local_variables(instance["key"], document, self.process_info(instance))

    def create_job(self, instance: dict[str, Any], element: Any) -> None:
        variables = self.state.visible_variables(instance["key"])
        job_type = self.evaluate(element.job_type, variables, "EXTRACT_VALUE_ERROR")
        if not isinstance(job_type, str):
            raise MappingFailure(
                "EXTRACT_VALUE_ERROR",
                f"Expected result of the expression '{element.job_type.text}' to be 'STRING', "
                f"but was '{feel_type_name(job_type)}'.",
            )
        retries_expression = element.job_retries
        retries: Any = 3
        if retries_expression is not None:
            retries = self.evaluate(retries_expression, variables, "EXTRACT_VALUE_ERROR")
            if isinstance(retries, str) and retries_expression.is_static:
                with contextlib.suppress(ValueError):
                    retries = int(retries.strip())
            if not isinstance(retries, int) or isinstance(retries, bool):
                raise MappingFailure(
                    "EXTRACT_VALUE_ERROR",
                    f"Expected result of the expression '{retries_expression.text}' to be 'NUMBER', "
                    f"but was '{feel_type_name(retries)}'.",
                )
            if not -(2**31) <= retries < 2**31:  # an int32 on the wire (ActivatedJob.retries)
                raise MappingFailure(
                    "EXTRACT_VALUE_ERROR",
                    f"Expected result of the expression '{retries_expression.text}' to be a number of retries "
                    f"that fits in 32 bits, but was '{retries}'.",
                )
        headers = dict(element.task_headers)
        for name, expression in element.user_task_header_expressions.items():
            if expression.is_static:
                continue
            header = self.evaluate(expression, variables, "EXTRACT_VALUE_ERROR")
            if header is None:
                continue
            headers[name] = header if isinstance(header, str) else json_text(header)
        key = self.state.new_key()
        self.emit(
            "JOB",
            "CREATED",
            key,
            job_value(
                job_type=job_type,
                retries=retries,
                custom_headers=headers,
                element_id=instance["elementId"],
                element_instance_key=instance["key"],
                bpmn_process_id=instance["bpmnProcessId"],
                process_definition_version=instance["version"],
                process_definition_key=instance["processDefinitionKey"],
                process_instance_key=instance["processInstanceKey"],
            ),
        )

    def choose_exclusive_flow(self, instance: dict[str, Any], element: Any) -> Any:
        outgoing = element.outgoing
        if len(outgoing) == 1 and outgoing[0].condition is None:
            return outgoing[0]
        variables = self.state.visible_variables(instance["flowScopeKey"])
        for flow in outgoing:
            if flow is element.default_flow:
                continue
            if flow.condition is None:
                return flow
            result = self.evaluate(flow.condition, variables, "CONDITION_ERROR")
            if not isinstance(result, bool):
                raise MappingFailure(
                    "CONDITION_ERROR",
                    f"Expected result of the expression '{flow.condition.text}' to be 'BOOLEAN', "
                    f"but was '{feel_type_name(result)}'.",
                )
            if result:
                return flow
        if element.default_flow is not None:
            return element.default_flow
        raise MappingFailure(
            "CONDITION_ERROR",
            "Expected at least one condition to evaluate to true, or to have a default flow",
        )

    def activate_call_activity(self, instance: dict[str, Any], element: Any) -> None:
        variables = self.state.visible_variables(instance["key"])
        process_id = self.evaluate(element.called_process_id, variables, "CALLED_ELEMENT_ERROR")
        if not isinstance(process_id, str):
            raise MappingFailure(
                "CALLED_ELEMENT_ERROR",
                f"Expected result of the expression '{element.called_process_id.text}' to be 'STRING', "
                f"but was '{feel_type_name(process_id)}'.",
            )
        process = self.state.latest_process(process_id)
        if process is None:
            raise MappingFailure(
                "CALLED_ELEMENT_ERROR",
                f"Expected process with BPMN process id '{process_id}' to be deployed, but not found.",
            )
        model = self.state.model(process["processDefinitionKey"])
        if model.none_start_event is None:
            raise MappingFailure(
                "CALLED_ELEMENT_ERROR",
                f"Expected process with BPMN process id '{process_id}' to have a none start event, but not found.",
            )
        key = instance["key"]
        self.emit_pi(key, instance, "ELEMENT_ACTIVATED")
        child_key = self.state.new_key()
        child_proc = {
            "bpmnProcessId": process["bpmnProcessId"],
            "version": process["version"],
            "processDefinitionKey": process["processDefinitionKey"],
            "processInstanceKey": child_key,
            "parentProcessInstanceKey": instance["processInstanceKey"],
            "parentElementInstanceKey": key,
        }
        if element.propagate_all_parent_variables:
            document = variables
        else:
            document = {name: value for name, (_, value) in self.state.variables.get(key, {}).items()}
        self.set_local_variables(child_key, document, child_proc)
        self.queue.append(lambda: self.activate_element(model.process, -1, child_proc, key=child_key))

    # ------------------------------------------------------------------ completion
    def complete_element(self, key: int, variables: dict[str, Any] | None = None) -> None:
        instance = self.state.element_instances.get(key)
        if instance is None or instance["state"] != "ELEMENT_ACTIVATED":
            return
        self.emit_pi(key, instance, "ELEMENT_COMPLETING")
        self.on_completing(key, variables)

    def on_completing(self, key: int, variables: dict[str, Any] | None) -> None:
        """Output mappings and the COMPLETED transition; re-run after an output-mapping incident."""
        instance = self.state.element_instances[key]
        element = self.element_of(instance)
        proc = self.process_info(instance)
        try:
            if element.outputs:
                if variables:
                    self.set_local_variables(key, variables, proc)
                visible = self.state.visible_variables(key)
                document = self.evaluate_mappings(element.outputs, visible)
                self.merge_variables(instance["flowScopeKey"], document, proc)
            elif variables:
                self.merge_variables(key, variables, proc)
        except MappingFailure as failure:
            self.raise_incident(instance, failure.error_type, failure.message)
            return
        if instance["bpmnElementType"] == "PROCESS":
            root_variables = {name: value for name, (_, value) in self.state.variables.get(key, {}).items()}
            self.emit_pi(key, instance, "ELEMENT_COMPLETED")
            self.after_process_completed(instance, root_variables)
            return
        self.emit_pi(key, instance, "ELEMENT_COMPLETED")
        if instance["bpmnElementType"] == "END_EVENT" and instance["bpmnEventType"] == "TERMINATE":
            scope_key = instance["flowScopeKey"]
            # Tokens already on their way (queued activations) die with the scope.
            self.closing_scopes.add(scope_key)
            for child_key in list(self.state.children.get(scope_key, {})):
                self.terminate_element(child_key)
            self.queue.append(lambda: self.complete_element(scope_key))
            return
        self.take_outgoing(instance, element)

    def after_process_completed(self, instance: dict[str, Any], root_variables: dict[str, Any]) -> None:
        parent_key = instance["parentElementInstanceKey"]
        if parent_key > 0:
            parent = self.state.element_instances.get(parent_key)
            if parent is not None and parent["state"] == "ELEMENT_ACTIVATED":
                call_activity = self.element_of(parent)
                if call_activity.outputs or call_activity.propagate_all_child_variables:
                    document = root_variables
                else:
                    document = {}
                self.queue.append(lambda: self.complete_element(parent_key, document))
        else:
            self.after_command.append(
                functools.partial(self.on_process_completed, instance["key"], root_variables)
            )

    def take_outgoing(self, instance: dict[str, Any], element: Any) -> None:
        flows = []
        if element.outgoing:
            variables: dict[str, Any] | None = None
            for flow in element.outgoing:
                if flow.condition is not None and instance["bpmnElementType"] != "PARALLEL_GATEWAY":
                    if variables is None:
                        variables = self.state.visible_variables(instance["flowScopeKey"])
                    try:
                        if self.evaluate(flow.condition, variables, "CONDITION_ERROR") is not True:
                            continue
                    except MappingFailure:
                        continue
                flows.append(flow)
        if not flows:
            self.check_scope_completion(instance["flowScopeKey"])
            return
        for flow in flows:
            self.take_flow(flow, instance)

    def take_flow(self, flow: Any, source: dict[str, Any]) -> None:
        flow_scope_key = source["flowScopeKey"]
        value = self.pi_value(source)
        value.update(bpmnElementType="SEQUENCE_FLOW", elementId=flow.id, bpmnEventType="UNSPECIFIED")
        self.emit(PI, "SEQUENCE_FLOW_TAKEN", self.state.new_key(), value)
        target = flow.target
        proc = self.process_info(source)
        if target.element_type.value == "PARALLEL_GATEWAY" and len(target.incoming) > 1:
            scope = self.state.element_instances.get(flow_scope_key)
            if scope is None:
                return
            taken = scope["taken"]
            if all(taken.get(incoming.id, 0) > 0 for incoming in target.incoming):
                self.queue_activate(target, flow_scope_key, proc)
            return
        self.queue_activate(target, flow_scope_key, proc)

    def check_scope_completion(self, scope_key: int) -> None:
        scope = self.state.element_instances.get(scope_key)
        if scope is None or scope["state"] != "ELEMENT_ACTIVATED":
            return
        if self.state.children.get(scope_key) or scope["taken"]:
            return
        self.queue.append(lambda: self.complete_element(scope_key))

    # ------------------------------------------------------------------ termination
    def terminate_element(self, key: int) -> None:
        """Terminate an element instance and its whole subtree (children, called instances)."""
        instance = self.state.element_instances.get(key)
        if instance is None or instance["state"] == "ELEMENT_TERMINATING":
            return
        self.emit_pi(key, instance, "ELEMENT_TERMINATING")
        for child_key in list(self.state.children.get(key, {})):
            self.terminate_element(child_key)
        if instance["childInstanceKey"] > 0:
            self.terminate_element(instance["childInstanceKey"])
        job_key = instance["jobKey"]
        job = self.state.jobs.get(job_key) if job_key > 0 else None
        # A job whose error was caught is consumed by the catch; one whose error is stuck in an
        # UNHANDLED_ERROR_EVENT incident is still live and gets canceled like any other.
        if job is not None and (
            job["state"] in (ACTIVATABLE, ACTIVATED, FAILED)
            or (job["state"] == ERROR_THROWN and job_key in self.state.job_incidents)
        ):
            self.emit("JOB", "CANCELED", job_key, dict(job["value"]))
        self.resolve_incidents_of(key)
        self.completion_variables.pop(key, None)
        self.emit_pi(key, instance, "ELEMENT_TERMINATED")

    # ------------------------------------------------------------------ errors
    def find_error_catch(self, start_key: int, error_code: str) -> tuple[int, Any] | None:
        """Search boundary events scope by scope upward, through call activities (§5.2)."""
        current = start_key
        while current > 0:
            instance = self.state.element_instances.get(current)
            if instance is None:
                return None
            element = self.element_of(instance)
            catch = _match_error_boundary(element, error_code)
            if catch is not None:
                return current, catch
            if instance["bpmnElementType"] == "PROCESS":
                current = instance["parentElementInstanceKey"]
            else:
                current = instance["flowScopeKey"]
        return None

    def available_error_events(self, start_key: int) -> list[str]:
        codes: list[str] = []
        current = start_key
        while current > 0:
            instance = self.state.element_instances.get(current)
            if instance is None:
                break
            for boundary in self.element_of(instance).boundary_events:
                if boundary.event_type.value == "ERROR":
                    codes.append(boundary.error_code or "")
            current = (
                instance["parentElementInstanceKey"]
                if instance["bpmnElementType"] == "PROCESS"
                else instance["flowScopeKey"]
            )
        return codes

    def throw_error(self, start_key: int, error_code: str, variables: dict[str, Any]) -> bool:
        found = self.find_error_catch(start_key, error_code)
        if found is None:
            return False
        attached_key, boundary = found
        attached = self.state.element_instances[attached_key]
        scope_key = attached["flowScopeKey"]
        proc = self.process_info(attached)
        self.terminate_element(attached_key)
        self.activate_element(boundary, scope_key, proc, completion_variables=variables or None)
        return True

    def unhandled_error_message(self, start_key: int, error_code: str, error_message: str) -> str:
        message_part = f" with message '{error_message}'" if error_message else ""
        available = self.available_error_events(start_key)
        if available:
            tail = " Available error events are [" + ", ".join(available) + "]"
        else:
            tail = " No error events are available in the scope."
        return f"Expected to throw an error event with the code '{error_code}'{message_part}, but it was not caught.{tail}"

    def throw_end_event_error(self, instance: dict[str, Any], element: Any) -> None:
        code = element.error_code
        if code is None and element.error_code_expression is not None:
            variables = self.state.visible_variables(instance["flowScopeKey"])
            code = self.evaluate(element.error_code_expression, variables, "EXTRACT_VALUE_ERROR")
            if not isinstance(code, str):
                raise MappingFailure(
                    "EXTRACT_VALUE_ERROR",
                    f"Expected result of the expression '{element.error_code_expression.text}' to be 'STRING', "
                    f"but was '{feel_type_name(code)}'.",
                )
        code = code or ""
        if not self.throw_error(instance["key"], code, {}):
            message = self.unhandled_error_message(instance["key"], code, "")
            self.raise_incident(instance, "UNHANDLED_ERROR_EVENT", message)


def _match_error_boundary(element: Any, error_code: str) -> Any:
    catch_all = None
    for boundary in element.boundary_events:
        if boundary.event_type.value != "ERROR":
            continue
        if boundary.error_code is None:
            if catch_all is None:
                catch_all = boundary
        elif boundary.error_code == error_code:
            return boundary
    return catch_all


def _failure_message(expression: Any, exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    source = getattr(expression, "text", "")
    if source and source not in text:
        return f"failed to evaluate expression '{source}': {text}"
    return text
