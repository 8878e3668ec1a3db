"""An in-process routing channel: pyzeebe (or any grpc.aio stub) routed without a second hop.

:class:`RoutingChannel` is a ``grpc.aio.Channel`` whose calls go straight to a
:class:`routing.core.RoutingCore` in this process, which forwards them to the owning cluster over
its own gRPC channels. So ``ZeebeWorker(channel)`` and ``ZeebeClient(channel)`` get exactly the
proxy's routing (global keys, placement, draining, failover, deploy fan-out and journal,
cross-cluster activation with hand-back: the same core, not a copy) for one gRPC hop instead of
two. Errors reach the client as ``grpc.aio.AioRpcError`` with the status code and details text
the proxy would send, so pyzeebe's error mapping is the same either way.

Build it from the same configuration as ``python -m routing``::

    import routing
    channel = routing.connect(clusters_file="clusters.json", journal="var/routing/deployments.json")
    channel = routing.connect(clusters=["1=127.0.0.1:26501", "2=127.0.0.1:26502,weight=2"])
    channel = RoutingChannel.from_args(["--clusters", "clusters.json", "--state-dir", "var/w1"])

The core starts on the first call (or ``await channel.channel_ready()``) in the running event
loop, and is bound to it; ``await channel.close()`` stops it and hands back any job it holds.

What the adapter does, and why:

* Requests of the Gateway's own message classes are passed as objects (no serialization); a
  request whose fields carry keys is copied first, because the core rewrites keys in place and
  the caller's message must stay as it was. A request of another class (a second copy of the
  protocol) is converted through its serializer, and so is the answer, so any stub works.
* A server-streaming call runs the core's activation in a task; each message is handed over
  when the consumer takes it (``write`` returns only then). A consumer that is cancelled or
  goes away thus makes the pending write fail, and activation holds those jobs for the next
  caller, exactly as it does when a proxy's client disconnects.
* Health checks (``grpc.health.v1.Health/Check``) answer SERVING once the core is up, as the
  proxy's health service does; other unknown methods are UNIMPLEMENTED.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import inspect
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2
from pyzeebe.proto import gateway_pb2

from routing.clusters import (
    Cluster,
    ClusterSource,
    file_source,
    parse_cluster_spec,
)
from routing.core import BOUNDED_BY_DEADLINE, STREAMING, RoutingAbort, RoutingCore
from routing.keymap import REQUEST_KEY_FIELDS

log = logging.getLogger(__name__)

GATEWAY_PREFIX = "/gateway_protocol.Gateway/"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"

_GATEWAY = gateway_pb2.DESCRIPTOR.services_by_name["Gateway"]
_TYPES: dict[str, tuple[type[Message], type[Message]]] = {
    method.name: (getattr(gateway_pb2, method.input_type.name), getattr(gateway_pb2, method.output_type.name))
    for method in _GATEWAY.methods
}
"""Gateway method name -> (request class, response class) of the core's protocol module."""

_REWRITTEN_REQUESTS = frozenset(REQUEST_KEY_FIELDS)
"""Request types whose keys the core rewrites in place (so the adapter copies them first)."""

