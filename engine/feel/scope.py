"""Where an expression finds its variables: a chain of scopes ending at the caller's input.

Input variables stay JSON until an expression reads them (`InputVariables`), so a large
variable document that the expression never touches costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.feel.budget import Budget
from engine.feel.values import MISSING, from_python


class Scope:
    """Variables visible to an expression: a chain of dicts ending at the input variables."""

    __slots__ = ("bindings", "budget", "parent", "warnings")

    def __init__(self, bindings: Any, parent: Scope | None, warnings: list[str], budget: Budget) -> None:
        self.bindings = bindings
        self.parent = parent
        self.warnings = warnings
        # One budget per evaluation, shared by every scope of it (engine.feel.budget).
        self.budget = budget

    def lookup(self, name: str) -> Any:
        scope: Scope | None = self
        while scope is not None:
            value = scope.bindings.get(name, MISSING)
            if value is not MISSING:
                return value
            scope = scope.parent
        return MISSING

    def lookup_unconverted(self, name: str) -> Any:
        """Like `lookup`, but an input variable comes back as the caller's JSON value
        (not converted to FEEL values); see `Compiler._compile_json_path`."""
        scope: Scope | None = self
        while scope is not None:
            bindings = scope.bindings
            if type(bindings) is InputVariables:
                return bindings.get_unconverted(name)
            value = bindings.get(name, MISSING)
            if value is not MISSING:
                return value
            scope = scope.parent
        return MISSING

    def child(self, bindings: dict[str, Any]) -> Scope:
        return Scope(bindings, self, self.warnings, self.budget)


class InputVariables:
    """The caller's variables, converted to FEEL values on first access only (a big
    variable document that the expression never touches costs nothing)."""

    __slots__ = ("converted", "raw")

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.converted: dict[str, Any] = {}

    def get(self, name: str, default: Any) -> Any:
        value = self.converted.get(name, MISSING)
        if value is MISSING:
            raw = self.raw.get(name, MISSING)
            if raw is MISSING:
                return default
            value = from_python(raw)
            self.converted[name] = value
        return value

    def get_unconverted(self, name: str) -> Any:
        value = self.converted.get(name, MISSING)
        if value is MISSING:
            return self.raw.get(name, MISSING)
        return value


def root_scope(variables: Mapping[str, Any], budget: Budget | None = None) -> Scope:
    return Scope(InputVariables(variables), None, [], budget if budget is not None else Budget())
