"""The FEEL grammar (lark, LALR(1) with the contextual lexer).

Precedence follows feel-scala's FeelParser, lowest first: if/for/some/every/function
definitions, `or`, `and`, comparisons (`= != < <= > >=`, `between`, `in`, `instance of`),
`+ -`, `* /`, `**` (left-associative, as feel-scala: `2**2**3` = 64), unary minus
(binds tighter than `**`: `-3 ** 2` = 9), then postfix path / filter / invocation.

Names with spaces are only recognised where feel-scala accepts them without backticks:
built-in function names before `(` (`string length(...)`), named parameters before `:`
(`start position: 3`) and context keys (`{foo bar: 1}`). Everything else needs backticks.
"""

from __future__ import annotations

# Built-in functions whose names contain spaces. The lexer recognises them only when an
# opening parenthesis follows, so `date and time(...)` is a call while `a and time` stays
# a conjunction.
MULTI_WORD_FUNCTIONS: tuple[str, ...] = (
    "years and months duration",
    "round half down",
    "round half up",
    "date and time",
    "distinct values",
    "duplicate values",
    "substring before",
    "substring after",
    "string length",
    "string join",
    "upper case",
    "lower case",
    "starts with",
    "ends with",
    "list contains",
    "list replace",
    "insert before",
    "index of",
    "is empty",
    "is blank",
    "is defined",
    "get or else",
    "get value",
    "get entries",
    "context put",
    "context merge",
    "put all",
    "round up",
    "round down",
    "day of week",
    "day of year",
    "week of year",
    "month of year",
    "last day of month",
    "to base64",
    "from base64",
    "to json",
    "from json",
    "random number",
    "met by",
    "overlaps before",
    "overlaps after",
    "finished by",
    "started by",
    # list functions named like the boolean operators (feel-scala extension)
    "and",
    "or",
)

_FUNCTION_NAME_PATTERN = "|".join(
    name.replace(" ", r"[ \t]+") for name in sorted(MULTI_WORD_FUNCTIONS, key=len, reverse=True)
)

_TYPE_PATTERN = (
    r"(?:years[ \t]+and[ \t]+months[ \t]+duration|days[ \t]+and[ \t]+time[ \t]+duration"
    r"|date[ \t]+and[ \t]+time|[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:[ \t]*<(?:[^<>]|<(?:[^<>]|<[^<>]*>)*>)*>)?"
)

