"""Prometheus metrics of the embedded engine: `python -m engine ... --metrics-port N` serves them on
http://127.0.0.1:N/metrics.

Per cluster (one engine process is one cluster):
  fleetflow_engine_requests_total{method,code}          gRPC calls answered, by method and status code
  fleetflow_engine_request_duration_seconds{method}     histogram; for ActivateJobs and
                                                        StreamActivatedJobs it includes the long poll
  fleetflow_engine_up                                   1 while the process serves
Per partition:
  fleetflow_engine_commands_total{partition,value_type,intent}       commands processed (not rejected)
  fleetflow_engine_command_rejections_total{partition,value_type,rejection_type}
  fleetflow_engine_jobs_activated_total{partition}      jobs handed to workers (JOB_BATCH ACTIVATE)
  fleetflow_engine_jobs_yielded_total{partition}        activated jobs handed back because they never
                                                        reached a worker (JOB YIELD)
  fleetflow_engine_log_position{partition}              position of the last record appended
  fleetflow_engine_log_written_position{partition}      position of the last record written to the log
                                                        file (the difference waits for group commit)
  fleetflow_engine_partition_healthy{partition}         1, or 0 once its log could not be written
                                                        (the partition then refuses everything)

No backpressure metric: this engine never refuses a command for load (it has no RESOURCE_EXHAUSTED
path, unlike a Zeebe broker), so there is nothing to count; the group-commit queue above is the
closest signal of load.

The call metrics come from a gRPC interceptor that is installed only when --metrics-port is given;
the partition counters are plain integers bumped by the partition on each command. Collection runs
on the engine's event loop (the endpoint is an asyncio server), so it reads consistent values.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Protocol

import grpc
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from gatewaykit.metrics_http import serve_registry

log = logging.getLogger("engine.metrics")

# Seconds; unary calls are sub-millisecond to tens of ms, long polls reach their request timeout.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class PartitionCounters:
    """What one partition counts; the partition calls these after each command."""

    def __init__(self) -> None:
        self.commands: Counter[tuple[str, str]] = Counter()
        self.rejections: Counter[tuple[str, str]] = Counter()
        self.jobs_activated = 0
        self.jobs_yielded = 0

    def command_done(self, value_type: str, intent: str, result: object) -> None:
        self.commands[value_type, intent] += 1
        if value_type == "JOB_BATCH" and intent == "ACTIVATE" and isinstance(result, list):
            self.jobs_activated += len(result)
        elif value_type == "JOB" and intent == "YIELD":
            self.jobs_yielded += 1

    def command_rejected(self, value_type: str, rejection_type: str) -> None:
        self.rejections[value_type, rejection_type] += 1


class _Histogram:
    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.count += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        result: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), self.buckets, strict=True):
            running += count
            result.append((bound, running))
        return result


def _status_name(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # some grpc versions report the raw number
        return next((status.name for status in grpc.StatusCode if status.value[0] == code), str(code))
    return "OK" if error is None else "UNKNOWN"


class CallMetrics(grpc.aio.ServerInterceptor):
    """Counts every RPC by method and status code and times it (an aio server interceptor)."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.durations: dict[str, _Histogram] = {}

    def record(self, method: str, code: str, seconds: float) -> None:
        self.calls[method, code] += 1
        histogram = self.durations.get(method)
        if histogram is None:
            histogram = self.durations[method] = _Histogram()
        histogram.observe(seconds)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming:
            return handler  # the gateway has no client-streaming methods
        method = handler_call_details.method.rsplit("/", 1)[-1]
        behaviour = handler.unary_unary or handler.unary_stream
        record = self.record

        async def timed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            error: BaseException | None = None
            try:
                result = behaviour(request, context)
                if hasattr(result, "__aiter__"):  # an async-generator handler: pass its messages on
                    async for message in result:
                        await context.write(message)
                    return None
                return await result
            except BaseException as exc:
                error = exc
                raise
            finally:
                record(method, _status_name(context, error), time.perf_counter() - started)

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                timed,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.unary_stream_rpc_method_handler(
            timed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class MeteredPartition(Protocol):
    partition_id: int
    metrics: PartitionCounters
    failure: BaseException | None

    @property
    def state(self) -> Any: ...

    @property
    def writer(self) -> Any: ...


class EngineCollector(Collector):
    """Reads the counters of one engine at scrape time."""

    def __init__(self, partitions: Callable[[], Iterable[MeteredPartition]], calls: CallMetrics | None):
        self.partitions = partitions
        self.calls = calls

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("fleetflow_engine_up", "1 while the engine serves.")
        up.add_metric([], 1)
        yield up
        if self.calls is not None:
            requests = CounterMetricFamily(
                "fleetflow_engine_requests", "gRPC calls answered.", labels=["method", "code"]
            )
            for (method, code), count in sorted(self.calls.calls.items()):
                requests.add_metric([method, code], count)
            yield requests
            durations = HistogramMetricFamily(
                "fleetflow_engine_request_duration_seconds",
                "Time to answer a gRPC call (ActivateJobs and streams include the long poll).",
                labels=["method"],
            )
            for method, histogram in sorted(self.calls.durations.items()):
                durations.add_metric([method], histogram.cumulative(), histogram.sum)
            yield durations
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
            "commands": CounterMetricFamily(
                "fleetflow_engine_commands",
                "Commands processed per partition (rejected ones are not counted here).",
                labels=["partition", "value_type", "intent"],
            ),
            "rejections": CounterMetricFamily(
                "fleetflow_engine_command_rejections",
                "Commands rejected per partition.",
                labels=["partition", "value_type", "rejection_type"],
            ),
            "activated": CounterMetricFamily(
                "fleetflow_engine_jobs_activated", "Jobs activated for workers.", labels=["partition"]
            ),
            "yielded": CounterMetricFamily(
                "fleetflow_engine_jobs_yielded",
                "Activated jobs handed back because they never reached a worker.",
                labels=["partition"],
            ),
            "position": GaugeMetricFamily(
                "fleetflow_engine_log_position", "Position of the last record appended.", labels=["partition"]
            ),
            "written": GaugeMetricFamily(
                "fleetflow_engine_log_written_position",
                "Position of the last record written to the log file.",
                labels=["partition"],
            ),
            "healthy": GaugeMetricFamily(
                "fleetflow_engine_partition_healthy",
                "1 while the partition's log can be written, 0 after a write failed.",
                labels=["partition"],
            ),
        }
        for partition in sorted(self.partitions(), key=lambda p: p.partition_id):
            label = str(partition.partition_id)
            counters = partition.metrics
            for (value_type, intent), count in sorted(counters.commands.items()):
                families["commands"].add_metric([label, value_type, intent], count)
            for (value_type, rejection_type), count in sorted(counters.rejections.items()):
                families["rejections"].add_metric([label, value_type, rejection_type], count)
            families["activated"].add_metric([label], counters.jobs_activated)
            families["yielded"].add_metric([label], counters.jobs_yielded)
            families["position"].add_metric([label], partition.state.last_position)
            writer = partition.writer
            families["written"].add_metric([label], writer.next_position - 1 if writer is not None else 0)
            families["healthy"].add_metric([label], 1 if partition.failure is None else 0)
        yield from families.values()


class _Engine(Protocol):
    call_metrics: CallMetrics | None

    @property
    def broker(self) -> Any: ...


async def serve_metrics(engine: _Engine, *, port: int, host: str = "127.0.0.1") -> asyncio.Server:
    """Serve GET /metrics of `engine` (an EngineServer) on host:port from the running loop."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(lambda: engine.broker.partitions.values(), engine.call_metrics))
    server = await serve_registry(registry, host=host, port=port)
    log.info("metrics on http://%s:%d/metrics", host, server.sockets[0].getsockname()[1])
    return server
