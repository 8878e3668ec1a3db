"""Every case of shared/data/feel/cases_extended.jsonl (5285 cases from feel-scala, the DMN
TCK and feelin). Known failures are listed with reasons in `extended_known_failures`."""

from __future__ import annotations

import pytest

from tests.engine_feel.extended_known_failures import KNOWN_EXTENDED_FAILURES
from tests.engine_feel.feel_cases import DATA_DIR, FeelCase, load_cases, run_case
from tests.requirements import requires

EXTENDED_CASES = load_cases("cases_extended.jsonl")

pytestmark = requires(EXTENDED_CASES, f"FEEL test data not found in {DATA_DIR} (shared/data/feel)")


def _params() -> list[object]:
    params = []
    for case in EXTENDED_CASES:
        marks = []
        if case.line in KNOWN_EXTENDED_FAILURES:
            marks.append(pytest.mark.xfail(reason=KNOWN_EXTENDED_FAILURES[case.line], strict=True))
        params.append(pytest.param(case, id=case.case_id, marks=marks))
    return params


@pytest.mark.parametrize("case", _params())
def test_extended_case(case: FeelCase) -> None:
    outcome = run_case(case)
    assert outcome.passed, f"{case.expr!r} with {case.context!r}: {outcome.detail}"


def test_known_failures_refer_to_existing_lines() -> None:
    lines = {case.line for case in EXTENDED_CASES}
    assert set(KNOWN_EXTENDED_FAILURES) <= lines
