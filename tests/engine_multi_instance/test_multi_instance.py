"""Multi-instance activities through real clients (pyzeebe, raw gRPC): sequential over 100
servers, parallel with an output collection, embedded sub-process and call activity bodies,
a completion condition, an error caught on the body, and a bad input collection as an
incident that is resolved."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest
from pyzeebe import ZeebeClient, ZeebeWorker, create_insecure_channel
from pyzeebe.proto import gateway_pb2 as pb

from tests.engine.conftest import EngineProcess
from tests.engine.helpers import (
    activate,
    activate_one,
    all_records,
    complete,
    create,
    deploy,
    events,
    flow,
    gateway,
    instance_state,
    process_xml,
    wait_for,
)

START = '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
END = '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'


def loop(collection: str, element: str = "item", sequential: bool = False, extra: str = "") -> str:
    sequential_attr = ' isSequential="true"' if sequential else ""
    return (
        f"<bpmn:multiInstanceLoopCharacteristics{sequential_attr}><bpmn:extensionElements>"
        f'<zeebe:loopCharacteristics inputCollection="{collection}" inputElement="{element}"{extra}/>'
        "</bpmn:extensionElements></bpmn:multiInstanceLoopCharacteristics>"
    )


def mi_task(job_type: str, characteristics: str, extension: str = "") -> str:
    return (
        f'<bpmn:serviceTask id="task"><bpmn:extensionElements><zeebe:taskDefinition type="{job_type}"/>'
        f"{extension}</bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming>"
        f"<bpmn:outgoing>f2</bpmn:outgoing>{characteristics}</bpmn:serviceTask>"
    )


def task_process(process_id: str, job_type: str, characteristics: str, extra_body: str = "") -> bytes:
    body = (
        START
        + mi_task(job_type, characteristics)
        + END
        + extra_body
        + flow("f1", "start", "task")
        + flow("f2", "task", "end")
    )
    return process_xml(process_id, body)


def activate_n(stub: Any, job_type: str, count: int) -> list[pb.ActivatedJob]:
    """Activate until `count` jobs of the type are held (bounded), and no more than that."""
    jobs: list[pb.ActivatedJob] = []
    for _ in range(50):
        jobs += activate(stub, job_type, max_jobs=count - len(jobs), request_timeout_ms=1000)
        if len(jobs) >= count:
            break
    assert len(jobs) == count, f"{len(jobs)} of {count} {job_type} jobs"
    return jobs


def completed_variables(address: str, process_id: str, variables: dict[str, Any]) -> dict[str, Any]:
    with gateway(address) as stub:
        response = stub.CreateProcessInstanceWithResult(
            pb.CreateProcessInstanceWithResultRequest(
                request=pb.CreateProcessInstanceRequest(
                    bpmnProcessId=process_id, version=-1, variables=json.dumps(variables)
                ),
                requestTimeout=60_000,
            ),
            timeout=90,
        )
    return json.loads(response.variables)


def test_sequential_over_100_servers_with_pyzeebe(engine: EngineProcess) -> None:
    """One job per server, strictly one at a time and in order; the outputs are collected in
    the order of the input collection."""
    servers = [f"srv-{n:03d}" for n in range(100)]
    characteristics = loop(
        "= servers", "server", sequential=True, extra=' outputCollection="results" outputElement="= result"'
    )
    with gateway(engine.address) as stub:
        deploy(stub, "seq.bpmn", task_process("mi-seq", "mi-seq-check", characteristics))
    seen: list[tuple[str, int]] = []
    active = {"now": 0, "max": 0}

    async def scenario() -> dict[str, Any]:
        channel = create_insecure_channel(grpc_address=engine.address)
        worker = ZeebeWorker(channel)

        @worker.task("mi-seq-check")
        async def check(server: str, loopCounter: int) -> dict[str, Any]:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
            seen.append((server, loopCounter))
            await asyncio.sleep(0)
            active["now"] -= 1
            return {"result": f"{server}:ok"}

        work = asyncio.create_task(worker.work())
        try:
            client = ZeebeClient(channel)
            result = await client.run_process_with_result(
                "mi-seq", {"servers": servers}, timeout=120_000, variables_to_fetch=["results"]
            )
            return result.variables
        finally:
            await worker.stop()
            await asyncio.wait_for(work, 30)

    variables = asyncio.run(scenario())
    assert variables["results"] == [f"{server}:ok" for server in servers]
    assert seen == [(server, index + 1) for index, server in enumerate(servers)]
    assert active["max"] == 1
    # the records: one body, 100 inner instances inside it, created one after the other
    bodies = events(
        engine.data_dir, intent="ELEMENT_ACTIVATED", bpmnElementType="MULTI_INSTANCE_BODY", elementId="task"
    )
    body = next(record for record in bodies if record["value"]["bpmnProcessId"] == "mi-seq")
    inner = [
        record
        for record in events(
            engine.data_dir, intent="ELEMENT_COMPLETED", bpmnElementType="SERVICE_TASK", elementId="task"
        )
        if record["value"]["flowScopeKey"] == body["key"]
    ]
    assert len(inner) == 100


def test_parallel_with_output_collection_and_input_mappings(engine: EngineProcess) -> None:
    characteristics = loop("= items", "item", extra=' outputCollection="out" outputElement="= doubled"')
    extension = '<zeebe:ioMapping><zeebe:input source="= item * 10" target="tenfold"/></zeebe:ioMapping>'
    body = (
        START
        + mi_task("mi-par", characteristics, extension)
        + END
        + flow("f1", "start", "task")
        + flow("f2", "task", "end")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "par.bpmn", process_xml("mi-par", body))
        key = create(stub, "mi-par", {"items": [1, 2, 3]})
        jobs = activate_n(stub, "mi-par", 3)
        by_item = {json.loads(job.variables)["item"]: job for job in jobs}
        assert sorted(by_item) == [1, 2, 3]
        for item, job in by_item.items():
            variables = json.loads(job.variables)
            assert variables["tenfold"] == item * 10
            assert variables["loopCounter"] == item  # items are 1..3 in order
        # complete out of order: the collection keeps the input order
        for item in (3, 1, 2):
            complete(stub, by_item[item].key, {"doubled": item * 2})
        wait_for(
            lambda: instance_state(engine.data_dir, key) == "ELEMENT_COMPLETED", what="instance completed"
        )
    final = [
        record
        for record in events(engine.data_dir, valueType="VARIABLE", name="out")
        if record["value"]["processInstanceKey"] == key
    ]
    assert json.loads(final[-1]["value"]["value"]) == [2, 4, 6]
    assert final[-1]["value"]["scopeKey"] == key  # propagated from the body to the process


def test_empty_collection_completes_at_once(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "empty.bpmn", task_process("mi-empty", "mi-empty", loop("= []")))
    variables = completed_variables(engine.address, "mi-empty", {})
    assert variables == {}


def test_subprocess_and_call_activity_bodies(engine: EngineProcess) -> None:
    child = process_xml(
        "mi-child",
        START.replace("f1", "c1")
        + '<bpmn:serviceTask id="ctask"><bpmn:extensionElements><zeebe:taskDefinition type="mi-child-job"/>'
        "</bpmn:extensionElements><bpmn:incoming>c1</bpmn:incoming><bpmn:outgoing>c2</bpmn:outgoing></bpmn:serviceTask>"
        '<bpmn:endEvent id="cend"><bpmn:incoming>c2</bpmn:incoming></bpmn:endEvent>'
        + flow("c1", "start", "ctask")
        + flow("c2", "ctask", "cend"),
    )
    call = (
        '<bpmn:callActivity id="task"><bpmn:extensionElements><zeebe:calledElement processId="mi-child"/>'
        "</bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>"
        + loop("= servers", "server", sequential=True)
        + "</bpmn:callActivity>"
    )
    sub = (
        '<bpmn:subProcess id="task"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
        + loop("= servers", "server")
        + '<bpmn:startEvent id="sstart"><bpmn:outgoing>s1</bpmn:outgoing></bpmn:startEvent>'
        '<bpmn:serviceTask id="stask"><bpmn:extensionElements><zeebe:taskDefinition type="mi-sub-job"/>'
        "</bpmn:extensionElements><bpmn:incoming>s1</bpmn:incoming><bpmn:outgoing>s2</bpmn:outgoing></bpmn:serviceTask>"
        '<bpmn:endEvent id="send"><bpmn:incoming>s2</bpmn:incoming></bpmn:endEvent>'
        + flow("s1", "sstart", "stask")
        + flow("s2", "stask", "send")
        + "</bpmn:subProcess>"
    )
    with gateway(engine.address) as stub:
        deploy(stub, "child.bpmn", child)
        for process_id, element in (("mi-call", call), ("mi-sub", sub)):
            deploy(
                stub,
                f"{process_id}.bpmn",
                process_xml(
                    process_id,
                    START + element + END + flow("f1", "start", "task") + flow("f2", "task", "end"),
                ),
            )
        call_key = create(stub, "mi-call", {"servers": ["a", "b"]})
        sub_key = create(stub, "mi-sub", {"servers": ["x", "y", "z"]})
        # call activity, sequential: one child instance at a time, each sees its server
        for expected in ("a", "b"):
            job = activate_one(stub, "mi-child-job")
            assert json.loads(job.variables)["server"] == expected
            assert len(activate(stub, "mi-child-job", max_jobs=5, request_timeout_ms=300)) == 0
            complete(stub, job.key)
        wait_for(
            lambda: instance_state(engine.data_dir, call_key) == "ELEMENT_COMPLETED", what="call bodies done"
        )
        # sub-process, parallel: three inner sub-process instances, each with its own server
        jobs = activate_n(stub, "mi-sub-job", 3)
        assert sorted(json.loads(job.variables)["server"] for job in jobs) == ["x", "y", "z"]
        for job in jobs:
            complete(stub, job.key)
        wait_for(
            lambda: instance_state(engine.data_dir, sub_key) == "ELEMENT_COMPLETED", what="sub bodies done"
        )


def test_completion_condition_terminates_the_rest(engine: EngineProcess) -> None:
    characteristics = (
        "<bpmn:multiInstanceLoopCharacteristics><bpmn:extensionElements>"
        '<zeebe:loopCharacteristics inputCollection="= items" inputElement="item"/></bpmn:extensionElements>'
        '<bpmn:completionCondition xsi:type="bpmn:tFormalExpression">= numberOfCompletedInstances &gt;= 2</bpmn:completionCondition>'
        "</bpmn:multiInstanceLoopCharacteristics>"
    )
    with gateway(engine.address) as stub:
        deploy(stub, "cond.bpmn", task_process("mi-cond", "mi-cond", characteristics))
        key = create(stub, "mi-cond", {"items": [1, 2, 3, 4, 5]})
        jobs = activate_n(stub, "mi-cond", 5)
        complete(stub, jobs[0].key)
        assert instance_state(engine.data_dir, key) != "ELEMENT_COMPLETED"
        complete(stub, jobs[1].key)
        wait_for(
            lambda: instance_state(engine.data_dir, key) == "ELEMENT_COMPLETED", what="completed after two"
        )
        with pytest.raises(grpc.RpcError) as caught:
            complete(stub, jobs[2].key)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    terminated = [
        record
        for record in events(engine.data_dir, intent="ELEMENT_TERMINATED", elementId="task")
        if record["value"]["processInstanceKey"] == key
    ]
    assert len(terminated) == 3


def test_error_inside_is_caught_by_a_boundary_on_the_body(engine: EngineProcess) -> None:
    boundary = (
        '<bpmn:boundaryEvent id="caught" attachedToRef="task"><bpmn:outgoing>f3</bpmn:outgoing>'
        '<bpmn:errorEventDefinition errorRef="err"/></bpmn:boundaryEvent>'
        '<bpmn:endEvent id="errend"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>'
        + flow("f3", "caught", "errend")
    )
    content = task_process("mi-err", "mi-err", loop("= items"), boundary).replace(
        b'<bpmn:process id="mi-err"', b'<bpmn:error id="err" errorCode="broken"/><bpmn:process id="mi-err"'
    )
    with gateway(engine.address) as stub:
        deploy(stub, "err.bpmn", content)
        key = create(stub, "mi-err", {"items": ["a", "b", "c"]})
        jobs = activate_n(stub, "mi-err", 3)
        stub.ThrowError(pb.ThrowErrorRequest(jobKey=jobs[0].key, errorCode="broken", errorMessage="disk"))
        wait_for(lambda: instance_state(engine.data_dir, key) == "ELEMENT_COMPLETED", what="error path taken")
        assert len(activate(stub, "mi-err", max_jobs=10, request_timeout_ms=300)) == 0
    body_events = [
        record["intent"]
        for record in events(engine.data_dir, bpmnElementType="MULTI_INSTANCE_BODY", elementId="task")
        if record["value"]["processInstanceKey"] == key
    ]
    assert body_events[-1] == "ELEMENT_TERMINATED"
    boundary_events = [
        record
        for record in events(engine.data_dir, intent="ELEMENT_COMPLETED", elementId="caught")
        if record["value"]["processInstanceKey"] == key
    ]
    assert len(boundary_events) == 1
    assert boundary_events[0]["value"]["flowScopeKey"] == key  # beside the body, not inside it


def test_bad_input_collection_is_an_incident_until_fixed(engine: EngineProcess) -> None:
    with gateway(engine.address) as stub:
        deploy(stub, "bad.bpmn", task_process("mi-bad", "mi-bad", loop("= items")))
        key = create(stub, "mi-bad", {"items": "not a list"})
        incident = wait_for(
            lambda: next(
                (
                    record
                    for record in events(engine.data_dir, valueType="INCIDENT", intent="CREATED")
                    if record["value"]["processInstanceKey"] == key
                ),
                None,
            ),
            what="incident",
        )
        assert incident["value"]["errorType"] == "EXTRACT_VALUE_ERROR"
        assert (
            incident["value"]["errorMessage"]
            == "Expected result of the expression 'items' to be 'ARRAY', but was 'STRING'."
        )
        stub.SetVariables(
            pb.SetVariablesRequest(elementInstanceKey=key, variables=json.dumps({"items": ["ok"]}))
        )
        stub.ResolveIncident(pb.ResolveIncidentRequest(incidentKey=incident["key"]))
        job = activate_one(stub, "mi-bad")
        assert json.loads(job.variables)["item"] == "ok"
        complete(stub, job.key)
        wait_for(
            lambda: instance_state(engine.data_dir, key) == "ELEMENT_COMPLETED",
            what="completed after resolve",
        )


def test_a_large_parallel_collection_is_activated_in_slices(engine: EngineProcess) -> None:
    """2,500 inner instances: the first 1,000 with the body's activation, the rest by one
    PROCESS_INSTANCE_BATCH ACTIVATE command per slice; the body completes only once every
    item ran (no nulls left in the output collection)."""
    manual = (
        '<bpmn:manualTask id="task"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>'
        + loop("= items", "item", extra=' outputCollection="out" outputElement="= item * 2"')
        + "</bpmn:manualTask>"
    )
    content = process_xml(
        "mi-big", START + manual + END + flow("f1", "start", "task") + flow("f2", "task", "end")
    )
    with gateway(engine.address) as stub:
        deploy(stub, "big.bpmn", content)
    variables = completed_variables(engine.address, "mi-big", {"items": list(range(2500))})
    assert variables["out"] == [2 * n for n in range(2500)]
    batches = [
        record
        for record in all_records(engine.data_dir)
        if record["valueType"] == "PROCESS_INSTANCE_BATCH" and record["recordType"] == "COMMAND"
    ]
    assert [record["value"]["index"] for record in batches[-2:]] == [1000, 2000]


def test_slices_still_to_come_are_activated_after_a_kill(fresh_engine: EngineProcess) -> None:
    with gateway(fresh_engine.address) as stub:
        deploy(stub, "killed.bpmn", task_process("mi-killed", "mi-killed", loop("= items")))
        key = create(stub, "mi-killed", {"items": list(range(10_000))})
    fresh_engine.kill()
    # killed while slices were still to come (ten slices take seconds; the create answered after the first)
    assert len(events(fresh_engine.data_dir, valueType="JOB", intent="CREATED")) < 10_000
    restarted = EngineProcess(fresh_engine.data_dir, partitions=2, port=fresh_engine.port).start()
    try:
        wait_for(
            lambda: (
                len(
                    [
                        r
                        for r in events(restarted.data_dir, valueType="JOB", intent="CREATED")
                        if r["value"]["processInstanceKey"] == key
                    ]
                )
                == 10_000
            ),
            timeout=120,
            what="10,000 jobs after the restart",
        )
        assert instance_state(restarted.data_dir, key) == "ELEMENT_ACTIVATED"
    finally:
        restarted.stop()


def test_a_changed_collection_variable_changes_the_items_still_to_come(engine: EngineProcess) -> None:
    """Zeebe reads the input collection again for each sequential item
    (MultiInstanceBodyProcessor), so items changed while the body runs are the ones the next
    inner instances get; a collection that grew runs the new items, one that shrank to what
    already ran ends the body. The engine keeps the evaluated collection between items, so
    this checks that a changed variable is still seen."""
    with gateway(engine.address) as stub:
        deploy(
            stub, "changed.bpmn", task_process("mi-changed", "mi-changed", loop("= items", sequential=True))
        )
        grown = create(stub, "mi-changed", {"items": ["a", "b", "c"]})
        job = activate_one(stub, "mi-changed")
        assert json.loads(job.variables)["item"] == "a"
        stub.SetVariables(
            pb.SetVariablesRequest(
                elementInstanceKey=grown, variables=json.dumps({"items": ["a", "B", "C", "D"]})
            )
        )
        complete(stub, job.key)
        seen = []
        for _ in range(3):
            job = activate_one(stub, "mi-changed")
            variables = json.loads(job.variables)
            seen.append((variables["item"], variables["loopCounter"]))
            complete(stub, job.key)
        assert seen == [("B", 2), ("C", 3), ("D", 4)]
        wait_for(lambda: instance_state(engine.data_dir, grown) == "ELEMENT_COMPLETED", what="grown done")

        shrunk = create(stub, "mi-changed", {"items": ["x", "y", "z"]})
        job = activate_one(stub, "mi-changed")
        assert json.loads(job.variables)["item"] == "x"
        # changed by the job's own result (merged into the process scope that holds `items`)
        complete(stub, job.key, {"items": ["x"]})
        wait_for(lambda: instance_state(engine.data_dir, shrunk) == "ELEMENT_COMPLETED", what="shrunk done")
        assert len(activate(stub, "mi-changed", max_jobs=5, request_timeout_ms=300)) == 0


def test_a_sequential_body_killed_half_way_completes_after_a_restart(fresh_engine: EngineProcess) -> None:
    """kill -9 in the middle of a sequential body: after the restart the next items follow
    (the evaluated collection is not in the log; it is evaluated again once) and the output
    collection is complete and in order."""
    count = 150
    characteristics = loop(
        "= items", "item", sequential=True, extra=' outputCollection="out" outputElement="= item * 3"'
    )
    with gateway(fresh_engine.address) as stub:
        deploy(stub, "seqkill.bpmn", task_process("mi-seq-kill", "mi-seq-kill", characteristics))
        key = create(stub, "mi-seq-kill", {"items": list(range(count))})
        for expected in range(60):
            job = activate_one(stub, "mi-seq-kill")
            assert json.loads(job.variables)["item"] == expected
            complete(stub, job.key)
    fresh_engine.kill()
    restarted = EngineProcess(fresh_engine.data_dir, partitions=2, port=fresh_engine.port).start()
    try:
        with gateway(restarted.address) as stub:
            for expected in range(60, count):
                job = activate_one(stub, "mi-seq-kill")
                variables = json.loads(job.variables)
                assert (variables["item"], variables["loopCounter"]) == (expected, expected + 1)
                complete(stub, job.key)
            wait_for(lambda: instance_state(restarted.data_dir, key) == "ELEMENT_COMPLETED", what="completed")
        final = [
            record
            for record in events(restarted.data_dir, valueType="VARIABLE", name="out")
            if record["value"]["processInstanceKey"] == key
        ]
        assert json.loads(final[-1]["value"]["value"]) == [3 * n for n in range(count)]
        assert final[-1]["value"]["scopeKey"] == key
    finally:
        restarted.stop()
