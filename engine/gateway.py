"""The Zeebe gateway gRPC service of the embedded engine (reference §1).

Reuses pyzeebe's generated `gateway_pb2`/`gateway_pb2_grpc` (never a second copy of the proto,
reference §1.1). Every answer is sent only after the records of its command are durable.
Rejections keep Zeebe's status codes and message shape (§1.3, §1.5).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc as pb_grpc

from engine.broker import Broker
from engine.partition import Partition, PartitionUnavailable
from engine.processing.command import Command, Rejection
from engine.processing.processors.creation import Created
from engine.processing.processors.decisions import EvaluateDecision, evaluate_command_value
from engine.processing.processors.jobs import FailJob, ThrowJobError
from engine.processing.processors.messages import PublishMessage
from engine.processing.processors.migration import MigrateInstance
from engine.processing.processors.modification import ModifyInstance
from engine.records import BROKER_VERSION, DEFAULT_TENANT
from engine.values import MAX_MESSAGE_BYTES, parse_variables_document

log = logging.getLogger("engine.gateway")
# DEBUG: one line per message of activated jobs grpc accepted, and per job yielded back, so a
# test (or an operator) can tell a job handed to a client from one that was lost.
delivery_log = logging.getLogger("engine.gateway.delivery")

LONG_POLLING_TIMEOUT_MS = 10_000  # ConfigurationDefaults.DEFAULT_LONG_POLLING_TIMEOUT (§1.4)
DEFAULT_REQUEST_TIMEOUT_MS = 15_000  # ConfigurationDefaults.DEFAULT_REQUEST_TIMEOUT
STREAM_BATCH = 32
#: gRPC sends a status message as a (percent-encoded) header, and headers over ~8 KB make the
#: client see RESOURCE_EXHAUSTED instead of the status: messages are cut to this many bytes
#: encoded, keeping the status.
MAX_STATUS_MESSAGE_BYTES = 4_000
#: Activated jobs are split over several ActivateJobsResponse messages so that none exceeds
#: MAX_MESSAGE_BYTES (Zeebe truncates its batches likewise); this much is left for framing.
MESSAGE_HEADROOM_BYTES = 16 * 1024
_TENANT_PATTERN = re.compile(r"^[\w.-]{1,31}$")

_STATUS_OF_REJECTION = {
    "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "ALREADY_EXISTS": grpc.StatusCode.ALREADY_EXISTS,
    "INVALID_STATE": grpc.StatusCode.FAILED_PRECONDITION,
    "PROCESSING_ERROR": grpc.StatusCode.INTERNAL,
}


class GatewayError(Exception):
    """A gateway-side validation error (never reached the broker)."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def short_status_message(message: str, limit: int = MAX_STATUS_MESSAGE_BYTES) -> str:
    """`message` cut so that its percent-encoded form (as gRPC sends it) fits in `limit` bytes."""
    size = 0
    for index, char in enumerate(message):
        size += 1 if " " <= char <= "~" and char != "%" else 3 * len(char.encode("utf-8", "replace"))
        if size > limit:
            rest = len(message) - index
            return message[:index] + f" ... ({rest} more characters)"
    return message


def _unary(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def wrapper(self: GatewayServicer, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except Rejection as rejection:
            await context.abort(
                _STATUS_OF_REJECTION.get(rejection.rejection_type, grpc.StatusCode.UNKNOWN),
                short_status_message(rejection.client_message()),
            )
        except GatewayError as error:
            await context.abort(error.code, short_status_message(error.message))
        except PartitionUnavailable as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, short_status_message(str(error)))
        except asyncio.CancelledError:
            raise
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            log.exception("unexpected error in %s", method.__name__)
            await context.abort(
                grpc.StatusCode.INTERNAL,
                short_status_message(f"Unexpected error occurred during the request processing: {exc}"),
            )

    return wrapper


def _variables(text: str, what: str = "variables") -> dict[str, Any]:
    try:
        return parse_variables_document(text)
    except json.JSONDecodeError as exc:
        raise GatewayError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Property '{what}' is invalid: Expected document to be a root level object, but was not: {exc}",
        ) from exc
    except ValueError as exc:
        raise GatewayError(grpc.StatusCode.INVALID_ARGUMENT, f"Property '{what}' is invalid: {exc}") from exc


