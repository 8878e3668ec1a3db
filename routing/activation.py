"""Job activation across clusters: ActivateJobs (long polling) and StreamActivatedJobs.

ActivateJobs (reference §1.4 semantics, kept across clusters):

1. Quick pass: ask the clusters one after the other, starting at a rotating cluster, with
   ``requestTimeout = -1`` and ``maxJobsToActivate`` = what is still missing. Sequential, so
   under load (jobs waiting everywhere) nothing is activated beyond ``maxJobsToActivate``.
   If any jobs came back, or the client asked for no long polling (``requestTimeout < 0``), the
   call completes here.
2. Long poll: one parked ActivateJobs per cluster, concurrently, in slices of 2 s (re-sent until
   the client's ``requestTimeout`` is used up; 0 = the 10 s default). The first leg that has jobs
   answers the client; jobs other legs deliver meanwhile are passed on while they fit. When that
   first leg ends (or ``maxJobsToActivate`` is reached) the call completes. When every slice
   ended empty, the call completes with OK and no message, as Zeebe does.

Legs are never cancelled: a leg cancelled in the very instant its cluster activates jobs for it
would leave those jobs locked until their deadline, unseen by anyone (the proxy cannot observe
them). Instead each slice ends on the cluster's side, and a leg still running after the answer
(at most one slice) has whatever it brings handed back.

A job the proxy received but cannot deliver (over ``maxJobsToActivate`` because two legs
answered at once, a leftover leg, or the client went away) is handed back at once: FailJob with
its retries unchanged and retryBackOff 0 (:meth:`GatewayProxy.give_back`). It is never dropped
and never left locked until its deadline. Both handlers are coroutines writing with
``context.write`` (not async generators): a write to a call the client has left raises, and a
cancellation while waiting arrives as ``asyncio.CancelledError``, right where the jobs are held,
so the hand-back runs at once instead of whenever a parked generator gets closed or collected.

StreamActivatedJobs: one stream per non-disabled, non-down cluster, merged into the client's
stream; a leg that ends or fails is reopened (a cluster that comes back gets a new leg within a
second); on client cancel every leg is closed and jobs not yet written are handed back. A stream
has no natural end, so here the legs must be cancelled: a job a cluster pushes in the very
instant its leg is cancelled is the cluster's to hand back when its write fails (Zeebe and the
embedded engine yield such jobs); one already accepted by gRPC but not yet read here stays locked
until its timeout, a window the protocol has no acknowledgement to close.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import TYPE_CHECKING, Any

import grpc
from pyzeebe.proto import gateway_pb2

from routing.clusters import Cluster
from routing.keymap import globalize_job

if TYPE_CHECKING:
    from routing.proxy import GatewayProxy

log = logging.getLogger(__name__)
# DEBUG: one line per message of jobs read from a cluster and per message gRPC accepted for the
# client (cluster-local keys), so a test or an operator can tell a job handed to a client, one
# handed back and one that never reached the proxy apart.
delivery_log = logging.getLogger("routing.activation.delivery")

CLIENT_ERRORS = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED})
"""Errors about the request itself: every cluster would say the same, so answer at once."""

LEG_DEADLINE_MARGIN = 5.0
"""Seconds beyond a leg's slice before its own gRPC deadline cuts it off (only if a cluster hangs)."""

LEG_SLICE_MS = 2000
"""A parked ActivateJobs is sent to each cluster in slices of this many ms (re-sent until the
client's requestTimeout is used up). Slices end on the cluster's side, so the proxy never has to
cancel a leg; a leg left over after the answer lives at most one slice."""

QUICK_PASS_TIMEOUT = 5.0
"""Seconds a quick-pass call (requestTimeout -1, answered at once by a healthy cluster) may take:
a hung cluster must not hold up activation from the others until the client's deadline."""

MIN_SLICE_MS = 50
CLIENT_DEADLINE_MARGIN = 0.2
"""Seconds kept in hand before the client's own gRPC deadline to answer it in time."""

_rotation = itertools.count()


