"""The gateway proxy's gRPC servicer: a thin adapter over :class:`routing.core.RoutingCore`.

Every RPC of pyzeebe's ``GatewayServicer`` hands the request and the call's remaining time to the
core and turns what the core raises into the call's status: a :class:`RoutingAbort` (the proxy's
own decision) with its code and text, a cluster's ``AioRpcError`` unchanged (reference §1.5).
ActivateJobs and StreamActivatedJobs give the core the ``ServicerContext`` itself, which is an
:class:`routing.activation.ActivationCall`. No routing rule lives here: the in-process channel
(:mod:`routing.channel`) applies the same ones through the same core.
"""

from __future__ import annotations

from typing import Any

import grpc
from pyzeebe.proto import gateway_pb2, gateway_pb2_grpc

from routing.core import (  # re-exported: the names the proxy has always offered
    NOT_SENT_MARKER,
    RETRY_ON_NEXT_CLUSTER,
    RoutingAbort,
    RoutingCore,
    provably_not_taken,
)

__all__ = ["NOT_SENT_MARKER", "RETRY_ON_NEXT_CLUSTER", "GatewayProxy", "RoutingAbort", "provably_not_taken"]


class GatewayProxy(gateway_pb2_grpc.GatewayServicer):
    """The ``Gateway`` gRPC service over a routing core."""

    def __init__(self, core: RoutingCore) -> None:
        self.core = core

    def metrics(self) -> dict[str, Any]:
        return self.core.metrics()

    async def _unary(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """RPC boundary: the core's answer, or None after setting a non-OK status (grpc then sends
        no message; the same as ``context.abort`` without raising through grpc, which is cheaper
        on the error path)."""
        try:
            return await self.core.unary(method, request, context.time_remaining())
        except RoutingAbort as abort:
            context.set_code(abort.code)
            context.set_details(abort.details)
        except grpc.aio.AioRpcError as error:
            # Pass the cluster's status and text through unchanged (reference §1.5).
            context.set_code(error.code())
            context.set_details(error.details() or "")
        return None

    # ================================================================= Gateway RPCs

    # The activation handlers are coroutines writing with ``context.write``, not async
    # generators: a write to a caller that left raises (or a cancellation arrives) right where
    # the jobs are held, so they are handed back at once. A generator parked at ``yield`` would
    # only run its hand-back when it is closed or garbage-collected.

    async def ActivateJobs(  # type: ignore[override]  # grpc.aio accepts a writing coroutine
        self, request: gateway_pb2.ActivateJobsRequest, context: grpc.aio.ServicerContext
    ) -> None:
        await self.core.activate_jobs(request, context)

    async def StreamActivatedJobs(  # type: ignore[override]  # grpc.aio accepts a writing coroutine
        self, request: gateway_pb2.StreamActivatedJobsRequest, context: grpc.aio.ServicerContext
    ) -> None:
        await self.core.stream_activated_jobs(request, context)

    async def CompleteJob(
        self, request: gateway_pb2.CompleteJobRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.CompleteJobResponse:
        return await self._unary("CompleteJob", request, context)

    async def FailJob(
        self, request: gateway_pb2.FailJobRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.FailJobResponse:
        return await self._unary("FailJob", request, context)

    async def ThrowError(
        self, request: gateway_pb2.ThrowErrorRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ThrowErrorResponse:
        return await self._unary("ThrowError", request, context)

    async def UpdateJobRetries(
        self, request: gateway_pb2.UpdateJobRetriesRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.UpdateJobRetriesResponse:
        return await self._unary("UpdateJobRetries", request, context)

    async def UpdateJobTimeout(
        self, request: gateway_pb2.UpdateJobTimeoutRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.UpdateJobTimeoutResponse:
        return await self._unary("UpdateJobTimeout", request, context)

    async def ResolveIncident(
        self, request: gateway_pb2.ResolveIncidentRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ResolveIncidentResponse:
        return await self._unary("ResolveIncident", request, context)

    async def CancelProcessInstance(
        self, request: gateway_pb2.CancelProcessInstanceRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.CancelProcessInstanceResponse:
        return await self._unary("CancelProcessInstance", request, context)

    async def SetVariables(
        self, request: gateway_pb2.SetVariablesRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.SetVariablesResponse:
        return await self._unary("SetVariables", request, context)

    async def ModifyProcessInstance(
        self, request: gateway_pb2.ModifyProcessInstanceRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.ModifyProcessInstanceResponse:
        return await self._unary("ModifyProcessInstance", request, context)

    async def MigrateProcessInstance(
        self, request: gateway_pb2.MigrateProcessInstanceRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.MigrateProcessInstanceResponse:
        return await self._unary("MigrateProcessInstance", request, context)

    async def DeleteResource(
        self, request: gateway_pb2.DeleteResourceRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.DeleteResourceResponse:
        return await self._unary("DeleteResource", request, context)

    async def CreateProcessInstance(
        self, request: gateway_pb2.CreateProcessInstanceRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.CreateProcessInstanceResponse:
        return await self._unary("CreateProcessInstance", request, context)

    async def CreateProcessInstanceWithResult(
        self, request: gateway_pb2.CreateProcessInstanceWithResultRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.CreateProcessInstanceWithResultResponse:
        return await self._unary("CreateProcessInstanceWithResult", request, context)

    async def EvaluateDecision(
        self, request: gateway_pb2.EvaluateDecisionRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.EvaluateDecisionResponse:
        return await self._unary("EvaluateDecision", request, context)

    async def PublishMessage(
        self, request: gateway_pb2.PublishMessageRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.PublishMessageResponse:
        return await self._unary("PublishMessage", request, context)

    async def BroadcastSignal(
        self, request: gateway_pb2.BroadcastSignalRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.BroadcastSignalResponse:
        return await self._unary("BroadcastSignal", request, context)

    async def DeployResource(
        self, request: gateway_pb2.DeployResourceRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.DeployResourceResponse:
        return await self._unary("DeployResource", request, context)

    async def DeployProcess(
        self, request: gateway_pb2.DeployProcessRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.DeployProcessResponse:
        return await self._unary("DeployProcess", request, context)

    async def Topology(
        self, request: gateway_pb2.TopologyRequest, context: grpc.aio.ServicerContext
    ) -> gateway_pb2.TopologyResponse:
        return self.core.synthesized_topology()