GRAMMAR = (
    r"""
?start: expression

?expression: textual
?textual: if_expr | for_expr | quantified | function_definition | disjunction

if_expr: "if" expression "then" expression "else" expression
for_expr: "for" iteration ("," iteration)* "return" expression
quantified: (SOME | EVERY) iteration ("," iteration)* "satisfies" expression
iteration: name "in" expression
         | name "in" expression ".." expression -> iteration_range
function_definition: "function" "(" [name ("," name)*] ")" expression

?disjunction: conjunction | disjunction "or" conjunction -> or_op
?conjunction: comparison | conjunction "and" comparison -> and_op

?comparison: sum
    | sum COMPARATOR sum -> compare
    | sum "between" sum "and" sum -> between
    | sum "in" in_tests -> in_op
    | sum INSTANCE_OF TYPE_NAME -> instance_of

in_tests: positive_unary_test
        | "(" unary_test_list ")" -> test_disjunction
?positive_unary_test: sum -> test_value
        | COMPARATOR sum -> test_compare
        | INPUT_VALUE COMPARATOR sum -> test_input_compare
unary_test_list: compare_test ("," list_test)*
               | expression ("," list_test)+
?list_test: compare_test | expression -> test_value
compare_test: COMPARATOR sum -> test_compare

?sum: product
    | sum "+" product -> add
    | sum "-" product -> subtract
?product: power
    | product "*" power -> multiply
    | product "/" power -> divide
?power: unary
    | power "**" unary -> exponent
?unary: postfix
    | "-" unary -> negate

?postfix: primary
    | postfix "." name -> path
    | postfix "." PROPERTY_NAME -> path
    | postfix "[" expression "]" -> filter
    | postfix "(" ")" -> call_empty
    | postfix "(" positional_arguments ")" -> call_positional
    | postfix "(" named_arguments ")" -> call_named
    | FUNCTION_NAME "(" ")" -> builtin_call_empty
    | FUNCTION_NAME "(" positional_arguments ")" -> builtin_call_positional
    | FUNCTION_NAME "(" named_arguments ")" -> builtin_call_named

positional_arguments: expression ("," expression)*
named_arguments: named_argument ("," named_argument)*
named_argument: (NAME | PARAMETER_NAME) ":" expression

?primary: NUMBER -> number
    | STRING -> string
    | "true" -> true
    | "false" -> false
    | "null" -> null
    | "@" STRING -> temporal
    | name -> variable
    | "(" expression ")"
    | "[" [expression ("," expression)*] "]" -> list_literal
    | "{" [context_entry ("," context_entry)*] "}" -> context_literal
    | "[" expression ".." expression "]" -> range_closed_closed
    | "[" expression ".." expression ")" -> range_closed_open
    | "(" expression ".." expression "]" -> range_open_closed
    | "(" expression ".." expression ")" -> range_open_open
    | _OPEN_RANGE_BRACKET expression ".." expression "]" -> range_open_closed
    | _OPEN_RANGE_BRACKET expression ".." expression ")" -> range_open_open
    | "[" expression ".." expression _CLOSE_RANGE_BRACKET -> range_closed_open
    | "(" expression ".." expression _CLOSE_RANGE_BRACKET -> range_open_open
    | _OPEN_RANGE_BRACKET expression ".." expression _CLOSE_RANGE_BRACKET -> range_open_open

context_entry: (CONTEXT_KEY | STRING) ":" expression

name: NAME | BACKTICK_NAME

SOME: "some"
EVERY: "every"
COMPARATOR: "<=" | ">=" | "!=" | "=" | "<" | ">"
INSTANCE_OF.3: /instance[ \t]+of\b/
TYPE_NAME.3: /"""
    + _TYPE_PATTERN
    + r"""/
FUNCTION_NAME.4: /(?:"""
    + _FUNCTION_NAME_PATTERN
    + r""")(?=\s*\()/
PARAMETER_NAME.3: /[^\W\d]\w*(?:[ \t]+[^\W\d]\w*)+(?=\s*:)/
CONTEXT_KEY.2: /[^\s,{}:"\[\]()`][^,{}:"\n`]*?(?=\s*:)/
NAME: /[^\W\d]\w*|\?/
# `x in ? < 10`: the input value compared directly after `in` (feel-scala)
INPUT_VALUE.3: /\?(?=\s*(?:<=|>=|!=|=|<|>))/
# `]1..10]`: a `]` opening a range, told apart from the `]` closing an empty list `[]`
# (which is followed by `]`, `)`, `,`, `[`, `.`, an operator, a keyword or the end).
_OPEN_RANGE_BRACKET.2: /\](?=\s*[^\s\]\),\[.=<>!+*\/}:-])(?!\s*(?:return|satisfies|and|or|then|else|between|in|instance)\b)/
# `[1..10[`: a `[` closing a range, told apart from a filter on the end point by what
# follows it: the end of the input, a closing bracket, a comma, a comparison or a keyword -
# never something a filter could start with (`xs[-1]`, `xs[.5]`, `xs[item]`).
_CLOSE_RANGE_BRACKET.2: /\[(?=\s*(?:$|[)\],=<>!}]|(?:and|or|then|else|return|satisfies|between|instance)\b))/
# properties whose names contain spaces (feel-scala: time offset, start/end included)
PROPERTY_NAME.4: /(?:time[ \t]+offset|start[ \t]+included|end[ \t]+included)(?![\w])/
BACKTICK_NAME: /`[^`]+`/
NUMBER: /\d+(\.\d+)?|\.\d+/
STRING: /"(?:[^"\\]|\\.)*"/s

COMMENT: /\/\/[^\n]*/ | /\/\*(.|\n)*?\*\//
%import common.WS
%ignore WS
%ignore COMMENT
"""
)
