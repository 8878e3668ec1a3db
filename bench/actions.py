"""Operator actions benchmark: a batch retry of 10,000 incidents over two clusters (issue 10).

Prints one JSON object: wall time from the batch request until every operation finished, the
rate, and the checks that make the figure mean something, counted in the engines' own logs (their
truth): incidents never resolved (lost), incidents resolved more than once (applied twice),
ResolveIncident commands sent beyond one per incident (duplicate attempts the engine refused),
and how many operations the importer confirmed (with the time until the last confirmation).

Run it against a throwaway PostgreSQL + Redis started by the test services helper:

    .venv/bin/python -m tests.services -- .venv/bin/python bench/actions.py [--incidents 10000]

Everything is real: two `python -m engine` clusters behind `python -m routing`, incidents made by
failing jobs through the proxy, `manage.py import_records --follow`, and a Celery worker
(`celery -A console worker`, prefork) running the batch through the routing client.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("LOG_LEVEL", "WARNING")

PROCESS_ID = "bench-actions"


def wait(predicate: Any, timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def make_incidents(stack: Any, count: int, threads: int) -> None:
    from tests.operations.stack import linear_process

    gateway = stack.gateway()
    gateway.deploy(f"{PROCESS_ID}.bpmn", linear_process(PROCESS_ID, "diagnose", "repair"))
    gateways = [stack.gateway() for _ in range(threads)]

    def create(index: int) -> int:
        return int(gateways[index % threads].create(PROCESS_ID, {"serverSn": f"SN-{index % 500}"}))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, range(count)))
        jobs = gateway.activate_all(f"{PROCESS_ID}-diagnose", count, deadline_s=600)

        def fail(index_job: tuple[int, Any]) -> None:
            index, job = index_job
            gateways[index % threads].fail(job.key, retries=0, message="bench: fan failure")

        list(pool.map(fail, enumerate(jobs)))
    for item in (gateway, *gateways):
        item.close()


def engine_counts(stack: Any, incident_keys: list[int]) -> dict[str, int]:
    resolved: dict[int, int] = {}
    resolve_commands = 0
    for cluster_id in (1, 2):
        for record in stack.records(cluster_id):
            if record.get("valueType") != "INCIDENT":
                continue
            key = (cluster_id << 58) | int(record["key"])
            if record.get("intent") == "RESOLVED" and record.get("recordType") == "EVENT":
                resolved[key] = resolved.get(key, 0) + 1
            elif record.get("intent") == "RESOLVE" and record.get("recordType") == "COMMAND":
                resolve_commands += 1
    return {
        "lost": sum(1 for key in incident_keys if resolved.get(key, 0) == 0),
        "applied_twice": sum(1 for key in incident_keys if resolved.get(key, 0) > 1),
        "duplicate_resolve_commands": max(0, resolve_commands - len(incident_keys)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4, help="Celery worker processes")
    parser.add_argument("--setup-threads", type=int, default=8)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        print("run under `python -m tests.services --` (PostgreSQL and Redis)", file=sys.stderr)
        return 2

    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from processes.models import Incident
    from processes.operations import services
    from processes.operations.models import BatchOperation, Operation
    from processes.roles import Role, assign_role
    from tests.operations.stack import Stack

    call_command("migrate", verbosity=0)
    root = Path(tempfile.mkdtemp(prefix="fleetflow-bench-actions-"))
    stack = Stack(root=root, worker_concurrency=args.concurrency, lease_seconds=30)
    try:
        stack.start_clusters()
        stack.register_clusters()
        setup_started = time.monotonic()
        make_incidents(stack, args.incidents, args.setup_threads)
        stack.start_importer()
        wait(
            lambda: (
                Incident.objects.filter(bpmn_process_id=PROCESS_ID, state="active").count() >= args.incidents
            ),
            900,
            "the incidents to be imported",
        )
        incident_keys = sorted(
            Incident.objects.filter(bpmn_process_id=PROCESS_ID).values_list("key", flat=True)
        )
        per_cluster = {
            cluster_id: sum(1 for key in incident_keys if key >> 58 == cluster_id) for cluster_id in (1, 2)
        }
        setup_s = time.monotonic() - setup_started
        stack.start_worker()
        admin = User.objects.create_user(username="bench-admin", password="x")  # noqa: S106
        assign_role(user=admin, role=Role.ADMIN)

        started = time.monotonic()
        batch = services.batch_operation_start(
            actor=admin, action="retry", filter={"bpmn_process_id": PROCESS_ID}, parameters={}
        )
        wait(
            lambda: BatchOperation.objects.filter(id=batch.id, state="completed").exists(),
            900,
            "the batch to complete",
            interval=0.2,
        )
        finished_s = time.monotonic() - started
        wait(
            lambda: Operation.objects.filter(batch_id=batch.id, state="confirmed").count() >= args.incidents,
            300,
            "every operation to be confirmed",
            interval=0.2,
        )
        confirmed_s = time.monotonic() - started
        states: dict[str, int] = {}
        for state in Operation.objects.filter(batch_id=batch.id).values_list("state", flat=True):
            states[state] = states.get(state, 0) + 1
        counts = engine_counts(stack, incident_keys)
        print(
            json.dumps(
                {
                    "bench": "actions.batch_retry",
                    "incidents": len(incident_keys),
                    "per_cluster": per_cluster,
                    "worker_concurrency": args.concurrency,
                    "wall_s": round(finished_s, 2),
                    "rate_per_s": round(len(incident_keys) / finished_s, 1),
                    "confirmed": states.get("confirmed", 0),
                    "all_confirmed_s": round(confirmed_s, 2),
                    "failed": states.get("failed", 0),
                    "operations": sum(states.values()),
                    **counts,
                    "goal_s": 120,
                    "setup_s": round(setup_s, 1),
                }
            ),
            flush=True,
        )
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
