"""Decision behaviour shared by the deployment, the EvaluateDecision processor and business
rule tasks: versioning of deployed DRGs and decisions, their records, and one evaluation
written as a DECISION_EVALUATION event.

Versioning follows Zeebe's DmnResourceTransformer (reference §1.3 DeployResource):
- a DRG is a duplicate when the latest DRG of its id came from a resource of the same name and
  checksum and is still the DRG of the latest version of each of its decisions; a duplicate
  keeps its key and version, otherwise the DRG gets a new key and the next version;
- a decision is a duplicate when its latest version belongs to the (duplicate) DRG; otherwise
  it gets a new key and the next version of its decision id;
- a deployment of duplicates only writes no DRG/DECISION record, but one that deploys anything
  new versions every resource together: its duplicates become new versions too.

The evaluation itself is engine.dmn's; here it is bound to the deployed decision (keys and
versions of every evaluated decision, §3.4) and written as one event.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from engine import records
from engine.dmn import (
    DecisionEvaluationResult,
    DecisionRequirementsGraph,
    DmnParseError,
    evaluate_decision,
    json_text,
)
from engine.processing.context import ProcessingContext
from engine.processing.decision_state import (
    DecisionState,
    decision_evaluation_value,
    decision_requirements_metadata,
    decision_requirements_value,
    decision_value,
    remember_parsed,
)
from engine.processing.state import PartitionState, register_applier
from engine.values import MAX_MESSAGE_BYTES

#: Largest DECISION_EVALUATION record written (room left for the response's framing).
MAX_EVALUATION_BYTES = MAX_MESSAGE_BYTES - 64 * 1024


@register_applier("DECISION_REQUIREMENTS", "CREATED")
def _requirements_created(state: PartitionState, record: dict[str, Any]) -> None:
    state.decision_state.add_requirements(record["value"])


@register_applier("DECISION", "CREATED")
def _decision_created(state: PartitionState, record: dict[str, Any]) -> None:
    state.decision_state.add_decision(record["value"])


@dataclass(slots=True)
class PlannedRequirements:
    """One DMN resource of a deployment: its DECISION_REQUIREMENTS value and its decisions'."""

    value: dict[str, Any]
    duplicate: bool
    decisions: list[tuple[dict[str, Any], bool]] = field(default_factory=list)


def duplicate_id_problems(parsed: list[tuple[str, DecisionRequirementsGraph]]) -> list[str]:
    """Zeebe's messages for a DRG id or a decision id defined by two resources of one deployment."""
    problems: list[str] = []
    requirements_resource: dict[str, str] = {}
    decision_resource: dict[str, str] = {}
    for name, drg in parsed:
        previous = requirements_resource.setdefault(drg.id, name)
        if previous != name:
            problems.append(
                "Expected the decision requirements ids to be unique within a deployment but found a "
                f"duplicated id '{drg.id}' in the resources '{previous}' and '{name}'."
            )
            continue
        for decision_id in drg.decisions:
            previous = decision_resource.setdefault(decision_id, name)
            if previous != name:
                problems.append(
                    "Expected the decision ids to be unique within a deployment but found a duplicated id "
                    f"'{decision_id}' in the resources '{previous}' and '{name}'."
                )
                break
    return problems


def plan_decisions(
    ctx: ProcessingContext, resources: list[tuple[str, bytes, DecisionRequirementsGraph]]
) -> list[PlannedRequirements]:
    """Keys, versions and duplicate flags of the DMN resources of a deployment."""
    store = ctx.state.decision_state
    planned: list[PlannedRequirements] = []
    for resource_name, content, drg in resources:
        checksum_b64 = records.b64(hashlib.md5(content, usedforsecurity=False).digest())  # Zeebe checksum
        remember_parsed(checksum_b64, drg)
        latest = store.latest_requirements(drg.id)
        duplicate = (
            latest is not None
            and latest["resourceName"] == resource_name
            and latest["checksum"] == checksum_b64
            and all(
                (store.latest_decision(decision_id) or {}).get("decisionRequirementsKey")
                == latest["decisionRequirementsKey"]
                for decision_id in drg.decisions
            )
        )
        if latest is not None and duplicate:
            key, version = int(latest["decisionRequirementsKey"]), int(latest["decisionRequirementsVersion"])
        else:
            key = ctx.state.new_key()
            version = int(latest["decisionRequirementsVersion"]) + 1 if latest is not None else 1
        plan = PlannedRequirements(
            decision_requirements_value(
                drg=drg,
                key=key,
                version=version,
                resource_name=resource_name,
                resource_b64=records.b64(content),
                checksum_b64=checksum_b64,
                duplicate=duplicate,
            ),
            duplicate,
        )
        for decision in drg.decisions.values():
            latest_decision = store.latest_decision(decision.id)
            if latest_decision is not None and int(latest_decision["decisionRequirementsKey"]) == key:
                value = dict(latest_decision)
                value["duplicate"] = True
                plan.decisions.append((value, True))
                continue
            value = decision_value(
                decision_id=decision.id,
                decision_name=decision.name,
                version=int(latest_decision["version"]) + 1 if latest_decision is not None else 1,
                key=ctx.state.new_key(),
                requirements_id=drg.id,
                requirements_key=key,
                duplicate=False,
            )
            plan.decisions.append((value, False))
        planned.append(plan)
    return planned


