"""docker-compose.yml and the Dockerfile cannot run here (no Docker daemon, no network); these tests
read them and check what can be checked without running them: every service is there, every setting
Fleetflow reads is set, every Fleetflow command parses with the real command's argument parser, the
Zeebe exporter settings agree with the Cluster rows the importer will read, and the image is built
from files that exist and are not excluded."""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import get_commands, load_command_class

from demo.__main__ import build_parser as demo_parser

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
FLEETFLOW_SERVICES = {name for name, service in SERVICES.items() if service.get("build") == "."}

EXPECTED_SERVICES = {
    "zeebe-blue",
    "zeebe-green",
    "redis-exporter-jar",
    "elasticsearch",
    "postgres",
    "redis",
    "migrate",
    "register-blue",
    "register-green",
    "proxy",
    "importer",
    "web",
    "worker",
    "beat",
    "demo-workers",
}


def settings_read_from_environment() -> set[str]:
    """Every environment variable console/settings.py reads through console/env.py."""
    text = (REPO / "console" / "settings.py").read_text()
    names = set(re.findall(r"env_(?:str|bool|int|list)\(\s*\"([A-Z][A-Z0-9_]*)\"", text))
    if re.search(r"\bredis_url\(\)", text):
        names.add("REDIS_URL")
    return names


