"""Deployed decisions of a partition (DECISION_REQUIREMENTS and DECISION records) and the
record values of the decision family.

Kept apart from `state.py` so that the partition state can hold a `DecisionState` without
importing the decision behaviours (engine/processing/decisions.py), which import the state.
Like the rest of the partition state it changes only through appliers (in decisions.py).

Record shapes follow Zeebe 8.5 (reference/zeebe-protocol.md §3.4): DecisionRequirementsRecord
(`decisionRequirementsId`, `decisionRequirementsName`, `decisionRequirementsVersion`,
`decisionRequirementsKey`, `namespace`, `resourceName`, `checksum`, `resource`, `duplicate`,
`tenantId`), DecisionRecord (`decisionId`, `decisionName`, `version`, `decisionKey`,
`decisionRequirementsId`, `decisionRequirementsKey`, `duplicate`, `tenantId`) and
DecisionEvaluationRecord.
"""

from __future__ import annotations

import base64
from typing import Any

from engine.dmn import DecisionEvaluationResult, DecisionRequirementsGraph, json_text, parse_dmn
from engine.records import DEFAULT_TENANT

_PARSED_CACHE: dict[str, DecisionRequirementsGraph] = {}


def remember_parsed(checksum_b64: str, drg: DecisionRequirementsGraph) -> None:
    """Keep the DRG parsed at deployment (the resource need not be parsed again)."""
    _PARSED_CACHE[checksum_b64] = drg


class DecisionState:
    """Decision requirements graphs and decisions by key, and their versions by id."""

    def __init__(self) -> None:
        #: decisionRequirementsKey -> DECISION_REQUIREMENTS value
        self.requirements: dict[int, dict[str, Any]] = {}
        #: decisionKey -> DECISION value
        self.decisions: dict[int, dict[str, Any]] = {}
        self.requirements_versions: dict[str, dict[int, int]] = {}
        self.decision_versions: dict[str, dict[int, int]] = {}
        self.decisions_by_requirements: dict[int, list[int]] = {}

    def add_requirements(self, value: dict[str, Any]) -> None:
        key = int(value["decisionRequirementsKey"])
        self.requirements[key] = dict(value)
        versions = self.requirements_versions.setdefault(value["decisionRequirementsId"], {})
        versions[int(value["decisionRequirementsVersion"])] = key

    def add_decision(self, value: dict[str, Any]) -> None:
        key = int(value["decisionKey"])
        self.decisions[key] = dict(value)
        self.decision_versions.setdefault(value["decisionId"], {})[int(value["version"])] = key
        keys = self.decisions_by_requirements.setdefault(int(value["decisionRequirementsKey"]), [])
        if key not in keys:
            keys.append(key)

    # queries ------------------------------------------------------------------------------
    def latest_decision(self, decision_id: str) -> dict[str, Any] | None:
        versions = self.decision_versions.get(decision_id)
        return self.decisions[versions[max(versions)]] if versions else None

    def latest_requirements(self, requirements_id: str) -> dict[str, Any] | None:
        versions = self.requirements_versions.get(requirements_id)
        return self.requirements[versions[max(versions)]] if versions else None

    def decisions_of(self, requirements_key: int) -> list[dict[str, Any]]:
        return [self.decisions[key] for key in self.decisions_by_requirements.get(requirements_key, [])]

    def parsed(self, requirements_key: int) -> DecisionRequirementsGraph:
        """The parsed DRG (from the cache, or parsed again from the stored resource after a
        restart; it was valid when deployed, so it parses)."""
        value = self.requirements[requirements_key]
        checksum = str(value["checksum"])
        drg = _PARSED_CACHE.get(checksum)
        if drg is None:
            drg = parse_dmn(base64.b64decode(value["resource"]))
            _PARSED_CACHE[checksum] = drg
        return drg

    # snapshots ----------------------------------------------------------------------------
    def to_snapshot(self) -> dict[str, Any]:
        return {
            "decisionRequirements": list(self.requirements.values()),
            "decisions": list(self.decisions.values()),
        }

    def load_snapshot(self, snapshot: dict[str, Any]) -> None:
        # snapshots written before decisions existed have neither key
        for value in snapshot.get("decisionRequirements", []):
            self.add_requirements(value)
        for value in snapshot.get("decisions", []):
            self.add_decision(value)


# record values ------------------------------------------------------------------------------