def version_together(ctx: ProcessingContext, planned: list[PlannedRequirements]) -> None:
    """The deployment deploys something new: its duplicate DRGs and decisions become new
    versions as well (Zeebe DmnResourceTransformer.writeRecords)."""
    for plan in planned:
        if plan.duplicate:
            key = ctx.state.new_key()
            plan.value = dict(plan.value)
            plan.value.update(
                decisionRequirementsKey=key,
                decisionRequirementsVersion=int(plan.value["decisionRequirementsVersion"]) + 1,
                duplicate=False,
            )
            plan.duplicate = False
        requirements_key = int(plan.value["decisionRequirementsKey"])
        renewed = []
        for value, duplicate in plan.decisions:
            if duplicate:
                value = dict(value)
                value.update(
                    decisionKey=ctx.state.new_key(),
                    decisionRequirementsKey=requirements_key,
                    version=int(value["version"]) + 1,
                    duplicate=False,
                )
            renewed.append((value, False))
        plan.decisions = renewed


def deployment_metadata(
    planned: list[PlannedRequirements],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The deployment record's `decisionsMetadata` and `decisionRequirementsMetadata`."""
    decisions = [{**value, "duplicate": duplicate} for plan in planned for value, duplicate in plan.decisions]
    requirements = [decision_requirements_metadata(plan.value, plan.duplicate) for plan in planned]
    return decisions, requirements


def write_decision_records(ctx: ProcessingContext, planned: list[PlannedRequirements]) -> None:
    """DECISION_REQUIREMENTS CREATED, then DECISION CREATED per decision, for what is new here
    (a distributed deployment writes what the partition does not have yet)."""
    store = ctx.state.decision_state
    for plan in planned:
        requirements_key = int(plan.value["decisionRequirementsKey"])
        if requirements_key not in store.requirements:
            ctx.emit("DECISION_REQUIREMENTS", "CREATED", requirements_key, dict(plan.value))
        for value, _duplicate in plan.decisions:
            decision_key = int(value["decisionKey"])
            if decision_key not in store.decisions:
                ctx.emit("DECISION", "CREATED", decision_key, dict(value))


@dataclass(slots=True)
class Evaluation:
    intent: str
    key: int
    value: dict[str, Any]
    result: DecisionEvaluationResult


def evaluate_deployed_decision(
    ctx: ProcessingContext,
    decision: dict[str, Any],
    variables: dict[str, Any],
    *,
    command_variables: dict[str, Any] | None = None,
    process: dict[str, Any] | None = None,
) -> Evaluation:
    """Evaluate a deployed decision and write DECISION_EVALUATION EVALUATED or FAILED."""
    store = ctx.state.decision_state
    requirements_key = int(decision["decisionRequirementsKey"])
    decision_id = str(decision["decisionId"])
    try:
        result = evaluate_decision(store.parsed(requirements_key), decision_id, variables)
    except DmnParseError:
        # a resource that parsed at deployment but not any more (a stricter parser after an
        # upgrade): the evaluation fails, as Zeebe's does for an invalid DRG
        result = DecisionEvaluationResult(
            decision_id=decision_id,
            output=None,
            evaluated_decisions=(),
            failure_message=(
                f"Expected to evaluate decision '{decision_id}', but the decision requirements graph is invalid"
            ),
            failed_decision_id=decision_id,
        )
    value = decision_evaluation_value(
        decision=decision,
        result=result,
        decision_info={str(item["decisionId"]): item for item in store.decisions_of(requirements_key)},
        variables=command_variables,
        process=process,
    )
    size = len(json_text(value).encode())
    if size > MAX_EVALUATION_BYTES:
        # Zeebe cannot write a record batch beyond its maximum message size either; here the
        # evaluation fails with a reason (no client could receive it, exporters would choke).
        result = DecisionEvaluationResult(
            decision_id=str(decision["decisionId"]),
            output=None,
            evaluated_decisions=(),
            failure_message=(
                f"Expected to evaluate decision '{decision['decisionId']}', but the evaluation record of {size} "
                f"bytes exceeds the maximum message size of {MAX_MESSAGE_BYTES} bytes"
            ),
            failed_decision_id=str(decision["decisionId"]),
        )
        value = decision_evaluation_value(
            decision=decision, result=result, decision_info={}, variables=command_variables, process=process
        )
    intent = "FAILED" if result.is_failure else "EVALUATED"
    key = ctx.state.new_key()
    ctx.emit("DECISION_EVALUATION", intent, key, value)
    return Evaluation(intent, key, value, result)


def distribution_plans(store: DecisionState, deployment: dict[str, Any]) -> list[PlannedRequirements]:
    """The DRGs and decisions of a deployment of partition 1 (`deployment` is its entry in
    `PartitionState.deployments`), to be written on another partition with the same keys."""
    plans = []
    for metadata in deployment.get("decisionRequirementsMetadata", []):
        requirements_key = int(metadata["decisionRequirementsKey"])
        value = store.requirements.get(requirements_key)
        if value is None:  # pragma: no cover - the deployment wrote it before this is asked
            continue
        decisions = [
            (store.decisions[int(item["decisionKey"])], bool(item["duplicate"]))
            for item in deployment.get("decisionsMetadata", [])
            if int(item["decisionRequirementsKey"]) == requirements_key
            and int(item["decisionKey"]) in store.decisions
        ]
        plans.append(PlannedRequirements(dict(value), bool(metadata["duplicate"]), decisions))
    return plans


def distribution_resources(plans: list[PlannedRequirements]) -> list[dict[str, Any]]:
    """The DMN resources of a distributed deployment record."""
    return [
        {"resourceName": plan.value["resourceName"], "resource": plan.value["resource"]} for plan in plans
    ]
