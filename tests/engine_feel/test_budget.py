"""Issue 8: every FEEL evaluation has a budget (steps, produced bytes, CPU time) and regexes run
on RE2 (linear time), so no expression can stall the partition that evaluates it."""

from __future__ import annotations

import re2

from engine.feel import FeelEvaluationError, compile_expression, evaluate
from engine.feel.budget import CHECK_EVERY, Budget, FeelBudgetExceeded
from engine.feel.builtins import strings
from engine.feel.scope import root_scope


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
