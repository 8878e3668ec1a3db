"""What a test needs from outside the repository (../shared/data, zbctl): skip locally, fail in CI.

On a laptop a missing checkout of shared/ or no npm is a reason to skip, said out loud. In CI
(`CI=true`, set by the CI runner) the same absence means a broken checkout or install, and a skip
would hide it, so the test fails with the same reason.

    require(path.is_dir(), f"shared reference data not present at {path}")   # in a test or fixture
    pytestmark = requires(path.is_dir(), "...")                               # for a module or a test

`requires` is the `requires` marker, applied by `pytest_runtest_setup` below (tests/conftest.py
loads this module as a plugin).
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing(reason: str) -> NoReturn:
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing requirement fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


def require(condition: object, reason: str) -> None:
    if not condition:
        missing(reason)


def requires(condition: object, reason: str) -> pytest.MarkDecorator:
    return pytest.mark.requires(bool(condition), reason)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(condition, reason): skip when condition is false, fail in CI (tests/requirements.py)",
    )


@pytest.hookimpl(tryfirst=True)  # before the skip of an empty parameter set (a data file with no cases)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("requires"):
        require(*marker.args)
