"""Fixtures of the importer tests: clusters, and the real broker records from shared/data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine.conftest import EngineProcess
from tests.importer.scenario import log_records, run_fleet_scenario
from tests.importer.truth import Truth, engine_truth
from tests.requirements import require

SHARED_RECORDS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "records"


def shared_records_dir() -> Path:
    require(SHARED_RECORDS.is_dir(), f"shared reference data not present at {SHARED_RECORDS}")
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


class Fleet:
    def __init__(self, data_dirs: dict[int, Path], keys: dict[int, dict[str, int]]) -> None:
        self.data_dirs = data_dirs
        self.keys = keys
        self.records = {cluster_id: log_records(path) for cluster_id, path in data_dirs.items()}
        self.truth: Truth = engine_truth(self.records)


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    data_dirs: dict[int, Path] = {}
    keys: dict[int, dict[str, int]] = {}
    for cluster_id, rack in ((1, "R1"), (2, "R2")):
        data_dir = tmp_path_factory.mktemp(f"cluster{cluster_id}") / "data"
        engine = EngineProcess(data_dir, partitions=2).start()
        try:
            keys[cluster_id] = run_fleet_scenario(engine.address, data_dir, rack)
        finally:
            engine.stop()
        data_dirs[cluster_id] = data_dir
    yield Fleet(data_dirs, keys)


@pytest.fixture(scope="session")
def proxied_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Two engines behind `python -m routing`; the scenario runs through the proxy."""
    from tests.routing.harness import EngineProcess as ClusterProcess
    from tests.routing.harness import ProxyProcess, cluster_entry, wait_for

    root = tmp_path_factory.mktemp("proxied")
    engines = {cluster_id: ClusterProcess(root / f"cluster{cluster_id}") for cluster_id in (1, 2)}
    proxy = ProxyProcess(root / "proxy")
    try:
        for engine in engines.values():
            engine.start()
        proxy.start([cluster_entry(cluster_id, engine) for cluster_id, engine in engines.items()])
        wait_for(
            lambda: all(
                proxy.metrics()["clusters"][str(cluster_id)]["health"] == "up" for cluster_id in engines
            ),
            20,
            what="both clusters healthy behind the proxy",
        )
        data_dirs = {cluster_id: engine.data_dir for cluster_id, engine in engines.items()}
        keys = run_fleet_scenario(proxy.address, data_dirs, "RP")
    finally:
        proxy.stop()
        for engine in engines.values():
            engine.stop()
    yield Fleet(data_dirs, {0: keys})
