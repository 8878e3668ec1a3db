"""`python -m engine --port PORT --partitions N --data-dir DIR [--host HOST] [--event-loop auto|asyncio|uvloop]
[--export URL ...]`: one embedded cluster.

`--export redis://HOST:PORT[/DB][?name=zeebe]` writes every record to the zeebe-redis-exporter's
JSON streams, `--export http://HOST:9200[?prefix=zeebe-record]` indexes events like Zeebe's
Elasticsearch exporter; repeatable, each with its own position in DIR/exporters/ (engine/exporters/).

`python -m engine check-log DIR [--repair]`: the recovery tool for a data directory the engine
refuses to start on (`LogCorruption`: damage that is not a torn tail). Without `--repair` it only
reads and prints, per partition, the segments' position ranges, a torn tail, the first damage
(file and byte offset) and the snapshot's state; exit status 1 if there is damage. With
`--repair` it cuts each damaged partition at the last complete batch before its damage and
moves what it cut (and a snapshot beyond the new end) to `partition-N/damaged-<time>/`: the
records after the damage are then gone from the engine, so take a copy of DIR first.

`--event-loop auto` (the default) runs on uvloop when it is installed: in bench/engine.py it
raises throughput and lowers the job delivery p99 on a 2-core machine (grpc.aio's callbacks
are a large share of the engine's CPU and uvloop's loop is cheaper per callback).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from engine.backpressure import DEFAULT_LIMIT
from engine.exporters import ExporterConfigError, exporter_for
from engine.log import LogCorruption
from engine.server import serve
from gatewaykit.auth import AuthConfigError, BearerAuthInterceptor, server_credentials, verifier_from_options


def check_log_main(argv: list[str]) -> int:
    from engine.log import LogCorruption, check_log

    parser = argparse.ArgumentParser(
        prog="python -m engine check-log", description="Check (and optionally cut) a damaged engine log"
    )
    parser.add_argument("data_dir")
    parser.add_argument("--repair", action="store_true", help="cut damaged partitions at their damage")
    args = parser.parse_args(argv)
    try:
        lines, healthy = check_log(args.data_dir, repair=args.repair)
    except (OSError, LogCorruption) as exc:
        print(f"check-log: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    if not lines:
        print(f"no partitions under {args.data_dir}")
    print("log is healthy" if healthy else "log is DAMAGED: the engine will refuse to start (see --repair)")
    return 0 if healthy else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "check-log":
        return check_log_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m engine", description="Fleetflow embedded Zeebe-compatible engine"
    )
    parser.add_argument("--port", type=int, default=26500)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--event-loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    parser.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics on http://127.0.0.1:PORT/metrics (engine/metrics.py)",
    )
    parser.add_argument(
        "--export",
        action="append",
        default=[],
        metavar="URL",
        help="export records to redis://HOST:PORT[/DB] (Redis streams, zeebe-redis-exporter JSON) or "
        "http://HOST:9200 (Elasticsearch, Zeebe's index layout); repeatable",
    )
    parser.add_argument(
        "--backpressure-limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"commands in flight per partition before new ones get RESOURCE_EXHAUSTED, as Zeebe's "
        f"backpressure (default {DEFAULT_LIMIT}; 0 = off; engine/backpressure.py)",
    )
    security = parser.add_argument_group("security (gatewaykit/auth.py)")
    security.add_argument("--tls-cert", metavar="FILE", help="serve TLS with this PEM certificate chain")
    security.add_argument("--tls-key", metavar="FILE", help="the PEM private key of --tls-cert")
    security.add_argument(
        "--oauth-issuer", metavar="URL", help="require bearer JWTs from this issuer (its JWKS is fetched)"
    )
    security.add_argument("--oauth-audience", metavar="NAME", help="the audience tokens must name")
    security.add_argument("--oauth-jwks", metavar="FILE", help="verify token signatures with this JWKS file")
    args = parser.parse_args(argv)
    if args.partitions < 1:
        parser.error("--partitions must be at least 1")
    if args.backpressure_limit < 0:
        parser.error("--backpressure-limit must be 0 (off) or positive")
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    loop_name = "asyncio"
    if args.event_loop != "asyncio":
        try:
            import uvloop

            uvloop.install()
            loop_name = f"uvloop {uvloop.__version__}"
        except ImportError:
            if args.event_loop == "uvloop":
                parser.error("--event-loop uvloop: uvloop is not installed")
    logging.getLogger("engine").info("event loop: %s", loop_name)
    try:
        tls = server_credentials(args.tls_cert, args.tls_key) if args.tls_cert else None
        verifier = verifier_from_options(
            issuer=args.oauth_issuer, audience=args.oauth_audience, jwks_file=args.oauth_jwks
        )
    except AuthConfigError as exc:
        parser.error(str(exc))
    auth = BearerAuthInterceptor(verifier) if verifier is not None else None
    # Checked here so that a bad URL stops the engine at start-up; the exporters run in a child
    # process (engine/exporters/process.py).
    exporter_ids: set[str] = set()
    try:
        for url in args.export:
            exporter = exporter_for(url)
            if exporter.exporter_id in exporter_ids:
                parser.error(f"--export {url}: the same target is named twice")
            exporter_ids.add(exporter.exporter_id)
            exporter.close()
    except ExporterConfigError as exc:
        parser.error(str(exc))
    try:
        asyncio.run(
            serve(
                args.data_dir,
                args.partitions,
                args.host,
                args.port,
                args.metrics_port,
                tls=tls,
                auth=auth,
                export_urls=args.export,
                backpressure_limit=args.backpressure_limit,
            )
        )
    except (ValueError, OSError, LogCorruption) as exc:
        logging.getLogger("engine").error("cannot start: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
