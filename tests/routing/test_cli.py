"""`python -m routing` as a process: argument errors, signals, health, metrics, persisted journal."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import grpc
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc

from tests.routing.harness import (
    REPO_ROOT,
    EngineProcess,
    ProxyProcess,
    cluster_entry,
    free_port,
    python_env,
    wait_for,
)
from tests.routing.models import service_task_process


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "routing", *args],
        cwd=REPO_ROOT,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_bad_arguments_exit_2_with_a_clear_message(tmp_path: Path) -> None:
    cases = {
        ("--port", "0", "--cluster", "0=127.0.0.1:1"): "cluster id 0 is out of range",
        ("--port", "0", "--cluster", "1=nohost"): "address must be HOST:PORT",
        ("--port", "0", "--cluster", "1=127.0.0.1:1,colour=red"): "unknown option",
        ("--port", "0", "--cluster", "1=127.0.0.1:1,state=sleeping"): "state must be one of",
        ("--port", "0", "--cluster", "1=127.0.0.1:1", "--cluster", "1=127.0.0.1:2"): "appears twice",
        ("--port", "0", "--clusters", str(tmp_path / "missing.json")): "cannot read cluster file",
    }
    (tmp_path / "bad.json").write_text('{"id": 1}', encoding="utf-8")
    cases[("--port", "0", "--clusters", str(tmp_path / "bad.json"))] = "expected a JSON list"
    for args, message in cases.items():
        result = _run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)


def test_cluster_flags_health_metrics_and_clean_sigterm(tmp_path: Path) -> None:
    port, nowhere = free_port(), free_port()
    state = tmp_path / "state"
    with open(tmp_path / "proxy.log", "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "routing", "--port", str(port), "--state-dir", str(state),
                "--cluster", f"1=127.0.0.1:{nowhere},weight=2,state=draining,name=blue",
            ],
            cwd=REPO_ROOT, env=python_env(), stderr=log,
        )  # fmt: skip
    proxy = ProxyProcess(work_dir=tmp_path, port=port, process=process)
    try:
        wait_for(proxy.serving, 20, what="proxy serving")
        metrics = wait_for(
            lambda: (
                (m := json.loads((state / "metrics.json").read_text()))["clusters"]["1"]["health"] == "down"
                and m
            ),
            10,
            what="cluster reported down",
        )
        cluster = metrics["clusters"]["1"]
        assert (cluster["name"], cluster["weight"], cluster["state"]) == ("blue", 2, "draining")
        with grpc.insecure_channel(proxy.address) as channel:
            try:
                gateway_pb2_grpc.GatewayStub(channel).CreateProcessInstance(
                    pb.CreateProcessInstanceRequest(bpmnProcessId="x"), timeout=5
                )
            except grpc.RpcError as error:
                assert error.code() is grpc.StatusCode.UNAVAILABLE
                assert "no active healthy cluster" in error.details() and "'blue'" in error.details()
            else:
                raise AssertionError("placed on a draining, down cluster")
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=15)
    assert returncode == 0
    assert "routing proxy stopped" in (tmp_path / "proxy.log").read_text()


def test_deployment_journal_survives_a_proxy_restart(tmp_path: Path) -> None:
    one = EngineProcess(data_dir=tmp_path / "c1" / "data").start()
    two = EngineProcess(data_dir=tmp_path / "c2" / "data")  # not started yet: down
    proxy = ProxyProcess(work_dir=tmp_path / "proxy")
    try:
        proxy.start([cluster_entry(1, one), cluster_entry(2, two)])
        wait_for(lambda: proxy.metrics()["clusters"]["2"]["health"] == "down", 10, what="cluster 2 down")
        with grpc.insecure_channel(proxy.address) as channel:
            gateway_pb2_grpc.GatewayStub(channel).DeployResource(
                pb.DeployResourceRequest(
                    resources=[pb.Resource(name="rt-j.bpmn", content=service_task_process("rt-j", "rt-j"))]
                ),
                timeout=30,
            )
        assert proxy.stop() == 0
        journal = json.loads((proxy.state_dir / "deployments.json").read_text())
        assert [e["delivered"] for e in journal["entries"]] == [[1]]
        proxy.start()  # same state dir: same journal
        two.start()
        wait_for(
            lambda: (
                (m := proxy.metrics()["clusters"]["2"])["health"] == "up" and m["pendingDeployments"] == 0
            ),
            20,
            what="cluster 2 caught up",
        )
        processes = [r for r in two.records() if r["valueType"] == "PROCESS" and r["intent"] == "CREATED"]
        # One deployment (each partition records it): delivered once, not replayed twice.
        assert {(r["value"]["bpmnProcessId"], r["key"]) for r in processes} == {("rt-j", processes[0]["key"])}
        deployments = [
            r for r in two.records() if r["valueType"] == "DEPLOYMENT" and r["intent"] == "CREATED"
        ]
        assert len({r["key"] for r in deployments}) == 1
    finally:
        proxy.stop()
        one.stop()
        two.stop()
