"""The Redis record source over TLS with a password: ``rediss://`` URLs work as they are (redis-py
reads the user, password and ``ssl_ca_certs`` / ``ssl_cert_reqs`` from the URL); a plaintext URL
to a TLS port and a wrong password fail instead of reading anything."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from processes.importer.sources.redis_streams import RedisStreamSource
from tests.security.pki import LocalCA
from tests.services import free_port

PASSWORD = "redis-tls-pw"
RECORD = {
    "partitionId": 1,
    "position": 10,
    "key": 2251799813685249,
    "timestamp": 1_700_000_000_000,
    "recordType": "EVENT",
    "valueType": "PROCESS",
    "intent": "CREATED",
    "value": {"bpmnProcessId": "p", "version": 1, "processDefinitionKey": 2251799813685249, "resource": ""},
}


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    directory = tmp_path_factory.mktemp("redis-tls")
    ca = LocalCA(directory)
    cert = ca.issue("redis")
    port = free_port()
    process = subprocess.Popen(
        [
            server,
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            str(cert.cert),
            "--tls-key-file",
            str(cert.key),
            "--tls-ca-cert-file",
            str(ca.ca_path),
            "--tls-auth-clients",
            "no",
            "--requirepass",
            PASSWORD,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"rediss://:{PASSWORD}@127.0.0.1:{port}/0?ssl_ca_certs={ca.ca_path}&ssl_cert_reqs=required"
        deadline = time.monotonic() + 15
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("redis-server with TLS did not start (built without TLS?)")
                time.sleep(0.1)
        yield port, ca.ca_path
    finally:
        process.terminate()
        process.wait(10)


def test_rediss_url_with_password_reads_records(tls_redis: tuple[int, Path]) -> None:
    port, ca = tls_redis
    url = f"rediss://:{PASSWORD}@127.0.0.1:{port}/0?ssl_ca_certs={ca}&ssl_cert_reqs=required"
    redis.Redis.from_url(url).xadd("sec:PROCESS", {"1700000000000": json.dumps(RECORD)})
    source = RedisStreamSource(url=url, stream_prefix="sec", group="fleetflow-importer", consumer="c1")
    records = source.fetch({}, max_records=10, wait_seconds=2.0)
    assert len(records) == 1
    source.acknowledge(records)
    source.close()


def test_plaintext_or_wrong_password_reads_nothing(tls_redis: tuple[int, Path]) -> None:
    port, ca = tls_redis
    plain = RedisStreamSource(
        url=f"redis://:{PASSWORD}@127.0.0.1:{port}/0", stream_prefix="sec", group="g", consumer="c"
    )
    with pytest.raises(redis.ConnectionError):
        plain.fetch({}, max_records=10, wait_seconds=0.5)
    wrong = RedisStreamSource(
        url=f"rediss://:nope@127.0.0.1:{port}/0?ssl_ca_certs={ca}&ssl_cert_reqs=required",
        stream_prefix="sec",
        group="g",
        consumer="c",
    )
    with pytest.raises(redis.AuthenticationError):
        wrong.fetch({}, max_records=10, wait_seconds=0.5)


@pytest.mark.django_db
def test_a_cluster_reads_tls_redis_with_its_password_named_not_stored(
    tls_redis: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stored settings keep the TLS options in the URL and only the name of the password's
    variable (processes/source_config.py); the source gets the password from the environment."""
    from processes.importer.sources import open_source
    from processes.services import cluster_create

    port, ca = tls_redis
    redis.Redis.from_url(
        f"rediss://:{PASSWORD}@127.0.0.1:{port}/0?ssl_ca_certs={ca}&ssl_cert_reqs=required"
    ).xadd("named:PROCESS", {"1700000000000": json.dumps(RECORD)})
    monkeypatch.setenv("FF_TEST_TLS_REDIS_PW", PASSWORD)
    cluster = cluster_create(
        cluster_id=1,
        name="tls",
        gateway_address="127.0.0.1:26500",
        record_source="redis",
        record_source_config={
            "url": f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}&ssl_cert_reqs=required",
            "stream_prefix": "named",
            "password_env": "FF_TEST_TLS_REDIS_PW",
        },
    )
    source = open_source(cluster)
    try:
        assert len(source.fetch({}, max_records=10, wait_seconds=2.0)) == 1
    finally:
        source.close()
