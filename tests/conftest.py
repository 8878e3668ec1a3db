"""Shared test fixtures.

`make test` runs the suite against the PostgreSQL and Redis that tests/services.py started; the
fixtures below refuse to run database tests on anything else, so a green run always means PostgreSQL.
"""

from __future__ import annotations

import os

import pytest

# require()/requires(): a missing ../shared/data or zbctl skips locally and fails in CI.
pytest_plugins = ["tests.requirements"]


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("REDIS_URL is not set: run the suite with `make test`, which starts Redis")
    return url


@pytest.fixture(autouse=True)
def _database_is_postgres(request: pytest.FixtureRequest) -> None:
    if "django_db_setup" not in request.fixturenames:
        return
    from django.db import connection

    if connection.vendor != "postgresql" and not os.environ.get("FLEETFLOW_ALLOW_SQLITE_TESTS"):
        pytest.fail("database tests must run on PostgreSQL: use `make test` (DATABASE_URL is not PostgreSQL)")
