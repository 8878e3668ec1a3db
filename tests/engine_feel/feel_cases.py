"""Loads the shared FEEL test data (`../shared/data/feel`) and runs one case.

Numbers are compared as Decimal (`parse_float=Decimal`), `1` equals `1.0`, contexts are
compared without regard to key order (MANIFEST.md point 8), and cases marked
`numeric_compare: approx` allow a relative error of 1e-7 (MANIFEST.md point 1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.feel import FeelError, compile_expression, to_json_value

DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "feel"


@dataclass(frozen=True)
class FeelCase:
    line: int
    expr: str
    context: dict[str, Any]
    expected: Any
    category: str
    meta: dict[str, Any]

    @property
    def case_id(self) -> str:
        return f"L{self.line}-{self.category}"

    @property
    def expects_error(self) -> bool:
        return isinstance(self.expected, dict) and self.expected == {"error": True}


def load_cases(file_name: str) -> list[FeelCase]:
    path = DATA_DIR / file_name
    if not path.exists():
        return []
    cases = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = json.loads(line, parse_float=Decimal)
            cases.append(
                FeelCase(
                    line=line_number,
                    expr=record["expr"],
                    context=record.get("context") or {},
                    expected=record["expected"],
                    category=record.get("category", "unknown"),
                    meta=record.get("meta") or {},
                )
            )
    return cases


def _numbers_match(actual: Decimal, expected: Decimal, approximate: bool) -> bool:
    if actual == expected:
        return True
    if not approximate:
        return False
    if expected == 0:
        return abs(actual) < Decimal("1e-7")
    return abs((actual - expected) / expected) <= Decimal("1e-7")


def values_match(actual: Any, expected: Any, approximate: bool = False) -> bool:
    if expected is None or isinstance(expected, (bool, str)):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, (int, Decimal)):
        if isinstance(actual, bool) or not isinstance(actual, (int, Decimal)):
            return False
        return _numbers_match(Decimal(actual), Decimal(expected), approximate)
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(values_match(a, e, approximate) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(values_match(actual[key], expected[key], approximate) for key in expected)
        )
    return False


@dataclass(frozen=True)
class Outcome:
    passed: bool
    detail: str


def run_case(case: FeelCase) -> Outcome:
    approximate = str(case.meta.get("numeric_compare", "")).startswith("approx")
    try:
        compiled = compile_expression(case.expr)
        raw = compiled.evaluate_raw(case.context)
    except FeelError as error:
        if case.expects_error:
            return Outcome(True, f"failed as expected: {error}")
        return Outcome(False, f"unexpected {type(error).__name__}: {error}")
    if case.expects_error:
        return Outcome(False, f"expected an error, got {to_json_value(raw)!r}")
    actual = to_json_value(raw, keep_decimal=True)
    if values_match(actual, case.expected, approximate):
        return Outcome(True, "ok")
    return Outcome(False, f"expected {case.expected!r}, got {actual!r}")
