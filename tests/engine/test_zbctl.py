"""zbctl 8.4 (Go client from npm) as a second real client against the engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine.conftest import EngineProcess
from tests.engine.helpers import events, flow, one_task_process, process_xml
from tests.zbctl import require_zbctl, run_zbctl


@pytest.fixture(scope="module")
def zbctl() -> Path:
    return require_zbctl()


def ok(address: str, *args: str) -> dict:
    result = run_zbctl(address, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip().startswith("{") else {"text": result.stdout}


def test_zbctl_drives_the_engine(zbctl: Path, engine: EngineProcess, tmp_path: Path) -> None:
    address = engine.address
    status = run_zbctl(address, "status")
    assert status.returncode == 0 and "Partition 2 : Leader, Healthy" in status.stdout

    task_file = tmp_path / "zb-task.bpmn"
    task_file.write_bytes(one_task_process("zb-task", "zb-work"))
    instant_file = tmp_path / "zb-instant.bpmn"
    instant_file.write_bytes(
        process_xml(
            "zb-instant",
            '<bpmn:startEvent id="s"><bpmn:outgoing>f</bpmn:outgoing></bpmn:startEvent>'
            '<bpmn:endEvent id="e"><bpmn:incoming>f</bpmn:incoming></bpmn:endEvent>' + flow("f", "s", "e"),
        )
    )
    deployed = ok(address, "deploy", "resource", str(task_file), str(instant_file))
    assert {d["process"]["bpmnProcessId"] for d in deployed["deployments"]} == {"zb-task", "zb-instant"}

    with_result = ok(
        address, "create", "instance", "zb-instant", "--variables", '{"answer": 42}', "--withResult"
    )
    assert json.loads(with_result["variables"]) == {"answer": 42}

    created = ok(address, "create", "instance", "zb-task", "--variables", '{"sn": "SN-1"}')
    instance = int(created["processInstanceKey"])
    jobs = ok(address, "activate", "jobs", "zb-work", "--maxJobsToActivate", "5", "--worker", "zb")["jobs"]
    assert len(jobs) == 1 and json.loads(jobs[0]["variables"]) == {"sn": "SN-1"}
    job_key = jobs[0]["key"]

    ok(address, "update", "timeout", job_key, "--timeout", "600000")
    ok(address, "fail", "job", job_key, "--retries", "0", "--errorMessage", "zbctl says no")
    incident = events(engine.data_dir, valueType="INCIDENT", intent="CREATED", jobKey=int(job_key))[0]
    assert incident["value"]["errorMessage"] == "zbctl says no"
    ok(address, "update", "retries", job_key, "--retries", "2")
    ok(address, "resolve", "incident", str(incident["key"]))
    ok(address, "set", "variables", str(instance), "--variables", '{"note": "resolved"}')
    jobs = ok(address, "activate", "jobs", "zb-work")["jobs"]
    assert [job["key"] for job in jobs] == [job_key]
    ok(address, "complete", "job", job_key, "--variables", '{"done": true}')
    assert events(engine.data_dir, valueType="PROCESS_INSTANCE", key=instance, intent="ELEMENT_COMPLETED")

    second = int(ok(address, "create", "instance", "zb-task")["processInstanceKey"])
    ok(address, "cancel", "instance", str(second))
    assert events(engine.data_dir, valueType="PROCESS_INSTANCE", key=second, intent="ELEMENT_TERMINATED")

    missing = run_zbctl(address, "complete", "job", job_key)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    published = ok(address, "publish", "message", "m", "--correlationKey", "k")
    assert int(published["key"]) > 0 and published["tenantId"] == "<default>"
