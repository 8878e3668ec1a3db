"""The engine fixtures of tests/engine (a real `python -m engine` per module)."""

from tests.engine.conftest import engine, fresh_engine

__all__ = ["engine", "fresh_engine"]
