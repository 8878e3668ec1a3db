"""Fixtures for the routing tests: real engine clusters behind a real proxy process, and zbctl."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.routing.harness import EngineProcess, ProxyProcess, cluster_entry


@dataclass
class ZbCtl:
    """zbctl (the Go CLI, npm zbctl@8.4.1) pointed at one gateway address."""

    binary: Path
    address: str

    def run(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), "--insecure", "--address", self.address, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str) -> str:
        """Run a command that prints text (update, resolve, cancel...); fail on a non-zero exit."""
        result = self.run(*args)
        assert result.returncode == 0, f"zbctl {' '.join(args)} failed: {result.stderr}"
        return result.stdout

    def json(self, *args: str) -> Any:
        result = self.run(*args)
        assert result.returncode == 0, f"zbctl {' '.join(args)} failed: {result.stderr}"
        return json.loads(result.stdout) if result.stdout.strip() else None


@pytest.fixture(scope="session")
def zbctl_binary() -> Path:
    """npm zbctl@8.4.1, fetched into tools/zbctl/ by the shared helper (tests/zbctl.py)."""
    from tests.zbctl import require_zbctl

    return require_zbctl()


@dataclass
class Fleet:
    """Two (or more) engine clusters behind one proxy process."""

    engines: list[EngineProcess]
    proxy: ProxyProcess

    def entries(self, **overrides_by_id: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            cluster_entry(i + 1, engine, **overrides_by_id.get(f"c{i + 1}", {}))
            for i, engine in enumerate(self.engines)
        ]

    def engine(self, cluster_id: int) -> EngineProcess:
        return self.engines[cluster_id - 1]


def _run_fleet(base: Path) -> Iterator[Fleet]:
    engines = [EngineProcess(data_dir=base / f"cluster{i}" / "data") for i in (1, 2)]
    proxy = ProxyProcess(work_dir=base / "proxy")
    try:
        for engine in engines:
            engine.start()
        proxy.start([cluster_entry(i + 1, engine) for i, engine in enumerate(engines)])
        yield Fleet(engines=engines, proxy=proxy)
    finally:
        proxy.stop()
        for engine in engines:
            engine.stop()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """A fresh fleet per test: for tests that change the cluster list or kill a cluster."""
    yield from _run_fleet(tmp_path)


@pytest.fixture(scope="module")
def shared_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """One fleet per module, for tests that leave the configuration alone."""
    yield from _run_fleet(tmp_path_factory.mktemp("fleet"))


@pytest.fixture
def zbctl(zbctl_binary: Path, fleet: Fleet) -> ZbCtl:
    return ZbCtl(binary=zbctl_binary, address=fleet.proxy.address)
