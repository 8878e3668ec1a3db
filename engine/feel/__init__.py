"""FEEL (Friendly Enough Expression Language) for the embedded Zeebe-compatible engine.

Parser: lark LALR(1) (`engine.feel.grammar`, `engine.feel.parser`); interpreter: closures
(`engine.feel.compiler`); built-ins in `engine.feel.builtins`. Semantics follow Camunda's
feel-scala, the engine inside Zeebe. Test data: `shared/data/feel` (`cases.jsonl`).

Error semantics (decided per case, following feel-scala >= 1.17 as embedded in Zeebe 8.3+,
and the expectations in the test data):

* Unparsable text -> `FeelSyntaxError` from `compile_expression` (deploy-time validation).
  This includes reserved words used as names (`in`, `then`, `{null: 1}`) and nesting deeper
  than `parser.MAX_NESTING_DEPTH`.
* A missing variable or context entry evaluates to null (`x = null` is true, `x < 1` is
  null). A warning is recorded (see `CompiledExpression.evaluate_with_warnings`).
* Type mismatches (`2 + true`, `1 < "a"`, `1 = true`), division by zero, unknown
  functions and wrong arguments (`abs()`, `abs("a")`) evaluate to null plus a warning. The
  engine decides whether null is acceptable (a gateway condition that yields null is an
  incident there, not here).
* `assert(value, condition)` with a condition that is not true raises
  `FeelEvaluationError` (feel-scala `failWith`); Zeebe makes that an incident. So does `?`
  outside unary tests, and - defensively - any internal defect or variables nested so
  deeply that converting them would exhaust the stack.
* Conflicting sources (shared/data/feel/conflicts.json): feel-scala wins, as MANIFEST.md
  point 6 says: `abs(number: -1)` is 1, `[1]` stays a list (no DMN singleton coercion),
  `sublist/remove/insert before` with position 0 are null, `string({a:1})` is `{a:1}`.

Other decisions taken from feel-scala (its tests in the data, or its interpreter):
`and`/`or`/`some`/`every` are three-valued (a decisive value wins, otherwise a non-boolean
makes the result null); `if` treats a non-boolean condition as false; a filter whose
condition is a comparison is boolean, any other condition that yields a number on the first
item is an index (`[1,2,3][abs(1)]` is 1); `is defined(null)` is false; `partial` in `for`
is a snapshot of the earlier results.

Numbers are `decimal.Decimal` with 34 digits internally; `evaluate()` returns JSON-ready
values (`to_json_value`: int when integral else float; temporal values as ISO strings, a
zoned date-time as `2024-01-01T10:00:00+01:00[Europe/Berlin]`), `evaluate_raw()` keeps FEEL
values. Temporal limits of Python's datetime apply: years 1..9999; digits below the microsecond
are kept by parsing, formatting, comparison and conversions (`temporal.NanoTime`), not by arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from engine.feel import ast
from engine.feel.budget import Budget, validate_cpu_seconds
from engine.feel.builtins import load_all as _load_builtins
from engine.feel.compiler import Compiler, Evaluator
from engine.feel.errors import FeelError, FeelEvaluationError, FeelSyntaxError
from engine.feel.parser import parse, parse_unary_tests_tree
from engine.feel.scope import Scope, root_scope
from engine.feel.values import to_json_value

_load_builtins()

__all__ = [
    "CompiledExpression",
    "CompiledUnaryTests",
    "FeelError",
    "FeelEvaluationError",
    "FeelSyntaxError",
    "compile_expression",
    "evaluate",
    "evaluate_raw",
    "parse_unary_tests",
    "to_json_value",
]


class CompiledExpression:
    """A parsed and compiled expression; immutable and safe to share between threads."""

    __slots__ = ("_evaluator", "_referenced_names", "text")

    def __init__(self, text: str, tree: ast.Node) -> None:
        compiler = Compiler()
        self.text = text
        self._evaluator: Evaluator = compiler.compile(tree)
        self._referenced_names = frozenset(compiler.referenced_names)

    def _run(self, scope: Scope, *, as_json: bool) -> Any:
        try:
            value = self._evaluator(scope)
            return to_json_value(value) if as_json else value
        except FeelError:
            raise
        except RecursionError:
            # only reachable through absurdly nested *variables*: the expression's own
            # nesting is bounded by the parser
            raise FeelEvaluationError(f"failed to evaluate '{self.text}': values nested too deeply") from None
        except Exception as error:  # a defect here must become an incident, not a crash
            raise FeelEvaluationError(
                f"failed to evaluate '{self.text}': internal error {type(error).__name__}: {error}"
            ) from error

    def evaluate_raw(self, variables: Mapping[str, Any], *, cpu_seconds: float | None = None) -> Any:
        """The result as a FEEL value (Decimal numbers, temporal objects, ...)."""
        return self._run(_scope(variables, cpu_seconds), as_json=False)

    def evaluate_with_warnings(
        self, variables: Mapping[str, Any], *, cpu_seconds: float | None = None
    ) -> tuple[Any, list[str]]:
        """(JSON-compatible result, warnings) - the warnings explain a null result, like
        feel-scala's suppressed failures that Zeebe quotes in incident messages."""
        scope = _scope(variables, cpu_seconds)
        return self._run(scope, as_json=True), list(scope.warnings)

    def evaluate(self, variables: Mapping[str, Any], *, cpu_seconds: float | None = None) -> Any:
        """The result as a JSON-compatible Python value.

        `cpu_seconds` overrides the CPU allowance of this evaluation (default: the process-wide
        one, `engine.feel.budget.default_cpu_seconds()`, 5 ms unless ENGINE_FEEL_CPU_MS says
        otherwise)."""
        scope = root_scope(variables) if cpu_seconds is None else _scope(variables, cpu_seconds)
        return self._run(scope, as_json=True)

    def referenced_names(self) -> set[str]:
        """Top-level variable names the expression reads (not loop/context-local names)."""
        return set(self._referenced_names)

    def __repr__(self) -> str:
        return f"CompiledExpression({self.text!r})"


