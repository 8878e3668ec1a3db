"""FEEL as the engine uses it: gateway conditions, input/output mappings, correlation keys,
null handling, results as JSON values, warnings, referenced names, unary tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from engine.feel import (
    FeelEvaluationError,
    compile_expression,
    evaluate,
    evaluate_raw,
    parse_unary_tests,
    to_json_value,
)

# --- sequence flow conditions (reference 5.2: "= amount > 100") -----------------------------


@pytest.mark.parametrize(
    ("condition", "variables", "expected"),
    [
        ("amount > 100", {"amount": 150}, True),
        ("amount > 100", {"amount": 100}, False),
        ("amount > 100", {"amount": 100.5}, True),
        ("amount > 100", {}, None),  # missing variable: null, the engine raises the incident
        ("amount > 100", {"amount": "150"}, None),  # string vs number: not comparable
        ('status = "APPROVED"', {"status": "APPROVED"}, True),
        ('status != "APPROVED"', {"status": None}, True),
        ("approved", {"approved": True}, True),
        ("approved = true", {}, False),
        ("x = null", {}, True),
        ("not(approved)", {"approved": False}, True),
        ("retries >= 3 and escalate", {"retries": 3, "escalate": True}, True),
        ("retries >= 3 or escalate", {"retries": 1}, None),
        ('priority in ["HIGH", "URGENT"]', {"priority": "URGENT"}, True),
        ("score in [0..50)", {"score": 50}, False),
        ("count(items) > 0", {"items": []}, False),
        ("some i in items satisfies i.price > 10", {"items": [{"price": 5}, {"price": 12}]}, True),
        ("is defined(customer.email)", {"customer": {"name": "x"}}, False),
        ("is defined(customer.email)", {"customer": {"email": "a@b.c"}}, True),
    ],
)
def test_conditions(condition: str, variables: dict[str, object], expected: object) -> None:
    assert evaluate(condition, variables) is expected


# --- input/output mappings -------------------------------------------------------------------


def test_nested_path_mapping_reads_deep_values() -> None:
    variables = {"order": {"customer": {"address": {"city": "Berlin"}}, "items": [{"sku": "a", "qty": 2}]}}
    assert evaluate("order.customer.address.city", variables) == "Berlin"
    assert evaluate("order.items[1].qty", variables) == 2
    assert evaluate("order.items[-1].sku", variables) == "a"
    assert evaluate("order.items.sku", variables) == ["a"]  # path over a list maps
    assert evaluate("order.customer.phone", variables) is None  # missing entry -> null
    assert evaluate("order.missing.deeper", variables) is None


def test_mapping_builds_contexts_and_lists() -> None:
    result = evaluate(
        '{id: order.id, total: sum(for i in order.items return i.price * i.qty), tags: ["x", tag]}',
        {"order": {"id": "o-1", "items": [{"price": 2.5, "qty": 2}, {"price": 1, "qty": 1}]}, "tag": "y"},
    )
    assert result == {"id": "o-1", "total": 6, "tags": ["x", "y"]}
    assert type(result["total"]) is int


def test_results_are_json_values() -> None:
    assert evaluate("1 + 1") == 2 and type(evaluate("1 + 1")) is int
    assert evaluate("1 / 4") == 0.25 and type(evaluate("1 / 4")) is float
    assert evaluate("0.1 + 0.2") == 0.3  # decimal arithmetic, not binary floating point
    assert evaluate_raw("0.1 + 0.2") == Decimal("0.3")
    assert evaluate('date("2017-01-01") + duration("P1D")') == "2017-01-02"
    assert evaluate('date and time("2017-01-01T10:00:00+02:00")') == "2017-01-01T10:00:00+02:00"
    assert evaluate('date and time("2017-01-01T10:00:00")') == "2017-01-01T10:00:00"
    assert evaluate('duration("P1DT2H")') == "P1DT2H"
    assert evaluate('duration("P14M")') == "P1Y2M"
    assert evaluate("[1..3]") is None  # a range is no JSON value


def test_input_numbers_of_every_json_kind() -> None:
    assert evaluate("a + b + c", {"a": 1, "b": 2.5, "c": 10**20}) == 100000000000000000003.5
    assert evaluate("x * 2", {"x": 0.1}) == 0.2
    assert evaluate("x", {"x": float("nan")}) is None


def test_correlation_key_and_job_type_expressions() -> None:
    assert evaluate("orderId", {"orderId": "o-42"}) == "o-42"
    assert evaluate('"payment-" + region', {"region": "eu"}) == "payment-eu"
    assert evaluate("string(orderNumber)", {"orderNumber": 42}) == "42"


def test_timer_expressions() -> None:
    assert evaluate('duration("PT" + string(minutes) + "M")', {"minutes": 15}) == "PT15M"
    assert (
        evaluate('date and time("2024-01-02T10:00:00Z") - date and time("2024-01-01T09:30:00Z")') == "P1DT30M"
    )
    assert evaluate('@"2024-01-31" + @"P1M"') == "2024-02-29"


# --- null handling -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("missing + 1", None),
        ("missing * 2", None),
        ('"a" + missing', None),
        ("missing = null", True),
        ("missing < 1", None),
        ("missing.field", None),
        ("missing[1]", None),
        ("upper case(missing)", None),
        ("if missing then 1 else 2", 2),
        ("get or else(missing, 7)", 7),
        ("[1, missing]", [1, None]),
        ("{a: missing}", {"a": None}),
        ("true and missing", None),
        ("false and missing", False),
        ('duration("P1D") * 1000000000000', None),  # beyond the representable range
        ('date("9999-12-31") + duration("P1D")', None),
    ],
)
def test_null_propagation(expression: str, expected: object) -> None:
    assert evaluate(expression, {}) == expected


def test_present_null_and_absent_variable_behave_alike() -> None:
    for expression in ("x = null", "x < 1", "x between 1 and 3", "for i in x return i"):
        assert evaluate(expression, {}) == evaluate(expression, {"x": None})


def test_warnings_explain_a_null_result() -> None:
    value, warnings = compile_expression("amount > 100").evaluate_with_warnings({})
    assert value is None
    assert any("NO_VARIABLE_FOUND" in warning and "amount" in warning for warning in warnings)
    value, warnings = compile_expression("2 + true").evaluate_with_warnings({})
    assert value is None and any("INVALID_TYPE" in warning for warning in warnings)
    value, warnings = compile_expression("amount > 100").evaluate_with_warnings({"amount": 1})
    assert value is False and warnings == []


def test_assert_failure_is_a_hard_error() -> None:
    with pytest.raises(FeelEvaluationError):
        evaluate("assert(x, x > 3)", {"x": 1})
    assert evaluate("assert(x, x > 3)", {"x": 4}) == 4


def test_variables_are_not_mutated() -> None:
    variables = {"order": {"items": [{"price": 1}]}}
    evaluate('context put(order, "total", 1)', variables)
    evaluate("append(order.items, 2)", variables)
    assert variables == {"order": {"items": [{"price": 1}]}}


# --- compiled expression API ---------------------------------------------------------------


def test_compiled_expressions_are_cached_and_reusable() -> None:
    first = compile_expression("a + 1")
    assert compile_expression("a + 1") is first
    assert first.text == "a + 1"
    assert [first.evaluate({"a": n}) for n in range(3)] == [1, 2, 3]


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ("a.b + c", {"a", "c"}),
        ("for x in xs return x * factor", {"xs", "factor"}),
        ("{a: 1, b: a + other}", {"other"}),
        ('string length(name) > 3 and contains(name, "x")', {"name"}),
        ("xs[item > limit]", {"xs", "limit"}),
        ("some x in xs satisfies x > y", {"xs", "y"}),
        ("(function(v) v + w)(1)", {"w"}),
    ],
)
def test_referenced_names(expression: str, names: set[str]) -> None:
    assert compile_expression(expression).referenced_names() == names


def test_to_json_value_conversions() -> None:
    assert to_json_value(Decimal("2.0")) == 2 and type(to_json_value(Decimal("2.0"))) is int
    assert to_json_value(Decimal("2.5")) == 2.5
    assert to_json_value(Decimal("2.5"), keep_decimal=True) == Decimal("2.5")
    assert type(to_json_value(Decimal(2**63 - 1))) is int
    assert to_json_value(Decimal(2**63)) == float(2**63)  # beyond a long: a double
    assert to_json_value(Decimal("1E+400")) is None  # beyond a double
    assert to_json_value({"d": dt.date(2020, 1, 2), "l": [Decimal(1)]}) == {"d": "2020-01-02", "l": [1]}
    assert to_json_value(dt.timedelta(hours=26)) == "P1DT2H"


# --- unary tests (DMN input entries) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("tests", "value", "expected"),
    [
        ("< 10", 5, True),
        ("< 10", 10, False),
        ('"a", "b"', "b", True),
        ('"a", "b"', "c", False),
        ("[1..5]", 5, True),
        ("(1..5)", 5, False),
        ("-", "anything", True),
        ("not(3)", 3, False),
        ("not(3)", 4, True),
        (">= limit", 7, True),
        ("? > 5 and ? < 10", 7, True),
        ("? > 5 and ? < 10", 10, False),
        ('starts with(?, "a")', "abc", True),
    ],
)
def test_unary_tests(tests: str, value: object, expected: bool) -> None:
    assert parse_unary_tests(tests).matches(value, {"limit": 7}) is expected


def test_partial_is_a_snapshot_of_earlier_results() -> None:
    assert evaluate("for x in [1, 2, 3] return partial") == [[], [[]], [[], [[]]]]
    assert evaluate("for i in 1..6 return if i <= 2 then 1 else partial[-1] + partial[-2]") == [
        1,
        1,
        2,
        3,
        5,
        8,
    ]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("some x in [1, null] satisfies x > 0", True),
        ("some x in [0, null] satisfies x > 0", None),
        ("some x in [0, -1] satisfies x > 0", False),
        ("every x in [0, null] satisfies x > 0", False),
        ("every x in [1, null] satisfies x > 0", None),
        ("every x in [1, 2] satisfies x > 0", True),
    ],
)
def test_quantifiers_are_three_valued(expression: str, expected: object) -> None:
    # feel-scala atLeastOne/all: a non-boolean result makes an undecided answer null
    assert evaluate(expression) is expected


DOCUMENT = {
    "order": {
        "id": "o-1",
        "total": 10.5,
        "items": [{"sku": "a", "price": 2, "tags": ["x"]}, {"sku": "b", "price": 3.5}],
        "customer": None,
    },
    "flag": True,
}


@pytest.mark.parametrize(
    "path",
    [
        "order.id",
        "order.total",
        "order.items[1].price",
        "order.items[-1].sku",
        "order.items[3].sku",
        "order.items.sku",
        "order.items.tags",
        "order.items.price[2]",
        "order.customer.name",
        "order.missing",
        "order.id.length",
        "order.id[1]",
        "flag.value",
        "order.items[0]",
    ],
)
def test_paths_into_json_variables_match_paths_into_feel_values(path: str) -> None:
    # `order.x` walks the caller's JSON directly; `{v: order}.v.x` goes through a FEEL
    # context first. Results and warnings must not differ.
    fast = compile_expression(path).evaluate_with_warnings(DOCUMENT)
    root, _, rest = path.partition(".")
    general = compile_expression(f"{{v: {root}}}.v.{rest}").evaluate_with_warnings(DOCUMENT)
    assert fast == general


def test_date_and_time_in_a_zone() -> None:
    # feel-scala: same instant for a zoned value, local value placed in the zone otherwise
    assert (
        evaluate('date and time(date and time("2020-01-01T10:00:00Z"), "Europe/Berlin")')
        == "2020-01-01T11:00:00+01:00[Europe/Berlin]"
    )
    assert (
        evaluate('date and time(date and time("2020-01-01T10:00:00"), "Europe/Berlin")')
        == "2020-01-01T10:00:00+01:00[Europe/Berlin]"
    )
    assert evaluate('date and time(date and time("2020-01-01T10:00:00Z"), "Nowhere/Zone")') is None


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("5 in ]1..10[", True),
        ("10 in [1..10[", False),
        ("1 in ]1..10]", False),
        ("[1..10[ = [1..10)", True),
        ("[1, 2, 3][-1]", 3),  # a filter, not a range bracket
        ("[[1, 2]][1][-1]", 2),
        ("count([[], []])", 2),  # `[]` followed by `,` is an empty list
        ("for x in [] return x", []),
    ],
)
def test_range_brackets_in_both_directions(expression: str, expected: object) -> None:
    assert evaluate(expression) == expected
