"""Every case of shared/data/feel/cases.jsonl (the Zeebe-focused core set).

Known failures live in `KNOWN_CORE_FAILURES` (line number -> reason) and are strict
xfails, so fixing one shows up as an XPASS failure that asks for the entry's removal.
"""

from __future__ import annotations

import pytest

from tests.engine_feel.feel_cases import DATA_DIR, FeelCase, load_cases, run_case
from tests.requirements import requires

CORE_CASES = load_cases("cases.jsonl")

# line number in cases.jsonl -> why it fails (none at the moment)
KNOWN_CORE_FAILURES: dict[int, str] = {}

pytestmark = requires(CORE_CASES, f"FEEL test data not found in {DATA_DIR} (shared/data/feel)")


def _params() -> list[object]:
    params = []
    for case in CORE_CASES:
        marks = []
        if case.line in KNOWN_CORE_FAILURES:
            marks.append(pytest.mark.xfail(reason=KNOWN_CORE_FAILURES[case.line], strict=True))
        params.append(pytest.param(case, id=case.case_id, marks=marks))
    return params


@pytest.mark.parametrize("case", _params())
def test_core_case(case: FeelCase) -> None:
    outcome = run_case(case)
    assert outcome.passed, f"{case.expr!r} with {case.context!r}: {outcome.detail}"


def test_core_set_is_complete() -> None:
    # the MANIFEST promises 771 cases; a truncated file must not pass silently
    assert len(CORE_CASES) == 771
