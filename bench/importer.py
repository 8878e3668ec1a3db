"""Importer benchmark: records/s from the engine log and from Redis into PostgreSQL, and import lag
at a sustained 2,000 records/s, and records/s from a log with poison records (one VARIABLE event
in --poison-every with a name PostgreSQL refuses). Prints one JSON object per figure (median of
several runs).

Run it against a throwaway PostgreSQL + Redis started by the test services helper:

    .venv/bin/python -m tests.services -- .venv/bin/python bench/importer.py [--runs 3] [--copies 150]

The corpus is real engine output: a `python -m engine` process runs the importer test scenario
(three-level hardware diagnosis, incidents, retries, cancel, modification), and its log is
replicated with every key shifted per copy (so each copy is a distinct set of instances) and
positions renumbered. The log figure reads every record (commands included, as the engine log
holds them); the Redis figure reads the events, as an exporter writes them. The lag figure
appends records stamped with the wall clock to a live log at 2,000 records/s from a separate
process while the importer follows it; lag = commit time - record timestamp, per record. These
single-process figures run an Importer in this process, with leases as the command has them.

Scale-out (`--only two`, `--only two-lag`): real `manage.py import_records --follow` processes,
one and then two (leases split the corpus's two partitions, one each), measured the same way:
records/s from the moment they hold their leases until every record is committed (the logs are
renamed into place), and lag at 2,000 records/s sampled every 10 ms from ImportPosition as the
console shows it (now - newest imported record's timestamp). `--only takeover`: seconds until a
killed (SIGKILL) or paused (SIGSTOP) importer's partition is held, and committed, by the other.
`--only lease-overhead`: milliseconds per lease round and per batch fence.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("LOG_LEVEL", "WARNING")

KEY_MASK = (1 << 51) - 1
COPY_KEY_STRIDE = 100_000  # local keys of one scenario run stay far below this


def shift_keys(value: Any, offset: int) -> Any:
    """Shift every key field (`key`, `*Key`, `jobKeys`) by `offset` inside its partition."""
    if isinstance(value, dict):
        shifted = {}
        for name, item in value.items():
            if (name == "key" or name.endswith("Key")) and type(item) is int and item > 0:
                shifted[name] = item + offset
            elif name == "jobKeys" and isinstance(item, list):
                shifted[name] = [key + offset if type(key) is int and key > 0 else key for key in item]
            else:
                shifted[name] = shift_keys(item, offset)
        return shifted
    if isinstance(value, list):
        return [shift_keys(item, offset) for item in value]
    return value


def scenario_records(work_dir: Path) -> list[dict[str, Any]]:
    from tests.engine.conftest import EngineProcess
    from tests.importer.scenario import log_records, run_fleet_scenario

    data_dir = work_dir / "scenario"
    engine = EngineProcess(data_dir, partitions=2).start()
    try:
        run_fleet_scenario(engine.address, data_dir, "RB")
    finally:
        engine.stop()
    return log_records(data_dir)


# Deployments are rare next to instances: only the first copy keeps them (each carries the base64
# BPMN, which would otherwise dominate the corpus).
DEPLOYMENT_VALUE_TYPES = frozenset(
    {"DEPLOYMENT", "PROCESS", "COMMAND_DISTRIBUTION", "DEPLOYMENT_DISTRIBUTION"}
)


def replicate(
    records: list[dict[str, Any]], copies: int, start_copy: int = 0
) -> dict[int, list[dict[str, Any]]]:
    """Per partition, `copies` shifted copies of the records, positions renumbered from 1."""
    by_partition: dict[int, list[dict[str, Any]]] = {}
    for copy in range(start_copy, start_copy + copies):
        offset = (copy + 1) * COPY_KEY_STRIDE
        for record in sorted(records, key=lambda r: (r["partitionId"], r["position"])):
            if copy > start_copy and record["valueType"] in DEPLOYMENT_VALUE_TYPES:
                continue
            by_partition.setdefault(record["partitionId"], []).append(shift_keys(record, offset))
    for found in by_partition.values():
        for position, record in enumerate(found, start=1):
            record["position"] = position
            record["sourceRecordPosition"] = -1
    return by_partition


def write_log(data_dir: Path, by_partition: dict[int, list[dict[str, Any]]], batch: int = 20) -> int:
    from engine.log import LogWriter

    written = 0
    for partition_id, found in by_partition.items():
        writer = LogWriter(data_dir, partition_id)
        for start in range(0, len(found), batch):
            writer.append_batch([json.dumps(record).encode() for record in found[start : start + batch]])
            written += len(found[start : start + batch])
        writer.close()
    return written


def reset_database() -> None:
    from processes.models import Cluster
    from servers.models import Server
    from tests.importer.helpers import wipe_query_models

    wipe_query_models()
    Server.objects.all().delete()
    Cluster.objects.all().delete()


def make_cluster(source: str, config: dict[str, str]) -> Any:
    from processes.services import cluster_create

    return cluster_create(
        cluster_id=1,
        name="bench",
        gateway_address="127.0.0.1:26500",
        record_source=source,
        record_source_config=config,
    )


def leased_importer(cluster: Any, batch_size: int) -> tuple[Any, Any]:
    """An importer as `import_records` runs it: with leases (each batch fenced by them)."""
    from processes.importer.leases import Leases
    from processes.importer.runner import Importer

    leases = Leases()
    importer = Importer(cluster=cluster, batch_size=batch_size, leases=leases)
    leases.round(importer.units())
    return importer, leases


def drain_timed(cluster: Any, batch_size: int) -> tuple[int, float]:
    importer, leases = leased_importer(cluster, batch_size)
    started = time.perf_counter()
    received = 0
    for _ in range(1_000_000):
        if leases.due():
            leases.round(importer.units())
        result = importer.run_once()
        if result is None:
            break
        received += result.received
    elapsed = time.perf_counter() - started
    importer.close()
    leases.close()
    return received, elapsed


def bench_log(
    corpus: dict[int, list[dict[str, Any]]], runs: int, batch_size: int, work_dir: Path
) -> dict[str, Any]:
    data_dir = work_dir / f"log-{uuid.uuid4().hex[:6]}"
    total = write_log(data_dir, corpus)
    rates = []
    for _ in range(runs):
        reset_database()
        received, elapsed = drain_timed(make_cluster("engine_log", {"data_dir": str(data_dir)}), batch_size)
        assert received == total, (received, total)
        rates.append(received / elapsed)
    return {
        "bench": "importer.log_to_postgres",
        "records": total,
        "batch_size": batch_size,
        "records_per_s_median": round(statistics.median(rates)),
        "records_per_s_runs": [round(rate) for rate in rates],
        "goal_records_per_s": 20_000,
    }


def poisoned(
    corpus: dict[int, list[dict[str, Any]]], every: int
) -> tuple[dict[int, list[dict[str, Any]]], int]:
    """The corpus with every `every`-th VARIABLE event given a 300-character name (PostgreSQL's
    varchar(255) refuses it: the batch holding it goes through the importer's data-error path)."""
    changed = 0
    seen = 0
    result: dict[int, list[dict[str, Any]]] = {}
    for partition_id, found in corpus.items():
        result[partition_id] = []
        for record in found:
            if record["valueType"] == "VARIABLE" and record["recordType"] == "EVENT":
                seen += 1
                if seen % every == 0:
                    record = {**record, "value": {**record["value"], "name": "v" * 300}}
                    changed += 1
            result[partition_id].append(record)
    return result, changed


def bench_poison(
    corpus: dict[int, list[dict[str, Any]]], runs: int, batch_size: int, work_dir: Path, every: int
) -> dict[str, Any]:
    """Like bench_log, with poison records: what isolating them costs."""
    from processes.models import RecordImportError

    poisoned_corpus, changed = poisoned(corpus, every)
    data_dir = work_dir / f"poison-{uuid.uuid4().hex[:6]}"
    total = write_log(data_dir, poisoned_corpus)
    rates = []
    for _ in range(runs):
        reset_database()
        received, elapsed = drain_timed(make_cluster("engine_log", {"data_dir": str(data_dir)}), batch_size)
        assert received == total, (received, total)
        assert RecordImportError.objects.count() == changed, (RecordImportError.objects.count(), changed)
        rates.append(received / elapsed)
    return {
        "bench": "importer.log_with_poison",
        "records": total,
        "poison_records": changed,
        "batch_size": batch_size,
        "records_per_s_median": round(statistics.median(rates)),
        "records_per_s_runs": [round(rate) for rate in rates],
    }


def bench_redis(corpus: dict[int, list[dict[str, Any]]], runs: int, batch_size: int) -> dict[str, Any]:
    import redis

    from tests.importer.redis_writer import export_to_streams, in_log_order

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    records = in_log_order([record for found in corpus.values() for record in found])
    rates = []
    total = 0
    for _ in range(runs):
        reset_database()
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        total = export_to_streams(client, prefix, records)
        received, elapsed = drain_timed(
            make_cluster("redis", {"url": os.environ["REDIS_URL"], "stream_prefix": prefix}), batch_size
        )
        assert received == total, (received, total)
        rates.append(received / elapsed)
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
    return {
        "bench": "importer.redis_to_postgres",
        "records": total,
        "batch_size": batch_size,
        "records_per_s_median": round(statistics.median(rates)),
        "records_per_s_runs": [round(rate) for rate in rates],
        "goal_records_per_s": 20_000,
    }


def _steady_writer(
    data_dir: str, by_partition: dict[int, list[dict[str, Any]]], rate: int, seconds: float
) -> None:
    """Appends records stamped with the wall clock at `rate` records/s (separate process)."""
    from engine.log import LogWriter

    writers = {partition_id: LogWriter(data_dir, partition_id) for partition_id in by_partition}
    cursors = dict.fromkeys(by_partition, 0)
    tick = 0.02
    per_tick = max(1, int(rate * tick))
    started = time.monotonic()
    written = 0
    exhausted = False
    while not exhausted and time.monotonic() - started < seconds:
        target = int((time.monotonic() - started) * rate)
        while written < target:
            progressed = False
            for partition_id, found in by_partition.items():
                chunk = found[
                    cursors[partition_id] : cursors[partition_id] + per_tick // len(by_partition) + 1
                ]
                if not chunk:
                    continue
                progressed = True
                now_ms = int(time.time() * 1000)
                for record in chunk:
                    record["timestamp"] = now_ms
                writers[partition_id].append_batch([json.dumps(record).encode() for record in chunk])
                cursors[partition_id] += len(chunk)
                written += len(chunk)
            if not progressed:
                exhausted = True  # the corpus is used up: stop instead of spinning
                break
        time.sleep(tick)
    for writer in writers.values():
        writer.close()


def bench_lag(
    corpus: dict[int, list[dict[str, Any]]], runs: int, rate: int, seconds: float, work_dir: Path
) -> dict[str, Any]:
    p50s, p99s, maxes = [], [], []
    for _ in range(runs):
        reset_database()
        data_dir = work_dir / f"lag-{uuid.uuid4().hex[:6]}"
        data_dir.mkdir()
        create_partitions(data_dir, corpus)
        cluster = make_cluster("engine_log", {"data_dir": str(data_dir)})
        importer, leases = leased_importer(cluster, batch_size=5000)
        writer = multiprocessing.get_context("spawn").Process(
            target=_steady_writer, args=(str(data_dir), corpus, rate, seconds)
        )
        writer.start()
        lags: list[float] = []
        deadline = time.monotonic() + seconds + 5
        while time.monotonic() < deadline:
            if leases.due():
                leases.round(importer.units())
            result = importer.run_once(wait_seconds=0.05)
            if result is None:
                if not writer.is_alive():
                    break
                continue
            committed_ms = time.time() * 1000
            lags.extend((committed_ms - timestamp) / 1000 for timestamp in result.timestamps_ms)
        writer.join(30)
        importer.close()
        leases.close()
        lags.sort()
        p50s.append(lags[len(lags) // 2])
        p99s.append(lags[min(len(lags) - 1, int(len(lags) * 0.99))])
        maxes.append(lags[-1])
    return {
        "bench": "importer.lag_at_steady_rate",
        "rate_records_per_s": rate,
        "seconds": seconds,
        "lag_p50_s": round(statistics.median(p50s), 3),
        "lag_p99_s": round(statistics.median(p99s), 3),
        "lag_max_s": round(statistics.median(maxes), 3),
        "goal_lag_p99_s": 1.0,
    }


def create_partitions(data_dir: Path, by_partition: dict[int, list[dict[str, Any]]]) -> None:
    """Empty partition logs, so the importers find (and lease) the partitions before records come."""
    from engine.log import LogWriter

    for partition_id in by_partition:
        LogWriter(data_dir, partition_id).close()


def _importer_processes(count: int, batch_size: int, log_path: Path) -> list[subprocess.Popen[bytes]]:
    """`manage.py import_records --follow` processes on the bench database (same environment)."""
    with open(log_path, "ab") as log:
        return [
            subprocess.Popen(
                [
                    sys.executable,
                    "manage.py",
                    "import_records",
                    "--follow",
                    "--batch-size",
                    str(batch_size),
                    "--idle-wait",
                    "0.2",
                ],
                cwd=REPO_ROOT,
                env={**os.environ, "LOG_LEVEL": "INFO"},
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            for _ in range(count)
        ]


def _stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(60)


def _wait_until(predicate: Any, seconds: float, what: str, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if any(process.poll() is not None for process in processes):
            raise SystemExit(f"an importer exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


def _leases_split(processes: list[subprocess.Popen[bytes]], units: int) -> bool:
    from processes.models import ImportLease

    holders = [holder for holder in ImportLease.objects.values_list("holder", flat=True) if holder]
    return len(holders) == units and len(set(holders)) == len(processes)


def bench_processes(
    corpus: dict[int, list[dict[str, Any]]], runs: int, batch_size: int, work_dir: Path, importers: int
) -> dict[str, Any]:
    """`importers` `import_records` processes splitting the corpus's partitions by leases (two:
    one partition each; one: the same measured the same way, for comparison).

    Timed from the moment they hold their leases of an empty log until every record is committed:
    the records are moved into place (one directory rename per partition) once they wait on it.
    """
    from processes.models import ImportPosition

    ends = {partition_id: len(found) for partition_id, found in corpus.items()}
    total = sum(ends.values())
    rates = []
    for run in range(runs):
        reset_database()
        staged = work_dir / f"staged-{importers}-{run}"
        write_log(staged, corpus)
        data_dir = work_dir / f"processes-{importers}-{run}"
        create_partitions(data_dir, corpus)
        make_cluster("engine_log", {"data_dir": str(data_dir)})
        processes = _importer_processes(importers, batch_size, work_dir / "importers.log")
        try:
            _wait_until(
                lambda processes=processes: _leases_split(processes, len(ends)),
                60,
                "the leases split",
                processes,
            )
            started = time.perf_counter()
            for partition_id in ends:
                # Whole partition logs swapped in at once (engine/log.py layout: partition-<id>/).
                empty = data_dir / f"partition-{partition_id}"
                empty.rename(data_dir / f".empty-{partition_id}")
                (staged / f"partition-{partition_id}").rename(empty)

            def done() -> bool:
                found = dict(ImportPosition.objects.filter(stream="").values_list("partition_id", "position"))
                return all(found.get(partition_id) == end for partition_id, end in ends.items())

            _wait_until(done, 600, "the import", processes)
            elapsed = time.perf_counter() - started
        finally:
            _stop_processes(processes)
        rates.append(total / elapsed)
    return {
        "bench": f"importer.log_to_postgres_{importers}_importer_processes",
        "records": total,
        "batch_size": batch_size,
        "importers": importers,
        "partitions": len(ends),
        "records_per_s_median": round(statistics.median(rates)),
        "records_per_s_runs": [round(rate) for rate in rates],
    }


def bench_processes_lag(
    corpus: dict[int, list[dict[str, Any]]],
    runs: int,
    rate: int,
    seconds: float,
    work_dir: Path,
    importers: int,
) -> dict[str, Any]:
    """`importers` following `import_records` processes (two: one partition each) at a steady
    `rate`: lag sampled every 10 ms as the console shows it, now - the newest imported record's
    timestamp, per partition (an upper bound of the per-record figure of bench_lag: it also counts
    the writer's 20 ms ticks and the command's polling of an idle log)."""
    from processes.models import ImportPosition

    p50s, p99s, maxes = [], [], []
    for run in range(runs):
        reset_database()
        data_dir = work_dir / f"processes-lag-{importers}-{run}"
        create_partitions(data_dir, corpus)
        make_cluster("engine_log", {"data_dir": str(data_dir)})
        processes = _importer_processes(importers, 5000, work_dir / "importers-lag.log")
        lags: list[float] = []
        try:
            _wait_until(
                lambda processes=processes: _leases_split(processes, len(corpus)),
                60,
                "the leases split",
                processes,
            )
            writer = multiprocessing.get_context("spawn").Process(
                target=_steady_writer, args=(str(data_dir), corpus, rate, seconds)
            )
            writer.start()
            # Samples start with the first record imported in each partition, and end for a
            # partition once its records are all written (its newest timestamp stops moving).
            ends = {partition_id: len(found) for partition_id, found in corpus.items()}
            while writer.is_alive():
                newest = list(
                    ImportPosition.objects.filter(stream="").values_list(
                        "partition_id", "position", "last_record_timestamp"
                    )
                )
                now = time.time()
                if len(newest) == len(corpus) and all(stamp for _, _, stamp in newest):
                    lags.extend(
                        now - stamp.timestamp()
                        for partition_id, position, stamp in newest
                        if position < ends[partition_id]
                    )
                time.sleep(0.01)
            writer.join(30)
        finally:
            _stop_processes(processes)
        lags.sort()
        p50s.append(lags[len(lags) // 2])
        p99s.append(lags[min(len(lags) - 1, int(len(lags) * 0.99))])
        maxes.append(lags[-1])
    return {
        "bench": f"importer.lag_at_steady_rate_{importers}_importer_processes",
        "rate_records_per_s": rate,
        "seconds": seconds,
        "importers": importers,
        "lag_p50_s": round(statistics.median(p50s), 3),
        "lag_p99_s": round(statistics.median(p99s), 3),
        "lag_max_s": round(statistics.median(maxes), 3),
        "measured_as": "now - newest imported timestamp per partition, sampled every 10 ms",
    }


def _takeover_once(
    processes: list[subprocess.Popen[bytes]], partitions: int, how: str
) -> tuple[float, float]:
    from processes.models import ImportLease, ImportPosition

    _wait_until(lambda: _leases_split(processes, partitions), 60, "the leases split", processes)
    victim, survivor = processes
    partition_id = ImportLease.objects.filter(holder__contains=f":{victim.pid}:").get().partition_id

    def position() -> int:
        found = ImportPosition.objects.filter(partition_id=partition_id, stream="").first()
        return found.position if found is not None else 0

    def taken() -> bool:
        return ImportLease.objects.filter(
            partition_id=partition_id, holder__contains=f":{survivor.pid}:"
        ).exists()

    _wait_until(lambda: position() > 0, 60, "the victim's first batch", processes)
    victim.send_signal(signal.SIGKILL if how == "kill" else signal.SIGSTOP)
    stopped = time.perf_counter()
    at_stop = position()
    _wait_until(taken, 120, "the takeover", [survivor])
    held = time.perf_counter() - stopped
    _wait_until(lambda: position() > at_stop, 120, "the partition's next commit", [survivor])
    return held, time.perf_counter() - stopped


def bench_takeover(
    corpus: dict[int, list[dict[str, Any]]], runs: int, work_dir: Path, how: str
) -> dict[str, Any]:
    """Two following importers split the corpus's partitions; one is killed (SIGKILL) or paused
    (SIGSTOP) mid-import: seconds until the other holds its partition, and until the first batch
    of that partition is committed again. Small batches (200) keep the import going long enough."""
    held_s, resumed_s = [], []
    for run in range(runs):
        reset_database()
        data_dir = work_dir / f"takeover-{how}-{run}"
        write_log(data_dir, corpus)
        make_cluster("engine_log", {"data_dir": str(data_dir)})
        processes = _importer_processes(2, 200, work_dir / "takeover.log")
        try:
            held, resumed = _takeover_once(processes, len(corpus), how)
            held_s.append(held)
            resumed_s.append(resumed)
        finally:
            processes[0].send_signal(signal.SIGCONT)
            _stop_processes(processes)
    return {
        "bench": f"importer.takeover_after_{'sigkill' if how == 'kill' else 'sigstop'}",
        "lease_seconds": 10.0,
        "takeover_s_median": round(statistics.median(held_s), 2),
        "takeover_s_runs": [round(value, 2) for value in held_s],
        "next_commit_s_median": round(statistics.median(resumed_s), 2),
    }


def bench_lease_overhead(work_dir: Path, calls: int = 500) -> dict[str, Any]:
    """What leases add to one importer: the fence (one UPDATE per batch, in its transaction) and a
    round (about once a second), each timed alone over `calls` calls."""
    from django.db import transaction

    from processes.importer.leases import Leases

    reset_database()
    data_dir = work_dir / "lease-overhead"
    create_partitions(data_dir, {1: [], 2: []})
    cluster = make_cluster("engine_log", {"data_dir": str(data_dir)})
    leases = Leases()
    units = {(cluster.id, 1), (cluster.id, 2)}
    started = time.perf_counter()
    for _ in range(calls):
        leases.round(units)
    round_ms = (time.perf_counter() - started) * 1000 / calls
    started = time.perf_counter()
    for _ in range(calls):
        with transaction.atomic():
            leases.fence(cluster.id, [1, 2])
    fence_ms = (time.perf_counter() - started) * 1000 / calls
    started = time.perf_counter()
    for _ in range(calls):
        with transaction.atomic():
            pass
    empty_ms = (time.perf_counter() - started) * 1000 / calls
    leases.close()
    return {
        "bench": "importer.lease_overhead",
        "round_ms": round(round_ms, 3),
        "fence_ms_in_own_transaction": round(fence_ms, 3),
        "empty_transaction_ms": round(empty_ms, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--copies", type=int, default=150, help="copies of the scenario's records")
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--lag-seconds", type=float, default=15.0)
    parser.add_argument(
        "--only",
        choices=["log", "redis", "lag", "poison", "two", "two-lag", "takeover", "lease-overhead"],
        action="append",
    )
    parser.add_argument(
        "--poison-every", type=int, default=300, help="poison: one bad VARIABLE event in this many"
    )
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit(
            "DATABASE_URL must name a PostgreSQL database: run via `python -m tests.services -- ...`"
        )

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    only = set(args.only or ["log", "redis", "lag", "poison", "two", "two-lag", "takeover", "lease-overhead"])
    with tempfile.TemporaryDirectory(prefix="bench-importer-") as tmp:
        work_dir = Path(tmp)
        records = scenario_records(work_dir)
        corpus = replicate(records, args.copies)
        if "log" in only:
            print(json.dumps(bench_log(corpus, args.runs, args.batch_size, work_dir)), flush=True)
        if "redis" in only:
            print(json.dumps(bench_redis(corpus, args.runs, args.batch_size)), flush=True)
        if "poison" in only:
            figure = bench_poison(corpus, args.runs, args.batch_size, work_dir, args.poison_every)
            print(json.dumps(figure), flush=True)
        if "lag" in only:
            per_copy = sum(1 for found in replicate(records, 2, start_copy=0).values() for _ in found) // 2
            copies = int(2000 * args.lag_seconds * 1.2 / max(1, per_copy)) + 2
            lag_corpus = replicate(records, copies)
            print(json.dumps(bench_lag(lag_corpus, args.runs, 2000, args.lag_seconds, work_dir)), flush=True)
        if "two" in only:
            for importers in (1, 2):
                figure = bench_processes(corpus, args.runs, args.batch_size, work_dir, importers)
                print(json.dumps(figure), flush=True)
        if "two-lag" in only:
            # The writer spreads the rate evenly over the partitions: every partition must last.
            one, two = replicate(records, 1), replicate(records, 2)
            smallest = min(len(two[partition_id]) - len(one.get(partition_id, [])) for partition_id in two)
            copies = int(2000 / 2 * args.lag_seconds * 1.2 / max(1, smallest)) + 2
            lag_corpus = replicate(records, copies)
            for importers in (1, 2):
                figure = bench_processes_lag(
                    lag_corpus, args.runs, 2000, args.lag_seconds, work_dir, importers
                )
                print(json.dumps(figure), flush=True)
        if "lease-overhead" in only:
            print(json.dumps(bench_lease_overhead(work_dir)), flush=True)
        if "takeover" in only:
            for how in ("kill", "stop"):
                print(json.dumps(bench_takeover(corpus, args.runs, work_dir, how)), flush=True)
        reset_database()


if __name__ == "__main__":
    main()
