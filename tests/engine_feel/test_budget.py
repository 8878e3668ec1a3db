"""Issue 8: every FEEL evaluation has a budget (steps, produced bytes, CPU time) and regexes run
on RE2 (linear time), so no expression can stall the partition that evaluates it."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
import re2

from engine.feel import FeelEvaluationError, budget, compile_expression, evaluate, parse_unary_tests
from engine.feel.budget import CHECK_EVERY, Budget, FeelBudgetExceeded
from engine.feel.builtins import strings
from engine.feel.scope import root_scope

REPO_ROOT = Path(__file__).resolve().parents[2]


def budget_failure(text: str, budget: Budget | None = None) -> str:
    try:
        if budget is None:
            evaluate(text)
        else:
            compile_expression(text)._evaluator(root_scope({}, budget))
    except FeelBudgetExceeded as failure:
        assert isinstance(failure, FeelEvaluationError)  # the engine turns it into an incident
        return str(failure)
    raise AssertionError(f"{text!r} was evaluated within the budget")


def test_regexes_run_on_re2_so_catastrophic_backtracking_is_linear() -> None:
    assert isinstance(strings._pattern("(a+)+$"), re2._Regexp)
    assert evaluate('matches("' + "a" * 40 + '!", "(a+)+$")') is False
    assert evaluate('matches("' + "a" * 40 + '", "(a+)+$")') is True
    assert evaluate('replace("abc", "(b)", "[$1]")') == "a[b]c"
    assert evaluate('matches("Hello", "hello", "i")') is True
    assert evaluate('matches("a b", "a b", "x")') is False and evaluate('matches("ab", "a b", "x")') is True


def test_a_huge_nested_loop_exhausts_the_step_budget_before_it_allocates() -> None:
    message = budget_failure("count(for x in 1..1999999 return for y in 1..10 return y)")
    assert "steps" in message


def test_exponential_recursion_exhausts_the_budget() -> None:
    budget_failure("{f: function(n) if n <= 1 then n else f(n - 1) + f(n - 2), r: f(40)}.r")


def test_building_a_huge_string_exhausts_the_memory_budget() -> None:
    chunk = "a" * 200
    # a generous CPU allowance, so that the memory limit is what stops it on any machine
    message = budget_failure(f'string join(for x in 1..50000 return "{chunk}")', Budget(cpu_seconds=60))
    assert "bytes" in message


def test_repeated_concatenation_is_charged() -> None:
    budget_failure(
        'count(for x in 1..3000 return string join(for y in 1..100 return "abcdefgh"))',
        Budget(cpu_seconds=60),
    )


def test_ordinary_expressions_are_far_inside_the_budget() -> None:
    # (the CPU allowance, 5 ms, lets a thousand or more loop iterations through; these are far less)
    assert evaluate("sum(for x in 1..200 return x)") == 20100
    assert evaluate("count(items[price > 10])", {"items": [{"price": n} for n in range(300)]}) == 289
    assert evaluate('string join(for x in 1..200 return "ab")') == "ab" * 200


def test_cpu_time_is_checked_every_few_hundred_steps() -> None:
    expression = compile_expression("count(for x in 1..5000 return x)")
    # Ample CPU for the baseline: under a loaded machine 5000 steps can exceed the default 5 ms.
    assert expression._evaluator(root_scope({}, Budget(cpu_seconds=60.0))) == 5000
    starved = root_scope({}, Budget(cpu_seconds=-1.0))
    try:
        expression._evaluator(starved)
    except FeelBudgetExceeded as failure:
        assert "CPU" in str(failure)
    else:
        raise AssertionError("a budget without CPU time let 5000 steps through")
    assert CHECK_EVERY < 5000


# issue 15: built-ins whose work grows faster than their arguments charge as they go ----------


def test_distinct_values_of_a_huge_variable_is_stopped_not_run_for_minutes() -> None:
    # 20,000 distinct contexts: pairwise comparison (200 million of them took 73 s before the
    # comparisons were charged); the step or CPU limit now stops it within a few hundred.
    items = [{"id": n} for n in range(20_000)]
    with pytest.raises(FeelBudgetExceeded):
        compile_expression("distinct values(items)").evaluate({"items": items}, cpu_seconds=10.0)
    with pytest.raises(FeelBudgetExceeded):
        compile_expression("duplicate values(items)").evaluate({"items": items}, cpu_seconds=10.0)


def test_distinct_and_duplicate_values_of_scalars_are_linear() -> None:
    # hashed: 20,000 numbers go through in one pass (well inside the step budget)
    items = list(range(2_000)) * 2
    distinct = compile_expression("count(distinct values(items))")
    assert distinct.evaluate({"items": items}, cpu_seconds=10.0) == 2_000
    duplicates = compile_expression("count(duplicate values(items))")
    assert duplicates.evaluate({"items": items}, cpu_seconds=10.0) == 2_000


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # FEEL equality, not Python's: true is not 1, 1.0 is 1, null is one value
        (
            'distinct values([1, 1.0, true, "1", null, null, [1], [1.0], {a: 1}, {a: 1}])',
            [1, True, "1", None, [1], {"a": 1}],
        ),
        (
            'distinct values([@"2020-01-01", date("2020-01-01"), @"2020-01-01T00:00:00"])',
            ["2020-01-01", "2020-01-01T00:00:00"],
        ),
        # in the order of the first occurrence
        ("duplicate values([3, 1, 2, 2, 1, [1], [1], true, true, 4])", [1, 2, [1], True]),
        ("duplicate values([[2], 1, [2], 1, 1])", [[2], 1]),
        ("union([1, 2], [2, 3], [3, true])", [1, 2, 3, True]),
    ],
)
def test_distinct_and_duplicate_values_keep_feel_equality_and_order(
    expression: str, expected: object
) -> None:
    assert evaluate(expression) == expected


def test_a_split_into_a_hundred_thousand_parts_is_stopped_mid_way() -> None:
    for expression in ('split(s, "")', 'extract(s, "a")', 'count(split(s, "a"))'):
        with pytest.raises(FeelBudgetExceeded):
            compile_expression(expression).evaluate({"s": "a" * 100_000})


def test_a_quadratic_replacement_is_stopped_before_it_is_allocated() -> None:
    # every position matches "", each replaced by the whole string: 400 million characters
    text = "a" * 20_000
    tracemalloc.start()
    try:
        with pytest.raises(FeelBudgetExceeded, match="bytes"):
            compile_expression('replace(s, "", s)').evaluate({"s": text}, cpu_seconds=10.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024, f"{peak} bytes allocated before the budget stopped it"


def test_regex_built_ins_still_answer_ordinary_calls() -> None:
    assert evaluate('split("a,b,,c", ",")') == ["a", "b", "", "c"]
    assert evaluate('split("abc", "")') == ["", "a", "b", "c", ""]
    assert evaluate('extract("a1b22c333", "\\d+")') == ["1", "22", "333"]
    assert evaluate('replace("abc", "(b)", "[$1]")') == "a[b]c"
    assert evaluate('replace("aaa", "a*", "-")') == "--"
    assert evaluate('replace("abc", "", "-")') == "-a-b-c-"


# issue 15: the CPU allowance is configurable --------------------------------------------------


def test_the_cpu_allowance_can_be_given_per_evaluation() -> None:
    expression = compile_expression("count(for x in 1..60000 return x)")
    assert expression.evaluate({}, cpu_seconds=10.0) == 60_000
    with pytest.raises(FeelBudgetExceeded, match=r"0\.1 ms of CPU time.*ENGINE_FEEL_CPU_MS"):
        expression.evaluate({}, cpu_seconds=0.0001)
    unary = parse_unary_tests("< 10")
    assert unary.matches(5, cpu_seconds=1.0) is True


def test_the_process_wide_default_can_be_changed() -> None:
    assert budget.default_cpu_seconds() == budget.MAX_CPU_SECONDS  # unless the env var is set
    budget.set_default_cpu_seconds(0.0001)
    try:
        assert Budget().max_cpu == 0.0001
        with pytest.raises(FeelBudgetExceeded, match="CPU"):
            evaluate("count(for x in 1..60000 return x)")
    finally:
        budget.set_default_cpu_seconds(budget.MAX_CPU_SECONDS)
    assert Budget().max_cpu == budget.MAX_CPU_SECONDS


@pytest.mark.parametrize("seconds", [0, -1, 0.00001, 11, float("nan"), "5", True])
def test_a_nonsensical_allowance_is_refused_with_the_accepted_range(seconds: object) -> None:
    with pytest.raises(ValueError, match="FEEL CPU allowance"):
        budget.set_default_cpu_seconds(seconds)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="FEEL CPU allowance"):
        compile_expression("1").evaluate({}, cpu_seconds=seconds)  # type: ignore[arg-type]
    assert budget.default_cpu_seconds() == budget.MAX_CPU_SECONDS


def _default_in_a_fresh_process(value: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, budget.CPU_ENV_VAR: value}
    # through `python -m engine`'s own module, which imports engine.feel when it is loaded
    code = "import engine.__main__; from engine.feel.budget import default_cpu_seconds; print(default_cpu_seconds())"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )


def test_the_environment_variable_sets_the_default_of_python_dash_m_engine() -> None:
    # engine/__main__.py imports engine.feel, so the variable configures `python -m engine`
    result = _default_in_a_fresh_process("20")
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) == 0.02
    for bad in ("abc", "100000"):  # (0 and negatives: test_a_nonsensical_allowance_...)
        result = _default_in_a_fresh_process(bad)
        assert result.returncode != 0
        assert "ENGINE_FEEL_CPU_MS" in result.stderr.strip().splitlines()[-1]


def test_a_pattern_that_is_slow_to_compile_is_refused() -> None:
    # RE2 matches in linear time, but compiling thirty `{1,1000}` took 2 s in one call
    slow = compile_expression("matches(s, p)")
    result, warnings = slow.evaluate_with_warnings({"s": "abc", "p": "[a-z]{1,1000}" * 30})
    assert result is None
    assert any("counted repetitions" in warning for warning in warnings)
    assert slow.evaluate({"s": "2024-01-31", "p": "^\\d{4}-\\d{2}-\\d{2}$"}) is True
    assert slow.evaluate({"s": "a{5000}", "p": "a\\{5000\\}"}) is True  # escaped braces are text


def test_an_overlong_pattern_is_refused_before_it_is_rewritten_or_compiled() -> None:
    # a 1 MB pattern of dots took 3 s (rewriting Java's `.` and compiling, uninterruptible)
    for pattern in ("." * 1_000_000, "a" * 1001):
        result, warnings = compile_expression("matches(s, p)").evaluate_with_warnings(
            {"s": "a", "p": pattern}
        )
        assert result is None
        assert any("longer than 1000 characters" in warning for warning in warnings)


def test_long_rewritten_patterns_are_not_kept_in_the_pattern_cache() -> None:
    strings._compiled.cache_clear()
    # 200 dots become 200 Java-style classes: over the cached length, compiled each time
    assert evaluate("matches(s, p)", {"s": "a" * 200, "p": "." * 200}) is True
    assert strings._compiled.cache_info().currsize == 0
    assert evaluate('matches("ab", "a|b")') is True
    assert strings._compiled.cache_info().currsize == 1


def test_a_built_in_over_a_huge_context_is_charged_per_entry() -> None:
    # `get entries` of 50,000 entries ran 200 ms with no budget check: a context argument
    # counted as one step, so the CPU check (every 256 steps) never came
    context = {f"k{n}": n for n in range(50_000)}
    with pytest.raises(FeelBudgetExceeded, match="steps"):
        compile_expression("get entries(c)")._evaluator(root_scope({"c": context}, Budget(steps=10_000)))
    assert evaluate("count(get entries(c))", {"c": {"a": 1, "b": 2}}) == 2
