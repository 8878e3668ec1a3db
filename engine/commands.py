"""Client command processing of one partition: validation, rejections and resulting events.

Each public `cmd_*` method validates first (raising `Rejection` before writing anything, so a
rejected command changes no state), then writes its events. Rejection texts are Zeebe's
(reference §1.3); the gateway wraps them as `Command '<INTENT>' rejected with code '<TYPE>': ...`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from engine import records
from engine.execution import BpmnExecution
from engine.records import (
    INVALID_ARGUMENT,
    INVALID_STATE,
    NOT_FOUND,
    deployment_value,
    process_instance_creation_value,
    process_metadata,
    process_value,
    variable_document_value,
)
from engine.state import ACTIVATABLE, ACTIVATED, remember_models
from engine.values import MAX_MESSAGE_BYTES

UNSUPPORTED_MODIFICATION_TYPES = {"UNSPECIFIED", "START_EVENT", "SEQUENCE_FLOW", "BOUNDARY_EVENT"}
UNSUPPORTED_START_INSTRUCTION_TYPES = {"PROCESS", "UNSPECIFIED", "SEQUENCE_FLOW", "BOUNDARY_EVENT"}
#: Job deadlines are int64 milliseconds on the wire: `now + timeout` is clamped to fit, so a
#: client asking for "forever" (timeout 2^63-1) gets the latest representable deadline.
MAX_DEADLINE_MS = 2**63 - 1
#: A job whose activated form would exceed this is never offered (see `_fail_too_large_job`);
#: JOB_FIELDS_BYTES is generous room for its fields besides variables and headers.
JOB_FIELDS_BYTES = 2 * 1024
MAX_JOB_BYTES = MAX_MESSAGE_BYTES - 32 * 1024


class Rejection(Exception):
    """A command rejection: `intent` of the command, Zeebe `rejection_type` and reason."""

    def __init__(self, intent: str, rejection_type: str, reason: str):
        super().__init__(reason)
        self.intent = intent
        self.rejection_type = rejection_type
        self.reason = reason

    def client_message(self) -> str:
        return f"Command '{self.intent}' rejected with code '{self.rejection_type}': {self.reason}"


class CommandProcessor(BpmnExecution):
    partition_id: int
    now: Any

    # ------------------------------------------------------------------ deployment
    def cmd_deploy(self, resources: list[tuple[str, bytes]], parsed: list[list[Any]]) -> dict[str, Any]:
        """Deploy already-parsed resources (partition 1). Returns the DEPLOYMENT value and key."""
        processes: list[tuple[dict[str, Any], bool]] = []
        new_processes: list[dict[str, Any]] = []
        pending_versions: dict[str, int] = {}
        for (resource_name, content), models in zip(resources, parsed, strict=True):
            checksum = hashlib.md5(content, usedforsecurity=False).digest()  # Zeebe checksum (§3.4)
            checksum_b64 = records.b64(checksum)
            remember_models(checksum_b64, models)
            for model in models:
                latest = self.state.latest_process(model.bpmn_process_id)
                if (
                    latest is not None
                    and latest["checksum"] == checksum_b64
                    and latest["resourceName"] == resource_name
                ):
                    processes.append((latest, True))
                    continue
                base = pending_versions.get(model.bpmn_process_id, latest["version"] if latest else 0)
                version = base + 1
                pending_versions[model.bpmn_process_id] = version
                value = process_value(
                    bpmn_process_id=model.bpmn_process_id,
                    version=version,
                    process_definition_key=self.state.new_key(),
                    resource_name=resource_name,
                    resource=content,
                    checksum=checksum,
                    duplicate=False,
                    deployment_key=-1,
                )
                processes.append((value, False))
                new_processes.append(value)
        deployment_key = self.state.new_key()
        for value in new_processes:
            value["deploymentKey"] = deployment_key
        deployment = deployment_value(
            resources=[
                {"resourceName": name, "resource": records.b64(content)} for name, content in resources
            ],
            processes_metadata=[process_metadata(value, duplicate) for value, duplicate in processes],
            deployment_key=deployment_key,
        )
        self.apply_deployment(deployment_key, deployment, new_processes)
        return {"key": deployment_key, "value": deployment, "newProcesses": new_processes}

    def apply_deployment(
        self, deployment_key: int, deployment: dict[str, Any], new_processes: list[dict[str, Any]]
    ) -> None:
        """Write the deployment's events (also used to distribute it to other partitions)."""
        for value in new_processes:
            if value["processDefinitionKey"] not in self.state.processes:
                self.emit("PROCESS", "CREATED", value["processDefinitionKey"], dict(value))
        self.emit("DEPLOYMENT", "CREATED", deployment_key, deployment)

    # ------------------------------------------------------------------ instances
    def find_process(self, bpmn_process_id: str, version: int, key: int) -> dict[str, Any]:
        intent = "CREATE"
        if key > 0:
            process = self.state.processes.get(key)
            if process is None:
                raise Rejection(
                    intent, NOT_FOUND, f"Expected to find process definition with key '{key}', but none found"
                )
            return process
        if not bpmn_process_id:
            raise Rejection(
                intent,
                INVALID_ARGUMENT,
                "Expected at least a bpmnProcessId or a key greater than -1, but none given",
            )
        if version < 0:
            found = self.state.latest_process(bpmn_process_id)
            if found is None:
                raise Rejection(
                    intent,
                    NOT_FOUND,
                    f"Expected to find process definition with process ID '{bpmn_process_id}', but none found",
                )
            return found
        found = self.state.process_by_version(bpmn_process_id, version)
        if found is None:
            raise Rejection(
                intent,
                NOT_FOUND,
                f"Expected to find process definition with process ID '{bpmn_process_id}' and version "
                f"'{version}', but none found",
            )
        return found

    def cmd_create_instance(
        self,
        bpmn_process_id: str,
        version: int,
        process_definition_key: int,
        variables: dict[str, Any],
        start_instructions: list[str],
    ) -> dict[str, Any]:
        process = self.find_process(bpmn_process_id, version, process_definition_key)
        model = self.state.model(process["processDefinitionKey"])
        start_elements = []
        for element_id in start_instructions:
            element = model.elements_by_id.get(element_id)
            if element is None:
                raise Rejection(
                    "CREATE",
                    INVALID_ARGUMENT,
                    f"Expected to create instance of process with start instructions but no element found with id "
                    f"'{element_id}'.",
                )
            if element.element_type.value in UNSUPPORTED_START_INSTRUCTION_TYPES:
                # Starting "at the process itself" would create a second process scope inside the
                # instance that nothing ever completes (Zeebe refuses it the same way).
                raise Rejection(
                    "CREATE",
                    INVALID_ARGUMENT,
                    f"Expected to create instance of process with start instructions but the element with id "
                    f"'{element_id}' targets unsupported element type '{element.element_type.value}'. Supported "
                    f"element types are: flow nodes inside the process (tasks, events, gateways, sub-processes).",
                )
            start_elements.append(element)
        if not start_elements and model.none_start_event is None:
            raise Rejection(
                "CREATE",
                INVALID_STATE,
                "Expected to create instance of process with none start event, but there is no such event",
            )
        key = self.state.new_key()
        proc = {
            "bpmnProcessId": process["bpmnProcessId"],
            "version": process["version"],
            "processDefinitionKey": process["processDefinitionKey"],
            "processInstanceKey": key,
            "parentProcessInstanceKey": -1,
            "parentElementInstanceKey": -1,
        }
        self.set_local_variables(key, variables, proc)
        value = process_instance_creation_value(
            bpmn_process_id=process["bpmnProcessId"],
            process_definition_key=process["processDefinitionKey"],
            version=process["version"],
            process_instance_key=key,
            variables=variables,
            start_instructions=[{"elementId": element.id} for element in start_elements],
        )
        if start_elements:
            self.scopes_without_start.add(key)

            def start_with_instructions() -> None:
                self.activate_element(model.process, -1, proc, key=key)
                self.scopes_without_start.discard(key)
                for element in start_elements:
                    scope_key = self.ensure_flow_scope(element, key, -1)
                    if scope_key is not None:
                        self.activate_element(element, scope_key, proc)

            self.queue.append(start_with_instructions)
        else:
            self.queue.append(lambda: self.activate_element(model.process, -1, proc, key=key))
        self.emit("PROCESS_INSTANCE_CREATION", "CREATED", key, value)
        return {"process": process, "processInstanceKey": key}

    def cmd_cancel(self, process_instance_key: int) -> None:
        instance = self.state.element_instances.get(process_instance_key)
        if instance is None or instance["bpmnElementType"] != "PROCESS":
            raise Rejection(
                "CANCEL",
                NOT_FOUND,
                f"Expected to cancel a process instance with key '{process_instance_key}', but no such process was found",
            )
        if instance["parentProcessInstanceKey"] > 0:
            raise Rejection(
                "CANCEL",
                INVALID_STATE,
                f"Expected to cancel a process instance with key '{process_instance_key}', but it is created by a "
                f"parent process instance. Cancel the root process instance "
                f"'{self.root_instance_key(instance)}' instead.",
            )
        self.terminate_element(process_instance_key)

    def root_instance_key(self, instance: dict[str, Any]) -> int:
        while instance["parentProcessInstanceKey"] > 0:
            parent = self.state.element_instances.get(instance["parentProcessInstanceKey"])
            if parent is None:
                return int(instance["parentProcessInstanceKey"])
            instance = parent
        return int(instance["processInstanceKey"])

    def cmd_set_variables(self, element_instance_key: int, variables: dict[str, Any], local: bool) -> int:
        instance = self.state.element_instances.get(element_instance_key)
        if instance is None:
            raise Rejection(
                "UPDATE",
                NOT_FOUND,
                f"Expected to update variables for element with key '{element_instance_key}', but no such element "
                f"was found",
            )
        proc = self.process_info(instance)
        if local:
            self.set_local_variables(element_instance_key, variables, proc)
        else:
            self.merge_variables(element_instance_key, variables, proc)
        key = self.state.new_key()
        self.emit(
            "VARIABLE_DOCUMENT",
            "UPDATED",
            key,
            variable_document_value(scope_key=element_instance_key, local=local, variables=variables),
        )
        return key

    # ------------------------------------------------------------------ jobs
    def _job(
        self, job_key: int, intent: str, verb: str, allowed: tuple[str, ...] = (ACTIVATABLE, ACTIVATED)
    ) -> dict[str, Any]:
        job = self.state.jobs.get(job_key)
        if job is None:
            raise Rejection(
                intent, NOT_FOUND, f"Expected to {verb} job with key '{job_key}', but no such job was found"
            )
        if job["state"] not in allowed:
            raise Rejection(
                intent,
                INVALID_STATE,
                f"Expected to {verb} job with key '{job_key}', but it is in state '{job['state']}'",
            )
        return job

    def cmd_complete_job(self, job_key: int, variables: dict[str, Any]) -> None:
        job = self._job(job_key, "COMPLETE", "complete")
        value = dict(job["value"])
        value["variables"] = variables
        self.emit("JOB", "COMPLETED", job_key, value)
        element_instance_key = value["elementInstanceKey"]
        self.queue.append(lambda: self.complete_element(element_instance_key, variables))

    def cmd_fail_job(
        self, job_key: int, retries: int, error_message: str, backoff: int, variables: dict[str, Any]
    ) -> None:
        job = self._job(job_key, "FAIL", "fail")
        value = dict(job["value"])
        value.update(
            retries=retries,
            errorMessage=error_message,
            retryBackoff=backoff if retries > 0 else 0,
            recurringTime=self.now() + backoff if retries > 0 and backoff > 0 else -1,
            variables=variables,
        )
        self.emit("JOB", "FAILED", job_key, value)
        instance = self.state.element_instances.get(value["elementInstanceKey"])
        if instance is not None and variables:
            # FailJob variables are set local to the task scope (reference §1.3).
            self.set_local_variables(instance["key"], variables, self.process_info(instance))
        if retries <= 0 and instance is not None:
            self.raise_incident(
                instance, "JOB_NO_RETRIES", error_message or "No more retries left.", job_key=job_key
            )

    def cmd_throw_error(
        self, job_key: int, error_code: str, error_message: str, variables: dict[str, Any]
    ) -> None:
        job = self._job(job_key, "THROW_ERROR", "throw an error for")
        value = dict(job["value"])
        value.update(errorCode=error_code, errorMessage=error_message, variables=variables)
        self.emit("JOB", "ERROR_THROWN", job_key, value)
        element_instance_key = value["elementInstanceKey"]
        instance = self.state.element_instances.get(element_instance_key)
        if instance is None:
            return
        if not self.throw_error(element_instance_key, error_code, variables):
            message = self.unhandled_error_message(element_instance_key, error_code, error_message)
            self.raise_incident(instance, "UNHANDLED_ERROR_EVENT", message, job_key=job_key)

    def cmd_update_retries(self, job_key: int, retries: int) -> None:
        job = self.state.jobs.get(job_key)
        if job is None:
            raise Rejection(
                "UPDATE_RETRIES",
                NOT_FOUND,
                f"Expected to update retries for job with key '{job_key}', but no such job was found",
            )
        if retries < 1:
            raise Rejection(
                "UPDATE_RETRIES",
                INVALID_ARGUMENT,
                f"Expected to update retries for job with key '{job_key}' with a positive amount of retries, but the "
                f"amount given was '{retries}'",
            )
        value = dict(job["value"])
        value["retries"] = retries
        self.emit("JOB", "RETRIES_UPDATED", job_key, value)

    def cmd_update_timeout(self, job_key: int, timeout: int) -> None:
        job = self.state.jobs.get(job_key)
        if job is None:
            raise Rejection(
                "UPDATE_TIMEOUT",
                NOT_FOUND,
                f"Expected to update job with key '{job_key}', but no such job was found",
            )
        if job["state"] != ACTIVATED:
            raise Rejection(
                "UPDATE_TIMEOUT",
                INVALID_STATE,
                f"Expected to update the timeout of job with key '{job_key}', but it is not active",
            )
        value = dict(job["value"])
        value.update(deadline=min(self.now() + timeout, MAX_DEADLINE_MS), timeout=timeout)
        self.emit("JOB", "TIMEOUT_UPDATED", job_key, value)

    def cmd_time_out_job(self, job_key: int, now: int) -> bool:
        job = self.state.jobs.get(job_key)
        if job is None or job["state"] != ACTIVATED or job["value"]["deadline"] > now:
            return False
        self.emit("JOB", "TIMED_OUT", job_key, dict(job["value"]))
        return True

    def cmd_yield_job(self, job_key: int) -> bool:
        """An activated job that was never delivered becomes activatable again (JOB YIELDED)."""
        job = self.state.jobs.get(job_key)
        if job is None or job["state"] != ACTIVATED:
            return False
        value = dict(job["value"])
        value.update(worker="", deadline=-1)
        self.emit("JOB", "YIELDED", job_key, value)
        return True

    def cmd_recur_job(self, job_key: int, now: int) -> bool:
        job = self.state.jobs.get(job_key)
        if job is None or job_key not in self.state.backoffs or job["value"]["recurringTime"] > now:
            return False
        self.emit("JOB", "RECURRED_AFTER_BACKOFF", job_key, dict(job["value"]))
        return True

    def cmd_activate_jobs(
        self, job_type: str, worker: str, timeout: int, max_jobs: int, fetch_variables: list[str]
    ) -> list[dict[str, Any]]:
        queue = self.state.activatable.get(job_type)
        if not queue:
            return []
        keys = []
        for job_key in queue:
            keys.append(job_key)
            if len(keys) >= max_jobs:
                break
        deadline = min(self.now() + timeout, MAX_DEADLINE_MS)
        jobs = []
        texts = []
        fitting = []
        too_large = []
        for job_key in keys:
            job = self.state.jobs[job_key]
            value = dict(job["value"])
            variables = self.state.visible_variables(value["elementInstanceKey"])
            if fetch_variables:
                variables = {name: variables[name] for name in fetch_variables if name in variables}
            text = json.dumps(variables)  # exactly what the gateway sends (ActivatedJob.variables)
            size = len(text) + len(json.dumps(value["customHeaders"])) + JOB_FIELDS_BYTES
            if size > MAX_JOB_BYTES:
                too_large.append((job_key, size))
                continue
            value.update(worker=worker, deadline=deadline, timeout=timeout, variables=variables)
            jobs.append(value)
            texts.append(text)
            fitting.append(job_key)
        if fitting:
            batch = {
                "type": job_type,
                "worker": worker,
                "timeout": timeout,
                "maxJobsToActivate": max_jobs,
                "jobKeys": fitting,
                "jobs": jobs,
                "truncated": False,
                "tenantIds": [records.DEFAULT_TENANT],
            }
            self.emit("JOB_BATCH", "ACTIVATED", self.state.new_key(), batch)
        for job_key, size in too_large:
            self._fail_too_large_job(job_key, size)
        return [
            dict(job, key=job_key, variablesJson=text)
            for job_key, job, text in zip(fitting, jobs, texts, strict=True)
        ]

    def _fail_too_large_job(self, job_key: int, size: int) -> None:
        """A job no client could receive (Zeebe: MESSAGE_SIZE_EXCEEDED): out of the activatable
        queue, with an incident instead of being offered, and refused, for ever."""
        job = self.state.jobs[job_key]
        message = (
            f"The job with key '{job_key}' cannot be activated: with its variables it needs about {size} bytes, "
            f"more than the maximum message size of {MAX_MESSAGE_BYTES} bytes. Reduce the variables (or use "
            f"fetchVariables), update the job's retries and resolve this incident."
        )
        value = dict(job["value"])
        value.update(retries=0, errorMessage=message, retryBackoff=0, recurringTime=-1, deadline=-1)
        self.emit("JOB", "FAILED", job_key, value)
        instance = self.state.element_instances.get(value["elementInstanceKey"])
        if instance is not None:
            self.raise_incident(instance, "MESSAGE_SIZE_EXCEEDED", message, job_key=job_key)

    # ------------------------------------------------------------------ incidents
    def cmd_resolve_incident(self, incident_key: int) -> None:
        incident = self.state.incidents.get(incident_key)
        if incident is None:
            raise Rejection(
                "RESOLVE",
                NOT_FOUND,
                f"Expected to resolve incident with key '{incident_key}', but no such incident was found",
            )
        job_key = incident["jobKey"]
        if job_key > 0:
            job = self.state.jobs.get(job_key)
            if job is not None and job["value"]["retries"] <= 0:
                raise Rejection(
                    "RESOLVE",
                    INVALID_STATE,
                    f"Expected to resolve incident with key '{incident_key}', but job with key '{job_key}' has no "
                    f"retries left. Update the job retries first.",
                )
        self.emit("INCIDENT", "RESOLVED", incident_key, dict(incident))
        if job_key > 0:
            return
        element_instance_key = incident["elementInstanceKey"]
        instance = self.state.element_instances.get(element_instance_key)
        if instance is None:
            return
        # Re-attempt the step that failed, with the current variables (reference §1.3).
        if instance["state"] == "ELEMENT_ACTIVATING":
            self.on_activate(element_instance_key)
        elif instance["state"] == "ELEMENT_COMPLETING":
            self.on_completing(element_instance_key, None)
        elif incident["errorType"] == "UNHANDLED_ERROR_EVENT" and instance["bpmnElementType"] == "END_EVENT":
            try:
                self.throw_end_event_error(instance, self.element_of(instance))
            except Exception as failure:
                self.raise_incident(instance, "EXTRACT_VALUE_ERROR", str(failure))
        self.drain()

    # ------------------------------------------------------------------ modification
    def cmd_modify(
        self,
        process_instance_key: int,
        activate_instructions: list[dict[str, Any]],
        terminate_instructions: list[int],
    ) -> None:
        intent = "MODIFY"
        instance = self.state.element_instances.get(process_instance_key)
        if instance is None or instance["bpmnElementType"] != "PROCESS":
            raise Rejection(
                intent,
                NOT_FOUND,
                f"Expected to modify process instance but no process instance found with key '{process_instance_key}'",
            )
        model = self.state.model(instance["processDefinitionKey"])
        process_id = instance["bpmnProcessId"]
        prefix = f"Expected to modify instance of process '{process_id}' but it contains one or more"
        unknown = [
            i["elementId"] for i in activate_instructions if i["elementId"] not in model.elements_by_id
        ]
        if unknown:
            raise Rejection(
                intent,
                INVALID_ARGUMENT,
                f"{prefix} activate instructions with an element that could not be found: '{_join(unknown)}'",
            )
        unsupported = [
            i["elementId"]
            for i in activate_instructions
            if model.elements_by_id[i["elementId"]].element_type.value in UNSUPPORTED_MODIFICATION_TYPES
            or model.elements_by_id[i["elementId"]].element_type.value == "PROCESS"
        ]
        if unsupported:
            types = sorted({model.elements_by_id[e].element_type.value for e in unsupported})
            raise Rejection(
                intent,
                INVALID_ARGUMENT,
                f"{prefix} activate instructions for elements that are unsupported: '{_join(unsupported)}'. "
                f"The activation of elements with type '{_join(types)}' is not supported.",
            )
        missing = [
            str(key)
            for key in terminate_instructions
            if (target := self.state.element_instances.get(key)) is None
            or target["processInstanceKey"] != process_instance_key
            or target["bpmnElementType"] == "PROCESS"
        ]
        if missing:
            raise Rejection(
                intent,
                INVALID_ARGUMENT,
                f"{prefix} terminate instructions with an element instance that could not be found: "
                f"'{_join(missing)}'",
            )
        for instruction in activate_instructions:
            element = model.elements_by_id[instruction["elementId"]]
            scope_ids = _flow_scope_ids(element)
            for variable_instruction in instruction["variableInstructions"]:
                scope_id = variable_instruction["scopeId"]
                if scope_id and scope_id not in model.elements_by_id:
                    raise Rejection(
                        intent,
                        INVALID_ARGUMENT,
                        f"{prefix} variable instructions with a scope element id that could not be found: '{scope_id}'",
                    )
                if scope_id and scope_id != element.id and scope_id not in scope_ids:
                    raise Rejection(
                        intent,
                        INVALID_ARGUMENT,
                        f"{prefix} variable instructions with a scope element that doesn't belong to the activating "
                        f"element's flow scope. These variables should be set before or after the modification.",
                    )
            ancestor_key = instruction["ancestorElementInstanceKey"]
            if ancestor_key > 0:
                ancestor = self.state.element_instances.get(ancestor_key)
                if ancestor is None or ancestor["state"] not in ("ELEMENT_ACTIVATED", "ELEMENT_ACTIVATING"):
                    raise Rejection(
                        intent,
                        INVALID_ARGUMENT,
                        f"{prefix} activate instructions with an ancestor scope key that does not exist, or is not in "
                        f"an active state: '{ancestor_key}'",
                    )
                if ancestor["processInstanceKey"] != process_instance_key:
                    raise Rejection(
                        intent,
                        INVALID_ARGUMENT,
                        f"Expected to modify instance of process '{process_id}' but it contains one or more activate "
                        f"instructions with an ancestor scope key that does not belong to the modified process "
                        f"instance: '{ancestor_key}'",
                    )
                if ancestor["elementId"] not in scope_ids:
                    raise Rejection(
                        intent,
                        INVALID_ARGUMENT,
                        f"{prefix} activate instructions with an ancestor scope key that is not an ancestor of the "
                        f"element to activate:\n- instance '{ancestor_key}' of element '{ancestor['elementId']}' is "
                        f"not an ancestor of element '{element.id}'",
                    )
            else:
                ambiguous = self._ambiguous_flow_scope(element, process_instance_key)
                if ambiguous is not None:
                    raise Rejection(
                        intent,
                        INVALID_ARGUMENT,
                        f"{prefix} activate instructions for an element that has a flow scope with more than one "
                        f"active instance: '{ambiguous}'. Can't decide in which instance of the flow scope the element "
                        f"should be activated. Please specify an ancestor element instance key for this activate "
                        f"instruction.",
                    )
        conflicts = self._activations_into_terminated_scopes(
            activate_instructions, terminate_instructions, process_instance_key
        )
        if conflicts:
            raise Rejection(
                intent,
                INVALID_ARGUMENT,
                f"{prefix} activate instructions for elements whose required flow scope instance is also being "
                f"terminated: {', '.join(conflicts)}. Please provide a valid ancestor scope key for the activation "
                f"or avoid terminating the required flow scope.",
            )
        if (
            instance["parentProcessInstanceKey"] > 0
            and not activate_instructions
            and self._would_leave_empty(process_instance_key, set(terminate_instructions))
        ):
            # Zeebe refuses: the calling parent would wait forever for this instance.
            raise Rejection(
                intent,
                INVALID_ARGUMENT,
                f"Expected to modify instance of process '{process_id}' but the given instructions would terminate "
                f"the instance. The instance was created by a call activity in the parent process. To terminate "
                f"this instance please modify the parent process instead.",
            )
        # --- all valid: execute. Activations first decide which scopes must survive.
        proc = self.process_info(instance)
        required_scopes: set[int] = set()
        activations = []
        for instruction in activate_instructions:
            element = model.elements_by_id[instruction["elementId"]]
            scope_key = self.ensure_flow_scope(
                element, process_instance_key, instruction["ancestorElementInstanceKey"]
            )
            if scope_key is None:
                continue
            required_scopes.update(self.state.scope_chain(scope_key))
            element_key = self.state.new_key()
            for variable_instruction in instruction["variableInstructions"]:
                scope_id = variable_instruction["scopeId"]
                if not scope_id or scope_id == model.process.id:
                    target_scope = process_instance_key
                elif scope_id == element.id:
                    target_scope = element_key
                else:
                    target_scope = next(
                        (
                            k
                            for k in self.state.scope_chain(scope_key)
                            if self.state.element_instances[k]["elementId"] == scope_id
                        ),
                        scope_key,
                    )
                self.set_local_variables(target_scope, variable_instruction["variables"], proc)
            activations.append((element, scope_key, element_key))
            instruction["ancestorScopeKeys"] = list(self.state.scope_chain(scope_key))
        for key in terminate_instructions:
            target = self.state.element_instances.get(key)
            if target is None:
                continue
            flow_scope_key = target["flowScopeKey"]
            self.terminate_element(key)
            self.terminate_flow_scopes(flow_scope_key, required_scopes)
        self.emit(
            "PROCESS_INSTANCE_MODIFICATION",
            "MODIFIED",
            process_instance_key,
            {
                "processInstanceKey": process_instance_key,
                "terminateInstructions": [{"elementInstanceKey": key} for key in terminate_instructions],
                "activateInstructions": [
                    {
                        "elementId": i["elementId"],
                        "ancestorScopeKey": i["ancestorElementInstanceKey"],
                        "variableInstructions": [
                            {"variables": v["variables"], "elementId": v["scopeId"]}
                            for v in i["variableInstructions"]
                        ],
                        "ancestorScopeKeys": i.get("ancestorScopeKeys", []),
                    }
                    for i in activate_instructions
                ],
                "tenantId": records.DEFAULT_TENANT,
            },
        )
        for element, scope_key, element_key in activations:
            self.queue.append(
                functools.partial(self.activate_element, element, scope_key, proc, key=element_key)
            )

    def _activations_into_terminated_scopes(
        self,
        activate_instructions: list[dict[str, Any]],
        terminate_instructions: list[int],
        process_instance_key: int,
    ) -> list[str]:
        """Activations whose existing flow-scope instance a terminate instruction would end."""
        terminated = set(terminate_instructions)
        if not terminated:
            return []
        model = self.state.model(self.state.element_instances[process_instance_key]["processDefinitionKey"])
        conflicts = []
        for instruction in activate_instructions:
            element = model.elements_by_id[instruction["elementId"]]
            scope = element.flow_scope
            if scope is None or scope.element_type.value == "PROCESS":
                scope_key = process_instance_key
            elif instruction["ancestorElementInstanceKey"] > 0:
                scope_key = instruction["ancestorElementInstanceKey"]
            else:
                active = self._active_instances_of(scope.id, process_instance_key)
                if not active:
                    continue  # a new scope instance will be created
                scope_key = active[0]
            for key in self.state.scope_chain(scope_key):
                if key in terminated:
                    conflicts.append(
                        f"element '{element.id}' requires flow scope instance '{key}' which is being terminated"
                    )
                    break
        return conflicts

    def _would_leave_empty(self, scope_key: int, terminated: set[int]) -> bool:
        """True if terminating `terminated` leaves the scope without any active element."""

        def survives(key: int) -> bool:
            if key in terminated:
                return False
            children = self.state.children.get(key)
            return not children or any(survives(child) for child in children)

        scope = self.state.element_instances[scope_key]
        return not scope["taken"] and not any(
            survives(child) for child in self.state.children.get(scope_key, {})
        )

    def _ambiguous_flow_scope(self, element: Any, process_instance_key: int) -> str | None:
        scope = element.flow_scope
        while scope is not None and scope.element_type.value != "PROCESS":
            active = self._active_instances_of(scope.id, process_instance_key)
            if len(active) > 1:
                return str(scope.id)
            if len(active) == 1:
                return None
            scope = scope.flow_scope
        return None

    def _active_instances_of(self, element_id: str, process_instance_key: int) -> list[int]:
        return [
            key
            for key, inst in self.state.element_instances.items()
            if inst["elementId"] == element_id
            and inst["processInstanceKey"] == process_instance_key
            and inst["state"] in ("ELEMENT_ACTIVATED", "ELEMENT_ACTIVATING")
        ]

    def ensure_flow_scope(self, element: Any, process_instance_key: int, ancestor_key: int) -> int | None:
        """The flow-scope instance for activating `element`, creating missing sub-process
        instances on the way (Zeebe ElementActivationBehavior)."""
        scope = element.flow_scope
        if scope is None or scope.element_type.value == "PROCESS":
            return process_instance_key
        if ancestor_key > 0:
            ancestor = self.state.element_instances.get(ancestor_key)
            if ancestor is not None and ancestor["elementId"] == scope.id:
                return ancestor_key
        else:
            active = self._active_instances_of(scope.id, process_instance_key)
            if active:
                return active[0]
        parent_scope_key = self.ensure_flow_scope(scope, process_instance_key, ancestor_key)
        if parent_scope_key is None:
            return None
        parent = self.state.element_instances[parent_scope_key]
        key = self.state.new_key()
        self.scopes_without_start.add(key)
        try:
            self.activate_element(scope, parent_scope_key, self.process_info(parent), key=key)
        finally:
            self.scopes_without_start.discard(key)
        return key

    def terminate_flow_scopes(self, scope_key: int, required: set[int]) -> None:
        """After a terminate instruction: a scope left without active children ends too."""
        while scope_key > 0 and scope_key not in required:
            scope = self.state.element_instances.get(scope_key)
            if scope is None or self.state.children.get(scope_key) or scope["taken"]:
                return
            parent_key = scope["flowScopeKey"]
            self.terminate_element(scope_key)
            scope_key = parent_key


def _flow_scope_ids(element: Any) -> set[str]:
    ids = set()
    scope = element.flow_scope
    while scope is not None:
        ids.add(scope.id)
        scope = scope.flow_scope
    return ids


def _join(items: list[str]) -> str:
    return "', '".join(items)
