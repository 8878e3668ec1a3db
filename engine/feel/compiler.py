"""Turns a FEEL syntax tree into nested Python closures and runs them.

Each node becomes `evaluate(scope) -> value`. Closures avoid re-dispatching on node types
at run time, which keeps `amount > 100` in the low microseconds. Nothing here calls
Python's `eval`/`exec`.

Failure policy (Zeebe 8.3+ / feel-scala >= 1.17, see the `engine.feel` docstring): type
mismatches, missing variables/entries, unknown functions and bad arguments evaluate to
null and append a warning to `scope.warnings`; only `assert()` and `?` outside unary tests
raise. Operators live in `engine.feel.operators`, scopes in `engine.feel.scope`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from engine.feel import ast, temporal
from engine.feel.budget import CHARGING_BUILTINS, ITEM_BYTES, run_charging, size_of
from engine.feel.builtins.registry import (
    BUILTINS,
    InvalidArgument,
    register_constant_evaluator,
    resolve_named,
    resolve_positional,
)
from engine.feel.errors import FeelEvaluationError
from engine.feel.operators import (
    ARITHMETIC,
    arithmetic_failure,
    compare_operator,
    get_path,
    list_item_at,
    negate,
)
from engine.feel.scope import Scope, root_scope
from engine.feel.types import is_instance_of
from engine.feel.values import (
    DECIMAL_CONTEXT,
    MISSING,
    FeelFunction,
    FeelRange,
    compare_values,
    from_python,
    in_range,
    kind_of,
    values_equal,
)

Evaluator = Callable[[Scope], Any]

__all__ = ["Compiler", "Evaluator", "Scope", "root_scope"]

# `for`/`some`/`every` over a numeric range materialise it; refuse silly sizes.
MAX_ITERATION_RANGE = 2_000_000


def _constant_index(condition: ast.Node) -> Decimal | None:
    """`xs[2]` / `xs[-1]`: an index known at compile time."""
    if isinstance(condition, ast.Const) and type(condition.value) is Decimal:
        return condition.value
    if (
        isinstance(condition, ast.Negate)
        and isinstance(condition.operand, ast.Const)
        and type(condition.operand.value) is Decimal
    ):
        return -condition.operand.value
    return None


def _mentions_name(node: ast.Node, name: str) -> bool:
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, ast.Name) and current.name == name:
            return True
        pending.extend(current.children())
    return False


def _is_boolean_operation(node: ast.Node) -> bool:
    """Comparisons, `and`/`or`, `in`, `between`, `instance of` - never a list index."""
    if isinstance(node, ast.Binary):
        return node.operator not in ARITHMETIC
    if isinstance(node, ast.Chain):
        return node.rest[0][0] in ("and", "or")
    return isinstance(node, (ast.In, ast.Between, ast.InstanceOf))


def _item_scope(scope: Scope, item: Any) -> Scope:
    if type(item) is dict:
        bindings = {"item": item}
        bindings.update(item)  # entries win over `item` (feel-scala filter context)
        return scope.child(bindings)
    return scope.child({"item": item})


# built-in and user function invocation ----------------------------------------------------


def invoke_function(function: Any, arguments: list[Any], scope: Scope) -> Any:
    if not isinstance(function, FeelFunction):
        scope.warnings.append(f"[FUNCTION_INVOCATION_FAILURE] {kind_of(function)} is not a function")
        return None
    return function.invoke(arguments)


def _run_builtin(name: str, implementation: Callable[..., Any], arguments: list[Any], scope: Scope) -> Any:
    # A built-in's work grows with its list and string arguments; what it returns is produced.
    work = 1
    for argument in arguments:
        kind = type(argument)
        if kind is list or kind is dict:  # get entries / context merge walk every entry
            work += len(argument)
        elif kind is str:
            work += len(argument) >> 6
    scope.budget.charge(work)
    try:
        if implementation in CHARGING_BUILTINS:
            result = run_charging(implementation, arguments, scope.budget)
        else:
            result = implementation(*arguments)
        scope.budget.charge(0, size_of(result))
        return result
    except FeelEvaluationError:
        raise
    except (
        InvalidArgument,
        TypeError,
        ValueError,
        ArithmeticError,
        IndexError,
        KeyError,
        OverflowError,
    ) as error:
        scope.warnings.append(f"[FUNCTION_INVOCATION_FAILURE] Failed to invoke '{name}': {error}")
        return None
    except RecursionError:
        scope.warnings.append(f"[FUNCTION_INVOCATION_FAILURE] '{name}' recursed too deeply")
        return None


class Compiler:
    """AST -> closures. Also collects the top-level names the expression reads."""

    def __init__(self) -> None:
        self.referenced_names: set[str] = set()
        self._bound: list[set[str]] = []

    def _is_bound(self, name: str) -> bool:
        return any(name in names for names in self._bound)

    def compile(self, node: ast.Node) -> Evaluator:
        method = getattr(self, "_compile_" + type(node).__name__)
        result: Evaluator = method(node)
        return result

    # leaves ------------------------------------------------------------------------------
    def _compile_Const(self, node: ast.Const) -> Evaluator:
        value = node.value
        return lambda scope: value

    def _compile_TemporalLiteral(self, node: ast.TemporalLiteral) -> Evaluator:
        value = temporal.parse_temporal_literal(node.text)
        text = node.text

        def evaluate(scope: Scope) -> Any:
            if value is None:
                scope.warnings.append(f"[INVALID_TYPE] '{text}' is not a temporal value")
            return value

        return evaluate

    def _compile_Name(self, node: ast.Name) -> Evaluator:
        name = node.name
        if not self._is_bound(name):
            self.referenced_names.add(name)

        def evaluate(scope: Scope) -> Any:
            value = scope.lookup(name)
            if value is MISSING:
                if name == "?":
                    # feel-scala fails hard: `?` only exists inside unary tests
                    raise FeelEvaluationError("no input value '?' available outside unary tests")
                scope.warnings.append(f"[NO_VARIABLE_FOUND] No variable found with name '{name}'")
                return None
            return value

        return evaluate

    # postfix -----------------------------------------------------------------------------
    def _compile_json_path(self, node: ast.Node) -> Evaluator | None:
        """`order.items[1].price`: walk the caller's JSON and convert only the value reached.

        Converting a whole variable to FEEL values costs time proportional to its size;
        mapping one field out of a large document is the most common Zeebe expression.
        `get_path` and `list_item_at` treat JSON dicts/lists exactly like FEEL contexts and
        lists, and a JSON scalar has no properties, so the result is the same."""
        steps: list[tuple[str | None, Decimal | None]] = []
        current = node
        while not isinstance(current, ast.Name):
            if isinstance(current, ast.Path):
                steps.append((current.key, None))
                current = current.target
            elif isinstance(current, ast.Filter):
                index = _constant_index(current.condition)
                if index is None:
                    return None
                steps.append((None, index))
                current = current.target
            else:
                return None
        name = current.name
        if not self._is_bound(name):
            self.referenced_names.add(name)
        steps.reverse()

        def evaluate(scope: Scope) -> Any:
            value = scope.lookup_unconverted(name)
            if value is MISSING:
                if name == "?":
                    raise FeelEvaluationError("no input value '?' available outside unary tests")
                scope.warnings.append(f"[NO_VARIABLE_FOUND] No variable found with name '{name}'")
                return None
            for key, index in steps:
                if key is not None:
                    value = get_path(value, key, scope)
                elif type(value) is list:
                    value = list_item_at(value, index)  # type: ignore[arg-type]
                else:
                    if value is not None:
                        scope.warnings.append(
                            f"[INVALID_TYPE] Expected a list to filter but found {kind_of(from_python(value))}"
                        )
                    return None
            return from_python(value)

        return evaluate

    def _compile_Path(self, node: ast.Path) -> Evaluator:
        json_path = self._compile_json_path(node)
        if json_path is not None:
            return json_path
        target = self.compile(node.target)
        key = node.key

        def evaluate(scope: Scope) -> Any:
            return get_path(target(scope), key, scope)

        return evaluate

    def _compile_Filter(self, node: ast.Filter) -> Evaluator:
        json_path = self._compile_json_path(node)
        if json_path is not None:
            return json_path
        target = self.compile(node.target)
        condition_node = node.condition
        self._bound.append({"item"})
        condition = self.compile(condition_node)
        self._bound.pop()

        constant_index = _constant_index(condition_node)
        # Comparisons are boolean filters right away; anything else (names, calls such as
        # `[1,2,3][abs(1)]`, ...) is probed on the first item: a number means an index.
        always_boolean = _is_boolean_operation(condition_node)

        def evaluate(scope: Scope) -> Any:
            items = target(scope)
            if type(items) is not list:
                if items is not None:
                    scope.warnings.append(
                        f"[INVALID_TYPE] Expected a list to filter but found {kind_of(items)}"
                    )
                return None
            if constant_index is not None:
                return list_item_at(items, constant_index)
            if not items:
                if not always_boolean and not isinstance(condition_node, ast.Call):
                    # feel-scala evaluates such a filter once outside the items first: a number
                    # is an index, out of range of an empty list (`[][a]` with a = 1 is null).
                    warnings = len(scope.warnings)
                    probe = condition(scope)
                    del scope.warnings[warnings:]
                    if type(probe) is Decimal:
                        return None
                return []
            scope.budget.charge(len(items), ITEM_BYTES * len(items))
            if not always_boolean:
                probe = condition(_item_scope(scope, items[0]))
                if type(probe) is Decimal:
                    return list_item_at(items, probe)
            return [item for item in items if condition(_item_scope(scope, item)) is True]

        return evaluate

    def _compile_Call(self, node: ast.Call) -> Evaluator:
        name = node.function_name
        positional = [self.compile(argument) for argument in node.positional or ()]
        named = [(key, self.compile(argument)) for key, argument in node.named or ()]
        is_named = node.named is not None

        if name == "is defined" and not is_named and len(node.positional or ()) == 1:
            return self._compile_is_defined(node.positional[0])  # type: ignore[index]

        if name is None:
            callee = self.compile(node.callee)  # type: ignore[arg-type]

            def evaluate_callee(scope: Scope) -> Any:
                function = callee(scope)
                if is_named:
                    scope.warnings.append(
                        "[FUNCTION_INVOCATION_FAILURE] Named arguments need a named function"
                    )
                    return None
                return invoke_function(function, [argument(scope) for argument in positional], scope)

            return evaluate_callee

        if not self._is_bound(name) and name not in BUILTINS:
            self.referenced_names.add(name)
        builtin_known = name in BUILTINS

        def evaluate(scope: Scope) -> Any:
            # A variable holding a function (e.g. from a context literal) shadows a built-in.
            function = scope.lookup(name) if not builtin_known or scope.parent is not None else MISSING
            if isinstance(function, FeelFunction):
                if is_named:
                    values = {key: argument(scope) for key, argument in named}
                    arguments = [values.get(parameter) for parameter in function.parameters]
                else:
                    arguments = [argument(scope) for argument in positional]
                return function.invoke(arguments)
            if not builtin_known:
                scope.warnings.append(f"[NO_FUNCTION_FOUND] No function found with name '{name}'")
                return None
            if is_named:
                resolved = resolve_named(name, [key for key, _ in named])
                if resolved is None:
                    scope.warnings.append(
                        f"[FUNCTION_INVOCATION_FAILURE] No function '{name}' with parameters "
                        f"{[key for key, _ in named]}"
                    )
                    return None
                signature, order = resolved
                values = {key: argument(scope) for key, argument in named}
                arguments = [values.get(parameter) for parameter in order]
                if signature.varargs and order and order[-1] == signature.parameters[-1]:
                    tail = arguments.pop()
                    arguments.extend(tail if type(tail) is list else [tail])
                return _run_builtin(name, signature.implementation, arguments, scope)
            arguments = [argument(scope) for argument in positional]
            positional_signature = resolve_positional(name, len(arguments))
            if positional_signature is None:
                scope.warnings.append(
                    f"[FUNCTION_INVOCATION_FAILURE] No function '{name}' taking {len(arguments)} argument(s)"
                )
                return None
            return _run_builtin(name, positional_signature.implementation, arguments, scope)

        return evaluate

    def _compile_is_defined(self, argument: ast.Node) -> Evaluator:
        """`is defined(x)`: false only for a missing variable / context entry, which the
        ordinary evaluation would already have turned into null."""
        if isinstance(argument, ast.Name):
            name = argument.name
            if not self._is_bound(name):
                self.referenced_names.add(name)
            return lambda scope: scope.lookup(name) not in (MISSING, None)
        if isinstance(argument, ast.Path):
            target = self.compile(argument.target)
            key = argument.key

            def evaluate_path(scope: Scope) -> Any:
                value = target(scope)
                if type(value) is dict:
                    return value.get(key) is not None
                found, property_value = temporal.temporal_property(value, key)
                return found and property_value is not None

            return evaluate_path
        inner = self.compile(argument)

        return lambda scope: inner(scope) is not None

    # operators ---------------------------------------------------------------------------
    def _compile_Negate(self, node: ast.Negate) -> Evaluator:
        operand = self.compile(node.operand)

        def evaluate(scope: Scope) -> Any:
            value = operand(scope)
            if type(value) is Decimal:
                return DECIMAL_CONTEXT.minus(value)
            result = negate(value)
            if result is None and value is not None:
                scope.warnings.append(f"[INVALID_TYPE] Can't negate {kind_of(value)}")
            return result

        return evaluate

    def _compile_Binary(self, node: ast.Binary) -> Evaluator:
        left = self.compile(node.left)
        right = self.compile(node.right)
        operator = node.operator

        if operator == "and":

            def evaluate_and(scope: Scope) -> Any:
                first = left(scope)
                if first is False:
                    return False
                second = right(scope)
                if second is False:
                    return False
                if first is True and second is True:
                    return True
                return None

            return evaluate_and

        if operator == "or":

            def evaluate_or(scope: Scope) -> Any:
                first = left(scope)
                if first is True:
                    return True
                second = right(scope)
                if second is True:
                    return True
                if first is False and second is False:
                    return False
                return None

            return evaluate_or

        if operator in ARITHMETIC:
            operation = ARITHMETIC[operator]

            def evaluate_arithmetic(scope: Scope) -> Any:
                first = left(scope)
                second = right(scope)
                result = operation(first, second)
                if result is None and first is not None and second is not None:
                    arithmetic_failure(scope, operator, first, second)
                elif type(result) is str:
                    scope.budget.charge(1, len(result))
                return result

            return evaluate_arithmetic

        if operator == ">" or operator == "<" or operator == ">=" or operator == "<=":
            test = {
                "<": lambda order: order < 0,
                "<=": lambda order: order <= 0,
                ">": lambda order: order > 0,
                ">=": lambda order: order >= 0,
            }[operator]

            def evaluate_order(scope: Scope) -> Any:
                first = left(scope)
                second = right(scope)
                if type(first) is Decimal and type(second) is Decimal:
                    return test((first > second) - (first < second))
                order = compare_values(first, second)
                if order is None:
                    if first is not None and second is not None:
                        scope.warnings.append(
                            f"[NOT_COMPARABLE] Can't compare {kind_of(first)} with {kind_of(second)}"
                        )
                    return None
                return test(order)

            return evaluate_order

        def evaluate_equality(scope: Scope) -> Any:
            first = left(scope)
            second = right(scope)
            result = compare_operator(operator, first, second)
            if result is None:
                scope.warnings.append(
                    f"[NOT_COMPARABLE] Can't compare {kind_of(first)} with {kind_of(second)}"
                )
            return result

        return evaluate_equality

    def _compile_Chain(self, node: ast.Chain) -> Evaluator:
        first = self.compile(node.first)
        rest = [(operator, self.compile(operand)) for operator, operand in node.rest]
        operator = node.rest[0][0]
        if len(rest) == 1:
            # the common two-operand case: reuse the specialised binary closures
            return self._compile_Binary(ast.Binary(operator, node.first, node.rest[0][1]))
        operands = [first, *(evaluator for _, evaluator in rest)]

        if operator == "and":

            def evaluate_all(scope: Scope) -> Any:
                # three-valued: any false -> false, all true -> true, otherwise null
                unknown = False
                for operand in operands:
                    value = operand(scope)
                    if value is False:
                        return False
                    if value is not True:
                        unknown = True
                return None if unknown else True

            return evaluate_all

        if operator == "or":

            def evaluate_any(scope: Scope) -> Any:
                unknown = False
                for operand in operands:
                    value = operand(scope)
                    if value is True:
                        return True
                    if value is not False:
                        unknown = True
                return None if unknown else False

            return evaluate_any

        steps = [(ARITHMETIC[operator], operator, evaluator) for operator, evaluator in rest]

        def evaluate_sum(scope: Scope) -> Any:
            result = first(scope)
            for operation, symbol, operand in steps:
                value = operand(scope)
                combined = operation(result, value)
                if combined is None and result is not None and value is not None:
                    arithmetic_failure(scope, symbol, result, value)
                result = combined
            return result

        return evaluate_sum

    def _compile_Between(self, node: ast.Between) -> Evaluator:
        value, low, high = self.compile(node.value), self.compile(node.low), self.compile(node.high)

        def evaluate(scope: Scope) -> Any:
            subject = value(scope)
            lower = compare_values(subject, low(scope))
            upper = compare_values(subject, high(scope))
            if lower is None or upper is None:
                return None
            return lower >= 0 and upper <= 0

        return evaluate

    def _compile_unary_test(self, test: ast.UnaryTest) -> Callable[[Scope, Any], bool | None]:
        operand = self.compile(test.operand)
        operator = test.operator
        if operator is not None:
            return lambda scope, subject: compare_operator(operator, subject, operand(scope))

        uses_input = _mentions_name(test.operand, "?")

        def evaluate(scope: Scope, subject: Any) -> bool | None:
            if uses_input:
                # a test written with the input value, such as `? > 5 and ? < 10`
                expected = operand(scope.child({"?": subject}))
                if type(expected) is bool:
                    return expected
            else:
                expected = operand(scope)
            if type(expected) is list:
                return any(values_equal(subject, element) is True for element in expected)
            if isinstance(expected, FeelRange):
                return in_range(subject, expected)
            return values_equal(subject, expected)

        return evaluate

    def _compile_In(self, node: ast.In) -> Evaluator:
        value = self.compile(node.value)
        tests = [self._compile_unary_test(test) for test in node.tests]

        def evaluate(scope: Scope) -> Any:
            subject = value(scope)
            saw_null = False
            for test in tests:
                result = test(scope, subject)
                if result is True:
                    return True
                if result is None:
                    saw_null = True
            return None if saw_null else False

        return evaluate

    def _compile_InstanceOf(self, node: ast.InstanceOf) -> Evaluator:
        value = self.compile(node.value)
        type_name = node.type_name
        return lambda scope: is_instance_of(value(scope), type_name)

    # textual -----------------------------------------------------------------------------
    def _compile_If(self, node: ast.If) -> Evaluator:
        condition, then, otherwise = (
            self.compile(node.condition),
            self.compile(node.then),
            self.compile(node.otherwise),
        )
        return lambda scope: then(scope) if condition(scope) is True else otherwise(scope)

    def _compile_iterations(
        self, iterations: list[ast.Iteration]
    ) -> list[tuple[str, Evaluator, Evaluator | None]]:
        compiled = []
        for iteration in iterations:
            domain = self.compile(iteration.domain)
            end = self.compile(iteration.range_end) if iteration.range_end is not None else None
            compiled.append((iteration.name, domain, end))
            self._bound.append({iteration.name})
        return compiled

    @staticmethod
    def _domain(scope: Scope, domain: Evaluator, end: Evaluator | None) -> Iterable[Any] | None:
        start_value = domain(scope)
        if end is None:
            if type(start_value) is list:
                return start_value
            # A range value (`for i in [1..3]`) is not a list: feel-scala iterates lists and
            # `a..b` only, so it is null there too (DMN TCK 0084 expects null).
            scope.warnings.append(
                f"[INVALID_TYPE] Expected a list to iterate but found {kind_of(start_value)}"
            )
            return None
        else:
            end_value = end(scope)
        if type(start_value) is not Decimal or type(end_value) is not Decimal:
            return None
        if start_value != start_value.to_integral_value() or end_value != end_value.to_integral_value():
            return None
        first, last = int(start_value), int(end_value)
        if abs(last - first) >= MAX_ITERATION_RANGE:
            scope.warnings.append("[INVALID_TYPE] Iteration range too large")
            return None
        # Charged before the range is materialised: a huge range fails before it allocates.
        scope.budget.charge(abs(last - first) + 1, ITEM_BYTES * (abs(last - first) + 1))
        step = 1 if last >= first else -1
        # Lazily: the loop charges each item, so the CPU check interrupts a long range early.
        return map(Decimal, range(first, last + step, step))

    def _iterate(
        self,
        scope: Scope,
        iterations: list[tuple[str, Evaluator, Evaluator | None]],
        index: int,
        bindings: dict[str, Any],
    ) -> Any:
        """Yields the binding dicts of the cartesian product, or None for a non-list domain."""
        name, domain, end = iterations[index]
        values = self._domain(scope.child(dict(bindings)), domain, end)
        if values is None:
            return None
        if index == len(iterations) - 1:
            return ({**bindings, name: value} for value in values)
        combinations: list[dict[str, Any]] = []
        for value in values:
            nested = self._iterate(scope, iterations, index + 1, {**bindings, name: value})
            if nested is None:
                return None
            nested = list(nested)
            scope.budget.charge(len(nested), ITEM_BYTES * len(nested))
            combinations.extend(nested)
        return combinations

    def _compile_For(self, node: ast.For) -> Evaluator:
        iterations = self._compile_iterations(node.iterations)
        self._bound.append({"partial"})
        body = self.compile(node.body)
        del self._bound[-len(iterations) - 1 :]

        # `partial` (the results so far) is a snapshot per iteration, so only pay for the
        # copy when the body reads it.
        uses_partial = _mentions_name(node.body, "partial")

        def evaluate(scope: Scope) -> Any:
            combinations = self._iterate(scope, iterations, 0, {})
            if combinations is None:
                return None
            results: list[Any] = []
            budget = scope.budget
            for bindings in combinations:
                budget.charge(1, ITEM_BYTES)
                if uses_partial:
                    budget.charge(len(results), ITEM_BYTES * len(results))
                    bindings["partial"] = list(results)
                results.append(body(scope.child(bindings)))
            return results

        return evaluate

    def _compile_Quantified(self, node: ast.Quantified) -> Evaluator:
        iterations = self._compile_iterations(node.iterations)
        body = self.compile(node.body)
        del self._bound[-len(iterations) :]
        is_some = node.quantifier == "some"

        def evaluate(scope: Scope) -> Any:
            combinations = self._iterate(scope, iterations, 0, {})
            if combinations is None:
                return None
            # feel-scala atLeastOne / all: a decisive true (some) or false (every) wins;
            # otherwise any non-boolean result makes the answer null
            unknown = False
            budget = scope.budget
            for bindings in combinations:
                budget.charge(1)
                result = body(scope.child(bindings))
                if result is is_some:
                    return is_some
                if type(result) is not bool:
                    unknown = True
            return None if unknown else not is_some

        return evaluate

    def _compile_FunctionDefinition(self, node: ast.FunctionDefinition) -> Evaluator:
        parameters = list(node.parameters)
        self._bound.append(set(parameters))
        body = self.compile(node.body)
        self._bound.pop()

        def evaluate(scope: Scope) -> Any:
            def invoke(arguments: list[Any]) -> Any:
                scope.budget.charge(1)  # recursion through a context entry is a loop, too
                bindings = dict(itertools.zip_longest(parameters, arguments[: len(parameters)]))
                return body(scope.child(bindings))

            return FeelFunction("anonymous", parameters, invoke)

        return evaluate

    # literals ----------------------------------------------------------------------------
    def _compile_ListLiteral(self, node: ast.ListLiteral) -> Evaluator:
        items = [self.compile(item) for item in node.items]
        return lambda scope: [item(scope) for item in items]

    def _compile_ContextLiteral(self, node: ast.ContextLiteral) -> Evaluator:
        entries = []
        bound: set[str] = set()
        self._bound.append(bound)
        for key, value in node.entries:
            entries.append((key, self.compile(value)))
            bound.add(key)  # later entries see earlier ones
        self._bound.pop()

        def evaluate(scope: Scope) -> Any:
            context: dict[str, Any] = {}
            inner = scope.child(context)
            for key, value in entries:
                context[key] = value(inner)
            return context

        return evaluate

    def _compile_RangeLiteral(self, node: ast.RangeLiteral) -> Evaluator:
        start, end = self.compile(node.start), self.compile(node.end)
        start_included, end_included = node.start_included, node.end_included
        return lambda scope: FeelRange(start(scope), end(scope), start_included, end_included)

    def _compile_Iteration(self, node: ast.Iteration) -> Evaluator:  # pragma: no cover
        raise AssertionError("iterations are compiled by their for/some/every node")

    def _compile_UnaryTest(self, node: ast.UnaryTest) -> Evaluator:
        """A unary test on its own (`parse_unary_tests`) tests the input value `?`."""
        test = self._compile_unary_test(node)
        return lambda scope: test(scope, scope.lookup("?"))


register_constant_evaluator(lambda tree: Compiler().compile(tree)(root_scope({})))
