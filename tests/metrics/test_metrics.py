"""`--metrics-port` of `python -m engine` and `python -m routing`: real processes on loopback, real
calls through pyzeebe, then GET /metrics over HTTP and the series and values they must show."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pyzeebe import ZeebeClient, ZeebeWorker, create_insecure_channel
from pyzeebe.errors import ProcessDefinitionNotFoundError

from tests.support import ServiceProcess, engine_process, free_port, proxy_process, sequence_process, wait_for

pytestmark = pytest.mark.slow

JOB_TYPE = "metrics-work"
INSTANCES = 3


def scrape(port: int) -> tuple[str, dict[str, float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        content_type = response.headers["Content-Type"]
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{key}={value}" for key, value in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return content_type, samples


def total(samples: dict[str, float], prefix: str, *labels: str) -> float:
    """Sum of the samples of `prefix` whose labels include every `key=value` of `labels`."""
    return sum(
        value
        for name, value in samples.items()
        if name.startswith(prefix + "{") and all(label in name[len(prefix) :] for label in labels)
    )


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServiceProcess, int, ServiceProcess, int]]:
    work = tmp_path_factory.mktemp("metrics")
    engine_metrics, proxy_metrics = free_port(), free_port()
    engine = engine_process(work / "engine", partitions=2, extra_args=["--metrics-port", str(engine_metrics)])
    try:
        proxy = proxy_process(
            work / "proxy",
            [{"id": 1, "name": "one", "address": engine.address}],
            extra_args=["--metrics-port", str(proxy_metrics)],
        )
    except BaseException:
        engine.stop()
        raise
    try:
        asyncio.run(_drive(proxy.address, work))
        yield engine, engine_metrics, proxy, proxy_metrics
    finally:
        proxy.stop()
        engine.stop()


async def _drive(address: str, work: Path) -> None:
    """Deploy, create INSTANCES instances, complete their jobs with a worker, create one unknown."""
    channel = create_insecure_channel(grpc_address=address)
    client = ZeebeClient(channel)
    model = work / "metrics.bpmn"
    model.write_bytes(sequence_process("metrics-flow", JOB_TYPE))
    await client.deploy_resource(str(model))
    for number in range(INSTANCES):
        await client.run_process("metrics-flow", {"number": number})
    with pytest.raises(ProcessDefinitionNotFoundError):
        await client.run_process("no-such-process")

    done: list[int] = []
    worker = ZeebeWorker(channel, poll_retry_delay=0)

    @worker.task(task_type=JOB_TYPE, timeout_ms=30_000)
    async def work_job(number: int) -> dict[str, int]:  # pyzeebe passes variables by name
        done.append(number)
        return {}

    working = asyncio.ensure_future(worker.work())
    try:
        for _ in range(600):  # at most 60 s
            if len(done) >= INSTANCES:
                break
            await asyncio.sleep(0.1)
    finally:
        await worker.stop()
        await asyncio.wait_for(working, timeout=30)
    assert sorted(done) == list(range(INSTANCES))


def test_engine_metrics(stack: tuple[ServiceProcess, int, ServiceProcess, int]) -> None:
    _, port, _, _ = stack
    content_type, samples = scrape(port)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert samples["fleetflow_engine_up{}"] == 1

    requests = "fleetflow_engine_requests_total"
    assert samples[f"{requests}{{code=OK,method=CreateProcessInstance}}"] == INSTANCES
    assert samples[f"{requests}{{code=NOT_FOUND,method=CreateProcessInstance}}"] == 1
    assert samples[f"{requests}{{code=OK,method=DeployResource}}"] == 1
    # Completions reach the engine once the worker's CompleteJob calls were answered.
    assert samples[f"{requests}{{code=OK,method=CompleteJob}}"] == INSTANCES
    assert total(samples, requests, "method=ActivateJobs") >= 1
    duration = "fleetflow_engine_request_duration_seconds"
    assert samples[f"{duration}_count{{method=CreateProcessInstance}}"] == INSTANCES + 1
    assert samples[f"{duration}_bucket{{le=+Inf,method=CreateProcessInstance}}"] == INSTANCES + 1
    assert 0 < samples[f"{duration}_sum{{method=CreateProcessInstance}}"] < 60

    commands = "fleetflow_engine_commands_total"
    assert total(samples, commands, "value_type=PROCESS_INSTANCE_CREATION", "intent=CREATE") == INSTANCES
    assert total(samples, commands, "value_type=JOB", "intent=COMPLETE") == INSTANCES
    rejections = "fleetflow_engine_command_rejections_total"
    assert total(samples, rejections, "value_type=PROCESS_INSTANCE_CREATION", "rejection_type=NOT_FOUND") == 1
    assert total(samples, "fleetflow_engine_jobs_activated_total") == INSTANCES
    assert total(samples, "fleetflow_engine_jobs_yielded_total") == 0
    for partition in ("1", "2"):
        assert samples[f"fleetflow_engine_partition_healthy{{partition={partition}}}"] == 1
        position = samples[f"fleetflow_engine_log_position{{partition={partition}}}"]
        assert position > 0  # the deployment is distributed to every partition
        assert samples[f"fleetflow_engine_log_written_position{{partition={partition}}}"] <= position

    # Everything answered was written: the written position catches up with the appended one.
    def caught_up() -> bool:
        _, now = scrape(port)
        return all(
            now[f"fleetflow_engine_log_written_position{{partition={p}}}"]
            == now[f"fleetflow_engine_log_position{{partition={p}}}"]
            for p in ("1", "2")
        )

    wait_for(caught_up, timeout=10, what="log written position = appended position")


def test_proxy_metrics(stack: tuple[ServiceProcess, int, ServiceProcess, int]) -> None:
    _, _, _, port = stack
    content_type, samples = scrape(port)
    assert content_type.startswith("text/plain; version=0.0.4")

    assert samples["fleetflow_proxy_requests_total{cluster=1,method=CreateProcessInstance}"] == INSTANCES + 1
    assert samples["fleetflow_proxy_requests_total{cluster=1,method=CompleteJob}"] == INSTANCES
    assert samples["fleetflow_proxy_errors_total{cluster=1,code=NOT_FOUND}"] == 1
    assert samples["fleetflow_proxy_instances_created_total{cluster=1}"] == INSTANCES
    assert samples["fleetflow_proxy_jobs_activated_total{cluster=1}"] == INSTANCES
    assert samples["fleetflow_proxy_jobs_handed_back_total{cluster=1}"] == 0
    assert samples["fleetflow_proxy_pending_deployments{cluster=1}"] == 0
    unary = samples["fleetflow_proxy_request_duration_seconds_count{cluster=1}"]
    assert unary >= 1 + (INSTANCES + 1) + INSTANCES  # deploy, creates, completions
    assert samples["fleetflow_proxy_request_duration_seconds_bucket{cluster=1,le=+Inf}"] == unary
    assert 0 < samples["fleetflow_proxy_request_duration_seconds_sum{cluster=1}"] < 60
    assert samples["fleetflow_proxy_cluster_up{cluster=1}"] == 1
    assert samples["fleetflow_proxy_cluster_health{cluster=1,health=up}"] == 1
    assert samples["fleetflow_proxy_cluster_health{cluster=1,health=down}"] == 0
    engine, _, _, _ = stack
    info = f"fleetflow_proxy_cluster_info{{address={engine.address},cluster=1,name=one,state=active}}"
    assert samples[info] == 1


def test_the_endpoint_answers_only_get_metrics(
    stack: tuple[ServiceProcess, int, ServiceProcess, int],
) -> None:
    _, engine_port, _, proxy_port = stack
    for port in (engine_port, proxy_port):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)
        assert error.value.code == 404
        request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", data=b"x", method="POST")
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=10)  # noqa: S310 - a fixed http:// URL
        assert error.value.code == 404


def test_garbage_and_oversized_requests_are_dropped_and_the_endpoint_stays_up(
    stack: tuple[ServiceProcess, int, ServiceProcess, int],
) -> None:
    _, engine_port, _, proxy_port = stack
    for port in (engine_port, proxy_port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"\x00\xffnot http\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.0 404")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            # 256 KiB of header without an end: the server closes instead of buffering it.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 256 * 1024)
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(100) == b""
        assert scrape(port)[1]  # and it still answers
