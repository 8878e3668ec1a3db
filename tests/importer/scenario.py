"""Drives a real engine through the flows the importer must get right, with a synchronous gRPC stub.

Three-level nesting (rack-sweep -> server-repair -> diagnosis, tests/fixtures/bpmn), parallel
branches, a job failing without retries (incident), update retries + resolve, a retry with retries
left, an uncaught-by-task error caught by a boundary event, an incident left open, a cancel of a
two-level tree, a process instance modification and a variable above the preview threshold.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pyzeebe.proto import gateway_pb2 as pb

from engine.log import LogReader, partition_ids
from routing.keys import CLUSTER_SHIFT
from tests.engine.helpers import activate, complete, create, deploy, gateway, one_task_process, wait_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bpmn"
LARGE_TEXT = "x" * 20_000


def log_records(data_dir: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for partition_id in partition_ids(data_dir):
        found.extend(LogReader(data_dir, partition_id).read(1, 10_000_000))
    return found


def activate_n(stub: Any, job_type: str, count: int, timeout_s: float = 20.0) -> list[pb.ActivatedJob]:
    jobs: list[pb.ActivatedJob] = []
    deadline = time.monotonic() + timeout_s
    while len(jobs) < count and time.monotonic() < deadline:
        jobs.extend(activate(stub, job_type, max_jobs=count - len(jobs), request_timeout_ms=2000))
    assert len(jobs) == count, f"expected {count} jobs of type {job_type!r}, got {len(jobs)}"
    return jobs


def _variables(job: pb.ActivatedJob) -> dict[str, Any]:
    return json.loads(job.variables or "{}")


def _incident_keys(data_dirs: Path | dict[int, Path], job_key: int) -> list[int]:
    """Incidents of a job, read from the owning engine's log. Through the proxy (`data_dirs` per
    cluster id) the job key is a global key (DESIGN §2), and so is the answer."""
    if isinstance(data_dirs, Path):
        cluster_id, local_key, data_dir = 0, job_key, data_dirs
    else:
        cluster_id, local_key = job_key >> CLUSTER_SHIFT, job_key & ((1 << CLUSTER_SHIFT) - 1)
        data_dir = data_dirs[cluster_id]
    return [
        (cluster_id << CLUSTER_SHIFT) | record["key"]
        for record in log_records(data_dir)
        if record["recordType"] == "EVENT"
        and record["valueType"] == "INCIDENT"
        and record["intent"] == "CREATED"
        and record["value"].get("jobKey") == local_key
    ]


def run_fleet_scenario(address: str, data_dir: Path | dict[int, Path], rack: str) -> dict[str, int]:
    """Run every flow once against the engine (or proxy) at `address`; returns the keys the client
    saw (Zeebe keys from an engine, global keys through the proxy, whose clusters' logs are
    `data_dir` by cluster id)."""
    keys: dict[str, int] = {}
    with gateway(address) as stub:
        for name in ("diagnosis.bpmn", "server-repair.bpmn", "rack-sweep.bpmn"):
            deploy(stub, name, (FIXTURES / name).read_bytes())
        deploy(stub, "flaky.bpmn", one_task_process("flaky", "flaky-task"))

        # Rack sweep: two server repairs in parallel, each calling a diagnosis (three levels).
        keys["sweep"] = create(stub, "rack-sweep", {"rack": rack})
        (list_job,) = activate_n(stub, "list-servers", 1)
        complete(stub, list_job.key, {"servers": [f"{rack}-SN1", f"{rack}-SN2"]})
        for job in activate_n(stub, "check-cpu", 2):
            complete(stub, job.key, {"ok": True})
        failing = None
        for job in activate_n(stub, "check-memory", 2):
            if _variables(job)["serverSn"].endswith("SN2"):
                failing = job
            else:
                complete(stub, job.key, {"ok": True})
        assert failing is not None
        # No retries left: JOB FAILED + INCIDENT CREATED; then update retries and resolve.
        stub.FailJob(
            pb.FailJobRequest(jobKey=failing.key, retries=0, errorMessage="memory test crashed"), timeout=10
        )
        (incident_key,) = wait_for(
            lambda: _incident_keys(data_dir, failing.key), what="incident of the failed job"
        )
        stub.UpdateJobRetries(pb.UpdateJobRetriesRequest(jobKey=failing.key, retries=1), timeout=10)
        stub.ResolveIncident(pb.ResolveIncidentRequest(incidentKey=incident_key), timeout=10)
        (again,) = activate_n(stub, "check-memory", 1)
        complete(stub, again.key, {"ok": False})
        for job in activate_n(stub, "summarize", 2):
            variables = _variables(job)
            complete(stub, job.key, {"result": "ok" if variables["memoryOk"] else "faulty"})
        # The faulty server: no spare part -> error caught by the boundary event -> user task left open.
        (replace,) = activate_n(stub, "replace-part", 1)
        stub.ThrowError(
            pb.ThrowErrorRequest(jobKey=replace.key, errorCode="NO_STOCK", errorMessage="none left"),
            timeout=10,
        )
        (order_task,) = activate_n(stub, "io.camunda.zeebe:userTask", 1)
        keys["order_task_job"] = order_task.key

        # A repair whose CPU check fails for good: an incident stays open two levels down.
        keys["stuck_repair"] = create(stub, "server-repair", {"serverSn": f"{rack}-SN9"})
        (cpu,) = activate_n(stub, "check-cpu", 1)
        stub.FailJob(pb.FailJobRequest(jobKey=cpu.key, retries=0, errorMessage="cpu check hung"), timeout=10)
        wait_for(lambda: _incident_keys(data_dir, cpu.key), what="incident of the cpu check")

        # Cancel a two-level tree while its jobs are open.
        keys["canceled_repair"] = create(stub, "server-repair", {"serverSn": f"{rack}-SN7"})
        activate_n(stub, "check-memory", 2)  # the stuck repair's and this one's
        stub.CancelProcessInstance(
            pb.CancelProcessInstanceRequest(processInstanceKey=keys["canceled_repair"]), timeout=10
        )

        # A retry with retries left, then success; with a variable above the preview threshold.
        keys["flaky"] = create(stub, "flaky", {"blob": LARGE_TEXT, "serverSn": f"{rack}-SN5"})
        (flaky,) = activate_n(stub, "flaky-task", 1)
        stub.FailJob(pb.FailJobRequest(jobKey=flaky.key, retries=2, errorMessage="transient"), timeout=10)
        (flaky_again,) = activate_n(stub, "flaky-task", 1)
        complete(stub, flaky_again.key, {"attempts": 2})

        # Modification: terminate the waiting task and activate the end event instead.
        keys["modified"] = create(stub, "flaky", {"serverSn": f"{rack}-SN6"})
        (stuck,) = activate_n(stub, "flaky-task", 1)
        stub.ModifyProcessInstance(
            pb.ModifyProcessInstanceRequest(
                processInstanceKey=keys["modified"],
                activateInstructions=[pb.ModifyProcessInstanceRequest.ActivateInstruction(elementId="end")],
                terminateInstructions=[
                    pb.ModifyProcessInstanceRequest.TerminateInstruction(
                        elementInstanceKey=stuck.elementInstanceKey
                    )
                ],
            ),
            timeout=10,
        )
    return keys
