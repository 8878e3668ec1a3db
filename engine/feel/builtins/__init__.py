"""FEEL built-in functions, one module per family; `load_all()` registers them all."""

from __future__ import annotations


def load_all() -> None:
    # Importing a family module registers its functions (see registry.builtin).
    import engine.feel.builtins.contexts
    import engine.feel.builtins.conversion
    import engine.feel.builtins.lists
    import engine.feel.builtins.misc
    import engine.feel.builtins.numbers
    import engine.feel.builtins.ranges
    import engine.feel.builtins.strings
    import engine.feel.builtins.temporal_functions  # noqa: F401
