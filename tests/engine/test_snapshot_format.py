"""Snapshots across the typed-state move (issue 14): a snapshot written by part 1's engine
(format 1: plain dicts) still loads, one of an unknown format is ignored in favour of the log,
and armed timers survive a clean restart through the snapshot."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.engine.conftest import EngineProcess
from tests.engine.helpers import (
    activate_one,
    complete,
    create,
    deploy,
    events,
    flow,
    gateway,
    instance_state,
    one_task_process,
    process_xml,
    service_task,
    wait_for,
)


def as_format_1(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The same state in part 1's snapshot layout (engine/state.py before issue 14)."""
    instances = []
    for key, state, value, job_key, child_instance_key, taken, *_counters in snapshot["elementInstances"]:
        instances.append(
            dict(
                value, key=key, state=state, jobKey=job_key, childInstanceKey=child_instance_key, taken=taken
            )
        )
    return {
        "partitionId": snapshot["partitionId"],
        "nextLocalKey": snapshot["nextLocalKey"],
        "lastPosition": snapshot["lastPosition"],
        "processes": snapshot["processes"],
        "deployments": snapshot["deployments"],
        "elementInstances": instances,
        "variables": snapshot["variables"],
        "jobs": [[key, {"state": state, "value": value}] for key, state, value in snapshot["jobs"]],
        "incidents": snapshot["incidents"],
    }


def snapshot_path(data_dir: Path) -> Path:
    return data_dir / "partition-1" / "snapshot.json"


def test_a_part_1_snapshot_still_loads_and_its_instances_go_on(tmp_path: Path) -> None:
    data = tmp_path / "data"
    engine = EngineProcess(data, partitions=1).start()
    try:
        with gateway(engine.address) as stub:
            deploy(stub, "snap.bpmn", one_task_process("snap", "snap-work"))
            instances = [create(stub, "snap", {"n": n, "text": "é✓"}) for n in range(3)]
            first = activate_one(stub, "snap-work")
            complete(stub, first.key, {"done": True})
    finally:
        engine.stop()  # a clean stop writes the snapshot
    path = snapshot_path(data)
    current = json.loads(path.read_text())
    assert current["formatVersion"] == 2 and len(current["jobs"]) == 2
    path.write_text(json.dumps(as_format_1(current)))

    restarted = EngineProcess(data, partitions=1).start()
    try:
        assert "snapshot up to" in restarted.stderr() and "unreadable" not in restarted.stderr()
        with gateway(restarted.address) as stub:
            for _ in range(2):
                job = activate_one(stub, "snap-work")
                assert json.loads(job.variables)["text"] == "é✓"
                complete(stub, job.key)
        for instance in instances:
            wait_for(lambda key=instance: instance_state(data, key) == "ELEMENT_COMPLETED", 15, "completion")
    finally:
        restarted.stop()
    assert json.loads(path.read_text())["formatVersion"] == 2  # rewritten in the new layout


def test_a_snapshot_of_an_unknown_format_is_ignored_and_the_log_replayed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    engine = EngineProcess(data, partitions=1).start()
    try:
        with gateway(engine.address) as stub:
            deploy(stub, "snap.bpmn", one_task_process("snap-x", "snap-x-work"))
            instance = create(stub, "snap-x")
    finally:
        engine.stop()
    path = snapshot_path(data)
    future = json.loads(path.read_text())
    future["formatVersion"] = 99
    future["elementInstances"] = "a layout this engine does not know"
    path.write_text(json.dumps(future))
    restarted = EngineProcess(data, partitions=1).start()
    try:
        assert "format version 99" in restarted.stderr() and "replaying the whole log" in restarted.stderr()
        with gateway(restarted.address) as stub:
            complete(stub, activate_one(stub, "snap-x-work").key)
        wait_for(lambda: instance_state(data, instance) == "ELEMENT_COMPLETED", 15, "completion")
    finally:
        restarted.stop()


def test_armed_timers_survive_a_clean_restart_through_the_snapshot(tmp_path: Path) -> None:
    timer = (
        '<bpmn:timerEventDefinition><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT1.5S'
        "</bpmn:timeDuration></bpmn:timerEventDefinition>"
    )
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>'
        + service_task("task", "snap-never", "f0", "f1")
        + f'<bpmn:boundaryEvent id="late" attachedToRef="task"><bpmn:outgoing>f2</bpmn:outgoing>{timer}'
        "</bpmn:boundaryEvent>"
        + '<bpmn:endEvent id="done"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>'
        + '<bpmn:endEvent id="late-end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
        + flow("f0", "start", "task")
        + flow("f1", "task", "done")
        + flow("f2", "late", "late-end")
    )
    data = tmp_path / "data"
    engine = EngineProcess(data, partitions=1).start()
    try:
        with gateway(engine.address) as stub:
            deploy(stub, "snap-timer.bpmn", process_xml("snap-timer", body))
            instance = create(stub, "snap-timer")
    finally:
        engine.stop()
    snapshot = json.loads(snapshot_path(data).read_text())
    assert [value["targetElementId"] for _key, value in snapshot["timers"]] == ["late"]
    time.sleep(1.0)
    restarted = EngineProcess(data, partitions=1).start()
    try:
        assert "0 records replayed" in restarted.stderr()  # the timer came from the snapshot
        wait_for(lambda: instance_state(data, instance) == "ELEMENT_COMPLETED", 15, "timer after restart")
        assert len(events(data, valueType="TIMER", intent="TRIGGERED", processInstanceKey=instance)) == 1
    finally:
        restarted.stop()
