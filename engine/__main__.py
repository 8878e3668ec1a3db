"""`python -m engine --port PORT --partitions N --data-dir DIR [--host HOST]`: one embedded cluster."""

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
    args = parser.parse_args(argv)
    if args.partitions < 1:
        parser.error("--partitions must be at least 1")
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(serve(args.data_dir, args.partitions, args.host, args.port))
    except (ValueError, OSError) as exc:
        logging.getLogger("engine").error("cannot start: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