def _globalized(cluster_id: int, jobs: list[gateway_pb2.ActivatedJob]) -> list[Any]:
    out = []
    for job in jobs:
        copy = gateway_pb2.ActivatedJob()
        copy.CopyFrom(job)
        out.append(globalize_job(cluster_id, copy))
    return out


def _keys(jobs: list[gateway_pb2.ActivatedJob]) -> str:
    return ",".join(str(job.key) for job in jobs)


def _log_read(cluster_id: int, jobs: list[gateway_pb2.ActivatedJob]) -> None:
    if delivery_log.isEnabledFor(logging.DEBUG):
        delivery_log.debug("read from cluster %d jobs [%s]", cluster_id, _keys(jobs))


async def _write_batch(
    context: grpc.aio.ServicerContext, cluster_id: int, jobs: list[gateway_pb2.ActivatedJob]
) -> None:
    """Write one ActivateJobsResponse; returns only once gRPC accepted it (else raises)."""
    await context.write(gateway_pb2.ActivateJobsResponse(jobs=_globalized(cluster_id, jobs)))
    if delivery_log.isEnabledFor(logging.DEBUG):
        delivery_log.debug("handed over from cluster %d jobs [%s]", cluster_id, _keys(jobs))


async def _write_job(
    context: grpc.aio.ServicerContext, cluster_id: int, job: gateway_pb2.ActivatedJob
) -> None:
    """Write one streamed job; returns only once gRPC accepted it (else raises)."""
    await context.write(_globalized(cluster_id, [job])[0])
    if delivery_log.isEnabledFor(logging.DEBUG):
        delivery_log.debug("handed over from cluster %d jobs [%d]", cluster_id, job.key)


def _leg_request(
    request: gateway_pb2.ActivateJobsRequest, max_jobs: int, request_timeout: int
) -> gateway_pb2.ActivateJobsRequest:
    leg = gateway_pb2.ActivateJobsRequest()
    leg.CopyFrom(request)
    leg.maxJobsToActivate = max_jobs
    leg.requestTimeout = request_timeout
    return leg


def _pick_error(errors: list[grpc.aio.AioRpcError]) -> grpc.aio.AioRpcError:
    # Zeebe answers RESOURCE_EXHAUSTED when no jobs came back and a partition was exhausted.
    for error in errors:
        if error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
            return error
    return errors[0]


