"""`python manage.py run_stack [--clusters N] [--partitions P] [--proxy-port P] [--web-port P]
[--data-dir DIR] [--record-source engine-log|redis] [--demo]`: the whole system on embedded defaults (DESIGN §8).

`--record-source redis` runs each engine with `--export redis://...?name=zeebe-embedded-N` (the
zeebe-redis-exporter's JSON streams, engine/exporters/) and registers its cluster with the importer's
Redis source on those streams, instead of the importer reading the engine's log files directly.

Starts N embedded engine clusters (`python -m engine`), registers them in the Cluster table, then the
gateway proxy driven by that table, the importer (`import_records --follow`), a Celery worker and the
web server (daphne), and supervises them (console/stack.py). Without --demo the system is empty: other
tools deploy and create through the proxy port and read through the API. With --demo it also seeds a
server fleet, deploys the hardware flows and runs the demo workers (demo/).

Without DATABASE_URL the database is an SQLite file inside the data directory (the command re-executes
itself with DATABASE_URL set, so every child and the supervisor use the same file). Without REDIS_URL a
local redis-server is started when the binary exists; otherwise tasks run in-process and live updates
stay inside the web process, which is said at start.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from console.stack import (
    ChildSpec,
    Stack,
    StackError,
    free_port,
    install_stop_handlers,
    lock_data_dir,
    port_is_free,
)
from processes import source_config
from processes.choices import ClusterState, RecordSource
from processes.models import CLUSTER_ID_MAX, CLUSTER_ID_MIN
from processes.selectors import cluster_list
from processes.services import cluster_activate, cluster_create, cluster_disable, cluster_update

HOST = "127.0.0.1"
EMBEDDED_CLUSTER_PREFIX = "embedded-"


def _manage(*args: str) -> list[str]:
    return [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args]


def redis_stream_name(cluster_name: str) -> str:
    """The exporter `name` (stream prefix) of an embedded cluster: one prefix per cluster, because a
    stream holds the records of every partition and partition ids repeat across clusters."""
    return f"zeebe-{cluster_name}"


def register_embedded_clusters(wanted: dict[str, tuple[str, str]], *, redis_url: str | None = None) -> None:
    """Make the Cluster table name exactly the embedded clusters of this run (name -> address, log dir).

    A row from an earlier run keeps its id (imported keys carry it) and gets the new address; one whose
    log directory differs is refused: a fresh engine numbers its keys from the start again, and they
    would collide with the rows imported from the old log. Embedded rows this run does not start are
    disabled so that the proxy places nothing on them. Other clusters (real Zeebe) are left alone.
    With `redis_url` the clusters' records are read from the engines' Redis streams instead of their logs;
    a row registered with the other source is refused the same way (its import positions belong to it).
    """
    existing = {cluster.name: cluster for cluster in cluster_list()}
    for name, (address, log_dir) in wanted.items():
        cluster = existing.get(name)
        source: str = RecordSource.ENGINE_LOG
        config: dict[str, str] = {"data_dir": log_dir}
        if redis_url is not None:
            source = RecordSource.REDIS
            config = {"url": redis_url, "stream_prefix": redis_stream_name(name), "data_dir": log_dir}
            if source_config.url_has_password(redis_url):
                # Never stored (processes/source_config.py): the importer reads it from REDIS_URL,
                # which every child of this stack has.
                del config["url"]
                config["url_env"] = "REDIS_URL"
        if cluster is None:
            used = {row.id for row in existing.values()}
            cluster_id = next(i for i in range(CLUSTER_ID_MIN, CLUSTER_ID_MAX + 1) if i not in used)
            existing[name] = cluster_create(
                cluster_id=cluster_id,
                name=name,
                gateway_address=address,
                record_source=source,
                record_source_config=config,
            )
            continue
        if cluster.record_source != source or cluster.record_source_config.get("data_dir") != log_dir:
            raise ValidationError(
                f"Cluster {name} (id {cluster.id}) in this database reads {cluster.record_source} "
                f"{cluster.record_source_config}, not {source} for the engine in {log_dir}: run with the "
                "--data-dir it was created with (and its --record-source), or with a fresh database"
            )
        if cluster.record_source_config != config:
            # Same engine and source, another Redis address (a new local redis-server port).
            cluster_update(cluster=cluster, record_source_config=config)
        if cluster.gateway_address != address:
            cluster_update(cluster=cluster, gateway_address=address)
        if cluster.state != ClusterState.ACTIVE:
            cluster_activate(cluster=cluster)
    for name, cluster in existing.items():
        if (
            name.startswith(EMBEDDED_CLUSTER_PREFIX)
            and name not in wanted
            and cluster.state != ClusterState.DISABLED
        ):
            cluster_disable(cluster=cluster, allow_no_placement=True)


class Command(BaseCommand):
    help = "Run the whole Fleetflow system (engines, proxy, importer, worker, web) and supervise it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--clusters", type=int, default=2, help="embedded engine clusters (default 2)")
        parser.add_argument("--partitions", type=int, default=2, help="partitions per cluster (default 2)")
        parser.add_argument(
            "--proxy-port", type=int, default=26500, help="gateway proxy port (default 26500)"
        )
        parser.add_argument("--web-port", type=int, default=8000, help="console port (default 8000)")
        parser.add_argument(
            "--data-dir",
            default=str(Path(settings.BASE_DIR) / "var" / "stack"),
            help="engine logs, child logs, SQLite database (default var/stack)",
        )
        parser.add_argument(
            "--record-source",
            choices=("engine-log", "redis"),
            default="engine-log",
            help="where the importer reads the engines' records: their log files (default) or the Redis "
            "streams each engine exports to (--export redis://..., zeebe-redis-exporter JSON)",
        )
        parser.add_argument("--demo", action="store_true", help="seed a fleet and run the demo flows")

    def handle(self, *args: Any, **options: Any) -> None:
        clusters: int = options["clusters"]
        partitions: int = options["partitions"]
        if not 1 <= clusters <= 16:
            raise CommandError(f"--clusters must be within 1..16, got {clusters}")
        if not 1 <= partitions <= 32:
            raise CommandError(f"--partitions must be within 1..32, got {partitions}")
        for name in ("proxy_port", "web_port"):
            port = options[name]
            if not 1 <= port <= 65535:
                raise CommandError(f"--{name.replace('_', '-')} must be within 1..65535, got {port}")
        if options["proxy_port"] == options["web_port"]:
            raise CommandError("--proxy-port and --web-port must differ")
        data_dir = Path(options["data_dir"]).resolve()
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CommandError(f"--data-dir {data_dir}: {error}") from None

        if "DATABASE_URL" not in os.environ:
            if sys.argv[1:2] != ["run_stack"]:
                raise CommandError(
                    "run_stack needs DATABASE_URL when it is not started from the command line"
                )
            # Settings are already loaded with the repository's default SQLite file; start again with
            # the data directory's own, so the supervisor and every child share one database.
            os.environ["DATABASE_URL"] = f"sqlite:///{data_dir / 'fleetflow.sqlite3'}"
            self.stderr.write(f"run_stack: DATABASE_URL unset, using {os.environ['DATABASE_URL']}")
            sys.stdout.flush()
            os.execv(sys.executable, [sys.executable, *sys.argv])  # noqa: S606 (our own command, same args)

        for name in ("proxy_port", "web_port"):
            if not port_is_free(options[name], HOST):
                raise CommandError(
                    f"{HOST}:{options[name]} is already in use; choose another --{name.replace('_', '-')}"
                )

        try:
            data_dir_lock = lock_data_dir(data_dir)
        except StackError as error:
            raise CommandError(str(error)) from None
        stack = Stack(log_dir=data_dir / "logs", say=lambda message: self.stderr.write(message))
        install_stop_handlers(stack)
        try:
            summary = self._start(stack, data_dir=data_dir, options=options)
            self.stdout.write(summary)
            self.stdout.flush()
            stack.supervise()
        except StackError as error:
            stack.stop()
            if stack.stop_requested.is_set() and str(error) == "stopped during start-up":
                self.stderr.write("run_stack: stopped")
                return
            raise CommandError(str(error)) from None
        except BaseException:
            stack.stop()
            raise
        stack.stop()
        data_dir_lock.close()
        self.stderr.write("run_stack: every child stopped")

    def _start(self, stack: Stack, *, data_dir: Path, options: dict[str, Any]) -> str:
        """Start everything, overlapping what does not depend on each other (Python start-up of each
        child is most of the time on a busy machine): the engines boot while the database migrates
        and the demo fleet is seeded; the proxy, importer, worker and web start together."""
        say = self.stderr.write
        env = dict(os.environ)
        env.update({"DJANGO_SETTINGS_MODULE": "console.settings", "PYTHONUNBUFFERED": "1"})
        # The proxy writes metrics.json there; the console reads cluster health from it.
        proxy_state_dir = Path(env.setdefault("FLEETFLOW_PROXY_STATE_DIR", str(data_dir / "routing")))
        notes: list[str] = []
        redis_url = os.environ.get("REDIS_URL")
        if redis_url is None:
            redis_binary = shutil.which("redis-server")
            if redis_binary is not None:
                redis_port = free_port(HOST)
                (data_dir / "redis").mkdir(exist_ok=True)
                stack.start(
                    ChildSpec(
                        name="redis",
                        argv=[
                            redis_binary,
                            "--bind",
                            HOST,
                            "--port",
                            str(redis_port),
                            "--dir",
                            str(data_dir / "redis"),
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                        ],
                        env=env,
                        ready_port=redis_port,
                    )
                )
                redis_url = f"redis://{HOST}:{redis_port}/0"
                env["REDIS_URL"] = redis_url
                notes.append(f"local redis-server on {HOST}:{redis_port} (Celery broker, live updates)")
            else:
                notes.append(
                    "no REDIS_URL and no redis-server binary: operator actions run in-process in the web "
                    "server and live updates reach only that process (install redis-server for the full stack)"
                )
        export_redis: str | None = None
        if options["record_source"] == "redis":
            if redis_url is None:
                raise StackError("--record-source redis needs a Redis: set REDIS_URL or install redis-server")
            export_redis = redis_url
            notes.append(
                f"records flow through Redis streams zeebe-embedded-N:* on {redis_url.split('@')[-1]}"
            )
        engine_ports = self._start_engines(
            stack, env=env, data_dir=data_dir, options=options, export_redis=export_redis
        )

        say(f"run_stack: database {connection.vendor} ({connection.settings_dict['NAME']})")
        call_command("migrate", interactive=False, verbosity=0)
        if connection.vendor == "sqlite":
            # Several processes write the file (importer, web, demo): WAL lets readers and one writer
            # overlap instead of failing with "database is locked". The mode is stored in the file.
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA journal_mode=WAL")
        demo_lines: list[str] = []
        if options["demo"]:
            demo_lines = self._seed_demo()

        for child in stack.children:
            if child.spec.name.startswith("engine-"):
                stack.wait_ready(child)
        self._register_clusters(engine_ports, data_dir=data_dir, redis_url=export_redis)

        proxy_port: int = options["proxy_port"]
        web_port: int = options["web_port"]
        stack.start(
            ChildSpec(
                name="proxy",
                argv=_manage(
                    "run_gateway_proxy", "--port", str(proxy_port), "--state-dir", str(proxy_state_dir)
                ),
                env=env,
                ready_port=proxy_port,
            ),
            wait_ready=False,
        )
        stack.start(ChildSpec(name="importer", argv=_manage("import_records", "--follow"), env=env))
        if redis_url is not None:
            stack.start(
                ChildSpec(
                    name="celery",
                    argv=[
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "console",
                        "worker",
                        "--loglevel",
                        "INFO",
                        "--pool",
                        "solo",
                        # The operations sweeper (settings.CELERY_BEAT_SCHEDULE) runs inside this worker:
                        # one worker, so one beat.
                        "--beat",
                        "--schedule",
                        str(data_dir / "celerybeat-schedule"),
                        "--without-gossip",
                        "--without-mingle",
                    ],
                    env=env,
                )
            )
        stack.start(
            ChildSpec(
                name="web",
                argv=[
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    HOST,
                    "-p",
                    str(web_port),
                    "console.asgi:application",
                ],
                env=env,
                ready_port=web_port,
                cwd=Path(settings.BASE_DIR),
            ),
            wait_ready=False,
        )
        self._wait_ready(stack, "proxy")
        if options["demo"]:
            demo_lines += self._start_demo(stack, env=env, proxy_port=proxy_port)
        self._wait_ready(stack, "web")

        lines = [
            "",
            f"Fleetflow console:  http://{HOST}:{web_port}/",
            f"Zeebe gateway:      {HOST}:{proxy_port}  (the proxy; pyzeebe / zbctl --insecure)",
            "Clusters:           "
            + ", ".join(f"{EMBEDDED_CLUSTER_PREFIX}{i} on {HOST}:{port}" for i, port in engine_ports.items()),
            f"Logs:               {data_dir / 'logs'}",
            *(f"Note:               {note}" for note in notes),
        ]
        lines += [*demo_lines, "Stop with Ctrl-C.", ""]
        return "\n".join(lines)

    def _start_engines(
        self,
        stack: Stack,
        *,
        env: dict[str, str],
        data_dir: Path,
        options: dict[str, Any],
        export_redis: str | None = None,
    ) -> dict[int, int]:
        ports: dict[int, int] = {}
        taken = {options["proxy_port"], options["web_port"]}
        for index in range(1, options["clusters"] + 1):
            port = free_port(HOST)
            while port in taken:
                port = free_port(HOST)
            taken.add(port)
            ports[index] = port
            stack.start(
                ChildSpec(
                    name=f"engine-{index}",
                    argv=[
                        sys.executable,
                        "-m",
                        "engine",
                        "--host",
                        HOST,
                        "--port",
                        str(port),
                        "--partitions",
                        str(options["partitions"]),
                        "--data-dir",
                        str(data_dir / f"engine-{index}"),
                        *self._export_args(export_redis, f"{EMBEDDED_CLUSTER_PREFIX}{index}"),
                    ],
                    env=env,
                    ready_port=port,
                ),
                wait_ready=False,
            )
        return ports

    @staticmethod
    def _export_args(redis_url: str | None, cluster_name: str) -> list[str]:
        if redis_url is None:
            return []
        base = redis_url.split("?", 1)[0]
        return ["--export", f"{base}?name={redis_stream_name(cluster_name)}"]

    def _wait_ready(self, stack: Stack, name: str) -> None:
        stack.wait_ready(next(child for child in stack.children if child.spec.name == name))

    def _register_clusters(
        self, engine_ports: dict[int, int], *, data_dir: Path, redis_url: str | None = None
    ) -> None:
        try:
            register_embedded_clusters(
                {
                    f"{EMBEDDED_CLUSTER_PREFIX}{index}": (f"{HOST}:{port}", str(data_dir / f"engine-{index}"))
                    for index, port in engine_ports.items()
                },
                redis_url=redis_url,
            )
        except ValidationError as error:
            raise StackError("; ".join(error.messages)) from None

    def _seed_demo(self) -> list[str]:
        from demo.seed import DEMO_LOGINS, seed_fleet, seed_logins

        seed_logins()
        servers = seed_fleet()
        return [
            f"Demo:               {servers} servers",
            "Logins:             "
            + ", ".join(f"{username} / {password} ({role})" for username, password, role in DEMO_LOGINS),
        ]

    def _start_demo(self, stack: Stack, *, env: dict[str, str], proxy_port: int) -> list[str]:
        from demo.seed import deploy_models

        deployed = deploy_models(gateway=f"{HOST}:{proxy_port}")
        stack.start(
            ChildSpec(
                name="demo-workers",
                # In-process routing (no second gRPC hop) over the Cluster table and the proxy's
                # own deployment journal; the proxy port stays for outside clients (issue 16).
                argv=[
                    sys.executable,
                    "-m",
                    "demo",
                    "--routing-journal",
                    str(Path(env["FLEETFLOW_PROXY_STATE_DIR"]) / "deployments.json"),
                ],
                env=env,
                cwd=Path(settings.BASE_DIR),
            )
        )
        return [f"Demo flows:         {', '.join(deployed)}; demo workers running (log: demo-workers.log)"]
