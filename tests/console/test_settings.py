"""Settings are read strictly from the environment: each case runs Django's settings in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], 'debug': s.DEBUG, "
    "'broker': s.CELERY_BROKER_URL, 'eager': s.CELERY_TASK_ALWAYS_EAGER, "
    "'layer': s.CHANNEL_LAYERS['default']['BACKEND']}))"
)


def run_settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY"}
    }
    clean.update(env, DJANGO_SETTINGS_MODULE="console.settings")
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=clean, capture_output=True, text=True, timeout=60
    )


def test_defaults_are_sqlite_and_in_process():
    result = run_settings(DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert '"engine": "django.db.backends.sqlite3"' in result.stdout
    assert '"eager": true' in result.stdout
    assert "InMemoryChannelLayer" in result.stdout


def test_postgres_and_redis_when_set():
    result = run_settings(
        SECRET_KEY="x" * 50,
        DATABASE_URL="postgres://u:p@127.0.0.1:5432/db",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    assert result.returncode == 0, result.stderr
    assert '"engine": "django.db.backends.postgresql"' in result.stdout
    assert '"debug": false' in result.stdout
    assert '"broker": "redis://127.0.0.1:6379/0"' in result.stdout
    assert '"eager": false' in result.stdout
    assert "RedisChannelLayer" in result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SECRET_KEY is required when DEBUG is off"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"DEBUG": "1", "DATABASE_URL": "mysqlx://nope"}, "DATABASE_URL is malformed"),
        ({"DEBUG": "1", "REDIS_URL": "127.0.0.1:6379"}, "must start with redis://"),
        ({"DEBUG": "1", "SECRET_KEY": "  "}, "SECRET_KEY is set but empty"),
        ({"DEBUG": "1", "FLEETFLOW_VARIABLE_PREVIEW_BYTES": "lots"}, "is not an integer"),
    ],
)
def test_malformed_settings_stop_start_up(env, message):
    result = run_settings(**env)
    assert result.returncode != 0
    assert message in result.stderr
