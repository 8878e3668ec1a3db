"""The three-level hardware-diagnosis flow end to end, driven by pyzeebe's ZeebeClient and
ZeebeWorker against a real `python -m engine` process: parallel fork/join, call activities
two levels deep, input/output mappings, variable propagation, an exclusive gateway, a
job-based user task and an error boundary event."""

import asyncio
from typing import Any

import grpc
from pyzeebe import Job, ZeebeClient, ZeebeWorker

from tests.engine.conftest import FIXTURES, EngineProcess
from tests.engine.helpers import all_records, events

FIXTURE_FILES = [FIXTURES / name for name in ("diagnosis.bpmn", "server-repair.bpmn", "rack-sweep.bpmn")]


def build_worker(
    channel: grpc.aio.Channel, seen: dict[str, list[Any]], no_stock_for: set[str]
) -> ZeebeWorker:
    worker = ZeebeWorker(channel, name="fleet-test", request_timeout=2000)

    @worker.task(task_type="list-servers")
    async def list_servers(rack: str) -> dict[str, Any]:
        return {"servers": [f"{rack}-SN1", f"{rack}-SN2"]}

    @worker.task(task_type="check-cpu")
    async def check_cpu(serverSn: str) -> dict[str, Any]:
        seen["check-cpu"].append(serverSn)
        return {"ok": True}

    @worker.task(task_type="check-memory")
    async def check_memory(serverSn: str) -> dict[str, Any]:
        seen["check-memory"].append(serverSn)
        return {"ok": not serverSn.endswith("SN2")}

    @worker.task(task_type="summarize")
    async def summarize(cpuOk: bool, memoryOk: bool) -> dict[str, Any]:
        return {"result": "ok" if cpuOk and memoryOk else "faulty"}

    async def no_stock_handler(exc: Exception, job: Job, controller: Any) -> None:
        await controller.set_error_status(f"no stock: {exc}", error_code="NO_STOCK")

    @worker.task(task_type="replace-part", exception_handler=no_stock_handler)
    async def replace_part(job: Job) -> dict[str, Any]:
        seen["replace-part"].append(dict(job.custom_headers))
        if job.variables["serverSn"] in no_stock_for:
            raise RuntimeError("part missing")
        return {"replacedPart": "DIMM-3"}

    @worker.task(task_type="io.camunda.zeebe:userTask")
    async def user_task(job: Job) -> dict[str, Any]:
        seen["user-task"].append((job.element_id, dict(job.custom_headers)))
        return {"verifiedBy": "tech-7"}

    return worker


async def run_sweep(
    address: str, rack: str, no_stock_for: set[str]
) -> tuple[dict[str, Any], dict[str, list[Any]], int]:
    seen: dict[str, list[Any]] = {"check-cpu": [], "check-memory": [], "replace-part": [], "user-task": []}
    async with grpc.aio.insecure_channel(address) as channel:
        client = ZeebeClient(channel)
        await client.deploy_resource(*FIXTURE_FILES)
        worker = build_worker(channel, seen, no_stock_for)
        work = asyncio.create_task(worker.work())
        try:
            result = await client.run_process_with_result("rack-sweep", {"rack": rack}, timeout=60_000)
        finally:
            await worker.stop()
            await asyncio.wait_for(work, 30)
    return result.variables, seen, result.process_instance_key


def test_rack_sweep_runs_three_levels_deep(engine: EngineProcess) -> None:
    variables, seen, root_key = asyncio.run(run_sweep(engine.address, "R1", no_stock_for=set()))

    # Only what the call activities' output mappings return reaches the root scope.
    assert set(variables) == {"rack", "servers", "diagnosisA", "diagnosisB"}
    assert variables["diagnosisA"] == {"result": "ok", "cpuOk": True, "memoryOk": True}
    assert variables["diagnosisB"] == {"result": "faulty", "cpuOk": True, "memoryOk": False}
    # serverSn travelled rack-sweep input mapping -> server-repair -> diagnosis.
    assert sorted(seen["check-cpu"]) == ["R1-SN1", "R1-SN2"]
    assert seen["replace-part"] == [{"partCatalog": "standard", "priority": "high"}]
    assert len(seen["user-task"]) == 1
    element_id, headers = seen["user-task"][0]
    assert element_id == "verify-repair"
    assert headers["io.camunda.zeebe:assignee"] == "repair-lead"

    data_dir = engine.data_dir
    processes = events(
        data_dir, valueType="PROCESS_INSTANCE", bpmnElementType="PROCESS", intent="ELEMENT_COMPLETED"
    )
    repairs = [
        r
        for r in processes
        if r["value"]["bpmnProcessId"] == "server-repair"
        and r["value"]["parentProcessInstanceKey"] == root_key
    ]
    assert len(repairs) == 2
    repair_keys = {r["key"] for r in repairs}
    diagnoses = [
        r
        for r in processes
        if r["value"]["bpmnProcessId"] == "diagnosis"
        and r["value"]["parentProcessInstanceKey"] in repair_keys
    ]
    assert len(diagnoses) == 2
    for record in diagnoses:
        parent = record["value"]["parentElementInstanceKey"]
        activating = events(data_dir, key=parent, intent="ELEMENT_ACTIVATING")
        assert activating[0]["value"]["elementId"] == "diagnose"
    # the join of the root waited for both branches: activated exactly once
    joins = events(
        data_dir,
        valueType="PROCESS_INSTANCE",
        processInstanceKey=root_key,
        elementId="join-servers",
        intent="ELEMENT_ACTIVATING",
    )
    assert len(joins) == 1
    # every child record carries the parent keys
    child_records = [
        r
        for r in all_records(data_dir)
        if r["valueType"] == "PROCESS_INSTANCE" and r["value"]["processInstanceKey"] in repair_keys
    ]
    assert child_records and all(r["value"]["parentProcessInstanceKey"] == root_key for r in child_records)


def test_error_from_worker_is_caught_by_boundary_event(engine: EngineProcess) -> None:
    variables, seen, _ = asyncio.run(run_sweep(engine.address, "R2", no_stock_for={"R2-SN2"}))
    assert variables["diagnosisB"]["result"] == "faulty"
    # the NO_STOCK error routed SN2's repair to the order-part user task instead of verify-repair
    assert [element for element, _ in seen["user-task"]] == ["order-part"]
    assert seen["user-task"][0][1]["io.camunda.zeebe:candidateGroups"]
    thrown = events(engine.data_dir, valueType="JOB", intent="ERROR_THROWN", errorCode="NO_STOCK")
    assert len(thrown) == 1
    terminated = events(
        engine.data_dir, key=thrown[0]["value"]["elementInstanceKey"], intent="ELEMENT_TERMINATED"
    )
    assert len(terminated) == 1
