"""FEEL benchmark: evaluations per second of typical BPMN expressions.

For each expression (compiled once, as the engine does through the lru cache), evaluates it
in a tight loop for about `--seconds` per run and reports the median rate over `--runs`
runs. Also reports the cost of a cache miss (parse + compile). Prints one JSON object.

Run: ``.venv/bin/python bench/feel.py [--runs 5] [--seconds 0.3]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from engine.feel import compile_expression  # noqa: E402

# (BPMN attribute text, variables) - the leading "=" is what the engine strips off.
EXPRESSIONS: list[tuple[str, dict[str, Any]]] = [
    ("= amount > 100", {"amount": 150}),
    ("= order.items[1].price * 2", {"order": {"id": "o-1", "items": [{"price": 10.5}, {"price": 3}]}}),
    ('= if x then "a" else "b"', {"x": True}),
    ('= status = "APPROVED" and count(items) >= 2', {"status": "APPROVED", "items": [1, 2, 3]}),
    (
        "= sum(for item in order.items return item.price)",
        {"order": {"items": [{"price": 1}, {"price": 2.5}]}},
    ),
    # one field out of a large document (1,000 line items): only that field is converted
    (
        "= order.id",
        {"order": {"id": "o-1", "items": [{"sku": f"s{n}", "price": n * 1.5} for n in range(1000)]}},
    ),
]


def _rate(evaluate: Any, variables: dict[str, Any], seconds: float) -> float:
    batch = 1000
    evaluations = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(batch):
            evaluate(variables)
        evaluations += batch
        now = time.perf_counter()
        if now >= deadline:
            return evaluations / (now - started)


def _compile_cost(text: str, runs: int) -> float:
    uncached = compile_expression.__wrapped__
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(50):
            uncached(text)
        timings.append((time.perf_counter() - started) / 50)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.3)
    arguments = parser.parse_args()

    results = []
    for attribute, variables in EXPRESSIONS:
        text = attribute.lstrip("=").strip()
        compiled = compile_expression(text)
        rates = [_rate(compiled.evaluate, variables, arguments.seconds) for _ in range(arguments.runs)]
        results.append(
            {
                "expression": attribute,
                "evaluations_per_second": round(statistics.median(rates)),
                "microseconds_per_evaluation": round(1e6 / statistics.median(rates), 2),
                "runs": arguments.runs,
            }
        )
    compile_microseconds = _compile_cost("order.items[1].price * 2", arguments.runs) * 1e6
    print(
        json.dumps(
            {
                "benchmark": "feel",
                "python": sys.version.split()[0],
                "evaluations": results,
                "parse_and_compile_microseconds": round(compile_microseconds, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