def command_argv(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def register_config(service_name: str) -> dict[str, str]:
    argv = command_argv(SERVICES[service_name])
    config = [arg.split("=", 1)[1] for arg in argv if arg.startswith("--config=")]
    return dict(item.split("=", 1) for item in config)


def option(service_name: str, name: str) -> str:
    for arg in command_argv(SERVICES[service_name]):
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{service_name} has no --{name}")


def test_every_service_is_there_and_depends_only_on_services_that_exist() -> None:
    assert set(SERVICES) == EXPECTED_SERVICES
    assert {"migrate", "register-blue", "register-green", "proxy", "importer", "web", "worker", "beat"} <= (
        FLEETFLOW_SERVICES
    )
    for name, service in SERVICES.items():
        depends = service.get("depends_on", {})
        for dependency in depends if isinstance(depends, list) else depends.keys():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source in COMPOSE["volumes"], f"{name} mounts undeclared volume {source}"


def test_every_fleetflow_service_gets_every_setting_fleetflow_reads() -> None:
    wanted = settings_read_from_environment()
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"} <= wanted
    for name in FLEETFLOW_SERVICES:
        environment = SERVICES[name]["environment"]
        missing = wanted - set(environment)
        assert not missing, f"{name} lacks {sorted(missing)}"
        assert environment["DEBUG"] == "0"
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert "@postgres:5432/" in environment["DATABASE_URL"]
        assert environment["REDIS_URL"].startswith("redis://redis:6379")
        # The secret is never a literal in the file: compose refuses to start without it.
        assert environment["SECRET_KEY"].startswith("${FLEETFLOW_SECRET_KEY:?")


def test_every_fleetflow_command_parses_with_the_real_parser() -> None:
    commands = get_commands()
    for name in FLEETFLOW_SERVICES:
        argv = command_argv(SERVICES[name])
        if argv[:2] == ["python", "manage.py"]:
            assert argv[2] in commands, f"{name}: no management command {argv[2]}"
            command = load_command_class(commands[argv[2]], argv[2])
            command.create_parser("manage.py", argv[2]).parse_args(argv[3:])
        elif argv[:3] == ["python", "-m", "demo"]:
            demo_parser().parse_args(argv[3:])
        elif argv[0] == "daphne":
            assert argv[-1] == "console.asgi:application"
            assert (REPO / "console" / "asgi.py").exists()
        elif argv[0] == "celery":
            assert argv[1:3] == ["-A", "console"]
            assert argv[3] in {"worker", "beat"}
            assert (REPO / "console" / "celery.py").exists()
        else:
            pytest.fail(f"{name}: unexpected command {argv}")


def test_proxy_and_web_share_the_proxy_state_directory() -> None:
    state_dir = SERVICES["proxy"]["environment"]["FLEETFLOW_PROXY_STATE_DIR"]
    proxy_argv = command_argv(SERVICES["proxy"])
    assert proxy_argv[proxy_argv.index("--state-dir") + 1] == state_dir
    assert proxy_argv[proxy_argv.index("--host") + 1] == "0.0.0.0"
    assert f"proxy-state:{state_dir}" in SERVICES["proxy"]["volumes"]
    assert f"proxy-state:{state_dir}:ro" in SERVICES["web"]["volumes"]


def test_clusters_are_registered_where_their_exporters_write() -> None:
    blue, green = SERVICES["zeebe-blue"]["environment"], SERVICES["zeebe-green"]["environment"]
    for environment in (blue, green):
        assert environment["ZEEBE_BROKER_CLUSTER_CLUSTERSIZE"] == "1"
        assert environment["ZEEBE_BROKER_CLUSTER_REPLICATIONFACTOR"] == "1"
        assert int(environment["ZEEBE_BROKER_CLUSTER_PARTITIONSCOUNT"]) >= 1
        assert environment["ZEEBE_BROKER_GATEWAY_ENABLE"] == "true"
    assert blue["ZEEBE_BROKER_CLUSTER_CLUSTERNAME"] != green["ZEEBE_BROKER_CLUSTER_CLUSTERNAME"]
    assert SERVICES["zeebe-blue"]["image"] == SERVICES["zeebe-green"]["image"]
    assert SERVICES["zeebe-blue"]["image"].startswith("camunda/zeebe:8.")

    # Blue: the Elasticsearch exporter, read by the importer's elasticsearch source.
    assert (
        blue["ZEEBE_BROKER_EXPORTERS_ELASTICSEARCH_CLASSNAME"]
        == "io.camunda.zeebe.exporter.ElasticsearchExporter"
    )
    assert "ZEEBE_BROKER_EXPORTERS_ELASTICSEARCH_JARPATH" not in blue  # packaged with Zeebe
    prefix = blue["ZEEBE_BROKER_EXPORTERS_ELASTICSEARCH_ARGS_INDEX_PREFIX"]
    assert "_" not in prefix  # Zeebe's documented rule: the prefix is followed by _<value type>_...
    assert option("register-blue", "record-source") == "elasticsearch"
    assert register_config("register-blue") == {
        "url": blue["ZEEBE_BROKER_EXPORTERS_ELASTICSEARCH_ARGS_URL"],
        "index_prefix": prefix,
    }
    assert blue["ZEEBE_BROKER_EXPORTERS_ELASTICSEARCH_ARGS_URL"] == "http://elasticsearch:9200"

    # Green: the Redis exporter in JSON (the format the importer's redis source decodes).
    assert green["ZEEBE_BROKER_EXPORTERS_REDIS_CLASSNAME"] == "io.zeebe.redis.exporter.RedisExporter"
    jar = green["ZEEBE_BROKER_EXPORTERS_REDIS_JARPATH"]
    assert any(jar.startswith(volume.split(":")[1] + "/") for volume in SERVICES["zeebe-green"]["volumes"])
    assert jar in " ".join(command_argv(SERVICES["redis-exporter-jar"]))
    assert green["ZEEBE_REDIS_FORMAT"] == "json"
    assert green["ZEEBE_REDIS_REMOTE_ADDRESS"].startswith("redis://redis:6379")
    assert option("register-green", "record-source") == "redis"
    green_config = register_config("register-green")
    assert green_config["stream_prefix"] == green["ZEEBE_REDIS_NAME"]
    assert green_config["url"].startswith(green["ZEEBE_REDIS_REMOTE_ADDRESS"])

    # The proxy reaches both clusters' embedded gateways.
    assert option("register-blue", "gateway") == "zeebe-blue:26500"
    assert option("register-green", "gateway") == "zeebe-green:26500"
    assert option("register-blue", "id") != option("register-green", "id")


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerfile_is_slim_non_root_from_the_lock_with_static_files_collected() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    instructions = [line for line in dockerfile.splitlines() if line and not line.startswith(("#", " "))]
    bases = [line.split()[1] for line in instructions if line.startswith("FROM ")]
    assert bases and all(base.startswith("python:3.11-slim") for base in bases)
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    assert "requirements.lock" in dockerfile and "-c requirements.lock" in dockerfile
    assert "collectstatic --noinput" in dockerfile
    ignored = dockerignore_patterns()
    for line in instructions:
        if not line.startswith("COPY ") or "--from=" in line:
            continue
        for source in line.split()[1:-1]:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
            assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), (
                f"{source} is dockerignored"
            )
    # Django's BASE_DIR must hold templates/ and static/: the code runs from /app, not site-packages.
    assert "PYTHONPATH=/app" in dockerfile and "WORKDIR /app" in dockerfile
    assert SERVICES["web"]["build"] == "."