def _check_tenant(rpc: str, tenant_id: str) -> None:
    """Multi-tenancy is off: only "" and "<default>" are accepted (reference §1.5)."""
    if tenant_id in ("", DEFAULT_TENANT):
        return
    if not _TENANT_PATTERN.match(tenant_id):
        raise GatewayError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Expected to handle gRPC request {rpc} with tenant identifier '{tenant_id}', but tenant identifier "
            f"contains illegal characters",
        )
    raise GatewayError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"Expected to handle gRPC request {rpc} with tenant identifier '{tenant_id}', but multi-tenancy is disabled",
    )


def _evaluate_decision_response(key: int, value: dict[str, Any]) -> pb.EvaluateDecisionResponse:
    """Zeebe's ResponseMapper.toEvaluateDecisionResponse: on failure the failed decision id and
    message are set and `decisionOutput` is left empty."""
    evaluated = [
        pb.EvaluatedDecision(
            decisionKey=item["decisionKey"],
            decisionId=item["decisionId"],
            decisionName=item["decisionName"],
            decisionVersion=item["decisionVersion"],
            decisionType=item["decisionType"],
            decisionOutput=item["decisionOutput"],
            matchedRules=[
                pb.MatchedDecisionRule(
                    ruleId=rule["ruleId"],
                    ruleIndex=rule["ruleIndex"],
                    evaluatedOutputs=[
                        pb.EvaluatedDecisionOutput(
                            outputId=output["outputId"],
                            outputName=output["outputName"],
                            outputValue=output["outputValue"],
                        )
                        for output in rule["evaluatedOutputs"]
                    ],
                )
                for rule in item["matchedRules"]
            ],
            evaluatedInputs=[
                pb.EvaluatedDecisionInput(
                    inputId=entry["inputId"], inputName=entry["inputName"], inputValue=entry["inputValue"]
                )
                for entry in item["evaluatedInputs"]
            ],
            tenantId=DEFAULT_TENANT,
        )
        for item in value["evaluatedDecisions"]
    ]
    response = pb.EvaluateDecisionResponse(
        decisionKey=value["decisionKey"],
        decisionId=value["decisionId"],
        decisionName=value["decisionName"],
        decisionVersion=value["decisionVersion"],
        decisionRequirementsId=value["decisionRequirementsId"],
        decisionRequirementsKey=value["decisionRequirementsKey"],
        evaluatedDecisions=evaluated,
        tenantId=DEFAULT_TENANT,
        decisionInstanceKey=key,
    )
    if value["failedDecisionId"]:
        response.failedDecisionId = value["failedDecisionId"]
        response.failureMessage = value["evaluationFailureMessage"]
    else:
        response.decisionOutput = value["decisionOutput"]
    return response


