"""REST API benchmark (issue 11): generate a large query-model database with COPY, then time the API's
heaviest requests through the real HTTP stack (daphne + Django + DRF + PostgreSQL).

    .venv/bin/python -m tests.services -- .venv/bin/python bench/api.py [--instances 1000000]
        [--servers 100000] [--repeat 30]

Data: roots with 0-3 levels of called instances (one root with ~1,000 descendants), two element
instances per instance, a job for half of them, active incidents on ~5% of active instances (20
distinct errors) plus resolved ones, a server variable per root, 100,000 servers, two clusters.
Figures (one JSON object per line): generation time and database size, then p50/p95 over
--repeat requests (after 10 warm-up requests) for each request of the issue. Goal: p95 <= 100 ms each.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("LOG_LEVEL", "WARNING")

PAGE_SIZE = 50
DEEP_PAGES = 1000
BIG_TREE = (10, 10, 9)  # children per level under the big root: 10 + 100 + 900 = 1,010 descendants
ERRORS = [("JOB_NO_RETRIES", f"firmware step {n} failed: timeout after {n * 7} s") for n in range(15)] + [
    ("IO_MAPPING_ERROR", f"no variable found with name 'rack{n}'") for n in range(5)
]
PROCESS_WEIGHTS = [("provision", 5), ("decommission", 2), ("repair", 2), ("audit", 1)]
CHILD_PROCESSES = ["firmware", "diagnose", "flash", "burn-in"]


def emit(figure: dict[str, Any]) -> None:
    print(json.dumps({"bench": "api", **figure}), flush=True)


class KeyCounter:
    def __init__(self) -> None:
        from routing.keys import to_global

        self.to_global = to_global
        self.counter = 0

    def next(self, cluster_id: int, partition_id: int) -> int:
        self.counter += 1
        return int(self.to_global(cluster_id, (partition_id << 51) + self.counter))


def table_columns(model: Any) -> list[Any]:
    return [field for field in model._meta.concrete_fields]


class Copier:
    """COPY rows given as dicts by attname; columns the generator does not set get the field default
    (so a column added to a model later does not break the bench)."""

    def __init__(self, model: Any) -> None:
        import psycopg
        from django.db import connection
        from psycopg.types.json import Jsonb

        # One connection per table: the generator interleaves rows of several tables, and a
        # connection runs one COPY at a time.
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        self.connection = psycopg.connect(**params)
        self.fields = table_columns(model)
        self.jsonb = Jsonb
        columns = ", ".join(f'"{field.column}"' for field in self.fields)
        self.copy_context = self.connection.cursor().copy(
            f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN'
        )
        self.copy = self.copy_context.__enter__()
        self.defaults = {}
        for field in self.fields:
            default = field.get_default() if field.has_default() else None
            self.defaults[field.attname] = default
        self.count = 0

    def write(self, row: dict[str, Any]) -> None:
        values = []
        for field in self.fields:
            value = row.get(field.attname, self.defaults[field.attname])
            if field.get_internal_type() == "JSONField":
                value = self.jsonb(value)
            values.append(value)
        self.copy.write_row(values)
        self.count += 1

    def close(self) -> None:
        self.copy_context.__exit__(None, None, None)
        self.connection.commit()
        self.connection.close()


def generate(*, instances: int, servers: int, seed: int) -> dict[str, Any]:
    """Fill the database; returns what the requests need (keys, a busy server, the big root)."""
    from processes.models import (
        Cluster,
        ElementInstance,
        Incident,
        Job,
        ProcessDefinition,
        ProcessInstance,
        Variable,
    )
    from processes.services import cluster_create
    from servers.models import Server

    rng = random.Random(seed)
    keys = KeyCounter()
    for cluster_id in (1, 2):
        if not Cluster.objects.filter(pk=cluster_id).exists():
            cluster_create(
                cluster_id=cluster_id,
                name=f"bench-{cluster_id}",
                gateway_address=f"127.0.0.1:{26500 + cluster_id}",
            )
    now = datetime.now(tz=UTC)
    start = now - timedelta(days=90)
    step = timedelta(days=90) / max(1, instances)
    serials = [f"SN-{n:07d}" for n in range(servers)]
    process_names = [name for name, weight in PROCESS_WEIGHTS for _ in range(weight)]
    facts: dict[str, Any] = {"instances": 0}

    server_copy = Copier(Server)
    for serial in serials:
        server_copy.write(
            {
                "serial_number": serial,
                "hostname": serial.lower(),
                "state": "in_service",
                "is_stub": False,
                "first_seen_at": now,
                "updated_at": now,
                "rack": f"r{rng.randrange(500)}",
                "data_centre": "dc1",
            }
        )
    server_copy.close()

    definitions: dict[tuple[int, str], int] = {}
    definition_copy = Copier(ProcessDefinition)
    for cluster_id in (1, 2):
        for name in [name for name, _ in PROCESS_WEIGHTS] + CHILD_PROCESSES:
            for version in (1, 2, 3):
                key = keys.next(cluster_id, 1)
                definitions[(cluster_id, name)] = key  # the latest version is used for new rows
                definition_copy.write(
                    {
                        "key": key,
                        "cluster_id": cluster_id,
                        "bpmn_process_id": name,
                        "version": version,
                        "resource_name": f"{name}.bpmn",
                        "bpmn_xml": f"<definitions id='{name}'/>",
                        "deployed_at": start,
                        "position": 1,
                    }
                )
    definition_copy.close()

    instance_copy = Copier(ProcessInstance)
    element_copy = Copier(ElementInstance)
    job_copy = Copier(Job)
    incident_copy = Copier(Incident)
    variable_copy = Copier(Variable)

    def tree_shape(big: bool) -> list[int]:
        if big:
            return list(BIG_TREE)
        roll = rng.random()
        if roll < 0.5:
            return []
        if roll < 0.8:
            return [rng.randint(1, 3)]
        if roll < 0.95:
            return [rng.randint(1, 3), rng.randint(1, 2)]
        return [rng.randint(1, 2), rng.randint(1, 2), rng.randint(1, 2)]

    def write_instance(
        *,
        parent: dict[str, Any] | None,
        cluster_id: int,
        name: str,
        state: str,
        started: datetime,
        serial: str,
    ) -> dict[str, Any]:
        partition_id = rng.randint(1, 3)
        key = keys.next(cluster_id, partition_id)
        tree_path = (parent["tree_path"] if parent else "") + f"{key}/"
        ended = None if state == "active" else started + timedelta(minutes=rng.randint(1, 600))
        row = {
            "key": key,
            "cluster_id": cluster_id,
            "partition_id": partition_id,
            "process_definition_id": definitions[(cluster_id, name)],
            "bpmn_process_id": name,
            "version": 3,
            "state": state,
            "start_date": started,
            "end_date": ended,
            "parent_id": parent["key"] if parent else None,
            "root_id": parent["root_id"] if parent else key,
            "depth": parent["depth"] + 1 if parent else 0,
            "tree_path": tree_path,
            "server_id": serial,
            "server_from_variable": parent is None,
            "incident": False,
            "subtree_incident": False,
            "position": key & 0xFFFFFF,
        }
        if parent:
            row["parent_element_instance_key"] = parent["task_key"]
        # Two steps: the start event (done) and a task (active while the instance is).
        start_key = keys.next(cluster_id, partition_id)
        task_key = keys.next(cluster_id, partition_id)
        row["task_key"] = task_key
        common = {
            "cluster_id": cluster_id,
            "partition_id": partition_id,
            "process_instance_id": key,
            "process_definition_key": row["process_definition_id"],
            "bpmn_process_id": name,
            "flow_scope_key": key,
            "position": 1,
        }
        element_copy.write(
            {
                **common,
                "key": start_key,
                "element_id": "start",
                "element_type": "START_EVENT",
                "state": "completed",
                "start_date": started,
                "end_date": started,
            }
        )
        task_state = (
            "active" if state == "active" else ("completed" if state == "completed" else "terminated")
        )
        element_copy.write(
            {
                **common,
                "key": task_key,
                "element_id": f"{name}-task",
                "element_type": "SERVICE_TASK",
                "state": task_state,
                "start_date": started + timedelta(seconds=1),
                "end_date": ended,
            }
        )
        failing = state == "active" and rng.random() < 0.05
        if failing or rng.random() < 0.5:
            job_key = keys.next(cluster_id, partition_id)
            job_state = "failed" if failing else ("activated" if state == "active" else "completed")
            job_copy.write(
                {
                    "key": job_key,
                    "cluster_id": cluster_id,
                    "partition_id": partition_id,
                    "process_instance_id": key,
                    "element_instance_id": task_key,
                    "bpmn_process_id": name,
                    "element_id": f"{name}-task",
                    "job_type": name,
                    "worker": "bench-worker",
                    "retries": 0 if failing else 3,
                    "state": job_state,
                    "created_at": started,
                    "updated_at": started,
                    "custom_headers": {},
                    "position": 1,
                }
            )
            if failing:
                row["incident"] = True
                error_type, message = ERRORS[rng.randrange(len(ERRORS))]
                incident_copy.write(
                    {
                        "key": keys.next(cluster_id, partition_id),
                        "cluster_id": cluster_id,
                        "partition_id": partition_id,
                        "process_instance_id": key,
                        "element_instance_id": task_key,
                        "job_id": job_key,
                        "bpmn_process_id": name,
                        "element_id": f"{name}-task",
                        "error_type": error_type,
                        "error_message": message,
                        "state": "active",
                        "created_at": started + timedelta(seconds=5),
                        "root_key": row["root_id"],
                        "tree_path": tree_path,
                        "position": 1,
                    }
                )
        elif state == "completed" and rng.random() < 0.02:
            error_type, message = ERRORS[rng.randrange(len(ERRORS))]
            incident_copy.write(
                {
                    "key": keys.next(cluster_id, partition_id),
                    "cluster_id": cluster_id,
                    "partition_id": partition_id,
                    "process_instance_id": key,
                    "element_instance_id": task_key,
                    "bpmn_process_id": name,
                    "element_id": f"{name}-task",
                    "error_type": error_type,
                    "error_message": message,
                    "state": "resolved",
                    "created_at": started,
                    "resolved_at": ended,
                    "root_key": row["root_id"],
                    "tree_path": tree_path,
                    "position": 1,
                }
            )
        if parent is None:
            variable_copy.write(
                {
                    "key": keys.next(cluster_id, partition_id),
                    "cluster_id": cluster_id,
                    "partition_id": partition_id,
                    "name": "serverSn",
                    "scope_key": key,
                    "process_instance_id": key,
                    "bpmn_process_id": name,
                    "value": serial,
                    "size": len(serial) + 2,
                    "updated_at": started,
                    "position": 1,
                }
            )
        return row

    def write_tree(big: bool) -> dict[str, Any]:
        cluster_id = rng.choice((1, 2))
        roll = rng.random()
        state = "active" if roll < 0.3 else ("completed" if roll < 0.9 else "terminated")
        started = start + step * facts["instances"]
        serial = serials[rng.randrange(len(serials))]
        name = process_names[rng.randrange(len(process_names))] if not big else "provision"
        rows: list[dict[str, Any]] = []
        root = write_instance(
            parent=None, cluster_id=cluster_id, name=name, state=state, started=started, serial=serial
        )
        rows.append(root)
        level = [root]
        for fan_out in tree_shape(big):
            next_level = []
            for parent in level:
                for _ in range(fan_out):
                    child_state = state if state != "active" or rng.random() < 0.7 else "completed"
                    child = write_instance(
                        parent=parent,
                        cluster_id=cluster_id,
                        name=rng.choice(CHILD_PROCESSES),
                        state=child_state,
                        started=started + timedelta(seconds=10 * len(rows)),
                        serial=serial,
                    )
                    rows.append(child)
                    next_level.append(child)
            level = next_level
        # Incident flags up the tree (the importer keeps subtree_incident the same way).
        failing_paths = [row["tree_path"] for row in rows if row["incident"]]
        for row in rows:
            row["subtree_incident"] = any(path.startswith(row["tree_path"]) for path in failing_paths)
            row.pop("task_key")
            instance_copy.write(row)
        facts["instances"] += len(rows)
        return root

    big_root = write_tree(big=True)
    facts["big_root_key"] = big_root["key"]
    facts["busy_server"] = big_root["server_id"]
    sample_keys: list[int] = []
    while facts["instances"] < instances:
        root = write_tree(big=False)
        if rng.random() < 0.001:
            sample_keys.append(root["key"])
    for copier in (instance_copy, element_copy, job_copy, incident_copy, variable_copy):
        copier.close()
    facts["rows"] = {
        "process_instances": instance_copy.count,
        "element_instances": element_copy.count,
        "jobs": job_copy.count,
        "incidents": incident_copy.count,
        "variables": variable_copy.count,
        "servers": server_copy.count,
    }
    facts["sample_keys"] = sample_keys or [big_root["key"]]
    return facts


def start_server(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "console.asgi:application"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    from tests.services import wait_for_port

    wait_for_port(port, "daphne", process)
    return process


def timed(session: Any, url: str, *, repeat: int, warmup: int = 10) -> list[float]:
    samples = []
    for index in range(warmup + repeat):
        began = time.perf_counter()
        response = session.get(url, timeout=60)
        elapsed = (time.perf_counter() - began) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}: {response.text[:300]}")
        response.json()
        if index >= warmup:
            samples.append(elapsed)
    return samples


def sql_milliseconds(client: Any, path: str, *, repeat: int) -> list[float]:
    """The same request in-process, timing only the SQL it runs (execute_wrapper): separates the
    database's share from the Python/HTTP stack's on a busy machine."""
    from django.db import connection

    samples = []
    spent = [0.0]

    def timer(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent[0] += time.perf_counter() - began

    for _ in range(repeat):
        spent[0] = 0.0
        with connection.execute_wrapper(timer):
            response = client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code} in-process")
        samples.append(spent[0] * 1000)
    return samples


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def requests_to_time(facts: dict[str, Any], base: str) -> Iterator[tuple[str, str]]:
    from processes.api.pagination import cursor_for_row
    from processes.models import ProcessInstance
    from processes.selectors import process_instance_list

    yield "list by server", f"{base}/process-instances/?server={facts['busy_server']}"
    yield "list by state and process", f"{base}/process-instances/?state=active&bpmn_process_id=provision"
    ordered = process_instance_list().filter(state="active", bpmn_process_id="provision")
    available_pages = ordered.count() // PAGE_SIZE
    depth = max(1, min(DEEP_PAGES, available_pages - 1))
    row = ordered.only("key", "start_date")[depth * PAGE_SIZE - 1 : depth * PAGE_SIZE].get()
    cursor = cursor_for_row(ordered, row)
    facts["deep_page"] = depth + 1
    yield (
        f"list by state and process, page {depth + 1}",
        f"{base}/process-instances/?state=active&bpmn_process_id=provision&cursor={cursor}",
    )
    yield "instance detail", f"{base}/process-instances/{facts['sample_keys'][0]}/"
    descendants = ProcessInstance.objects.filter(root_id=facts["big_root_key"]).count() - 1
    yield (
        f"subtree of the instance with {descendants} descendants (first page of 500)",
        f"{base}/process-instances/{facts['big_root_key']}/tree/?page_size=500",
    )
    yield "server timeline", f"{base}/servers/{facts['busy_server']}/timeline/"
    yield "incidents by error", f"{base}/incidents/by-error/"
    yield "stats", f"{base}/stats/"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit(
            "DATABASE_URL must name a PostgreSQL database: run under `python -m tests.services --`"
        )

    import django

    django.setup()
    import requests
    from django.core.management import call_command
    from django.db import connection
    from rest_framework.test import APIClient

    from processes.api.services import api_token_issue
    from processes.roles import Role
    from tests.services import free_port

    call_command("migrate", verbosity=0)
    began = time.perf_counter()
    facts = generate(instances=args.instances, servers=args.servers, seed=args.seed)
    copied = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("SELECT pg_database_size(current_database())")
        (size,) = cursor.fetchone()
    generation = time.perf_counter() - began
    emit(
        {
            "figure": "generation",
            "seconds": round(generation, 1),
            "copy_seconds": round(copied, 1),
            "database_bytes": size,
            "database_mb": round(size / 2**20),
            **facts["rows"],
        }
    )

    token = api_token_issue(username="bench", role=Role.VIEWER)
    connection.close()
    port = free_port()
    server = start_server(port)
    try:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        base = f"http://127.0.0.1:{port}/api/v1"
        in_process = APIClient(SERVER_NAME="127.0.0.1")
        in_process.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        for name, url in requests_to_time(facts, base):
            samples = timed(session, url, repeat=args.repeat)
            sql = sql_milliseconds(in_process, url.removeprefix(f"http://127.0.0.1:{port}"), repeat=10)
            emit(
                {
                    "request": name,
                    "p50_ms": round(statistics.median(samples), 1),
                    "p95_ms": round(percentile(samples, 0.95), 1),
                    "max_ms": round(max(samples), 1),
                    "sql_p50_ms": round(statistics.median(sql), 1),
                    "load_1m": round(os.getloadavg()[0], 1),  # a shared machine: say how busy it was
                    "n": len(samples),
                    "instances": facts["instances"],
                    "goal_p95_ms": 100,
                }
            )
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
