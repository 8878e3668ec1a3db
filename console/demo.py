"""`make demo`: run Fleetflow on embedded defaults and print the URL.

Migrates the SQLite database, makes sure a demo login exists, and serves the console with Daphne on
127.0.0.1. Later stages (embedded clusters, proxy, workers, importer) are started here as they land.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PORT = int(os.environ.get("FLEETFLOW_DEMO_PORT", "8000"))
DEMO_USER, DEMO_PASSWORD = "admin", "admin"


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    user_model = get_user_model()
    if not user_model.objects.filter(username=DEMO_USER).exists():
        user_model.objects.create_superuser(DEMO_USER, "admin@example.invalid", DEMO_PASSWORD)

    web = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", HOST, "-p", str(PORT), "console.asgi:application"], cwd=REPO
    )
    print(f"\nFleetflow console: http://{HOST}:{PORT}/  (login {DEMO_USER} / {DEMO_PASSWORD})\n", flush=True)

    def stop(_signum: int, _frame: object) -> None:
        web.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return web.wait()


if __name__ == "__main__":
    sys.exit(main())
