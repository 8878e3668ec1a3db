"""Record-source settings never hold a secret (processes/source_config.py): a Redis that needs a
password is read with the password named by ``password_env`` / ``password_file`` or a URL named by
``url_env``; settings that carry one are refused when the cluster is saved, with the way to do it."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.core.exceptions import ValidationError

from processes.importer.sources import SourceConfigError, open_source
from processes.models import Cluster
from processes.services import cluster_create, cluster_update
from tests.importer.helpers import import_all
from tests.importer.records import record
from tests.services import free_port, redis_server_binary, wait_for_port

PASSWORD = "s3cret-for-tests"


@pytest.fixture(scope="module")
def locked_redis() -> Iterator[int]:
    """A second redis-server on loopback that refuses clients without PASSWORD."""
    port = free_port()
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            PASSWORD,
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, "redis-server", process)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _one_process_record(port: int) -> str:
    prefix = f"zeebe-{uuid.uuid4().hex[:8]}"
    key = 2251799813685249
    created = record(
        10,
        "PROCESS",
        "CREATED",
        key,
        {"bpmnProcessId": "locked", "version": 1, "processDefinitionKey": key, "resource": ""},
    )
    client = redis.Redis(host="127.0.0.1", port=port, password=PASSWORD)
    client.xadd(f"{prefix}:PROCESS", {"1700000000000": json.dumps(created)})
    return prefix


def _cluster(config: dict[str, str]) -> Cluster:
    return cluster_create(
        cluster_id=1,
        name="locked",
        gateway_address="127.0.0.1:26500",
        record_source="redis",
        record_source_config=config,
    )


@pytest.mark.django_db
def test_a_password_named_by_environment_variable_reads_the_streams(
    locked_redis: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = _one_process_record(locked_redis)
    cluster = _cluster(
        {
            "url": f"redis://127.0.0.1:{locked_redis}/0",
            "stream_prefix": prefix,
            "password_env": "FF_TEST_REDIS_PW",
        }
    )
    assert PASSWORD not in json.dumps(Cluster.objects.get(pk=1).record_source_config)

    monkeypatch.delenv("FF_TEST_REDIS_PW", raising=False)
    with pytest.raises(
        SourceConfigError, match=r"environment variable FF_TEST_REDIS_PW \(password_env\) is not set"
    ):
        open_source(cluster)

    monkeypatch.setenv("FF_TEST_REDIS_PW", "wrong")
    source = open_source(cluster)
    with pytest.raises(redis.exceptions.AuthenticationError):
        source.fetch({}, 10, 0.0)

    monkeypatch.setenv("FF_TEST_REDIS_PW", PASSWORD)
    import_all(cluster)
    assert cluster.process_definitions.get().bpmn_process_id == "locked"


@pytest.mark.django_db
def test_a_password_file_and_a_url_from_the_environment_read_the_streams(
    locked_redis: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    prefix = _one_process_record(locked_redis)
    secret = tmp_path / "redis-password"
    secret.write_text(PASSWORD + "\n")
    cluster = _cluster(
        {"url": f"redis://127.0.0.1:{locked_redis}/0", "stream_prefix": prefix, "password_file": str(secret)}
    )
    import_all(cluster)
    assert cluster.process_definitions.get().bpmn_process_id == "locked"

    second = _one_process_record(locked_redis)
    monkeypatch.setenv("FF_TEST_REDIS_URL", f"redis://:{PASSWORD}@127.0.0.1:{locked_redis}/0")
    cluster_update(
        cluster=cluster, record_source_config={"url_env": "FF_TEST_REDIS_URL", "stream_prefix": second}
    )
    cluster.refresh_from_db()
    import_all(cluster)
    assert cluster.process_definitions.count() == 1  # the same record again: applied once

    secret.unlink()
    cluster_update(
        cluster=cluster,
        record_source_config={"url": f"redis://127.0.0.1:{locked_redis}/0", "password_file": str(secret)},
    )
    cluster.refresh_from_db()
    with pytest.raises(SourceConfigError, match=r"password_file .*redis-password: No such file"):
        open_source(cluster)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("source", "config", "message"),
    [
        ("redis", {"url": "redis://:hunter2@127.0.0.1:6379/0"}, "url carries a password"),
        ("redis", {"url": "redis://user:hunter2@127.0.0.1:6379/0"}, "url carries a password"),
        ("elasticsearch", {"url": "https://elastic:hunter2@es:9200"}, "url carries a password"),
        (
            "redis",
            {"url": "redis://127.0.0.1:6379/0", "password": "hunter2"},
            "password is never stored here",
        ),
        ("elasticsearch", {"url": "http://es:9200", "api_key": "abc"}, "api_key is never stored here"),
        ("redis", {"url": "http://127.0.0.1:6379"}, "url must start with redis://"),
        ("elasticsearch", {"url": "es:9200"}, "url must start with http:// or https://"),
        ("redis", {"url": "redis://"}, "names no host"),
        ("redis", {"url": "redis://h:1/0", "url_env": "REDIS_URL"}, "url or url_env, not both"),
        ("redis", {"url": "redis://h:1/0", "password_env": "not a name"}, "environment variable name"),
        ("redis", {"url": "redis://h:1/0", "password_env": "A", "password_file": "/f"}, "not both"),
        ("redis", {"url": "redis://h:1/0", "streams_prefix": "zeebe"}, "unknown setting(s) streams_prefix"),
        ("engine_log", {"data_dir": ""}, "data_dir must be a non-empty string"),
        ("elasticsearch", {"url": "http://es:9200", "password_env": "ES_PW"}, "needs a username"),
        (
            "elasticsearch",
            {"url": "http://es:9200", "username": "u", "password_env": "P", "api_key_env": "K"},
            "either username/password or an API key",
        ),
    ],
)
def test_settings_that_would_store_a_secret_or_cannot_work_are_refused(
    source: str, config: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        cluster_create(
            cluster_id=2,
            name="refused",
            gateway_address="127.0.0.1:26500",
            record_source=source,
            record_source_config=config,
        )
    assert message in " ".join(refused.value.message_dict["record_source_config"])
    assert not Cluster.objects.exists()


@pytest.mark.django_db
def test_an_update_that_would_store_a_password_keeps_the_stored_settings() -> None:
    cluster = _cluster({"url": "redis://127.0.0.1:6379/0"})
    with pytest.raises(ValidationError, match="url carries a password"):
        cluster_update(cluster=cluster, record_source_config={"url": "redis://:pw@127.0.0.1:6379/0"})
    assert Cluster.objects.get(pk=1).record_source_config == {"url": "redis://127.0.0.1:6379/0"}
