"""Decisions in the running engine, through real clients: DMN deployment (pyzeebe, zbctl),
the EvaluateDecision RPC (pyzeebe's `evaluate_decision`, zbctl `evaluate decision`), business
rule tasks in a process run by pyzeebe workers, and the records they write."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from pyzeebe import ZeebeClient, ZeebeWorker
from pyzeebe.errors import DecisionNotFoundError, ProcessInvalidError
from pyzeebe.proto import gateway_pb2 as pb

from tests.engine.conftest import EngineProcess
from tests.engine.helpers import all_records, events, flow, gateway, process_xml, wait_for, write_file
from tests.engine_dmn.builder import definitions, literal, table
from tests.zbctl import require_zbctl, run_zbctl

RULES_DMN = definitions(
    table(
        "vendor_rules",
        inputs=["vendor"],
        rules=[(['"dell"'], ['"idrac"']), (['"hp"'], ['"ilo"']), (['"lenovo"'], ['"xcc"'])],
        variable="management",
    ),
    table(
        "rules_match",
        inputs=["management", "temperature"],
        outputs=[("action", "Action"), ("priority", None)],
        rules=[
            (['"idrac"', "> 80"], ['"powercycle"', "1"]),
            (["-", "> 80"], ['"ticket"', "2"]),
            (["-", "<= 80"], ['"none"', "3"]),
        ],
        hit_policy="FIRST",
        requires=["vendor_rules"],
    ),
    table("overlap", inputs=["x"], rules=[(["> 0"], ['"a"']), (["> 1"], ['"b"'])]),
    definitions_id="hardware_rules",
    name="Hardware rules",
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    process = EngineProcess(tmp_path_factory.mktemp("dmn-engine") / "data", partitions=2).start()
    try:
        yield process
    finally:
        process.stop()


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def deploy_files(address: str, *paths: Path) -> Any:
    async with grpc.aio.insecure_channel(address) as channel:
        return await ZeebeClient(channel).deploy_resource(*paths)


async def evaluate(address: str, key: int | None, decision_id: str | None, variables: dict[str, Any]) -> Any:
    async with grpc.aio.insecure_channel(address) as channel:
        return await ZeebeClient(channel).evaluate_decision(key, decision_id, variables)


def test_pyzeebe_deploys_a_dmn_and_evaluates_by_id_and_key(engine: EngineProcess, tmp_path: Path) -> None:
    response = run(deploy_files(engine.address, write_file(tmp_path, "hardware.dmn", RULES_DMN)))

    # Zeebe's order: the decisions, then their DRG
    decisions = [d for d in response.deployments if type(d).__name__ == "DecisionMetadata"]
    drgs = [d for d in response.deployments if type(d).__name__ == "DecisionRequirementsMetadata"]
    assert [type(d).__name__ for d in response.deployments] == ["DecisionMetadata"] * 3 + [
        "DecisionRequirementsMetadata"
    ]
    assert [(d.dmn_decision_id, d.version) for d in decisions] == [
        ("vendor_rules", 1),
        ("rules_match", 1),
        ("overlap", 1),
    ]
    [drg] = drgs
    assert (drg.dmn_decision_requirements_id, drg.dmn_decision_requirements_name, drg.version) == (
        "hardware_rules",
        "Hardware rules",
        1,
    )
    assert drg.resource_name == "hardware.dmn"
    assert all(d.decision_requirements_key == drg.decision_requirements_key for d in decisions)

    by_id = run(evaluate(engine.address, None, "rules_match", {"vendor": "dell", "temperature": 91}))
    assert by_id.decision_output == {"action": "powercycle", "priority": 1}
    assert (by_id.decision_id, by_id.decision_name, by_id.decision_version) == (
        "rules_match",
        "Decision rules_match",
        1,
    )
    assert by_id.decision_key == decisions[1].decision_key
    assert by_id.decision_requirements_id == "hardware_rules"
    assert by_id.failed_decision_id == "" and by_id.failure_message == ""
    assert [e.decision_id for e in by_id.evaluated_decisions] == ["vendor_rules", "rules_match"]
    required, main = by_id.evaluated_decisions
    assert required.decision_output == "idrac" and required.decision_key == decisions[0].decision_key
    assert required.decision_type == "DECISION_TABLE" and required.decision_version == 1
    assert [(i.input_name, i.input_value) for i in main.evaluated_inputs] == [
        ("Input 1", "idrac"),
        ("Input 2", 91),
    ]
    [rule] = main.matched_rules
    assert (rule.rule_id, rule.rule_index) == ("rules_match_r1", 1)
    assert [(o.output_name, o.output_value) for o in rule.evaluated_outputs] == [
        ("Action", "powercycle"),
        ("priority", 1),
    ]

    by_key = run(evaluate(engine.address, decisions[0].decision_key, None, {"vendor": "hp"}))
    assert by_key.decision_output == "ilo"

    with pytest.raises(DecisionNotFoundError):
        run(evaluate(engine.address, 1, "no-such-decision", {}))
    with pytest.raises(DecisionNotFoundError):
        run(evaluate(engine.address, 12345, None, {}))


def test_evaluations_are_answered_by_every_partition(engine: EngineProcess, tmp_path: Path) -> None:
    run(deploy_files(engine.address, write_file(tmp_path, "hardware.dmn", RULES_DMN)))

    async def many() -> list[Any]:
        async with grpc.aio.insecure_channel(engine.address) as channel:
            client = ZeebeClient(channel)
            return [
                await client.evaluate_decision(None, "vendor_rules", {"vendor": "lenovo"}) for _ in range(6)
            ]

    results = run(many())
    assert {r.decision_output for r in results} == {"xcc"}
    # EvaluateDecision is round-robined (reference §2): the keys come from both partitions
    assert {r.decision_instance_key >> 51 for r in results} == {1, 2}


def test_a_failed_evaluation_is_an_answer_not_an_error(engine: EngineProcess, tmp_path: Path) -> None:
    run(deploy_files(engine.address, write_file(tmp_path, "hardware.dmn", RULES_DMN)))
    with gateway(engine.address) as stub:
        response = stub.EvaluateDecision(
            pb.EvaluateDecisionRequest(decisionId="overlap", variables=json.dumps({"x": 5})), timeout=20
        )
    assert response.failedDecisionId == "overlap"
    assert response.failureMessage == (
        "Expected to evaluate decision 'overlap', but multiple values aren't allowed for UNIQUE hit policy. "
        "found: 'List(Map(out -> ValString(a)), Map(out -> ValString(b)))'"
    )
    [evaluated] = response.evaluatedDecisions
    assert [rule.ruleIndex for rule in evaluated.matchedRules] == [1, 2]
    failed = events(engine.data_dir, valueType="DECISION_EVALUATION", intent="FAILED")
    assert failed and failed[-1]["value"]["failedDecisionId"] == "overlap"
    assert failed[-1]["key"] == response.decisionInstanceKey


def test_bad_requests_are_refused_like_zeebe(engine: EngineProcess, tmp_path: Path) -> None:
    run(deploy_files(engine.address, write_file(tmp_path, "hardware.dmn", RULES_DMN)))
    with gateway(engine.address) as stub:
        with pytest.raises(grpc.RpcError) as unknown:
            stub.EvaluateDecision(pb.EvaluateDecisionRequest(decisionId="ghost"), timeout=20)
        assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert unknown.value.details() == (
            "Command 'EVALUATE' rejected with code 'INVALID_ARGUMENT': Expected to evaluate decision 'ghost', "
            "but no decision found for id 'ghost'"
        )
        with pytest.raises(grpc.RpcError) as not_an_object:
            stub.EvaluateDecision(
                pb.EvaluateDecisionRequest(decisionId="overlap", variables="[1]"), timeout=20
            )
        assert not_an_object.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # neither id nor key: the key 0 is looked up, as Zeebe does (decisionKey > -1)
        with pytest.raises(grpc.RpcError) as nothing:
            stub.EvaluateDecision(pb.EvaluateDecisionRequest(), timeout=20)
        assert nothing.value.details().endswith(
            "Expected to evaluate decision '0', but no decision found for key '0'"
        )
        # an empty variables document is an empty object
        empty = stub.EvaluateDecision(
            pb.EvaluateDecisionRequest(decisionId="overlap", variables=""), timeout=20
        )
        assert empty.decisionOutput == "null" and not empty.failedDecisionId


def test_redeploying_is_a_duplicate_and_a_change_is_a_new_version(
    engine: EngineProcess, tmp_path: Path
) -> None:
    content = definitions(literal("greeting", '"Hello " + name'), definitions_id="greetings")
    first = run(deploy_files(engine.address, write_file(tmp_path, "greetings.dmn", content)))
    again = run(deploy_files(engine.address, write_file(tmp_path, "greetings.dmn", content)))
    assert [d.decision_key for d in again.deployments[:1]] == [first.deployments[0].decision_key]
    assert again.deployments[0].version == first.deployments[0].version

    changed = definitions(literal("greeting", '"Hi " + name'), definitions_id="greetings")
    second = run(deploy_files(engine.address, write_file(tmp_path, "greetings.dmn", changed)))
    assert second.deployments[0].version == first.deployments[0].version + 1
    assert second.deployments[1].version == first.deployments[1].version + 1
    latest = run(evaluate(engine.address, None, "greeting", {"name": "Ada"}))
    assert latest.decision_output == "Hi Ada"
    old = run(evaluate(engine.address, first.deployments[0].decision_key, None, {"name": "Ada"}))
    assert old.decision_output == "Hello Ada"

    created = events(engine.data_dir, valueType="DECISION", intent="CREATED")
    assert [
        (r["value"]["decisionId"], r["value"]["version"])
        for r in created
        if r["value"]["decisionId"] == "greeting"
    ] == [
        ("greeting", 1),
        ("greeting", 2),
    ] * 2  # written on both partitions


def business_rule_process(process_id: str, decision_id: str, extra_task: bool = True) -> bytes:
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
        '<bpmn:businessRuleTask id="rules"><bpmn:extensionElements>'
        f'<zeebe:calledDecision decisionId="{decision_id}" resultVariable="decision"/>'
        "</bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>"
        "</bpmn:businessRuleTask>"
    )
    if extra_task:
        body += (
            '<bpmn:serviceTask id="act"><bpmn:extensionElements><zeebe:taskDefinition type="act-on-decision"/>'
            "</bpmn:extensionElements><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>"
            "</bpmn:serviceTask>"
            '<bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>'
            + flow("f1", "start", "rules")
            + flow("f2", "rules", "act")
            + flow("f3", "act", "end")
        )
    else:
        body += (
            '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
            + flow("f1", "start", "rules")
            + flow("f2", "rules", "end")
        )
    return process_xml(process_id, body)


def test_a_business_rule_task_in_a_process_run_by_pyzeebe_workers(
    engine: EngineProcess, tmp_path: Path
) -> None:
    bpmn_file = write_file(tmp_path, "diagnose.bpmn", business_rule_process("diagnose", "rules_match"))
    dmn_file = write_file(tmp_path, "hardware.dmn", RULES_DMN)
    seen: list[Any] = []

    async def scenario() -> list[Any]:
        async with grpc.aio.insecure_channel(engine.address) as channel:
            client = ZeebeClient(channel)
            await client.deploy_resource(bpmn_file, dmn_file)  # BPMN and DMN in one deployment
            worker = ZeebeWorker(channel, name="dmn-test", request_timeout=2000)

            @worker.task(task_type="act-on-decision")
            async def act(decision: dict[str, Any]) -> dict[str, Any]:
                seen.append(decision)
                return {"done": decision["action"]}

            work = asyncio.create_task(worker.work())
            try:
                return [
                    await client.run_process_with_result(
                        "diagnose", {"vendor": vendor, "temperature": temperature}, timeout=30_000
                    )
                    for vendor, temperature in (("dell", 95), ("hp", 95), ("hp", 20))
                ]
            finally:
                await worker.stop()
                await asyncio.wait_for(work, 30)

    results = run(scenario())
    assert [r.variables["decision"] for r in results] == [
        {"action": "powercycle", "priority": 1},
        {"action": "ticket", "priority": 2},
        {"action": "none", "priority": 3},
    ]
    assert [r.variables["done"] for r in results] == ["powercycle", "ticket", "none"]
    assert seen == [r.variables["decision"] for r in results]

    evaluation = [
        r
        for r in events(engine.data_dir, valueType="DECISION_EVALUATION", intent="EVALUATED")
        if r["value"]["processInstanceKey"] == results[0].process_instance_key
    ]
    [record] = evaluation
    value = record["value"]
    assert (value["bpmnProcessId"], value["elementId"], value["decisionId"]) == (
        "diagnose",
        "rules",
        "rules_match",
    )
    assert json.loads(value["decisionOutput"]) == {"action": "powercycle", "priority": 1}
    assert [e["decisionId"] for e in value["evaluatedDecisions"]] == ["vendor_rules", "rules_match"]
    activated = [
        r
        for r in events(engine.data_dir, valueType="PROCESS_INSTANCE", elementId="rules")
        if r["value"]["processInstanceKey"] == results[0].process_instance_key
    ]
    assert [r["intent"] for r in activated] == [
        "ELEMENT_ACTIVATING",
        "ELEMENT_ACTIVATED",
        "ELEMENT_COMPLETING",
        "ELEMENT_COMPLETED",
    ]
    assert activated[0]["value"]["bpmnElementType"] == "BUSINESS_RULE_TASK"


def test_business_rule_task_failures_are_incidents_that_can_be_resolved(
    engine: EngineProcess, tmp_path: Path
) -> None:
    with gateway(engine.address) as stub:
        stub.DeployResource(
            pb.DeployResourceRequest(
                resources=[
                    pb.Resource(
                        name="missing.bpmn", content=business_rule_process("uses-missing", "later", False)
                    ),
                    pb.Resource(
                        name="overlap.bpmn", content=business_rule_process("uses-overlap", "overlap", False)
                    ),
                    pb.Resource(name="hardware.dmn", content=RULES_DMN),
                ]
            ),
            timeout=20,
        )
        missing = stub.CreateProcessInstance(
            pb.CreateProcessInstanceRequest(bpmnProcessId="uses-missing", version=-1), timeout=20
        ).processInstanceKey
        overlap = stub.CreateProcessInstance(
            pb.CreateProcessInstanceRequest(bpmnProcessId="uses-overlap", version=-1, variables='{"x": 5}'),
            timeout=20,
        ).processInstanceKey

        def incident_of(instance: int) -> dict[str, Any]:
            found = [
                r
                for r in events(engine.data_dir, valueType="INCIDENT", intent="CREATED")
                if r["value"]["processInstanceKey"] == instance
            ]
            return found[-1] if found else {}

        lookup = wait_for(lambda: incident_of(missing), what="incident of the missing decision")
        assert lookup["value"]["errorType"] == "CALLED_DECISION_ERROR"
        assert (
            lookup["value"]["errorMessage"]
            == "Expected to evaluate decision 'later', but no decision found for id 'later'"
        )
        failure = wait_for(lambda: incident_of(overlap), what="incident of the failed evaluation")
        assert failure["value"]["errorType"] == "DECISION_EVALUATION_ERROR"
        assert failure["value"]["errorMessage"].startswith(
            "Expected to evaluate decision 'overlap', but multiple values aren't allowed for UNIQUE hit policy"
        )
        failed = [
            r
            for r in events(engine.data_dir, valueType="DECISION_EVALUATION", intent="FAILED")
            if r["value"]["processInstanceKey"] == overlap
        ]
        assert failed and failed[0]["value"]["elementId"] == "rules"

        # deploy the missing decision, resolve: the task evaluates again and the instance completes
        stub.DeployResource(
            pb.DeployResourceRequest(
                resources=[
                    pb.Resource(
                        name="later.dmn",
                        content=definitions(literal("later", "42"), definitions_id="later_drg"),
                    )
                ]
            ),
            timeout=20,
        )
        stub.ResolveIncident(pb.ResolveIncidentRequest(incidentKey=lookup["key"]), timeout=20)

        def completed(instance: int) -> bool:
            return any(
                r["key"] == instance
                for r in events(engine.data_dir, valueType="PROCESS_INSTANCE", intent="ELEMENT_COMPLETED")
            )

        wait_for(lambda: completed(missing), what="the instance to complete after the incident is resolved")
        variables = [
            r["value"]
            for r in events(engine.data_dir, valueType="VARIABLE")
            if r["value"]["processInstanceKey"] == missing and r["value"]["name"] == "decision"
        ]
        assert variables and variables[-1]["value"] == "42" and variables[-1]["scopeKey"] == missing


def test_a_deployment_mixing_bpmn_and_dmn_is_atomic(engine: EngineProcess, tmp_path: Path) -> None:
    good_bpmn = write_file(
        tmp_path, "atomic.bpmn", business_rule_process("atomic-process", "atomic_decision", False)
    )
    bad_dmn = write_file(
        tmp_path, "atomic.dmn", definitions(literal("atomic_decision", "if then"), definitions_id="atomic")
    )
    with pytest.raises(ProcessInvalidError):
        run(deploy_files(engine.address, good_bpmn, bad_dmn))
    with gateway(engine.address) as stub:
        with pytest.raises(grpc.RpcError) as refused:
            stub.DeployResource(
                pb.DeployResourceRequest(
                    resources=[
                        pb.Resource(name="atomic.bpmn", content=good_bpmn.read_bytes()),
                        pb.Resource(name="atomic.dmn", content=bad_dmn.read_bytes()),
                    ]
                ),
                timeout=20,
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details().startswith(
            "Command 'CREATE' rejected with code 'INVALID_ARGUMENT': Expected to deploy new resources, but "
            "encountered the following errors:\n'atomic.dmn': FEEL expression: failed to parse expression 'if then'"
        )
        # nothing of the deployment exists
        with pytest.raises(grpc.RpcError) as no_process:
            stub.CreateProcessInstance(
                pb.CreateProcessInstanceRequest(bpmnProcessId="atomic-process", version=-1), timeout=20
            )
        assert no_process.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError):
            stub.EvaluateDecision(pb.EvaluateDecisionRequest(decisionId="atomic_decision"), timeout=20)
        # a bad BPMN takes a good DMN down with it
        with pytest.raises(grpc.RpcError) as bad_process:
            stub.DeployResource(
                pb.DeployResourceRequest(
                    resources=[
                        pb.Resource(name="broken.bpmn", content=b"<not-bpmn/>"),
                        pb.Resource(
                            name="fine.dmn",
                            content=definitions(literal("fine_decision", "1"), definitions_id="fine"),
                        ),
                    ]
                ),
                timeout=20,
            )
        assert "'broken.bpmn'" in bad_process.value.details()
        with pytest.raises(grpc.RpcError):
            stub.EvaluateDecision(pb.EvaluateDecisionRequest(decisionId="fine_decision"), timeout=20)
        # two resources of one deployment may not define the same decision
        with pytest.raises(grpc.RpcError) as twice:
            stub.DeployResource(
                pb.DeployResourceRequest(
                    resources=[
                        pb.Resource(
                            name="a.dmn", content=definitions(literal("same", "1"), definitions_id="a")
                        ),
                        pb.Resource(
                            name="b.dmn", content=definitions(literal("same", "2"), definitions_id="b")
                        ),
                    ]
                ),
                timeout=20,
            )
        assert twice.value.details().endswith(
            "Expected the decision ids to be unique within a deployment but found a duplicated id 'same' in the "
            "resources 'a.dmn' and 'b.dmn'."
        )


def test_zbctl_deploys_and_evaluates(engine: EngineProcess, tmp_path: Path) -> None:
    require_zbctl()
    dmn_file = write_file(
        tmp_path,
        "zb-rules.dmn",
        definitions(
            table("zb_vendor", inputs=["vendor"], rules=[(['"dell"'], ['"idrac"'])]),
            definitions_id="zb_rules",
        ),
    )
    deployed = run_zbctl(engine.address, "deploy", "resource", str(dmn_file))
    assert deployed.returncode == 0, deployed.stderr
    body = json.loads(deployed.stdout)
    decision = body["deployments"][0]["decision"]
    assert decision["dmnDecisionId"] == "zb_vendor"
    assert body["deployments"][1]["decisionRequirements"]["dmnDecisionRequirementsId"] == "zb_rules"

    by_id = run_zbctl(
        engine.address, "evaluate", "decision", "zb_vendor", "--variables", '{"vendor": "dell"}'
    )
    assert by_id.returncode == 0, by_id.stderr
    answer = json.loads(by_id.stdout)
    assert json.loads(answer["decisionOutput"]) == "idrac"
    assert answer["decisionId"] == "zb_vendor"
    assert (
        json.loads(answer["evaluatedDecisions"][0]["matchedRules"][0]["evaluatedOutputs"][0]["outputValue"])
        == "idrac"
    )

    by_key = run_zbctl(
        engine.address,
        "evaluate",
        "decision",
        str(decision["decisionKey"]),
        "--variables",
        '{"vendor": "hp"}',
    )
    assert by_key.returncode == 0, by_key.stderr
    assert json.loads(json.loads(by_key.stdout)["decisionOutput"]) is None

    unknown = run_zbctl(engine.address, "evaluate", "decision", "zb_nothing")
    assert unknown.returncode != 0
    assert "but no decision found for id 'zb_nothing'" in unknown.stderr


def test_decisions_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = EngineProcess(data_dir, partitions=2).start()
    try:
        run(deploy_files(first.address, write_file(tmp_path, "hardware.dmn", RULES_DMN)))
    finally:
        first.kill()  # kill -9: recovery replays the log
    second = EngineProcess(data_dir, partitions=2).start()
    try:
        for _ in range(2):  # both partitions
            result = run(evaluate(second.address, None, "vendor_rules", {"vendor": "dell"}))
            assert result.decision_output == "idrac"
        records = all_records(data_dir)
        created = [
            r for r in records if r["valueType"] == "DECISION_REQUIREMENTS" and r["intent"] == "CREATED"
        ]
        assert len(created) == 2  # once per partition, not again on recovery
    finally:
        second.stop()  # a clean stop writes snapshots: the next start loads decisions from them
    for partition in (1, 2):
        snapshot = json.loads((data_dir / f"partition-{partition}" / "snapshot.json").read_text())
        assert {d["decisionId"] for d in snapshot["decisions"]} == {"vendor_rules", "rules_match", "overlap"}
    third = EngineProcess(data_dir, partitions=2).start()
    try:
        for _ in range(2):
            result = run(evaluate(third.address, None, "rules_match", {"vendor": "hp", "temperature": 99}))
            assert result.decision_output == {"action": "ticket", "priority": 2}
    finally:
        third.stop()


def test_a_job_based_business_rule_task_is_a_job_for_a_worker(engine: EngineProcess, tmp_path: Path) -> None:
    body = (
        '<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>'
        '<bpmn:businessRuleTask id="rules-job"><bpmn:extensionElements>'
        '<zeebe:taskDefinition type="external-rules" retries="2"/>'
        '<zeebe:ioMapping><zeebe:output source="=verdict" target="ruling"/></zeebe:ioMapping>'
        "</bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>"
        "</bpmn:businessRuleTask>"
        '<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>'
        + flow("f1", "start", "rules-job")
        + flow("f2", "rules-job", "end")
    )
    bpmn_file = write_file(tmp_path, "external-rules.bpmn", process_xml("external-rules", body))
    jobs: list[Any] = []

    async def scenario() -> Any:
        async with grpc.aio.insecure_channel(engine.address) as channel:
            client = ZeebeClient(channel)
            await client.deploy_resource(bpmn_file)
            worker = ZeebeWorker(channel, name="rules-worker", request_timeout=2000)

            @worker.task(task_type="external-rules")
            async def rules(sn: str) -> dict[str, Any]:
                jobs.append(sn)
                return {"verdict": "ok" if sn.startswith("SN") else "reject"}

            work = asyncio.create_task(worker.work())
            try:
                return await client.run_process_with_result("external-rules", {"sn": "SN-7"}, timeout=30_000)
            finally:
                await worker.stop()
                await asyncio.wait_for(work, 30)

    result = run(scenario())
    assert result.variables == {"sn": "SN-7", "ruling": "ok"}
    assert jobs == ["SN-7"]
    created = [
        r
        for r in events(engine.data_dir, valueType="JOB", intent="CREATED")
        if r["value"]["processInstanceKey"] == result.process_instance_key
    ]
    assert [(r["value"]["elementId"], r["value"]["retries"]) for r in created] == [("rules-job", 2)]


def test_an_evaluation_too_large_for_a_message_fails_with_a_reason(engine: EngineProcess) -> None:
    # 1,500 chained decisions, each passing on a 4 KB text: ~6 MB of evaluated decisions
    chain = [literal("big0", '"' + "x" * 4000 + '"')] + [
        literal(f"big{i}", f"big{i - 1}", requires=[f"big{i - 1}"]) for i in range(1, 1500)
    ]
    with gateway(engine.address) as stub:
        stub.DeployResource(
            pb.DeployResourceRequest(
                resources=[pb.Resource(name="big.dmn", content=definitions(*chain, definitions_id="big"))]
            ),
            timeout=60,
        )
        response = stub.EvaluateDecision(pb.EvaluateDecisionRequest(decisionId="big1499"), timeout=60)
        assert response.failedDecisionId == "big1499"
        assert "exceeds the maximum message size of 4194304 bytes" in response.failureMessage
        # the engine keeps answering
        small = stub.EvaluateDecision(pb.EvaluateDecisionRequest(decisionId="big1"), timeout=20)
        assert json.loads(small.decisionOutput) == "x" * 4000