async def activate_jobs(
    proxy: GatewayProxy,
    request: gateway_pb2.ActivateJobsRequest,
    context: grpc.aio.ServicerContext,
) -> None:
    targets = proxy.fan_out_targets()
    if not targets:
        await context.abort(
            grpc.StatusCode.UNAVAILABLE,
            f"no reachable cluster to activate jobs of type '{request.type}' from "
            f"({proxy._describe_clusters()})",
        )
    start = next(_rotation) % len(targets)
    targets = targets[start:] + targets[:start]
    remaining = request.maxJobsToActivate
    errors: list[grpc.aio.AioRpcError] = []
    # Jobs handed to grpc for writing but not yet confirmed written: given back if the client
    # cancels in between (see the finally clauses).
    undelivered: list[tuple[int, list[gateway_pb2.ActivatedJob]]] = []

    def client_timeout() -> float | None:
        left = context.time_remaining()
        return None if left is None else max(0.0, left)

    # ---- 1. quick pass, sequential, no long polling
    delivered = 0
    # (cluster id, task reading a cluster's answer) while the handler waits for it. The answer
    # is read in its own task: a cancelled handler must not cancel the upstream call (grpc
    # cancels a call whose reader is cancelled), which would leave jobs the cluster already
    # handed to gRPC locked until their timeout; the task is finished and handed back instead.
    reading: tuple[int, asyncio.Task[tuple[list[list[Any]], grpc.aio.AioRpcError | None]]] | None = None
    try:
        for cluster in targets:
            if delivered and remaining <= 0:
                break
            leg = _leg_request(request, remaining if remaining > 0 else request.maxJobsToActivate, -1)
            stub = proxy.pool.get(cluster.address).stub
            started = time.perf_counter()
            # Not the client's deadline: the leg must end on the cluster's side, not be cut off.
            call = stub.ActivateJobs(leg, timeout=QUICK_PASS_TIMEOUT)
            reader = asyncio.ensure_future(_read_answer(cluster.id, call))
            reading = (cluster.id, reader)
            done, _ = await asyncio.wait({reader}, timeout=client_timeout())
            if not done:
                break  # the client's deadline passed; the answer is handed back (finally)
            reading = None
            batches, error = reader.result()
            undelivered.extend((cluster.id, jobs) for jobs in batches)
            while undelivered:
                cluster_id, jobs = undelivered[0]
                fitting, extra = jobs[:remaining], jobs[remaining:]
                if extra:
                    proxy.give_back_soon(cluster_id, extra)
                if not fitting:
                    undelivered.pop(0)
                    continue
                undelivered[0] = (cluster_id, fitting)
                proxy.metrics_store.counters(cluster_id).jobs_activated += len(fitting)
                await _write_batch(context, cluster_id, fitting)
                undelivered.pop(0)
                remaining -= len(fitting)
                delivered += len(fitting)
            if error is None:
                proxy.metrics_store.record(cluster.id, "ActivateJobs", time.perf_counter() - started, None)
                continue
            proxy.metrics_store.record(cluster.id, "ActivateJobs", None, error.code().name)
            if error.code() in CLIENT_ERRORS:
                await context.abort(error.code(), error.details() or "")
            if error.code() is grpc.StatusCode.UNAVAILABLE:
                proxy.health.report_failure(cluster, error.details() or "")
            errors.append(error)
    finally:
        for cluster_id, jobs in undelivered:
            proxy.give_back_soon(cluster_id, jobs)
        undelivered.clear()
        if reading is not None:
            # The client went away while a cluster's answer was on its way: let it arrive
            # and hand back everything it brings.
            proxy.spawn_hand_back(_hand_back_answer(proxy, *reading))
    if delivered:
        return
    if request.requestTimeout < 0:
        if len(errors) == len(targets) or any(e.code() is grpc.StatusCode.RESOURCE_EXHAUSTED for e in errors):
            chosen = _pick_error(errors)
            await context.abort(chosen.code(), chosen.details() or "")
        return
    live_targets = [c for c in targets if not proxy.health.is_down(c.id)]
    if not live_targets:
        chosen = _pick_error(errors)
        await context.abort(chosen.code(), chosen.details() or "")

    # ---- 2. long poll on every cluster at once, in slices that are never cancelled
    request_timeout_ms = proxy.long_poll_default_ms if request.requestTimeout == 0 else request.requestTimeout
    loop = asyncio.get_running_loop()
    poll_end = loop.time() + request_timeout_ms / 1000.0
    left = client_timeout()
    if left is not None:
        poll_end = min(poll_end, loop.time() + max(0.0, left - CLIENT_DEADLINE_MARGIN))
    queue: asyncio.Queue[tuple[str, Cluster, Any]] = asyncio.Queue()
    legs: dict[int, asyncio.Task[None]] = {}

    async def run_leg(cluster: Cluster, slice_ms: int) -> None:
        # No gRPC deadline below the slice: the cluster ends the call itself when the slice is
        # over, so the leg is never cut off while the cluster may be activating jobs for it.
        call = proxy.pool.get(cluster.address).stub.ActivateJobs(
            _leg_request(request, request.maxJobsToActivate, slice_ms),
            timeout=slice_ms / 1000.0 + LEG_DEADLINE_MARGIN,
        )
        try:
            async for response in call:
                if response.jobs:
                    _log_read(cluster.id, list(response.jobs))
                    queue.put_nowait(("jobs", cluster, list(response.jobs)))
            queue.put_nowait(("done", cluster, None))
        except grpc.aio.AioRpcError as error:
            queue.put_nowait(("error", cluster, error))

    def launch(cluster: Cluster) -> bool:
        slice_ms = int(min(LEG_SLICE_MS, (poll_end - loop.time()) * 1000))
        if slice_ms < MIN_SLICE_MS:
            return False
        legs[cluster.id] = asyncio.ensure_future(run_leg(cluster, slice_ms))
        return True

    for cluster in live_targets:
        launch(cluster)
    first_leg_with_jobs: int | None = None
    remaining = request.maxJobsToActivate
    try:
        while legs and remaining > 0:
            kind, cluster, payload = await queue.get()
            if kind == "jobs":
                fitting, extra = payload[:remaining], payload[remaining:]
                if extra:
                    proxy.give_back_soon(cluster.id, extra)
                if fitting:
                    proxy.metrics_store.counters(cluster.id).jobs_activated += len(fitting)
                    if first_leg_with_jobs is None:
                        first_leg_with_jobs = cluster.id
                    undelivered.append((cluster.id, fitting))
                    await _write_batch(context, cluster.id, fitting)
                    undelivered.clear()
                    remaining -= len(fitting)
                    delivered += len(fitting)
                continue
            legs.pop(cluster.id, None)
            if kind == "done":
                if cluster.id == first_leg_with_jobs:
                    break  # the answering leg finished: complete the call, as Zeebe does
                if first_leg_with_jobs is None:
                    launch(cluster)  # next slice of the long poll on this cluster
                continue
            failure: grpc.aio.AioRpcError = payload
            proxy.metrics_store.record(cluster.id, "ActivateJobs", None, failure.code().name)
            if failure.code() in CLIENT_ERRORS and not delivered:
                await context.abort(failure.code(), failure.details() or "")
            if failure.code() is grpc.StatusCode.UNAVAILABLE:
                proxy.health.report_failure(cluster, failure.details() or "")
            if failure.code() is not grpc.StatusCode.DEADLINE_EXCEEDED:
                errors.append(failure)
        # Pass on what other legs already delivered while it fits.
        while remaining > 0 and not queue.empty():
            kind, cluster, payload = queue.get_nowait()
            if kind != "jobs":
                legs.pop(cluster.id, None)
                continue
            fitting, extra = payload[:remaining], payload[remaining:]
            if extra:
                proxy.give_back_soon(cluster.id, extra)
            if fitting:
                proxy.metrics_store.counters(cluster.id).jobs_activated += len(fitting)
                undelivered.append((cluster.id, fitting))
                await _write_batch(context, cluster.id, fitting)
                undelivered.clear()
                remaining -= len(fitting)
                delivered += len(fitting)
    finally:
        for cluster_id, jobs in undelivered:
            proxy.give_back_soon(cluster_id, jobs)
        # Legs still running finish their slice on their own; whatever they still bring is
        # handed back (cancelling them could lose a job activated at that very moment).
        proxy.spawn_hand_back(_hand_back_rest(proxy, queue, list(legs.values())))
    if (
        not delivered
        and errors
        and (
            len(errors) == len(live_targets)
            or any(e.code() is grpc.StatusCode.RESOURCE_EXHAUSTED for e in errors)
        )
    ):
        chosen = _pick_error(errors)
        await context.abort(chosen.code(), chosen.details() or "")


