"""Fixtures: a test CA and token endpoint made in the run, engines serving TLS and requiring tokens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.security.oauth_server import TokenServer
from tests.security.pki import LocalCA, SigningKey
from tests.services import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
AUDIENCE = "zeebe-api"
CLIENT_ID = "fleetflow-worker"
CLIENT_SECRET = "s3cret-for-tests"


def tls_channel_credentials(ca: Path) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(root_certificates=ca.read_bytes())


class SecureProcess:
    """`python -m engine` or `python -m routing` with security options, as a child process."""

    def __init__(self, args: list[str], port: int, ca: Path, log_path: Path) -> None:
        self.args = args
        self.port = port
        self.ca = ca
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> SecureProcess:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        with open(self.log_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, *self.args], cwd=REPO_ROOT, env=env, stderr=stderr, stdout=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        # Health is callable without a token (gatewaykit/auth.py OPEN_SERVICES), over TLS.
        with grpc.secure_channel(self.address, tls_channel_credentials(self.ca)) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"exited early:\n{self.log()}")
                try:
                    answer = stub.Check(
                        health_pb2.HealthCheckRequest(service="gateway_protocol.Gateway"), timeout=1
                    )
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        return self
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        raise TimeoutError(f"not serving after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)


def secure_engine(directory: Path, ca: LocalCA, *, oauth: list[str], stem: str = "engine") -> SecureProcess:
    cert = ca.issue(stem)
    port = free_port()
    args = [
        "-m",
        "engine",
        "--port",
        str(port),
        "--partitions",
        "1",
        "--data-dir",
        str(directory / stem),
        "--tls-cert",
        str(cert.cert),
        "--tls-key",
        str(cert.key),
        *oauth,
    ]
    return SecureProcess(args, port, ca.ca_path, directory / f"{stem}.log")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    return SigningKey("test-key-1")


@pytest.fixture(scope="module")
def token_server(pki: LocalCA, signing_key: SigningKey) -> Iterator[TokenServer]:
    """The HTTPS token endpoint; this process and its children trust the test CA while it runs."""
    saved = {name: os.environ.get(name) for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")}
    os.environ["SSL_CERT_FILE"] = os.environ["REQUESTS_CA_BUNDLE"] = str(pki.ca_path)
    try:
        with TokenServer(signing_key, {CLIENT_ID: CLIENT_SECRET}, tls=pki.issue("oauth")) as server:
            yield server
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
