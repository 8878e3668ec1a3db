"""Command line: ``python -m routing --port PORT --cluster ID=HOST:PORT[,weight=W][,state=S] ...``.

A cluster spec may add its TLS/OAuth settings (routing/security.py): ``tls=1,ca=FILE,
server_name=NAME,token_url=URL,client_id=ID,client_secret_env=VAR|client_secret_file=FILE,
audience=AUD``. ``--tls-cert/--tls-key`` and ``--oauth-*`` secure the proxy's own port.

Or ``--clusters FILE`` (a JSON list of ``{"id", "name", "address", "weight", "state"}``, re-read
within a second of a change, no restart). Logs to stderr; SIGTERM/SIGINT stop it cleanly;
serves gRPC health (``gateway_protocol.Gateway`` SERVING). ``--state-dir`` keeps the deployment
journal (``deployments.json``) and the per-cluster metrics (``metrics.json``, every second).
"""

from __future__ import annotations

import argparse
import logging
import sys

from gatewaykit.auth import (
    AuthConfigError,
    BearerAuthInterceptor,
    server_credentials,
    verifier_from_options,
)
from routing.clusters import (
    ClusterConfigError,
    ClusterSource,
    file_source,
    parse_cluster_spec,
    static_source,
)
from routing.metrics import serve_metrics
from routing.server import ProxyServer, serve


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The cluster-source flags, shared with ``RoutingChannel.from_args`` (routing/channel.py)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--cluster",
        action="append",
        metavar="ID=HOST:PORT[,weight=W][,state=STATE][,name=NAME]",
        help="a cluster (repeatable); state is active, draining or disabled",
    )
    source.add_argument("--clusters", metavar="FILE", help="JSON list of clusters, re-read when it changes")
    parser.add_argument("--state-dir", help="where metrics.json (and by default the deployment journal) live")
    parser.add_argument(
        "--journal",
        metavar="FILE",
        help="the deployment journal file (default STATE_DIR/deployments.json); several proxies and "
        "routing channels in front of the same clusters must share one (routing/journal.py)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.5,
        help="seconds between reads of the cluster source (max 1)",
    )


def source_from_args(args: argparse.Namespace) -> ClusterSource:
    """The cluster source the flags name; raises ClusterConfigError (a bad file fails now)."""
    if args.clusters:
        source = file_source(args.clusters)
        source()  # fail fast on a bad file at startup, with its message
        return source
    return static_source([parse_cluster_spec(spec) for spec in args.cluster])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m routing",
        description="Zeebe gateway proxy in front of many clusters (Fleetflow DESIGN §3).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="listen port (0 = any free port)")
    add_source_arguments(parser)
    parser.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics on http://127.0.0.1:PORT/metrics (routing/metrics.py)",
    )
    parser.add_argument("--log-level", default="INFO")
    security = parser.add_argument_group("security of the proxy's own port (gatewaykit/auth.py)")
    security.add_argument("--tls-cert", metavar="FILE", help="serve TLS with this PEM certificate chain")
    security.add_argument("--tls-key", metavar="FILE", help="the PEM private key of --tls-cert")
    security.add_argument(
        "--oauth-issuer", metavar="URL", help="require bearer JWTs from this issuer (its JWKS is fetched)"
    )
    security.add_argument("--oauth-audience", metavar="NAME", help="the audience tokens must name")
    security.add_argument("--oauth-jwks", metavar="FILE", help="verify token signatures with this JWKS file")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    try:
        tls = server_credentials(args.tls_cert, args.tls_key) if args.tls_cert else None
        verifier = verifier_from_options(
            issuer=args.oauth_issuer, audience=args.oauth_audience, jwks_file=args.oauth_jwks
        )
    except AuthConfigError as error:
        parser.error(str(error))
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        source = source_from_args(args)
    except ClusterConfigError as error:
        print(f"python -m routing: {error}", file=sys.stderr)
        return 2
    import asyncio

    server = ProxyServer(
        source,
        host=args.host,
        port=args.port,
        state_dir=args.state_dir,
        journal_path=args.journal,
        poll_interval=args.poll_interval,
        tls=tls,
        auth=BearerAuthInterceptor(verifier) if verifier is not None else None,
    )
    try:
        import uvloop  # optional: a faster event loop when installed

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(_serve(server, args.metrics_port))
    except OSError as error:
        print(f"python -m routing: {error}", file=sys.stderr)
        return 1
    return 0


async def _serve(server: ProxyServer, metrics_port: int | None) -> None:
    if metrics_port is not None:  # on 127.0.0.1 whatever --host is
        await serve_metrics(server.proxy.metrics, port=metrics_port)
    await serve(server)


if __name__ == "__main__":
    sys.exit(main())
