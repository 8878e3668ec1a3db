"""The engine's gateway over TLS with bearer JWTs (gatewaykit/auth.py): real clients get through with
tokens from a local OAuth endpoint; every bad or missing token gets UNAUTHENTICATED."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from pyzeebe import create_oauth2_client_credentials_channel
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc as pb_grpc

from tests.engine.helpers import one_task_process
from tests.security.conftest import (
    AUDIENCE,
    CLIENT_ID,
    CLIENT_SECRET,
    SecureProcess,
    secure_engine,
    tls_channel_credentials,
)
from tests.security.flows import pyzeebe_flow
from tests.security.oauth_server import TokenServer
from tests.security.pki import LocalCA, SigningKey
from tests.zbctl import require_zbctl


@pytest.fixture(scope="module")
def jwks_engine(
    tmp_path_factory: pytest.TempPathFactory, pki: LocalCA, signing_key: SigningKey
) -> Iterator[SecureProcess]:
    directory = tmp_path_factory.mktemp("jwks-engine")
    jwks = signing_key.write_jwks(directory / "jwks.json")
    engine = secure_engine(
        directory, pki, oauth=["--oauth-jwks", str(jwks), "--oauth-audience", AUDIENCE]
    ).start()
    yield engine
    engine.stop()


@pytest.fixture(scope="module")
def issuer_engine(
    tmp_path_factory: pytest.TempPathFactory, pki: LocalCA, token_server: TokenServer
) -> Iterator[SecureProcess]:
    directory = tmp_path_factory.mktemp("issuer-engine")
    engine = secure_engine(
        directory, pki, oauth=["--oauth-issuer", token_server.issuer, "--oauth-audience", AUDIENCE]
    ).start()
    yield engine
    engine.stop()


def topology(engine: SecureProcess, token: str | None) -> grpc.StatusCode:
    metadata = [("authorization", f"Bearer {token}")] if token is not None else None
    with grpc.secure_channel(engine.address, tls_channel_credentials(engine.ca)) as channel:
        try:
            pb_grpc.GatewayStub(channel).Topology(pb.TopologyRequest(), metadata=metadata, timeout=10)
        except grpc.RpcError as error:
            assert error.code() != grpc.StatusCode.UNAVAILABLE, error.details()
            if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                assert "token" in (error.details() or "")
            return error.code()
    return grpc.StatusCode.OK


def hs256_with_public_key(key: SigningKey, payload: dict) -> str:
    """An HS256 token whose HMAC secret is the public JWK (PyJWT refuses to make one)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    body = b64(json.dumps(payload).encode())
    secret = json.dumps(key.jwks()["keys"][0]).encode()
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def claims(**extra: object) -> dict:
    now = int(time.time())
    return {"iss": "x", "sub": "t", "aud": AUDIENCE, "iat": now, "exp": now + 300, **extra}


@pytest.mark.parametrize("which", ["jwks", "issuer"])
def test_bad_tokens_are_unauthenticated(
    which: str, request: pytest.FixtureRequest, signing_key: SigningKey, token_server: TokenServer
) -> None:
    engine: SecureProcess = request.getfixturevalue(f"{which}_engine")
    issuer = token_server.issuer
    good = signing_key.sign(claims(iss=issuer))
    assert topology(engine, good) == grpc.StatusCode.OK
    forger = SigningKey(signing_key.kid)  # same kid, another key: a forged signature
    now = int(time.time())
    bad = {
        "none": None,
        "garbage": "not-a-jwt",
        "expired": signing_key.sign(claims(iss=issuer, iat=now - 600, exp=now - 60)),
        "wrong audience": signing_key.sign(claims(iss=issuer, aud="operate-api")),
        "forged signature": forger.sign(claims(iss=issuer)),
        "unknown key": SigningKey("other").sign(claims(iss=issuer)),
        "no expiry": signing_key.sign({"iss": issuer, "aud": AUDIENCE}),
        # An HS256 token whose "secret" is the public JWKS: algorithm confusion must not pass.
        "alg confusion": hs256_with_public_key(signing_key, claims(iss=issuer)),
    }
    if which == "issuer":
        bad["wrong issuer"] = signing_key.sign(claims(iss="http://evil.example"))
    results = {name: topology(engine, token) for name, token in bad.items()}
    assert results == dict.fromkeys(bad, grpc.StatusCode.UNAUTHENTICATED)
    # streaming and long-poll calls are refused the same way
    with grpc.secure_channel(engine.address, tls_channel_credentials(engine.ca)) as channel:
        stream = pb_grpc.GatewayStub(channel).ActivateJobs(
            pb.ActivateJobsRequest(type="x", maxJobsToActivate=1, timeout=1000, requestTimeout=100),
            timeout=10,
        )
        with pytest.raises(grpc.RpcError) as refused:
            list(stream)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_plaintext_client_cannot_talk_to_a_tls_engine(jwks_engine: SecureProcess) -> None:
    with grpc.insecure_channel(jwks_engine.address) as channel, pytest.raises(grpc.RpcError) as refused:
        pb_grpc.GatewayStub(channel).Topology(pb.TopologyRequest(), timeout=3)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_pyzeebe_oauth_channel_completes_a_flow(
    issuer_engine: SecureProcess, token_server: TokenServer, tmp_path: Path
) -> None:
    async def run() -> list[dict]:
        channel = create_oauth2_client_credentials_channel(
            grpc_address=issuer_engine.address,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            authorization_server=token_server.token_url,
            audience=AUDIENCE,
            channel_credentials=tls_channel_credentials(issuer_engine.ca),
        )
        try:
            return await pyzeebe_flow(channel, tmp_path, "secure-flow", instances=3)
        finally:
            await channel.close()

    before = token_server.issued
    results = asyncio.run(run())
    assert [r["doubled"] for r in results] == [0, 2, 4]
    assert token_server.issued > before


