"""The proxy secured on both sides: TLS + bearer JWTs on its own port (gatewaykit/auth.py, as the engine's),
TLS + OAuth client credentials to two engines that require tokens (routing/security.py)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from pyzeebe import create_oauth2_client_credentials_channel
from pyzeebe.proto import gateway_pb2 as pb
from pyzeebe.proto import gateway_pb2_grpc as pb_grpc

from routing.clusters import ClusterConfigError, parse_cluster_spec
from routing.security import UpstreamSecurity
from tests.security.conftest import (
    AUDIENCE,
    CLIENT_ID,
    CLIENT_SECRET,
    REPO_ROOT,
    SecureProcess,
    secure_engine,
    tls_channel_credentials,
)
from tests.security.flows import pyzeebe_flow
from tests.security.oauth_server import TokenServer
from tests.security.pki import LocalCA, SigningKey
from tests.security.test_engine_security import claims, hs256_with_public_key
from tests.services import free_port

PROXY_CLIENT = "fleetflow-proxy"
PROXY_SECRET_ENV = "FLEETFLOW_TEST_PROXY_SECRET"
LIFETIME = 4  # seconds: the proxy renews its upstream token every ~2 s during the tests


def test_cluster_spec_security_options(tmp_path: Path) -> None:
    cluster = parse_cluster_spec(
        "3=gw.example:443,tls=1,ca=/etc/ca.pem,server_name=zeebe.internal,token_url=https://id.example/token,"
        "client_id=ops,client_secret_env=ZEEBE_SECRET,audience=zeebe-api"
    )
    assert cluster.security == UpstreamSecurity(
        tls=True,
        ca="/etc/ca.pem",
        server_name="zeebe.internal",
        token_url="https://id.example/token",
        client_id="ops",
        client_secret_env="ZEEBE_SECRET",
        audience="zeebe-api",
    )
    assert "client_secret" not in json.dumps(cluster.to_mapping()).replace("client_secret_env", "")
    refused = {
        "no tls for oauth": "1=h:1,token_url=https://x/t,client_id=a,client_secret_env=S",
        "plain http token url": "1=h:1,tls=1,token_url=http://x/t,client_id=a,client_secret_env=S",
        "secret in clear": "1=h:1,tls=1,token_url=https://x/t,client_id=a,client_secret=hunter2",
        "two secrets": "1=h:1,tls=1,token_url=https://x/t,client_id=a,client_secret_env=S,client_secret_file=/f",
        "no secret": "1=h:1,tls=1,token_url=https://x/t,client_id=a",
        "ca without tls": "1=h:1,ca=/x",
        "bad tls": "1=h:1,tls=maybe",
    }
    for case, spec in refused.items():
        with pytest.raises(ClusterConfigError):
            parse_cluster_spec(spec)
            pytest.fail(case)


@pytest.fixture(scope="module")
def short_tokens(pki: LocalCA, signing_key: SigningKey, token_server: TokenServer) -> Iterator[TokenServer]:
    """A second issuer endpoint with the same key and short-lived tokens (same issuer URL checks
    do not apply: the engines below verify against the main issuer's JWKS, which is the same key)."""
    with TokenServer(
        signing_key,
        {CLIENT_ID: CLIENT_SECRET, PROXY_CLIENT: "proxy-secret"},
        tls=pki.issue("oauth-short"),
        lifetime=LIFETIME,
    ) as server:
        server.issuer = token_server.issuer  # tokens name the issuer the engines trust
        yield server


class Fleet:
    def __init__(self, engines: list[SecureProcess], proxy: SecureProcess, state_dir: Path) -> None:
        self.engines = engines
        self.proxy = proxy
        self.state_dir = state_dir

    def metrics(self) -> dict:
        return json.loads((self.state_dir / "metrics.json").read_text())


def start_proxy(
    directory: Path, pki: LocalCA, clusters: list[dict], oauth: list[str]
) -> tuple[SecureProcess, Path]:
    cert = pki.issue("proxy")
    clusters_file = directory / "clusters.json"
    clusters_file.write_text(json.dumps(clusters))
    state_dir = directory / "proxy-state"
    port = free_port()
    args = [
        "-m",
        "routing",
        "--port",
        str(port),
        "--clusters",
        str(clusters_file),
        "--state-dir",
        str(state_dir),
        "--tls-cert",
        str(cert.cert),
        "--tls-key",
        str(cert.key),
        *oauth,
    ]
    return SecureProcess(args, port, pki.ca_path, directory / "proxy.log"), state_dir


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory,
    pki: LocalCA,
    token_server: TokenServer,
    short_tokens: TokenServer,
) -> Iterator[Fleet]:
    directory = tmp_path_factory.mktemp("fleet")
    oauth = ["--oauth-issuer", token_server.issuer, "--oauth-audience", AUDIENCE]
    engines = [secure_engine(directory, pki, oauth=oauth, stem=f"engine{n}").start() for n in (1, 2)]
    security = {
        "tls": True,
        "ca": str(pki.ca_path),
        "token_url": short_tokens.token_url,
        "client_id": PROXY_CLIENT,
        "client_secret_env": PROXY_SECRET_ENV,
        "audience": AUDIENCE,
    }
    clusters = [{"id": n, "address": e.address, "security": security} for n, e in enumerate(engines, start=1)]
    os.environ[PROXY_SECRET_ENV] = "proxy-secret"
    proxy, state_dir = start_proxy(directory, pki, clusters, oauth)
    try:
        proxy.start()
        yield Fleet(engines, proxy, state_dir)
    finally:
        os.environ.pop(PROXY_SECRET_ENV, None)
        proxy.stop()
        for engine in engines:
            engine.stop()


