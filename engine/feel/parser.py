"""Text -> `engine.feel.ast` tree, using lark's LALR(1) parser.

The tree is built by an inline transformer (lark calls it on every reduction, without
recursion), so even pathological input never exhausts the Python stack while parsing.
Nesting is bounded twice: a cheap bracket scan before lark runs, and a depth check on each
node as it is built; both raise `FeelSyntaxError` (the 10,000-level case must not crash).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

from engine.feel import ast
from engine.feel.errors import FeelSyntaxError
from engine.feel.grammar import GRAMMAR

# Deep enough for any hand-written expression, shallow enough that compiling and
# evaluating the tree (both recursive) stays far below Python's recursion limit.
MAX_NESTING_DEPTH = 120

# Far beyond any real expression; keeps a hostile deployment from tying up the parser.
MAX_EXPRESSION_LENGTH = 100_000

_RESERVED_CONTEXT_KEYS = frozenset({"null", "true", "false"})

# Words that can never be a (non-backticked) name: feel-scala fails to parse `in`, `then`...
RESERVED_WORDS = frozenset(
    {
        "if",
        "then",
        "else",
        "for",
        "in",
        "return",
        "some",
        "every",
        "satisfies",
        "and",
        "or",
        "between",
        "function",
        "true",
        "false",
        "null",
    }
)

_ESCAPES = {
    '"': '"',
    "'": "'",
    "\\": "\\",
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "f": "\f",
    "b": "\b",
}
_ESCAPE_PATTERN = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{6}|.)", re.DOTALL)


def unescape_string(body: str) -> str:
    """Decode a FEEL string literal body.

    Unknown escapes (`\\s`, `\\d`) are kept as written: FEEL strings are often regular
    expressions and feel-scala passes them through. `\\uXXXX` surrogate pairs are joined
    into one code point (DMN TCK 0083 counts `"\\uD83D\\uDCA9"` as length 1).
    """
    if "\\" not in body:
        return body

    def replace(match: re.Match[str]) -> str:
        escape = match.group(1)
        if escape[0] in "uU" and len(escape) > 1:
            return chr(int(escape[1:], 16))
        return _ESCAPES.get(escape, "\\" + escape)

    decoded = _ESCAPE_PATTERN.sub(replace, body)
    # Join UTF-16 surrogate pairs produced by consecutive \u escapes.
    return decoded.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _number(text: str) -> Decimal:
    return Decimal(text)


class _DepthLimitExceeded(Exception):
    pass


def _checked(node: ast.Node) -> ast.Node:
    if node.depth > MAX_NESTING_DEPTH:
        raise _DepthLimitExceeded
    return node


def _name(token: Token | str) -> str:
    text = str(token)
    if text.startswith("`"):
        return text[1:-1]
    return text


@v_args(inline=True)
class _TreeBuilder(Transformer[Token, ast.Node]):
    # literals -------------------------------------------------------------------------
    def number(self, token: Token) -> ast.Node:
        return ast.Const(_number(str(token)))

    def string(self, token: Token) -> ast.Node:
        return ast.Const(unescape_string(str(token)[1:-1]))

    def true(self) -> ast.Node:
        return ast.Const(True)

    def false(self) -> ast.Node:
        return ast.Const(False)

    def null(self) -> ast.Node:
        return ast.Const(None)

    def temporal(self, token: Token) -> ast.Node:
        return ast.TemporalLiteral(unescape_string(str(token)[1:-1]))

    def name(self, token: Token) -> str:
        if token.type == "NAME" and str(token) in RESERVED_WORDS:
            raise FeelSyntaxError(
                f"unexpected reserved word '{token}' at line {token.line}, column {token.column}",
                line=token.line,
                column=token.column,
            )
        return _name(token)

    def variable(self, name: str) -> ast.Node:
        return ast.Name(name)

    def list_literal(self, *items: ast.Node | None) -> ast.Node:
        return _checked(ast.ListLiteral([item for item in items if item is not None]))

    def context_entry(self, key: Token, value: ast.Node) -> tuple[str, ast.Node]:
        if key.type == "STRING":
            return unescape_string(str(key)[1:-1]), value
        text = str(key).strip()
        if text in _RESERVED_CONTEXT_KEYS:
            raise FeelSyntaxError(
                f"'{text}' is a reserved word and cannot be a context key "
                f"(line {key.line}, column {key.column})",
                line=key.line,
                column=key.column,
            )
        return text, value

    def context_literal(self, *entries: tuple[str, ast.Node] | None) -> ast.Node:
        return _checked(ast.ContextLiteral([entry for entry in entries if entry is not None]))

    def range_closed_closed(self, start: ast.Node, end: ast.Node) -> ast.Node:
        return _checked(ast.RangeLiteral(start, end, True, True))

    def range_closed_open(self, start: ast.Node, end: ast.Node) -> ast.Node:
        return _checked(ast.RangeLiteral(start, end, True, False))

    def range_open_closed(self, start: ast.Node, end: ast.Node) -> ast.Node:
        return _checked(ast.RangeLiteral(start, end, False, True))

    def range_open_open(self, start: ast.Node, end: ast.Node) -> ast.Node:
        return _checked(ast.RangeLiteral(start, end, False, False))

    # postfix --------------------------------------------------------------------------
    def path(self, target: ast.Node, key: str | Token) -> ast.Node:
        if isinstance(key, Token):  # PROPERTY_NAME such as `time  offset`
            key = " ".join(str(key).split())
        return _checked(ast.Path(target, key))

    def filter(self, target: ast.Node, condition: ast.Node) -> ast.Node:
        return _checked(ast.Filter(target, condition))

    def positional_arguments(self, *arguments: ast.Node) -> list[ast.Node]:
        return list(arguments)

    def named_argument(self, name: Token, value: ast.Node) -> tuple[str, ast.Node]:
        return " ".join(str(name).split()), value

    def named_arguments(self, *arguments: tuple[str, ast.Node]) -> list[tuple[str, ast.Node]]:
        return list(arguments)

    @staticmethod
    def _call(
        callee: ast.Node | str,
        positional: list[ast.Node] | None,
        named: list[tuple[str, ast.Node]] | None,
    ) -> ast.Node:
        if isinstance(callee, str):
            return _checked(ast.Call(" ".join(callee.split()), None, positional, named))
        if isinstance(callee, ast.Name):
            return _checked(ast.Call(callee.name, None, positional, named))
        return _checked(ast.Call(None, callee, positional, named))

    def call_empty(self, callee: ast.Node) -> ast.Node:
        return self._call(callee, [], None)

    def call_positional(self, callee: ast.Node, arguments: list[ast.Node]) -> ast.Node:
        return self._call(callee, arguments, None)

    def call_named(self, callee: ast.Node, arguments: list[tuple[str, ast.Node]]) -> ast.Node:
        return self._call(callee, None, arguments)

    def builtin_call_empty(self, name: Token) -> ast.Node:
        return self._call(str(name), [], None)

    def builtin_call_positional(self, name: Token, arguments: list[ast.Node]) -> ast.Node:
        return self._call(str(name), arguments, None)

    def builtin_call_named(self, name: Token, arguments: list[tuple[str, ast.Node]]) -> ast.Node:
        return self._call(str(name), None, arguments)

    # operators ------------------------------------------------------------------------
    def negate(self, operand: ast.Node) -> ast.Node:
        return _checked(ast.Negate(operand))

    def _binary(operator: str) -> Any:  # type: ignore[misc]
        def build(self: _TreeBuilder, left: ast.Node, right: ast.Node) -> ast.Node:
            return _checked(ast.Binary(operator, left, right))

        return build

    def _chain(operators: frozenset[str], operator: str) -> Any:  # type: ignore[misc]
        def build(self: _TreeBuilder, left: ast.Node, right: ast.Node) -> ast.Node:
            if isinstance(left, ast.Chain) and left.rest[0][0] in operators:
                return _checked(left.extended(operator, right))
            return _checked(ast.Chain(left, [(operator, right)]))

        return build

    _ADDITIVE = frozenset({"+", "-"})
    add = _chain(_ADDITIVE, "+")
    subtract = _chain(_ADDITIVE, "-")
    multiply = _binary("*")
    divide = _binary("/")
    exponent = _binary("**")
    and_op = _chain(frozenset({"and"}), "and")
    or_op = _chain(frozenset({"or"}), "or")

    def compare(self, left: ast.Node, operator: Token, right: ast.Node) -> ast.Node:
        return _checked(ast.Binary(str(operator), left, right))

    def between(self, value: ast.Node, low: ast.Node, high: ast.Node) -> ast.Node:
        return _checked(ast.Between(value, low, high))

    def instance_of(self, value: ast.Node, _keyword: Token, type_name: Token) -> ast.Node:
        return _checked(ast.InstanceOf(value, " ".join(str(type_name).split())))

    # unary tests ------------------------------------------------------------------------
    def test_value(self, operand: ast.Node) -> ast.UnaryTest:
        return ast.UnaryTest(None, operand)

    def test_compare(self, operator: Token, operand: ast.Node) -> ast.UnaryTest:
        return ast.UnaryTest(str(operator), operand)

    def test_input_compare(self, _input: Token, operator: Token, operand: ast.Node) -> ast.UnaryTest:
        # `? < 10` tests the input exactly like the unary test `< 10`
        return ast.UnaryTest(str(operator), operand)

    def unary_test_list(self, *tests: ast.Node) -> list[ast.UnaryTest]:
        return [test if isinstance(test, ast.UnaryTest) else ast.UnaryTest(None, test) for test in tests]

    def in_tests(self, test: ast.UnaryTest) -> list[ast.UnaryTest]:
        return [test]

    def test_disjunction(self, tests: list[ast.UnaryTest]) -> list[ast.UnaryTest]:
        return tests

    def in_op(self, value: ast.Node, tests: list[ast.UnaryTest]) -> ast.Node:
        return _checked(ast.In(value, tests))

    # textual expressions ----------------------------------------------------------------
    def if_expr(self, condition: ast.Node, then: ast.Node, otherwise: ast.Node) -> ast.Node:
        return _checked(ast.If(condition, then, otherwise))

    def iteration(self, name: str, domain: ast.Node) -> ast.Iteration:
        return ast.Iteration(name, domain, None)

    def iteration_range(self, name: str, start: ast.Node, end: ast.Node) -> ast.Iteration:
        return ast.Iteration(name, start, end)

    def for_expr(self, *parts: Any) -> ast.Node:
        return _checked(ast.For(list(parts[:-1]), parts[-1]))

    def quantified(self, quantifier: Token, *parts: Any) -> ast.Node:
        return _checked(ast.Quantified(str(quantifier), list(parts[:-1]), parts[-1]))

    def function_definition(self, *parts: Any) -> ast.Node:
        parameters = [part for part in parts[:-1] if part is not None]
        return _checked(ast.FunctionDefinition(parameters, parts[-1]))


_PARSER = Lark(
    GRAMMAR,
    parser="lalr",
    lexer="contextual",
    transformer=_TreeBuilder(),
    propagate_positions=False,
    maybe_placeholders=True,
)


def _bracket_depth_position(text: str) -> int | None:
    """Offset where bracket nesting first exceeds the limit (ignores strings/comments
    only roughly: an over-count merely turns a silly expression into a syntax error)."""
    depth = 0
    in_string = False
    escaped = False
    for offset, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "([{":
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                return offset
        elif char in ")]}":
            depth -= 1
    return None


def _line_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def parse(text: str) -> ast.Node:
    """Parse an expression (without the BPMN `=` prefix) or raise `FeelSyntaxError`."""
    if not isinstance(text, str):
        raise FeelSyntaxError(f"expected the expression as a string, got {type(text).__name__}")
    if not text.strip():
        raise FeelSyntaxError("the expression is empty", line=1, column=1)
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise FeelSyntaxError(
            f"the expression is longer than {MAX_EXPRESSION_LENGTH} characters ({len(text)})"
        )
    too_deep_at = _bracket_depth_position(text)
    if too_deep_at is not None:
        line, column = _line_column(text, too_deep_at)
        raise FeelSyntaxError(
            f"expression nested deeper than {MAX_NESTING_DEPTH} levels (line {line}, column {column})",
            line=line,
            column=column,
        )
    try:
        tree = _PARSER.parse(text)
    except _DepthLimitExceeded:
        raise FeelSyntaxError(f"expression nested deeper than {MAX_NESTING_DEPTH} levels") from None
    except FeelSyntaxError:
        raise
    except UnexpectedEOF as error:
        line, column = _line_column(text, len(text))
        expected = ", ".join(sorted(error.expected)[:8])
        raise FeelSyntaxError(
            f"unexpected end of expression at line {line}, column {column} (expected {expected})",
            line=line,
            column=column,
        ) from None
    except UnexpectedCharacters as error:
        raise FeelSyntaxError(
            f"unexpected character {text[error.pos_in_stream or 0]!r} at line {error.line}, "
            f"column {error.column}: {error.get_context(text).strip()!r}",
            line=error.line,
            column=error.column,
        ) from None
    except UnexpectedInput as error:
        token = getattr(error, "token", None)
        line, column = error.line, error.column
        if token is not None and getattr(token, "type", "") == "$END":
            line, column = _line_column(text, len(text))
            description = "unexpected end of expression"
        else:
            description = f"unexpected {str(token)!r}" if token is not None else "unexpected input"
        raise FeelSyntaxError(
            f"{description} at line {line}, column {column}", line=line, column=column
        ) from None
    except LarkError as error:
        # Exceptions raised inside the tree builder arrive wrapped by lark.
        original = getattr(error, "orig_exc", None)
        if isinstance(original, FeelSyntaxError):
            raise original from None
        if isinstance(original, _DepthLimitExceeded):
            raise FeelSyntaxError(f"expression nested deeper than {MAX_NESTING_DEPTH} levels") from None
        raise FeelSyntaxError(f"cannot parse expression: {error}") from None
    except RecursionError:
        raise FeelSyntaxError("expression is too deeply nested") from None
    if not isinstance(tree, ast.Node):
        raise FeelSyntaxError("cannot parse expression")
    return tree


def parse_unary_tests_tree(text: str) -> ast.Node:
    """DMN unary tests as a boolean expression over the input `?`.

    `-` matches anything; `not(t1, t2)` negates; otherwise `t1, t2, ...` is parsed as the
    positive unary tests of `? in (t1, t2, ...)`.
    """
    stripped = text.strip()
    if stripped == "-":
        return ast.Const(True)
    negated = False
    if stripped.startswith("not(") and stripped.endswith(")"):
        negated = True
        stripped = stripped[4:-1]
    if not stripped.strip():
        raise FeelSyntaxError("empty unary tests", line=1, column=1)
    tree = parse(f"? in ({stripped})")
    if negated:
        return ast.Call("not", None, [tree], None)
    return tree