def _wake_up(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _activated_job(job: dict[str, Any]) -> pb.ActivatedJob:
    return pb.ActivatedJob(
        key=job["key"],
        type=job["type"],
        processInstanceKey=job["processInstanceKey"],
        bpmnProcessId=job["bpmnProcessId"],
        processDefinitionVersion=job["processDefinitionVersion"],
        processDefinitionKey=job["processDefinitionKey"],
        elementId=job["elementId"],
        elementInstanceKey=job["elementInstanceKey"],
        customHeaders=json.dumps(job["customHeaders"]),
        worker=job["worker"],
        retries=job["retries"],
        deadline=job["deadline"],
        variables=job.get("variablesJson") or json.dumps(job["variables"]),
        tenantId=DEFAULT_TENANT,
    )


def _jobs_message(jobs: list[dict[str, Any]]) -> tuple[pb.ActivateJobsResponse, int]:
    """The first jobs of `jobs` that fit in one message under MAX_MESSAGE_BYTES (at least one:
    the partition never activates a job that alone exceeds it), and how many they are."""
    budget = MAX_MESSAGE_BYTES - MESSAGE_HEADROOM_BYTES
    activated: list[pb.ActivatedJob] = []
    for job in jobs:
        message = _activated_job(job)
        size = message.ByteSize() + 8  # field tag and length prefix
        if activated and size > budget:
            break
        budget -= size
        activated.append(message)
    return pb.ActivateJobsResponse(jobs=activated), len(activated)


class GatewayServicer(pb_grpc.GatewayServicer):
    def __init__(self, broker: Broker, host: str = "127.0.0.1", port: int = 26500):
        self.broker = broker
        self.host = host
        self.port = port

    # ------------------------------------------------------------------ topology
    @_unary
    async def Topology(self, request: pb.TopologyRequest, context: Any) -> pb.TopologyResponse:
        partitions = [
            pb.Partition(partitionId=pid, role=pb.Partition.LEADER, health=pb.Partition.HEALTHY)
            for pid in self.broker.partitions
        ]
        broker_info = pb.BrokerInfo(
            nodeId=0, host=self.host, port=self.port, partitions=partitions, version=BROKER_VERSION
        )
        return pb.TopologyResponse(
            brokers=[broker_info],
            clusterSize=1,
            partitionsCount=self.broker.partition_count,
            replicationFactor=1,
            gatewayVersion=BROKER_VERSION,
        )

    # ------------------------------------------------------------------ deployment
    @_unary
    async def DeployResource(
        self, request: pb.DeployResourceRequest, context: Any
    ) -> pb.DeployResourceResponse:
        _check_tenant("DeployResource", request.tenantId)
        result = await self.broker.deploy([(r.name, bytes(r.content)) for r in request.resources])
        deployments = [
            pb.Deployment(
                process=pb.ProcessMetadata(
                    bpmnProcessId=m["bpmnProcessId"],
                    version=m["version"],
                    processDefinitionKey=m["processDefinitionKey"],
                    resourceName=m["resourceName"],
                    tenantId=DEFAULT_TENANT,
                )
            )
            for m in result["value"]["processesMetadata"]
        ]
        # Zeebe's order (ResponseMapper.toDeployResourceResponse): processes, decisions, DRGs
        deployments += [
            pb.Deployment(
                decision=pb.DecisionMetadata(
                    dmnDecisionId=m["decisionId"],
                    dmnDecisionName=m["decisionName"],
                    version=m["version"],
                    decisionKey=m["decisionKey"],
                    dmnDecisionRequirementsId=m["decisionRequirementsId"],
                    decisionRequirementsKey=m["decisionRequirementsKey"],
                    tenantId=DEFAULT_TENANT,
                )
            )
            for m in result["value"].get("decisionsMetadata", [])
        ]
        deployments += [
            pb.Deployment(
                decisionRequirements=pb.DecisionRequirementsMetadata(
                    dmnDecisionRequirementsId=m["decisionRequirementsId"],
                    dmnDecisionRequirementsName=m["decisionRequirementsName"],
                    version=m["decisionRequirementsVersion"],
                    decisionRequirementsKey=m["decisionRequirementsKey"],
                    resourceName=m["resourceName"],
                    tenantId=DEFAULT_TENANT,
                )
            )
            for m in result["value"].get("decisionRequirementsMetadata", [])
        ]
        return pb.DeployResourceResponse(key=result["key"], deployments=deployments, tenantId=DEFAULT_TENANT)

    @_unary
    async def DeployProcess(self, request: pb.DeployProcessRequest, context: Any) -> pb.DeployProcessResponse:
        result = await self.broker.deploy([(p.name, bytes(p.definition)) for p in request.processes])
        processes = [
            pb.ProcessMetadata(
                bpmnProcessId=m["bpmnProcessId"],
                version=m["version"],
                processDefinitionKey=m["processDefinitionKey"],
                resourceName=m["resourceName"],
                tenantId=DEFAULT_TENANT,
            )
            for m in result["value"]["processesMetadata"]
        ]
        return pb.DeployProcessResponse(key=result["key"], processes=processes)

    # ------------------------------------------------------------------ instances
    def _create(
        self, request: pb.CreateProcessInstanceRequest, await_result: bool
    ) -> tuple[Partition, Created, asyncio.Future[dict[str, Any]] | None]:
        _check_tenant("CreateProcessInstance", request.tenantId)
        variables = _variables(request.variables)
        key = request.processDefinitionKey if request.processDefinitionKey > 0 else -1
        version = request.version if request.version > 0 else -1  # -1 and unset (0) mean latest
        start = [instruction.elementId for instruction in request.startInstructions]
        return self.broker.create_instance(
            request.bpmnProcessId, version, key, variables, start, await_result
        )

    @_unary
    async def CreateProcessInstance(
        self, request: pb.CreateProcessInstanceRequest, context: Any
    ) -> pb.CreateProcessInstanceResponse:
        partition, result, _ = self._create(request, False)
        await partition.durable()
        process = result.process
        return pb.CreateProcessInstanceResponse(
            processDefinitionKey=process.key,
            bpmnProcessId=process.bpmn_process_id,
            version=process.version,
            processInstanceKey=result.process_instance_key,
            tenantId=DEFAULT_TENANT,
        )

    @_unary
    async def CreateProcessInstanceWithResult(
        self, request: pb.CreateProcessInstanceWithResultRequest, context: Any
    ) -> pb.CreateProcessInstanceWithResultResponse:
        partition, result, future = self._create(request.request, True)
        assert future is not None  # registered by the creation (await_result)
        key = result.process_instance_key
        timeout_ms = request.requestTimeout if request.requestTimeout > 0 else DEFAULT_REQUEST_TIMEOUT_MS
        try:
            await partition.durable()
            variables = await asyncio.wait_for(future, timeout_ms / 1000)
        except TimeoutError as exc:
            raise GatewayError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"Time out between gateway and broker: Request timed out after PT{timeout_ms / 1000:g}S",
            ) from exc
        finally:
            self.broker.drop_result_waiter(key, future)
        await partition.durable()
        if request.fetchVariables:
            variables = {name: variables[name] for name in request.fetchVariables if name in variables}
        process = result.process
        return pb.CreateProcessInstanceWithResultResponse(
            processDefinitionKey=process.key,
            bpmnProcessId=process.bpmn_process_id,
            version=process.version,
            processInstanceKey=key,
            variables=json.dumps(variables),
            tenantId=DEFAULT_TENANT,
        )

    @_unary
    async def CancelProcessInstance(
        self, request: pb.CancelProcessInstanceRequest, context: Any
    ) -> pb.CancelProcessInstanceResponse:
        key = request.processInstanceKey
        reason = f"Expected to cancel a process instance with key '{key}', but no such process was found"
        partition = self.broker.keyed(key, "CANCEL", reason)
        partition.execute(Command("PROCESS_INSTANCE", "CANCEL", {"processInstanceKey": key}, key=key))
        await partition.durable()
        return pb.CancelProcessInstanceResponse()

    @_unary
    async def SetVariables(self, request: pb.SetVariablesRequest, context: Any) -> pb.SetVariablesResponse:
        variables = _variables(request.variables)
        key = request.elementInstanceKey
        reason = f"Expected to update variables for element with key '{key}', but no such element was found"
        partition = self.broker.keyed(key, "UPDATE", reason)
        document_key = partition.execute(
            Command(
                "VARIABLE_DOCUMENT",
                "UPDATE",
                {
                    "scopeKey": key,
                    "updateSemantics": "LOCAL" if request.local else "PROPAGATE",
                    "variables": variables,
                },
            )
        )
        await partition.durable()
        return pb.SetVariablesResponse(key=document_key)

    @_unary
    async def ModifyProcessInstance(
        self, request: pb.ModifyProcessInstanceRequest, context: Any
    ) -> pb.ModifyProcessInstanceResponse:
        key = request.processInstanceKey
        reason = f"Expected to modify process instance but no process instance found with key '{key}'"
        partition = self.broker.keyed(key, "MODIFY", reason)
        activate = []
        for instruction in request.activateInstructions:
            activate.append(
                {
                    "elementId": instruction.elementId,
                    "ancestorElementInstanceKey": instruction.ancestorElementInstanceKey
                    if instruction.ancestorElementInstanceKey > 0
                    else -1,
                    "variableInstructions": [
                        {"variables": _variables(v.variables), "scopeId": v.scopeId}
                        for v in instruction.variableInstructions
                    ],
                }
            )
        terminate = [instruction.elementInstanceKey for instruction in request.terminateInstructions]
        partition.execute(
            Command(
                "PROCESS_INSTANCE_MODIFICATION",
                "MODIFY",
                {"processInstanceKey": key, "activateInstructions": [], "terminateInstructions": []},
                key=key,
                request=ModifyInstance(activate, terminate),
            )
        )
        await partition.durable()
        return pb.ModifyProcessInstanceResponse()

    # ------------------------------------------------------------------ jobs
    def _job_partition(self, job_key: int, intent: str, verb: str) -> Any:
        return self.broker.keyed(
            job_key, intent, f"Expected to {verb} job with key '{job_key}', but no such job was found"
        )

    @_unary
    async def CompleteJob(self, request: pb.CompleteJobRequest, context: Any) -> pb.CompleteJobResponse:
        variables = _variables(request.variables)
        key = request.jobKey
        partition = self._job_partition(key, "COMPLETE", "complete")
        partition.execute(Command("JOB", "COMPLETE", {"variables": variables}, key=key))
        await partition.durable()
        return pb.CompleteJobResponse()

    @_unary
    async def FailJob(self, request: pb.FailJobRequest, context: Any) -> pb.FailJobResponse:
        variables = _variables(request.variables)
        key = request.jobKey
        partition = self._job_partition(key, "FAIL", "fail")
        partition.execute(
            Command(
                "JOB",
                "FAIL",
                {
                    "retries": request.retries,
                    "errorMessage": request.errorMessage,
                    "retryBackoff": request.retryBackOff,
                },
                key=key,
                request=FailJob(
                    request.retries, request.errorMessage, max(0, request.retryBackOff), variables
                ),
            )
        )
        await partition.durable()
        return pb.FailJobResponse()

    @_unary
    async def ThrowError(self, request: pb.ThrowErrorRequest, context: Any) -> pb.ThrowErrorResponse:
        variables = _variables(request.variables)
        key = request.jobKey
        partition = self._job_partition(key, "THROW_ERROR", "throw an error for")
        partition.execute(
            Command(
                "JOB",
                "THROW_ERROR",
                {"errorCode": request.errorCode, "errorMessage": request.errorMessage},
                key=key,
                request=ThrowJobError(request.errorCode, request.errorMessage, variables),
            )
        )
        await partition.durable()
        return pb.ThrowErrorResponse()

    @_unary
    async def UpdateJobRetries(
        self, request: pb.UpdateJobRetriesRequest, context: Any
    ) -> pb.UpdateJobRetriesResponse:
        key = request.jobKey
        if request.retries < 1:
            raise Rejection(
                "UPDATE_RETRIES",
                "INVALID_ARGUMENT",
                f"Expected to update retries for job with key '{key}' with a positive amount of retries, but the "
                f"amount given was '{request.retries}'",
            )
        partition = self.broker.keyed(
            key,
            "UPDATE_RETRIES",
            f"Expected to update retries for job with key '{key}', but no such job was found",
        )
        partition.execute(Command("JOB", "UPDATE_RETRIES", {"retries": request.retries}, key=key))
        await partition.durable()
        return pb.UpdateJobRetriesResponse()

    @_unary
    async def UpdateJobTimeout(
        self, request: pb.UpdateJobTimeoutRequest, context: Any
    ) -> pb.UpdateJobTimeoutResponse:
        key = request.jobKey
        partition = self.broker.keyed(
            key, "UPDATE_TIMEOUT", f"Expected to update job with key '{key}', but no such job was found"
        )
        partition.execute(Command("JOB", "UPDATE_TIMEOUT", {"timeout": request.timeout}, key=key))
        await partition.durable()
        return pb.UpdateJobTimeoutResponse()

    @_unary
    async def ResolveIncident(
        self, request: pb.ResolveIncidentRequest, context: Any
    ) -> pb.ResolveIncidentResponse:
        key = request.incidentKey
        partition = self.broker.keyed(
            key, "RESOLVE", f"Expected to resolve incident with key '{key}', but no such incident was found"
        )
        partition.execute(Command("INCIDENT", "RESOLVE", {}, key=key))
        await partition.durable()
        return pb.ResolveIncidentResponse()

    # ------------------------------------------------------------------ activation
    def _validate_activation(self, request: Any, rpc: str, check_max: bool) -> None:
        if not request.type.strip():
            raise GatewayError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "Expected to activate jobs with a non-empty type, but type was blank",
            )
        if check_max and not request.worker.strip():
            raise GatewayError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "Expected to activate jobs with a non-empty worker, but worker was blank",
            )
        if request.timeout < 1:
            raise GatewayError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Expected to activate jobs with a timeout of at least 1 ms, but timeout was '{request.timeout}'",
            )
        if check_max and request.maxJobsToActivate < 1:
            raise GatewayError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Expected to activate at least 1 job, but maxJobsToActivate was '{request.maxJobsToActivate}'",
            )
        for tenant_id in request.tenantIds:
            _check_tenant(rpc, tenant_id)

    # grpc.aio accepts a coroutine that writes with `context.write` for a server-streaming RPC; the
    # generated stub only declares the generator form, hence the override ignores below.
    async def ActivateJobs(self, request: pb.ActivateJobsRequest, context: Any) -> None:  # type: ignore[override]
        # A coroutine handler writing with `context.write` (not an async generator): a write to
        # a call the client has left raises right here, so the jobs it carried are handed back
        # at once. With a generator, the failed write happens in grpc's loop while the generator
        # sits at `yield`, and its cleanup waits for garbage collection, if it ever runs.
        try:
            self._validate_activation(request, "ActivateJobs", True)
        except GatewayError as error:
            await context.abort(error.code, error.message)
        loop = asyncio.get_running_loop()
        long_poll_ms = LONG_POLLING_TIMEOUT_MS if request.requestTimeout == 0 else request.requestTimeout
        deadline = loop.time() + max(0, long_poll_ms) / 1000
        fetch = list(request.fetchVariable)
        while True:
            waiter = self.broker.job_waiter(request.type)
            try:
                batches = self.broker.activate_jobs(
                    request.type, request.worker, request.timeout, request.maxJobsToActivate, fetch
                )
                if batches:
                    await self._deliver(context, batches, per_job=False)
                    return
                remaining = deadline - loop.time()
                if long_poll_ms < 0 or remaining <= 0:
                    return  # OK with zero messages (§1.4)
                # Await the waiter itself (not wait_for, which adds loop hops): a woken poll
                # then activates in the same turn as the command that created the job, and
                # both land in one group commit.
                timer = loop.call_later(remaining, _wake_up, waiter)
                try:
                    await waiter
                finally:
                    timer.cancel()
            finally:
                self.broker.drop_job_waiter(request.type, waiter)

    async def StreamActivatedJobs(self, request: pb.StreamActivatedJobsRequest, context: Any) -> None:  # type: ignore[override]
        try:
            self._validate_activation(request, "StreamActivatedJobs", False)
        except GatewayError as error:
            await context.abort(error.code, error.message)
        fetch = list(request.fetchVariable)
        worker = request.worker or "default"
        while True:
            waiter = self.broker.job_waiter(request.type)
            try:
                batches = self.broker.activate_jobs(
                    request.type, worker, request.timeout, STREAM_BATCH, fetch
                )
                if batches:
                    await self._deliver(context, batches, per_job=True)
                    continue
                await waiter
            finally:
                self.broker.drop_job_waiter(request.type, waiter)

    async def _deliver(
        self, context: Any, batches: list[tuple[Any, list[dict[str, Any]]]], per_job: bool
    ) -> None:
        """Write activated jobs once durable; whatever was not written is yielded back.

        A job counts as handed over once grpc accepted its message (Zeebe's gateway counts a
        response as sent once `onNext` returned; otherwise it reactivates the jobs). If the
        write raises (the call was cancelled, its deadline passed, the task was cancelled while
        waiting for the fsync or for the write), the jobs of that message and of every later one
        are yielded back (JOB YIELDED: retries unchanged, no backoff) instead of staying locked
        until their timeout.
        """
        undelivered = [(partition, list(jobs)) for partition, jobs in batches]
        trace = delivery_log.isEnabledFor(logging.DEBUG)
        try:
            for partition, jobs in undelivered:
                await partition.durable()
                if per_job:
                    while jobs:
                        await context.write(_activated_job(jobs[0]))
                        if trace:
                            delivery_log.debug("handed over jobs [%d]", jobs[0]["key"])
                        jobs.pop(0)
                else:
                    while jobs:
                        message, count = _jobs_message(jobs)
                        await context.write(message)
                        if trace:
                            delivery_log.debug(
                                "handed over jobs [%s]", ",".join(str(job["key"]) for job in jobs[:count])
                            )
                        del jobs[:count]
        finally:
            self._yield_back(undelivered)

    def _yield_back(self, undelivered: list[tuple[Any, list[dict[str, Any]]]]) -> None:
        """JOB YIELD for activated jobs that never reached the client: activatable again."""
        for partition, jobs in undelivered:
            for job in jobs:
                try:
                    value = {name: job[name] for name in job if name not in ("key", "variablesJson")}
                    partition.execute(Command("JOB", "YIELD", value, key=job["key"]))
                except Exception:
                    log.exception("could not yield job %s back", job["key"])

    # ------------------------------------------------------------------ not supported
    async def _unimplemented(self, context: Any, rpc: str) -> None:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{rpc} is not supported by the Fleetflow embedded engine (messages, signals, migration and "
            f"resource deletion are not implemented)",
        )

    @_unary
    async def PublishMessage(
        self, request: pb.PublishMessageRequest, context: Any
    ) -> pb.PublishMessageResponse:
        """Published on the correlation key's partition (reference §1.3, §2.3); the answer
        carries the message key once MESSAGE PUBLISHED is durable."""
        _check_tenant("PublishMessage", request.tenantId)
        if not request.name:
            raise GatewayError(
                grpc.StatusCode.INVALID_ARGUMENT, "Expected message name to be non-empty, but it was empty"
            )
        publish = PublishMessage(
            name=request.name,
            correlation_key=request.correlationKey,
            time_to_live=request.timeToLive,
            message_id=request.messageId,
            variables=_variables(request.variables),
        )
        partition, key = self.broker.publish_message(publish)
        await partition.durable()
        return pb.PublishMessageResponse(key=key, tenantId=DEFAULT_TENANT)

    @_unary
    async def BroadcastSignal(
        self, request: pb.BroadcastSignalRequest, context: Any
    ) -> pb.BroadcastSignalResponse:
        """Broadcast to every partition (reference §1.3); answered with the signal key once
        SIGNAL BROADCASTED is durable everywhere."""
        _check_tenant("BroadcastSignal", request.tenantId)
        key = self.broker.broadcast_signal(request.signalName, _variables(request.variables))
        await asyncio.gather(*(partition.durable() for partition in self.broker.partitions.values()))
        return pb.BroadcastSignalResponse(key=key, tenantId=DEFAULT_TENANT)

    @_unary
    async def EvaluateDecision(
        self, request: pb.EvaluateDecisionRequest, context: Any
    ) -> pb.EvaluateDecisionResponse:
        _check_tenant("EvaluateDecision", request.tenantId)
        evaluation = EvaluateDecision(request.decisionId, request.decisionKey, _variables(request.variables))
        # round-robin over the partitions, like instance creation (reference §2): every
        # partition has the deployed decisions
        partition = self.broker.next_partition()
        result = partition.execute(
            Command("DECISION_EVALUATION", "EVALUATE", evaluate_command_value(evaluation), request=evaluation)
        )
        await partition.durable()
        return _evaluate_decision_response(result["key"], result["value"])

    @_unary
    async def MigrateProcessInstance(
        self, request: pb.MigrateProcessInstanceRequest, context: Any
    ) -> pb.MigrateProcessInstanceResponse:
        key = request.processInstanceKey
        reason = f"Expected to migrate process instance but no process instance found with key '{key}'"
        partition = self.broker.keyed(key, "MIGRATE", reason)
        plan = request.migrationPlan
        mapping = [(item.sourceElementId, item.targetElementId) for item in plan.mappingInstructions]
        partition.execute(
            Command(
                "PROCESS_INSTANCE_MIGRATION",
                "MIGRATE",
                {
                    "processInstanceKey": key,
                    "targetProcessDefinitionKey": plan.targetProcessDefinitionKey,
                    "mappingInstructions": [
                        {"sourceElementId": source, "targetElementId": target} for source, target in mapping
                    ],
                },
                key=key,
                request=MigrateInstance(plan.targetProcessDefinitionKey, mapping),
            )
        )
        await partition.durable()
        return pb.MigrateProcessInstanceResponse()

    async def DeleteResource(self, request: Any, context: Any) -> Any:
        await self._unimplemented(context, "DeleteResource")