def wait_up(fleet: Fleet, ids: set[str], timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    metrics: dict = {}
    while time.monotonic() < deadline:
        try:
            metrics = fleet.metrics()
        except (OSError, ValueError):
            metrics = {}
        if metrics and all(metrics["clusters"].get(i, {}).get("health") == "up" for i in ids):
            return metrics
        time.sleep(0.1)
    raise AssertionError(f"clusters {ids} not up: {json.dumps(metrics.get('clusters'))}\n{fleet.proxy.log()}")


def test_proxy_refuses_bad_tokens(fleet: Fleet, signing_key: SigningKey, token_server: TokenServer) -> None:
    wait_up(fleet, {"1", "2"})
    issuer = token_server.issuer
    now = int(time.time())
    cases = {
        "none": None,
        "expired": signing_key.sign(claims(iss=issuer, iat=now - 600, exp=now - 60)),
        "wrong audience": signing_key.sign(claims(iss=issuer, aud="operate-api")),
        "forged signature": SigningKey(signing_key.kid).sign(claims(iss=issuer)),
        "alg confusion": hs256_with_public_key(signing_key, claims(iss=issuer)),
        "wrong issuer": signing_key.sign(claims(iss="https://evil.example")),
    }
    with grpc.secure_channel(fleet.proxy.address, tls_channel_credentials(fleet.proxy.ca)) as channel:
        stub = pb_grpc.GatewayStub(channel)
        good = signing_key.sign(claims(iss=issuer))
        assert stub.Topology(pb.TopologyRequest(), metadata=[("authorization", f"Bearer {good}")], timeout=10)
        codes = {}
        for case, token in cases.items():
            metadata = [("authorization", f"Bearer {token}")] if token else None
            try:
                stub.Topology(pb.TopologyRequest(), metadata=metadata, timeout=10)
                codes[case] = grpc.StatusCode.OK
            except grpc.RpcError as error:
                codes[case] = error.code()
    assert codes == dict.fromkeys(cases, grpc.StatusCode.UNAUTHENTICATED)


def test_pyzeebe_flow_through_the_tls_proxy_and_token_refresh_under_load(
    fleet: Fleet, short_tokens: TokenServer, tmp_path: Path
) -> None:
    wait_up(fleet, {"1", "2"})
    proxy_fetches_before = sum(1 for r in short_tokens.requests if r.get("client_id") == PROXY_CLIENT)

    async def run() -> list[dict]:
        channel = create_oauth2_client_credentials_channel(
            grpc_address=fleet.proxy.address,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            authorization_server=short_tokens.token_url,
            audience=AUDIENCE,
            channel_credentials=tls_channel_credentials(fleet.proxy.ca),
            leeway=1,
        )
        try:
            # ~3 token lifetimes of continuous traffic: every call must succeed across renewals
            return await pyzeebe_flow(channel, tmp_path, "refresh", instances=4, keep_going_for=3 * LIFETIME)
        finally:
            await channel.close()

    started = time.monotonic()
    results = asyncio.run(run())
    assert len(results) >= 4 and all(r["doubled"] == 2 * r["n"] for r in results)
    proxy_fetches = sum(1 for r in short_tokens.requests if r.get("client_id") == PROXY_CLIENT)
    # the proxy renewed its upstream tokens while the calls went on (at least two renewals)
    fetch_times = [
        round(float(r["at"]) - started, 2)
        for r in short_tokens.requests
        if r.get("client_id") == PROXY_CLIENT
    ]
    print(
        "proxy token fetches (s since the load began):",
        fetch_times,
        "load lasted",
        round(time.monotonic() - started, 2),
    )
    assert proxy_fetches - proxy_fetches_before >= 2, (proxy_fetches_before, proxy_fetches, fetch_times)
    metrics = wait_up(fleet, {"1", "2"})
    assert all(c["health"] == "up" for c in metrics["clusters"].values())
    # instances were placed on both clusters (the creates went through both upstream channels)
    created = {cid: c["instancesCreated"] for cid, c in metrics["clusters"].items()}
    assert all(count > 0 for count in created.values()), created
    assert "proxy-secret" not in json.dumps(metrics), "the secret itself never reaches metrics.json"


def test_upstream_certificate_mismatch_marks_the_cluster_down(tmp_path: Path, pki: LocalCA) -> None:
    """An engine whose certificate names another host: the proxy refuses it (down, with the TLS
    reason) and does not fall back to plaintext; server_name= fixes it."""
    oauth: list[str] = []  # TLS only: this test is about the certificate
    cert = pki.issue("elsewhere", dns=("zeebe.elsewhere.test",), ips=())
    port = free_port()
    engine = SecureProcess(
        [
            "-m",
            "engine",
            "--port",
            str(port),
            "--partitions",
            "1",
            "--data-dir",
            str(tmp_path / "e"),
            "--tls-cert",
            str(cert.cert),
            "--tls-key",
            str(cert.key),
            *oauth,
        ],
        port,
        pki.ca_path,
        tmp_path / "elsewhere.log",
    )
    # started by hand: its certificate does not name 127.0.0.1, so SecureProcess.start's TLS probe
    # would fail; wait for its port instead
    engine.process = subprocess.Popen(
        [sys.executable, *engine.args],
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        stderr=engine.log_path.open("wb"),
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert engine.process.poll() is None, engine.log()
        time.sleep(0.1)
    security = {"tls": True, "ca": str(pki.ca_path)}
    clusters = [{"id": 1, "address": engine.address, "security": security}]
    proxy, state_dir = start_proxy(tmp_path, pki, clusters, [])
    fleet = Fleet([engine], proxy, state_dir)
    try:
        proxy.start()
        deadline = time.monotonic() + 20
        cluster: dict = {}
        while time.monotonic() < deadline:
            try:
                cluster = fleet.metrics()["clusters"]["1"]
            except (OSError, ValueError, KeyError):
                cluster = {}
            if cluster.get("health") == "down" and "refused" not in cluster.get("lastError", ""):
                break
            time.sleep(0.1)
        assert cluster.get("health") == "down", (cluster, proxy.log())
        reason = cluster["lastError"]
        print("health reason:", reason)
        assert "UNAVAILABLE" in reason and "refused" not in reason, reason
        assert "Hostname Verification" in reason and "does not name '127.0.0.1'" in reason, reason
        assert "server_name=" in reason, reason
        # never a plaintext fallback: the engine saw no gateway call at all
        assert "Topology" not in engine.log()
        # the same cluster with the certificate's name as server_name comes up
        clusters[0]["security"] = {**security, "server_name": "zeebe.elsewhere.test"}
        (tmp_path / "clusters.json").write_text(json.dumps(clusters))
        wait_up(fleet, {"1"})
    finally:
        proxy.stop()
        engine.stop()


def test_routing_client_reaches_secured_clusters(
    fleet: Fleet, pki: LocalCA, short_tokens: TokenServer
) -> None:
    """The operator actions' Router opens TLS + OAuth channels from the same cluster settings."""
    from routing.client import GatewayError, Router
    from routing.keys import to_global

    clusters = json.loads((fleet.state_dir.parent / "clusters.json").read_text())
    router = Router(clusters)
    for cluster in clusters:
        stub, _local = router.gateway_for(to_global(cluster["id"], 2251799813685249))
        topology = stub.Topology(pb.TopologyRequest(), timeout=10)
        assert topology.brokers
    # an unknown job on a secured cluster: the engine's own NOT_FOUND, so the call got through auth
    with pytest.raises(GatewayError) as answer:
        router.complete_job(to_global(1, 2251799813685249), {})
    assert answer.value.code == grpc.StatusCode.NOT_FOUND
    # the same cluster without its OAuth settings: the engine says UNAUTHENTICATED
    bare = [{**clusters[0], "id": 1, "security": {"tls": True, "ca": str(pki.ca_path)}}]
    with pytest.raises(GatewayError) as refused:
        Router(bare).complete_job(to_global(1, 2251799813685249), {})
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_zbctl_through_the_tls_proxy(fleet: Fleet, token_server: TokenServer, tmp_path: Path) -> None:
    """zbctl with --certPath and the OAuth flags: deploy, create, activate, complete via the proxy."""
    from tests.engine.helpers import one_task_process
    from tests.zbctl import require_zbctl

    zbctl = require_zbctl()
    wait_up(fleet, {"1", "2"})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(zbctl),
                *args,
                "--address",
                fleet.proxy.address,
                "--certPath",
                str(fleet.proxy.ca),
                "--clientId",
                CLIENT_ID,
                "--clientSecret",
                CLIENT_SECRET,
                "--authzUrl",
                token_server.token_url,
                "--audience",
                AUDIENCE,
                "--clientCache",
                str(tmp_path / "cache"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={"HOME": str(tmp_path), "SSL_CERT_FILE": str(fleet.proxy.ca)},
        )

    bpmn = tmp_path / "zb-proxy.bpmn"
    bpmn.write_bytes(one_task_process("zb-proxy", "zb-proxy-work"))
    assert run("deploy", "resource", str(bpmn)).returncode == 0
    created = run("create", "instance", "zb-proxy")
    assert created.returncode == 0, created.stderr
    instance = json.loads(created.stdout)["processInstanceKey"]
    activated = run("activate", "jobs", "zb-proxy-work", "--maxJobsToActivate", "1", "--requestTimeout", "5s")
    jobs = json.loads(activated.stdout)["jobs"]
    assert [job["processInstanceKey"] for job in jobs] == [instance]
    completed = run("complete", "job", jobs[0]["key"])
    assert completed.returncode == 0, completed.stderr
