"""Fixtures of the end-to-end operations tests: two engines behind the proxy (once per module),
and per test the importer and a Celery worker on the test database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.operations.stack import Stack, calling_process, linear_process, manual_process


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(root=Path(tmp_path_factory.mktemp("ops-e2e"))).start_clusters()
    gateway = stack.gateway()
    try:
        gateway.deploy("e2e-flow.bpmn", linear_process("e2e-flow", "diagnose", "repair"))
        gateway.deploy("e2e-manual.bpmn", manual_process("e2e-manual", "alice"))
        gateway.deploy("e2e-leaf.bpmn", linear_process("e2e-leaf", "wait"))
        gateway.deploy("e2e-middle.bpmn", calling_process("e2e-middle", "e2e-leaf"))
        gateway.deploy("e2e-root.bpmn", calling_process("e2e-root", "e2e-middle"))
        for process_id in ("e2e-race", "e2e-twice", "e2e-batch-kill", "e2e-batch-down"):
            gateway.deploy(f"{process_id}.bpmn", linear_process(process_id, "diagnose", "repair"))
        yield stack
    finally:
        gateway.close()
        stack.stop()


@pytest.fixture
def stack(clusters: Stack, transactional_db: None, redis_url: str) -> Iterator[Stack]:
    clusters.register_clusters()
    clusters.start_importer()
    clusters.start_worker()
    try:
        yield clusters
    finally:
        for child in (clusters.worker, clusters.importer):
            if child is not None:
                child.stop()
        clusters.worker = clusters.importer = None