def decision_requirements_value(
    *,
    drg: DecisionRequirementsGraph,
    key: int,
    version: int,
    resource_name: str,
    resource_b64: str,
    checksum_b64: str,
    duplicate: bool,
) -> dict[str, Any]:
    return {
        "decisionRequirementsId": drg.id,
        "decisionRequirementsName": drg.name,
        "decisionRequirementsVersion": version,
        "decisionRequirementsKey": key,
        "namespace": drg.namespace,
        "resourceName": resource_name,
        "checksum": checksum_b64,
        "resource": resource_b64,
        "duplicate": duplicate,
        "tenantId": DEFAULT_TENANT,
    }


def decision_requirements_metadata(value: dict[str, Any], duplicate: bool) -> dict[str, Any]:
    """An entry of the deployment's `decisionRequirementsMetadata` (no resource)."""
    metadata = {name: item for name, item in value.items() if name != "resource"}
    metadata["duplicate"] = duplicate
    return metadata


def decision_value(
    *,
    decision_id: str,
    decision_name: str,
    version: int,
    key: int,
    requirements_id: str,
    requirements_key: int,
    duplicate: bool,
) -> dict[str, Any]:
    return {
        "decisionId": decision_id,
        "decisionName": decision_name,
        "version": version,
        "decisionKey": key,
        "decisionRequirementsId": requirements_id,
        "decisionRequirementsKey": requirements_key,
        "duplicate": duplicate,
        "tenantId": DEFAULT_TENANT,
    }


def decision_evaluation_value(
    *,
    decision: dict[str, Any],
    result: DecisionEvaluationResult,
    decision_info: dict[str, dict[str, Any]],
    variables: dict[str, Any] | None = None,
    process: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The DECISION_EVALUATION value (reference §3.4). `decision_info` maps the decision ids of
    the DRG to their DECISION values (Zeebe fills `decisionKey`/`decisionVersion` of each
    evaluated decision from the decisions deployed with the DRG, -1 when unknown). `process`
    carries the business rule task's `processDefinitionKey`, `bpmnProcessId`,
    `processInstanceKey`, `elementInstanceKey` and `elementId`."""
    evaluated = []
    for item in result.evaluated_decisions:
        info = decision_info.get(item.decision_id)
        evaluated.append(
            {
                "decisionId": item.decision_id,
                "decisionName": item.decision_name,
                "decisionKey": int(info["decisionKey"]) if info else -1,
                "decisionVersion": int(info["version"]) if info else -1,
                "decisionType": item.decision_type,
                "decisionOutput": json_text(item.decision_output),
                "tenantId": DEFAULT_TENANT,
                "evaluatedInputs": [
                    {"inputId": i.input_id, "inputName": i.input_name, "inputValue": json_text(i.input_value)}
                    for i in item.evaluated_inputs
                ],
                "matchedRules": [
                    {
                        "ruleId": rule.rule_id,
                        "ruleIndex": rule.rule_index,
                        "evaluatedOutputs": [
                            {
                                "outputId": output.output_id,
                                "outputName": output.output_name,
                                "outputValue": json_text(output.output_value),
                            }
                            for output in rule.evaluated_outputs
                        ],
                    }
                    for rule in item.matched_rules
                ],
            }
        )
    process = process or {}
    return {
        "decisionKey": int(decision["decisionKey"]),
        "decisionId": decision["decisionId"],
        "decisionName": decision["decisionName"],
        "decisionVersion": int(decision["version"]),
        "decisionRequirementsKey": int(decision["decisionRequirementsKey"]),
        "decisionRequirementsId": decision["decisionRequirementsId"],
        # Zeebe sets the output only on success; the record's default is nil (JSON "null")
        "decisionOutput": "null" if result.is_failure else json_text(result.output),
        "variables": variables or {},
        "processDefinitionKey": int(process.get("processDefinitionKey", -1)),
        "bpmnProcessId": str(process.get("bpmnProcessId", "")),
        "processInstanceKey": int(process.get("processInstanceKey", -1)),
        "elementInstanceKey": int(process.get("elementInstanceKey", -1)),
        "elementId": str(process.get("elementId", "")),
        "evaluatedDecisions": evaluated,
        "evaluationFailureMessage": result.failure_message or "",
        "failedDecisionId": result.failed_decision_id or "",
        "tenantId": DEFAULT_TENANT,
    }
