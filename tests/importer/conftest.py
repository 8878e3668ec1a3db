"""Fixtures of the importer tests: clusters, and the real broker records from shared/data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SHARED_RECORDS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "records"


def shared_records_dir() -> Path:
    if not SHARED_RECORDS.is_dir():
        pytest.skip(f"shared reference data not present at {SHARED_RECORDS} (only in the team checkout)")
    return SHARED_RECORDS


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def cluster(db):  # type: ignore[no-untyped-def]
    from processes.services import cluster_create

    return cluster_create(cluster_id=1, name="one", gateway_address="127.0.0.1:26500")


@pytest.fixture
def cluster_two(db):  # type: ignore[no-untyped-def]
    from processes.services import cluster_create

    return cluster_create(cluster_id=2, name="two", gateway_address="127.0.0.1:26501")
