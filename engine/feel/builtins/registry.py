"""Registry of built-in functions and the conventions they follow.

A built-in is registered with a parameter list written like feel-scala's signature
(`"string, start position, length?"`, `"list, items..."`); the same name may be registered
several times (overloads, alternative parameter names such as `get value(m:)` and
`get value(context:)`). Implementations take positional Python arguments and signal a
*suppressed* failure (feel-scala: null plus a warning) by raising `InvalidArgument`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.feel.values import FeelFunction


class InvalidArgument(Exception):
    """A built-in got arguments it cannot work with: the call evaluates to null."""


@dataclass(frozen=True)
class Signature:
    name: str
    parameters: tuple[str, ...]
    required: int
    varargs: bool
    implementation: Callable[..., Any]

    def accepts_count(self, count: int) -> bool:
        if count < self.required:
            return False
        return self.varargs or count <= len(self.parameters)


BUILTINS: dict[str, list[Signature]] = {}


def builtin(name: str, parameters: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `implementation` as the FEEL function `name` with `parameters`."""
    names: list[str] = []
    required = 0
    varargs = False
    for raw in (part.strip() for part in parameters.split(",") if part.strip()):
        if raw.endswith("..."):
            varargs = True
            names.append(raw[:-3].strip())
        elif raw.endswith("?"):
            names.append(raw[:-1].strip())
        else:
            names.append(raw)
            required += 1

    def register(implementation: Callable[..., Any]) -> Callable[..., Any]:
        BUILTINS.setdefault(name, []).append(Signature(name, tuple(names), required, varargs, implementation))
        return implementation

    return register


# Evaluates a parsed expression that needs no variables. The compiler registers it when it is
# imported: built-ins that read FEEL text (range("[1..3]")) call it instead of importing the
# compiler, which imports this registry (no import cycle).
_constant_evaluator: Callable[[Any], Any] | None = None


def register_constant_evaluator(evaluate: Callable[[Any], Any]) -> None:
    global _constant_evaluator
    _constant_evaluator = evaluate


def evaluate_constant(tree: Any) -> Any:
    if _constant_evaluator is None:  # pragma: no cover - engine.feel.compiler registers it on import
        raise InvalidArgument("the FEEL compiler is not loaded")
    return _constant_evaluator(tree)


def resolve_positional(name: str, count: int) -> Signature | None:
    for signature in BUILTINS.get(name, ()):
        if signature.accepts_count(count):
            return signature
    return None


def resolve_named(name: str, argument_names: list[str]) -> tuple[Signature, list[str]] | None:
    """The first signature whose parameter names cover the given names (and all required)."""
    given = set(argument_names)
    for signature in BUILTINS.get(name, ()):
        parameters = signature.parameters
        if not given <= set(parameters):
            continue
        if not all(parameter in given for parameter in parameters[: signature.required]):
            continue
        last = max(parameters.index(argument) for argument in given) if given else -1
        return signature, list(parameters[: last + 1])
    return None


# argument helpers used by the built-in modules ---------------------------------------------


def number(value: Any) -> Decimal:
    if type(value) is not Decimal:
        raise InvalidArgument(f"expected a number but found {value!r}")
    return value


def integer(value: Any) -> int:
    """A whole-number argument (position, length, scale). Fractions are truncated, as
    feel-scala's `toInt` does (DMN TCK: `substring("foobar", 3, 3.8)` is "oba")."""
    return int(number(value))


def whole_number(value: Any) -> int:
    value = number(value)
    if value != value.to_integral_value():
        raise InvalidArgument(f"expected a whole number but found {value}")
    return int(value)


def string(value: Any) -> str:
    if type(value) is not str:
        raise InvalidArgument(f"expected a string but found {value!r}")
    return value


def boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise InvalidArgument(f"expected a boolean but found {value!r}")
    return value


def list_value(value: Any) -> list[Any]:
    if type(value) is not list:
        raise InvalidArgument(f"expected a list but found {value!r}")
    return value


def context_value(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise InvalidArgument(f"expected a context but found {value!r}")
    return value


def function_value(value: Any) -> FeelFunction:
    if not isinstance(value, FeelFunction):
        raise InvalidArgument(f"expected a function but found {value!r}")
    return value


def items_or_list(items: tuple[Any, ...]) -> list[Any]:
    """Varargs functions (`min(1, 2)` / `min([1, 2])` / `min(1)`) accept every spelling;
    no argument at all is invalid (`all()` is null)."""
    if not items:
        raise InvalidArgument("expected at least one argument")
    if len(items) == 1 and type(items[0]) is list:
        return items[0]
    return list(items)
