"""`make demo`: `manage.py run_stack --demo` on SQLite in a local data folder (DESIGN §8).

Prints the console URL and the logins (admin, operator, viewer) once everything is up; Ctrl-C stops it.
Environment: FLEETFLOW_DEMO_PORT (web port, default 8000), FLEETFLOW_DEMO_GATEWAY_PORT (the Zeebe
gateway proxy, default 26500), FLEETFLOW_DEMO_DATA_DIR (default var/demo; delete it to start afresh).
DATABASE_URL and REDIS_URL are honoured when set, like everywhere else.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def command(environ: dict[str, str] | os._Environ[str] = os.environ) -> list[str]:
    data_dir = environ.get("FLEETFLOW_DEMO_DATA_DIR") or str(REPO / "var" / "demo")
    return [
        sys.executable,
        str(REPO / "manage.py"),
        "run_stack",
        "--demo",
        "--data-dir",
        data_dir,
        "--web-port",
        environ.get("FLEETFLOW_DEMO_PORT", "8000"),
        "--proxy-port",
        environ.get("FLEETFLOW_DEMO_GATEWAY_PORT", "26500"),
    ]


def main() -> int:
    os.environ.setdefault("DEBUG", "1")
    argv = command()
    # Replace this process: Ctrl-C and SIGTERM reach run_stack itself, which stops its children.
    os.execv(argv[0], argv)  # noqa: S606 (our own command, fixed arguments)


if __name__ == "__main__":
    sys.exit(main())
