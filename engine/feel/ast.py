"""Syntax tree of a parsed FEEL expression.

Nodes are plain immutable-ish objects built by `engine.feel.parser`; `engine.feel.compiler`
turns them into Python closures. Every node records its `depth` so the parser can reject
absurdly nested input before anything recursive (compilation, evaluation) touches it.
"""

from __future__ import annotations

from typing import Any


class Node:
    __slots__ = ("depth",)
    depth: int

    def children(self) -> tuple[Node, ...]:
        return ()

    def _init_depth(self) -> None:
        kids = self.children()
        self.depth = 1 + max((kid.depth for kid in kids), default=0)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


class Const(Node):
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value
        self.depth = 1


class TemporalLiteral(Node):
    """`@"2017-03-10"`: parsed when compiled (a bad literal evaluates to null)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text
        self.depth = 1


class Name(Node):
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name
        self.depth = 1


class Path(Node):
    __slots__ = ("key", "target")

    def __init__(self, target: Node, key: str) -> None:
        self.target, self.key = target, key
        self._init_depth()

    def children(self) -> tuple[Node, ...]:
        return (self.target,)


class Filter(Node):
    __slots__ = ("condition", "target")

    def __init__(self, target: Node, condition: Node) -> None:
        self.target, self.condition = target, condition
        self._init_depth()

    def children(self) -> tuple[Node, ...]:
        return (self.target, self.condition)


class Call(Node):
    """Function invocation. `function_name` is set when the callee is a plain name
    (built-ins and user functions are looked up by name); otherwise `callee` is evaluated."""

    __slots__ = ("callee", "function_name", "named", "positional")

    def __init__(
        self,
        function_name: str | None,
        callee: Node | None,
        positional: list[Node] | None,
        named: list[tuple[str, Node]] | None,
    ) -> None:
        self.function_name, self.callee = function_name, callee
        self.positional, self.named = positional, named
        self._init_depth()

    def children(self) -> tuple[Node, ...]:
        kids: list[Node] = [self.callee] if self.callee is not None else []
        kids.extend(self.positional or ())
        kids.extend(node for _, node in self.named or ())
        return tuple(kids)


class Negate(Node):
    __slots__ = ("operand",)

    def __init__(self, operand: Node) -> None:
        self.operand = operand
        self._init_depth()

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


class Binary(Node):
    """Arithmetic (`+ - * / **`), comparison (`= != < <= > >=`), `and`, `or`."""

    __slots__ = ("left", "operator", "right")

    def __init__(self, operator: str, left: Node, right: Node) -> None:
        self.operator, self.left, self.right = operator, left, right
        self._init_depth()

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


class Chain(Node):
    """A left-associative run of operators of one precedence level, flattened:
    `a + b - c` is Chain(a, [("+", b), ("-", c)]), `a and b and c` likewise.

    Flattening keeps long generated conditions (`a or b or ... or z`) shallow, so they
    do not count against the nesting limit and evaluate without deep recursion."""

    __slots__ = ("first", "rest")

    def __init__(self, first: Node, rest: list[tuple[str, Node]]) -> None:
        self.first, self.rest = first, rest
        self._init_depth()

    def children(self) -> tuple[Node, ...]:
        return (self.first, *(operand for _, operand in self.rest))

    def extended(self, operator: str, operand: Node) -> Chain:
        self.rest.append((operator, operand))
        self.depth = max(self.depth, operand.depth + 1)
        return self


class Between(Node):
    __slots__ = ("high", "low", "value")

    def __init__(self, value: Node, low: Node, high: Node) -> None:
        self.value, self.low, self.high = value, low, high
        self._init_depth()

    def children(self) -> tuple[Node, ...]:
        return (self.value, self.low, self.high)


class UnaryTest(Node):
    """One positive unary test: `< 3` (operator set) or a value/range/list (operator None)."""

    __slots__ = ("operand", "operator")

    def __init__(self, operator: str | None, operand: Node) -> None:
        self.operator, self.operand = operator, operand
        self._init_depth()

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


class In(Node):
    __slots__ = ("tests", "value")

    def __init__(self, value: Node, tests: list[UnaryTest]) -> None:
        self.value, self.tests = value, tests
        self._init_depth()

    def children(self) -> tuple[Node, ...]:
        return (self.value, *self.tests)


class InstanceOf(Node):
    __slots__ = ("type_name", "value")

    def __init__(self, value: Node, type_name: str) -> None:
        self.value, self.type_name = value, type_name
        self._init_depth()

    def children(self) -> tuple[Node, ...]:
        return (self.value,)


class If(Node):
    __slots__ = ("condition", "otherwise", "then")

    def __init__(self, condition: Node, then: Node, otherwise: Node) -> None:
        self.condition, self.then, self.otherwise = condition, then, otherwise
        self._init_depth()

    def children(self) -> tuple[Node, ...]:
        return (self.condition, self.then, self.otherwise)


class Iteration(Node):
    """`x in list` or `x in 1..n` inside for/some/every."""

    __slots__ = ("domain", "name", "range_end")

    def __init__(self, name: str, domain: Node, range_end: Node | None) -> None:
        self.name, self.domain, self.range_end = name, domain, range_end
        self._init_depth()

    def children(self) -> tuple[Node, ...]:
        return (self.domain,) if self.range_end is None else (self.domain, self.range_end)


class For(Node):
    __slots__ = ("body", "iterations")

    def __init__(self, iterations: list[Iteration], body: Node) -> None:
        self.iterations, self.body = iterations, body
        self._init_depth()

    def children(self) -> tuple[Node, ...]:
        return (*self.iterations, self.body)


class Quantified(Node):
    __slots__ = ("body", "iterations", "quantifier")

    def __init__(self, quantifier: str, iterations: list[Iteration], body: Node) -> None:
        self.quantifier, self.iterations, self.body = quantifier, iterations, body
        self._init_depth()

    def children(self) -> tuple[Node, ...]:
        return (*self.iterations, self.body)


class FunctionDefinition(Node):
    __slots__ = ("body", "parameters")

    def __init__(self, parameters: list[str], body: Node) -> None:
        self.parameters, self.body = parameters, body
        self._init_depth()

    def children(self) -> tuple[Node, ...]:
        return (self.body,)


class ListLiteral(Node):
    __slots__ = ("items",)

    def __init__(self, items: list[Node]) -> None:
        self.items = items
        self._init_depth()

    def children(self) -> tuple[Node, ...]:
        return tuple(self.items)


class ContextLiteral(Node):
    __slots__ = ("entries",)

    def __init__(self, entries: list[tuple[str, Node]]) -> None:
        self.entries = entries
        self._init_depth()

    def children(self) -> tuple[Node, ...]:
        return tuple(node for _, node in self.entries)


class RangeLiteral(Node):
    __slots__ = ("end", "end_included", "start", "start_included")

    def __init__(self, start: Node, end: Node, start_included: bool, end_included: bool) -> None:
        self.start, self.end = start, end
        self.start_included, self.end_included = start_included, end_included
        self._init_depth()

    def children(self) -> tuple[Node, ...]:
        return (self.start, self.end)
