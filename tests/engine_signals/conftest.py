"""The engine fixtures of tests/engine (a real `python -m engine` on loopback)."""

from tests.engine.conftest import engine, fresh_engine  # noqa: F401  (fixtures)
