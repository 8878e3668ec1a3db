"""`python -m engine --port PORT --partitions N --data-dir DIR [--host HOST] [--event-loop auto|asyncio|uvloop]`:
one embedded cluster.

`--event-loop auto` (the default) runs on uvloop when it is installed: in bench/engine.py it
raises throughput and lowers the job delivery p99 on a 2-core machine (grpc.aio's callbacks
are a large share of the engine's CPU and uvloop's loop is cheaper per callback).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from engine.server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine", description="Fleetflow embedded Zeebe-compatible engine"
    )
    parser.add_argument("--port", type=int, default=26500)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--event-loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    args = parser.parse_args(argv)
    if args.partitions < 1:
        parser.error("--partitions must be at least 1")
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
        asyncio.run(serve(args.data_dir, args.partitions, args.host, args.port))
    except (ValueError, OSError) as exc:
        logging.getLogger("engine").error("cannot start: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