async def _read_answer(cluster_id: int, call: Any) -> tuple[list[list[Any]], grpc.aio.AioRpcError | None]:
    """Read a quick-pass answer to its end: the job batches, and the error that ended it if any
    (jobs read before an error are returned too, never dropped)."""
    batches: list[list[Any]] = []
    try:
        async for response in call:
            if response.jobs:
                jobs = list(response.jobs)
                _log_read(cluster_id, jobs)
                batches.append(jobs)
    except grpc.aio.AioRpcError as error:
        return batches, error
    return batches, None


async def _hand_back_answer(
    proxy: GatewayProxy,
    cluster_id: int,
    reader: asyncio.Task[tuple[list[list[Any]], grpc.aio.AioRpcError | None]],
) -> None:
    batches, _error = await reader
    for jobs in batches:
        proxy.give_back_soon(cluster_id, jobs)


async def _hand_back_rest(
    proxy: GatewayProxy,
    queue: asyncio.Queue[tuple[str, Cluster, Any]],
    legs: list[asyncio.Task[None]],
) -> None:
    """After the client's answer: wait for the remaining legs, give back every job they bring."""
    if legs:
        await asyncio.gather(*legs, return_exceptions=True)
    while not queue.empty():
        kind, cluster, payload = queue.get_nowait()
        if kind == "jobs":
            proxy.give_back_soon(cluster.id, payload)


