"""`make demo` for real: `python -m console.demo` (what the Makefile target runs once the virtualenv is
there) on SQLite in a temporary data folder, on free ports; the console answers with data within 90 s,
and SIGINT stops everything: every child gone, exit code 0."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.engine.helpers import all_records
from tests.services import free_port
from tests.stack.helpers import Browser, StackProcess, alive, python
from tests.support import wait_for

pytestmark = pytest.mark.slow

DEMO_PROCESSES = {"hardware-diagnosis", "server-repair", "rack-sweep"}
EXPECTED_CHILDREN = ("redis", "engine", "run_gateway_proxy", "import_records", "celery", "daphne", "demo")


# What the demo's workers and instance starter call. They route in-process (routing.connect over
# the proxy's cluster source and deployment journal, issue 16), so none of these reaches the proxy.
WORKER_METHODS = {"ActivateJobs", "StreamActivatedJobs", "CompleteJob", "FailJob", "ThrowError"}
STARTER_METHODS = {"CreateProcessInstance", "CreateProcessInstanceWithResult"}


def _demo_workers_skip_the_proxy(data_dir: Path) -> None:
    """Jobs were completed (the engines' logs say so), and the proxy's metrics written after that
    count none of the workers' or the starter's calls."""

    def a_completed_job() -> float | None:
        for log in data_dir.glob("engine-*"):
            if any(r["valueType"] == "JOB" and r["intent"] == "COMPLETED" for r in all_records(log)):
                return time.time()
        return None

    seen_at = wait_for(
        what="a job completed by the demo workers", probe=a_completed_job, timeout=90, interval=0.5
    )

    def metrics_written_after() -> dict[str, Any] | None:
        try:
            metrics = json.loads((data_dir / "routing" / "metrics.json").read_text())
        except (OSError, ValueError):
            return None
        return metrics if metrics.get("generatedAt", 0) > seen_at else None

    metrics = wait_for(
        what="the proxy's metrics.json rewritten", probe=metrics_written_after, timeout=30, interval=0.5
    )
    through_proxy: set[str] = set()
    for figures in metrics["clusters"].values():
        through_proxy |= {method for method, count in figures.get("byMethod", {}).items() if count}
    assert not through_proxy & (WORKER_METHODS | STARTER_METHODS), through_proxy


def test_make_demo_serves_data_within_90_s_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    web_port, gateway_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        DEBUG="1",
        FLEETFLOW_DEMO_PORT=str(web_port),
        FLEETFLOW_DEMO_GATEWAY_PORT=str(gateway_port),
        FLEETFLOW_DEMO_DATA_DIR=str(tmp_path / "demo"),
    )
    launched = time.monotonic()
    stack = StackProcess([python(), "-m", "console.demo"], env=env, log_dir=tmp_path)
    try:
        banner = stack.wait_started(timeout=90)
        assert f"http://127.0.0.1:{web_port}/" in banner
        for login in ("admin / admin", "operator / operator", "viewer / viewer"):
            assert login in banner
        children = stack.children()
        for name in EXPECTED_CHILDREN:
            assert any(name in command for command in children.values()), (name, children)

        browser = Browser(f"http://127.0.0.1:{web_port}")
        browser.login("operator", "operator")
        remaining = 90 - (time.monotonic() - launched)

        def demo_instances() -> list[dict[str, object]] | None:
            results = browser.get_json("/api/v1/process-instances/")["results"]
            return [row for row in results if row["bpmn_process_id"] in DEMO_PROCESSES] or None

        instances = wait_for(
            what="imported demo instances", probe=demo_instances, timeout=max(remaining, 1), interval=0.5
        )
        assert instances
        _demo_workers_skip_the_proxy(tmp_path / "demo")
        servers = browser.get_json("/api/v1/servers/")["results"]
        assert len(servers) > 10
        status, page = browser.get("/")
        assert status == 200, page[:500]
    except BaseException:
        stack.kill_all()
        print(stack.output())
        raise

    code = stack.stop(signal.SIGINT)
    assert code == 0, stack.output()
    gone = [pid for pid in children if alive(pid)]
    assert not gone, {pid: children[pid] for pid in gone}
    assert "every child stopped" in stack.output()

    # A second `make demo` on the same folder carries on: same database, same engine logs, new flows.
    (tmp_path / "second").mkdir()
    second_started = datetime.now(UTC)
    again = StackProcess([python(), "-m", "console.demo"], env=env, log_dir=tmp_path / "second")
    try:
        again.wait_started(timeout=120)
        browser = Browser(f"http://127.0.0.1:{web_port}")
        browser.login("viewer", "viewer")
        first_key = instances[0]["key"]
        assert browser.get_json(f"/api/v1/process-instances/{first_key}/")["key"] == first_key

        def new_instances() -> bool:
            results = browser.get_json("/api/v1/process-instances/?page_size=200")["results"]
            return any(
                row["start_date"] and datetime.fromisoformat(row["start_date"]) > second_started
                for row in results
            )

        wait_for(what="flows started by the second run", probe=new_instances, timeout=120, interval=0.5)
        assert browser.get_json("/api/v1/clusters/")["results"][0]["state"] == "active"
    except BaseException:
        again.kill_all()
        print(again.output())
        raise
    assert again.stop(signal.SIGINT) == 0, again.output()