_UNBOUNDED_BY_CORE = frozenset(_TYPES) - BOUNDED_BY_DEADLINE - frozenset(STREAMING)
"""Methods that may wait beyond the caller's deadline inside the core (deployments wait for the
journal's delivery locks): the adapter enforces the deadline around them, as the caller's own gRPC
would. The others (key-addressed, placed, fanned-out calls) give every upstream call the time the
caller has left, so they need no timer of their own (an asyncio timer per create was measurable)."""


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    """The error a grpc.aio client receives for a call ended with ``code`` and ``details``."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


def _deadline_exceeded() -> grpc.aio.AioRpcError:
    return rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")


def _native(deserializer: Callable[[bytes], Any] | None, response_type: type[Message]) -> bool:
    """True when the caller's deserializer yields the core's own class (objects pass as they are)."""
    return deserializer is None or getattr(deserializer, "__self__", None) is response_type


class _Converter:
    """Request/response conversion between the caller's stub and the core's message classes."""

    __slots__ = (
        "copy_request",
        "deserializer",
        "native_response",
        "request_type",
        "response_type",
        "serializer",
    )

    def __init__(
        self,
        name: str,
        serializer: Callable[[Any], bytes] | None,
        deserializer: Callable[[bytes], Any] | None,
    ) -> None:
        self.request_type, self.response_type = _TYPES[name]
        self.copy_request = self.request_type.DESCRIPTOR.full_name in _REWRITTEN_REQUESTS
        self.native_response = _native(deserializer, self.response_type)
        self.serializer = serializer
        self.deserializer = deserializer

    def request(self, request: Any) -> Any:
        if type(request) is not self.request_type:
            if self.serializer is None:
                raise rpc_error(grpc.StatusCode.INTERNAL, f"cannot send a {type(request).__name__}")
            return self.request_type.FromString(self.serializer(request))
        if self.copy_request:
            copy = self.request_type()
            copy.CopyFrom(request)
            return copy
        return request

    def response(self, response: Any) -> Any:
        if self.native_response or self.deserializer is None:
            return response
        return self.deserializer(response.SerializeToString())


class _UnaryCall:
    """What a unary multicallable returns: awaitable once, like ``grpc.aio.UnaryUnaryCall``."""

    __slots__ = ("_coroutine",)

    def __init__(self, coroutine: Any) -> None:
        self._coroutine = coroutine

    def __await__(self) -> Generator[Any, None, Any]:
        return self._coroutine.__await__()

    def cancel(self) -> bool:
        """Cancel a call not awaited yet (nothing was sent); an awaited one is cancelled by
        cancelling the task awaiting it, as with grpc."""
        if inspect.getcoroutinestate(self._coroutine) != inspect.CORO_CREATED:
            return False
        self._coroutine.close()
        return True


class UnaryUnaryMultiCallable:
    """``channel.unary_unary(path, ...)``: calls the core's dispatch for that Gateway method."""

    def __init__(
        self,
        channel: RoutingChannel,
        path: str,
        serializer: Callable[[Any], bytes] | None,
        deserializer: Callable[[bytes], Any] | None,
    ) -> None:
        self._channel = channel
        self._path = path
        self._deserializer = deserializer
        name = path[len(GATEWAY_PREFIX) :] if path.startswith(GATEWAY_PREFIX) else ""
        self._name = name
        self._converter = _Converter(name, serializer, deserializer) if name in _TYPES else None
        self._bounded = name in _UNBOUNDED_BY_CORE
        # The core's route for the method, resolved once: a call runs no dispatch of its own.
        core = channel.core
        self._route = core.unary_routes.get(name) or functools.partial(core.unary, name)

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> _UnaryCall:
        return _UnaryCall(self._invoke(request, timeout))

    async def _invoke(self, request: Any, timeout: float | None) -> Any:
        if not self._channel.ready_here():
            await self._channel.start()
        converter = self._converter
        if converter is None:
            if self._path == HEALTH_CHECK:
                return self._health(request)
            raise rpc_error(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        request = converter.request(request)
        try:
            if self._bounded and timeout is not None:
                try:
                    async with asyncio.timeout(timeout):
                        response = await self._route(request, timeout)
                except TimeoutError:
                    raise _deadline_exceeded() from None
            else:
                response = await self._route(request, timeout)
        except RoutingAbort as abort:
            raise rpc_error(abort.code, abort.details) from None
        # A cluster's AioRpcError propagates as it is: same code and details as the proxy sends.
        return converter.response(response)

    def _health(self, request: Any) -> Any:
        response = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
        if self._deserializer is None or getattr(self._deserializer, "__self__", None) is type(response):
            return response
        return self._deserializer(response.SerializeToString())


_END = object()


class _InProcessCall:
    """One streaming call: the core's activation writes, the caller's iterator reads.

    Implements :class:`routing.activation.ActivationCall`. A written message is handed over only
    when the consumer takes it: until then ``write`` waits, and it fails (by cancellation of the
    handler) if the consumer leaves, so activation holds what it was writing.
    """

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    async def write(self, message: Any) -> None:
        taken = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((message, taken))
        await taken

    async def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise RoutingAbort(code, details)

    def time_remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


class UnaryStreamCall:
    """What a unary-stream multicallable returns: an async iterator of responses (plus
    ``read()``, ``cancel()``, ``code()``, ``details()`` as on ``grpc.aio.UnaryStreamCall``)."""

    def __init__(
        self, channel: RoutingChannel, name: str, converter: _Converter, request: Any, timeout: float | None
    ):
        self._channel = channel
        self._name = name
        self._converter = converter
        self._request = request
        self._timeout = timeout
        self._call = _InProcessCall(None if timeout is None else time.monotonic() + timeout)
        self._task: asyncio.Task[None] | None = None
        self._error: grpc.aio.AioRpcError | None = None
        self._finished = False
        self._cancelled = False

    async def _run(self) -> None:
        core = self._channel.core if self._channel.ready_here() else await self._channel.start()
        request = self._converter.request(self._request)
        handler = core.activate_jobs if self._name == "ActivateJobs" else core.stream_activated_jobs
        try:
            if self._timeout is None:
                await handler(request, self._call)
            else:
                async with asyncio.timeout(self._timeout):
                    await handler(request, self._call)
        except RoutingAbort as abort:
            self._error = rpc_error(abort.code, abort.details)
        except grpc.aio.AioRpcError as error:
            self._error = error
        except TimeoutError:
            self._error = _deadline_exceeded()
        except asyncio.CancelledError:
            self._error = rpc_error(grpc.StatusCode.CANCELLED, "Locally cancelled by application!")
            raise
        except Exception as error:  # what grpc's server reports for a handler that raised
            log.exception("%s failed in the routing channel", self._name)
            self._error = rpc_error(grpc.StatusCode.UNKNOWN, f"Unexpected {type(error)}: {error}")
        finally:
            self._call.queue.put_nowait(_END)

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
            self._channel.active_calls.add(self)
            self._task.add_done_callback(lambda _task: self._channel.active_calls.discard(self))

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        message = await self.read()
        if message is grpc.aio.EOF:
            raise StopAsyncIteration
        return message

    async def read(self) -> Any:
        if self._finished:
            if self._error is not None:
                raise self._error
            return grpc.aio.EOF
        if self._cancelled:
            raise rpc_error(grpc.StatusCode.CANCELLED, "Locally cancelled by application!")
        self._start()
        while True:
            try:
                item = await self._call.queue.get()
            except asyncio.CancelledError:
                # The consumer was cancelled while waiting: the call ends here (as a client-side
                # cancel of a real call would); anything being written is held by activation.
                self.cancel()
                raise
            if item is _END:
                self._finished = True
                if self._error is not None:
                    raise self._error
                return grpc.aio.EOF
            message, taken = item
            if taken.done():
                # Its write was abandoned (the handler was cancelled while offering it): the
                # activation holds those jobs now, so this copy must never reach the caller.
                continue
            taken.set_result(None)
            return self._converter.response(message)

    def cancel(self) -> bool:
        if self._finished or self._cancelled:
            return False
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()
        return True

    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def handler(self) -> asyncio.Task[None] | None:
        """The task running the core's handler (None until the first read)."""
        return self._task

    def done(self) -> bool:
        return self._finished or self._cancelled

    async def code(self) -> grpc.StatusCode:
        if self._error is not None:
            return self._error.code()
        return grpc.StatusCode.CANCELLED if self._cancelled else grpc.StatusCode.OK

    async def details(self) -> str:
        return (self._error.details() or "") if self._error is not None else ""

    def __del__(self) -> None:
        # Dropped without reading to the end: end the call, as grpc cancels a collected call.
        with contextlib.suppress(Exception):
            if self._task is not None and not self._task.done():
                self._task.cancel()


class UnaryStreamMultiCallable:
    def __init__(
        self,
        channel: RoutingChannel,
        path: str,
        serializer: Callable[[Any], bytes] | None,
        deserializer: Callable[[bytes], Any] | None,
    ) -> None:
        self._channel = channel
        name = path[len(GATEWAY_PREFIX) :] if path.startswith(GATEWAY_PREFIX) else ""
        self._name = name
        self._converter = _Converter(name, serializer, deserializer) if name in STREAMING else None

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> UnaryStreamCall:
        if self._converter is None:
            return _UnimplementedStream()  # type: ignore[return-value]
        return UnaryStreamCall(self._channel, self._name, self._converter, request, timeout)


class _UnimplementedStream:
    def __aiter__(self) -> _UnimplementedStream:
        return self

    async def __anext__(self) -> NoReturn:
        raise rpc_error(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")

    async def read(self) -> NoReturn:
        raise rpc_error(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")

    def cancel(self) -> bool:
        return False


class _UnimplementedMultiCallable:
    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise rpc_error(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")


class RoutingChannel(grpc.aio.Channel):
    """A ``grpc.aio.Channel`` that routes through an in-process :class:`RoutingCore`."""

    def __init__(self, core: RoutingCore) -> None:
        self.core = core
        self.started = False
        self._starting: asyncio.Future[RoutingCore] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.active_calls: set[UnaryStreamCall] = set()
        """Streaming calls whose handler runs; close() cancels them, as grpc's close does."""

    # ----------------------------------------------------------------- construction

    @classmethod
    def from_config(
        cls,
        *,
        clusters: Iterable[str | Cluster | Mapping[str, Any]] | None = None,
        clusters_file: str | os.PathLike[str] | None = None,
        source: ClusterSource | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        journal: str | os.PathLike[str] | None = None,
        poll_interval: float = 0.5,
        health_interval: float = 0.25,
        health_deadline: float = 0.3,
    ) -> RoutingChannel:
        """A channel over the clusters of exactly one of: ``clusters`` (``--cluster`` specs such
        as ``"1=127.0.0.1:26501,weight=2"``, Cluster objects or file-style dicts),
        ``clusters_file`` (the ``--clusters`` JSON file, re-read when it changes) or ``source``
        (any callable, as for the proxy). ``journal`` is the deployment journal file; give the
        one your proxies use so deployments, placement and replays agree with theirs.
        ``state_dir`` gets ``metrics.json`` (and the journal, if ``journal`` is not given).
        Raises ClusterConfigError for a bad spec or file."""
        given = [x for x in (clusters, clusters_file, source) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of clusters, clusters_file or source")
        cluster_source: ClusterSource | list[Cluster]
        if clusters_file is not None:
            cluster_source = file_source(clusters_file)
            cluster_source()  # fail fast on a bad file, with its message
        elif clusters is not None:
            # A list, not a callable: the core reads it once and does not poll it.
            cluster_source = [
                parse_cluster_spec(c) if isinstance(c, str) else _as_cluster(c) for c in clusters
            ]
        else:
            assert source is not None
            cluster_source = source
        core = RoutingCore(
            cluster_source,
            state_dir=Path(state_dir) if state_dir is not None else None,
            journal_path=Path(journal) if journal is not None else None,
            poll_interval=poll_interval,
            health_interval=health_interval,
            health_deadline=health_deadline,
        )
        return cls(core)

    @classmethod
    def from_args(cls, argv: list[str]) -> RoutingChannel:
        """The same cluster flags as ``python -m routing`` (``--cluster ...`` or ``--clusters
        FILE``, ``--state-dir``, ``--journal``, ``--poll-interval``); listening flags are not
        accepted (there is no port)."""
        from routing.__main__ import add_source_arguments, source_from_args

        parser = argparse.ArgumentParser(prog="routing channel")
        add_source_arguments(parser)
        args = parser.parse_args(argv)
        core = RoutingCore(
            source_from_args(args),
            state_dir=args.state_dir,
            journal_path=args.journal,
            poll_interval=args.poll_interval,
        )
        return cls(core)

    # ----------------------------------------------------------------- lifecycle

    def ready_here(self) -> bool:
        """Started, in the running loop (the hot path's check: no coroutine)."""
        return self.started and asyncio.get_running_loop() is self._loop

    async def start(self) -> RoutingCore:
        """Start the core in the running loop (once; concurrent first calls share the start)."""
        if self.started:
            if asyncio.get_running_loop() is not self._loop:
                raise RuntimeError(
                    "a RoutingChannel is bound to the event loop it was first used in; "
                    "create one channel per event loop"
                )
            return self.core
        if self._closed:
            raise rpc_error(grpc.StatusCode.CANCELLED, "the routing channel is closed")
        loop = asyncio.get_running_loop()
        if self._starting is None:
            self._loop = loop
            self._starting = loop.create_future()
            try:
                await self.core.start()
            except BaseException as error:
                if isinstance(error, asyncio.CancelledError):
                    self._starting.cancel()
                else:
                    self._starting.set_exception(error)
                    self._starting.exception()  # marked retrieved; waiting callers get it raised
                self._starting = None
                raise
            self.started = True
            self._starting.set_result(self.core)
            return self.core
        if loop is not self._loop:
            raise RuntimeError("a RoutingChannel is bound to the event loop it was first used in")
        return await asyncio.shield(self._starting)

    async def channel_ready(self) -> None:
        await self.start()

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        if self._closed:
            return grpc.ChannelConnectivity.SHUTDOWN
        if self.started:
            return grpc.ChannelConnectivity.READY
        return grpc.ChannelConnectivity.IDLE

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        if last_observed_state is grpc.ChannelConnectivity.IDLE and not self._closed:
            await self.start()
            return
        while self.get_state() is last_observed_state:  # only SHUTDOWN follows READY
            await asyncio.sleep(0.1)

    async def close(self, grace: float | None = None) -> None:
        """Stop the core: held jobs are handed back, upstream channels closed. Idempotent."""
        if self._closed:
            return
        self._closed = True
        # Calls still running end CANCELLED first (what a closed grpc channel does to its RPCs),
        # so the jobs they were writing are held, then handed back as the core closes.
        handlers = [call.handler for call in list(self.active_calls) if call.handler is not None]
        for call in list(self.active_calls):
            call.cancel()
        if handlers:  # let the cancelled handlers hold what they were writing (bounded)
            await asyncio.wait(handlers, timeout=1.0)
        if self.started:
            self.started = False
            await self.core.close(hand_back_grace=5.0 if grace is None else grace)

    async def __aenter__(self) -> RoutingChannel:
        await self.start()
        return self

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        await self.close()

    def metrics(self) -> dict[str, Any]:
        return self.core.metrics()

    # ----------------------------------------------------------------- multicallables

    def unary_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return UnaryUnaryMultiCallable(self, method, request_serializer, response_deserializer)

    def unary_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return UnaryStreamMultiCallable(self, method, request_serializer, response_deserializer)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _UnimplementedMultiCallable()  # the Gateway has no client-streaming RPC

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _UnimplementedMultiCallable()


def _as_cluster(value: Cluster | Mapping[str, Any]) -> Cluster:
    return value if isinstance(value, Cluster) else Cluster.from_mapping(value)
