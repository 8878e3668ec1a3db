"""FEEL built-in functions, one module per family; `load_all()` registers them all."""

from __future__ import annotations


def load_all() -> None:
    from engine.feel.builtins import (  # noqa: F401  (imported for registration)
        contexts,
        conversion,
        lists,
        misc,
        numbers,
        ranges,
        strings,
        temporal_functions,
    )