STREAM_SUPERVISE_INTERVAL = 0.5
STREAM_RESTART_DELAY = 1.0


async def stream_activated_jobs(
    proxy: GatewayProxy,
    request: gateway_pb2.StreamActivatedJobsRequest,
    context: grpc.aio.ServicerContext,
) -> None:
    queue: asyncio.Queue[tuple[str, int, Any]] = asyncio.Queue()
    legs: dict[int, tuple[Cluster, Any, asyncio.Task[None]]] = {}
    restart_at: dict[int, float] = {}

    async def read_leg(cluster: Cluster, call: Any) -> None:
        try:
            async for job in call:
                _log_read(cluster.id, [job])
                queue.put_nowait(("job", cluster.id, job))
            queue.put_nowait(("ended", cluster.id, None))
        except grpc.aio.AioRpcError as error:
            queue.put_nowait(("error", cluster.id, error))

    def supervise_once() -> None:
        wanted = {c.id: c for c in proxy.fan_out_targets()}
        for cluster_id, (cluster, call, task) in list(legs.items()):
            target = wanted.get(cluster_id)
            if target is None or target.address != cluster.address:
                call.cancel()
                task.cancel()
                del legs[cluster_id]
            elif task.done():
                del legs[cluster_id]
        now = time.monotonic()
        for cluster_id, cluster in wanted.items():
            if cluster_id in legs or restart_at.get(cluster_id, 0.0) > now:
                continue
            call = proxy.pool.get(cluster.address).stub.StreamActivatedJobs(request)
            legs[cluster_id] = (cluster, call, asyncio.ensure_future(read_leg(cluster, call)))

    async def supervise() -> None:
        while True:
            supervise_once()
            await asyncio.sleep(STREAM_SUPERVISE_INTERVAL)

    if not proxy.fan_out_targets():
        await context.abort(
            grpc.StatusCode.UNAVAILABLE,
            f"no reachable cluster to stream jobs of type '{request.type}' from "
            f"({proxy._describe_clusters()})",
        )
    supervisor = asyncio.ensure_future(supervise())
    pending: tuple[int, gateway_pb2.ActivatedJob] | None = None
    try:
        while True:
            kind, cluster_id, payload = await queue.get()
            if kind == "job":
                proxy.metrics_store.counters(cluster_id).jobs_activated += 1
                pending = (cluster_id, payload)
                await _write_job(context, cluster_id, payload)
                pending = None
            elif kind == "error":
                leg_error: grpc.aio.AioRpcError = payload
                proxy.metrics_store.record(cluster_id, "StreamActivatedJobs", None, leg_error.code().name)
                if leg_error.code() in CLIENT_ERRORS:
                    await context.abort(leg_error.code(), leg_error.details() or "")
                if leg_error.code() is grpc.StatusCode.UNAVAILABLE:
                    cluster = proxy.clusters.get(cluster_id)
                    if cluster is not None:
                        proxy.health.report_failure(cluster, leg_error.details() or "")
                log.info(
                    "job stream leg to cluster %s failed (%s); reopening",
                    proxy.cluster_label(cluster_id),
                    leg_error.code().name,
                )
                restart_at[cluster_id] = time.monotonic() + STREAM_RESTART_DELAY
            else:
                restart_at[cluster_id] = time.monotonic() + STREAM_RESTART_DELAY / 2
    finally:
        supervisor.cancel()
        for _cluster, call, task in legs.values():
            call.cancel()
            task.cancel()
        if pending is not None:
            proxy.give_back_soon(pending[0], [pending[1]])
        while not queue.empty():
            kind, cluster_id, payload = queue.get_nowait()
            if kind == "job":
                proxy.give_back_soon(cluster_id, [payload])