def _scope(variables: Mapping[str, Any], cpu_seconds: float | None) -> Scope:
    if cpu_seconds is None:
        return root_scope(variables)
    return root_scope(variables, Budget(cpu_seconds=validate_cpu_seconds(cpu_seconds)))


@lru_cache(maxsize=4096)
def compile_expression(text: str) -> CompiledExpression:
    """Parse and compile `text` (without the BPMN `=` prefix); raises `FeelSyntaxError`."""
    return CompiledExpression(text, parse(text))


def evaluate(text: str, variables: Mapping[str, Any] | None = None) -> Any:
    """Compile (cached) and evaluate; the result is JSON-compatible."""
    return compile_expression(text).evaluate(variables or {})


def evaluate_raw(text: str, variables: Mapping[str, Any] | None = None) -> Any:
    return compile_expression(text).evaluate_raw(variables or {})


class CompiledUnaryTests:
    """DMN-style unary tests (`< 10`, `[1..5]`, `"a", "b"`, `not(3)`, `-`) against an input."""

    __slots__ = ("_evaluator", "text")

    def __init__(self, text: str, evaluator: Evaluator) -> None:
        self.text = text
        self._evaluator = evaluator

    def matches(
        self,
        input_value: Any,
        variables: Mapping[str, Any] | None = None,
        *,
        cpu_seconds: float | None = None,
    ) -> bool | None:
        bindings = dict(variables or {})
        bindings["?"] = input_value
        try:
            result = self._evaluator(_scope(bindings, cpu_seconds))
        except RecursionError:
            raise FeelEvaluationError(f"failed to evaluate '{self.text}': values nested too deeply") from None
        return result if result is None or type(result) is bool else None


@lru_cache(maxsize=1024)
def parse_unary_tests(text: str) -> CompiledUnaryTests:
    """Compile DMN unary tests; raises `FeelSyntaxError`."""
    tree = parse_unary_tests_tree(text)
    return CompiledUnaryTests(text, Compiler().compile(tree))