def test_pyzeebe_with_wrong_secret_is_refused(
    issuer_engine: SecureProcess, token_server: TokenServer
) -> None:
    async def run() -> None:
        channel = create_oauth2_client_credentials_channel(
            grpc_address=issuer_engine.address,
            client_id=CLIENT_ID,
            client_secret="wrong",
            authorization_server=token_server.token_url,
            audience=AUDIENCE,
            channel_credentials=tls_channel_credentials(issuer_engine.ca),
        )
        try:
            await pb_grpc.GatewayStub(channel).Topology(pb.TopologyRequest(), timeout=10)
        finally:
            await channel.close()

    refused = token_server.refused
    with pytest.raises(grpc.RpcError) as error:
        asyncio.run(run())
    # pyzeebe's metadata plugin fails the call when the token endpoint says no: nothing reaches the engine
    assert error.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED)
    assert token_server.refused > refused


def test_zbctl_with_cert_path_and_oauth_completes_a_flow(
    issuer_engine: SecureProcess, token_server: TokenServer, tmp_path: Path
) -> None:
    import subprocess

    zbctl = require_zbctl()

    def run(*args: str, secret: str = CLIENT_SECRET) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(zbctl),
                *args,
                "--address",
                issuer_engine.address,
                "--certPath",
                str(issuer_engine.ca),
                "--clientId",
                CLIENT_ID,
                "--clientSecret",
                secret,
                "--authzUrl",
                token_server.token_url,
                "--audience",
                AUDIENCE,
                "--clientCache",
                str(tmp_path / f"cache-{secret}"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={"HOME": str(tmp_path), "SSL_CERT_FILE": str(issuer_engine.ca)},
        )

    bpmn = tmp_path / "zb-secure.bpmn"
    bpmn.write_bytes(one_task_process("zb-secure", "zb-secure-work"))
    deployed = run("deploy", "resource", str(bpmn))
    assert deployed.returncode == 0, deployed.stderr
    created = run("create", "instance", "zb-secure", "--variables", '{"sn": "SN-9"}')
    assert created.returncode == 0, created.stderr
    instance = json.loads(created.stdout)["processInstanceKey"]
    jobs = json.loads(run("activate", "jobs", "zb-secure-work", "--maxJobsToActivate", "1").stdout)["jobs"]
    assert len(jobs) == 1 and jobs[0]["processInstanceKey"] == instance
    completed = run("complete", "job", jobs[0]["key"])
    assert completed.returncode == 0, completed.stderr
    assert run("status").returncode == 0
    # a wrong secret gets no token; without a token the engine refuses
    assert run("status", secret="wrong").returncode != 0
    unauthenticated = subprocess.run(
        [str(zbctl), "status", "--address", issuer_engine.address, "--certPath", str(issuer_engine.ca)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"HOME": str(tmp_path), "SSL_CERT_FILE": str(issuer_engine.ca)},
    )
    assert unauthenticated.returncode != 0 and "Unauthenticated" in unauthenticated.stderr
