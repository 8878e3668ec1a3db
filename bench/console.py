"""Console figures (issue 12), printed as JSON lines:

1. ``first_paint``: the instance page of a root with 10,000 descendants (100 called instances, each
   calling 99), opened in headless Chromium against daphne: server response time, first contentful
   paint, and the time until the first level of the tree is on screen (it loads lazily).
2. ``import_to_screen``: an open instance page, the system running for real (engine, proxy, importer,
   daphne, Redis channel layer, importer in its own process); a variable is set through the proxy
   again and again. Per change: from the commit of the import batch that carried it
   (ImportPosition.updated_at, written in that transaction) to the moment the new value is in the
   page's DOM (a MutationObserver in the page stamps it), and from the SetVariables call to the
   DOM. Goal: p95 <= 1 s for the first.

Run: ``python -m tests.services -- .venv/bin/python bench/console.py`` (``make bench`` does).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "bench-pw-123"  # noqa: S105 - a throwaway user in a throwaway database

WATCH_SCRIPT = """(expected) => {
  window.fleetflowSeen = new Promise((resolve) => {
    const shows = () => {
      const row = Array.from(document.querySelectorAll('table.variables tr'))
        .find((tr) => tr.querySelector('th') && tr.querySelector('th').textContent === 'tick');
      const code = row && row.querySelector('code');
      return Boolean(code && code.textContent === expected);
    };
    if (shows()) { resolve(Date.now()); return; }
    const observer = new MutationObserver(() => { if (shows()) { observer.disconnect(); resolve(Date.now()); } });
    observer.observe(document.body, { childList: true, subtree: true, characterData: true });
    setTimeout(() => { observer.disconnect(); resolve(null); }, 15000);
  });
}"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 1),
        "p95": round(percentile(values, 0.95), 1),
        "max": round(max(values), 1),
    }


def browser(playwright: Any) -> Any:
    return playwright.chromium.launch(
        executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    )


def login(context: Any, username: str) -> Any:
    page = context.new_page()
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    return page


def make_big_tree(children: int, grandchildren: int) -> int:
    """A root with `children` called instances, each calling `grandchildren`: rows as the importer
    writes them (tree paths, depths, root keys)."""
    from datetime import UTC, datetime, timedelta

    from processes.models import ProcessInstance
    from routing.keys import to_global

    start = datetime.now(tz=UTC) - timedelta(hours=1)
    sequence = iter(range(1, 10_000_000))

    def key() -> int:
        return to_global(1, (1 << 51) + next(sequence))

    root_key = key()
    rows = [
        ProcessInstance(
            key=root_key, cluster_id=1, partition_id=1, bpmn_process_id="rack-sweep", version=1,
            start_date=start, root_id=root_key, depth=0, tree_path=f"{root_key}/",
        )
    ]  # fmt: skip
    for child_index in range(children):
        child_key = key()
        child_path = f"{root_key}/{child_key}/"
        rows.append(
            ProcessInstance(
                key=child_key, cluster_id=1, partition_id=1, bpmn_process_id="server-repair", version=1,
                start_date=start + timedelta(seconds=child_index), parent_id=root_key, root_id=root_key,
                depth=1, tree_path=child_path,
            )
        )  # fmt: skip
        for grandchild_index in range(grandchildren):
            grandchild_key = key()
            rows.append(
                ProcessInstance(
                    key=grandchild_key, cluster_id=1, partition_id=1, bpmn_process_id="diagnosis", version=1,
                    start_date=start + timedelta(seconds=child_index, milliseconds=grandchild_index),
                    parent_id=child_key, root_id=root_key, depth=2, tree_path=f"{child_path}{grandchild_key}/",
                )
            )  # fmt: skip
    ProcessInstance.objects.bulk_create(rows, batch_size=2000)
    return root_key


def bench_first_paint(stack: Any, runs: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    root_key = make_big_tree(100, 99)
    stack.start_web()
    figures: dict[str, list[float]] = {
        "response_ms": [],
        "first_contentful_paint_ms": [],
        "tree_level_ms": [],
    }
    with sync_playwright() as playwright:
        chromium = browser(playwright)
        context = chromium.new_context(base_url=stack.url)
        page = login(context, "bench")
        for _ in range(runs):
            started = time.perf_counter()
            page.goto(f"/instances/{root_key}/", wait_until="commit")
            page.locator(f"#tree li.node[data-key='{root_key}'] > ul.children > li.node").first.wait_for()
            figures["tree_level_ms"].append((time.perf_counter() - started) * 1000)
            timing = page.evaluate(
                """() => {
                  const nav = performance.getEntriesByType('navigation')[0];
                  const paint = performance.getEntriesByName('first-contentful-paint')[0];
                  return {response: nav.responseEnd - nav.requestStart, fcp: paint ? paint.startTime : null};
                }"""
            )
            figures["response_ms"].append(timing["response"])
            if timing["fcp"] is not None:
                figures["first_contentful_paint_ms"].append(timing["fcp"])
        chromium.close()
    return {
        "bench": "console",
        "figure": "first_paint",
        "descendants": 100 + 100 * 99,
        "runs": runs,
        **{name: summary(values) for name, values in figures.items() if values},
    }


def bench_import_to_screen(stack: Any, changes: int) -> dict[str, Any]:
    from django.db.models import Max
    from playwright.sync_api import sync_playwright
    from pyzeebe.proto import gateway_pb2 as pb

    from processes.models import ImportPosition, ProcessInstance
    from tests.console.live_stack import one_step_model, service_step
    from tests.support import wait_for

    stack.start_importer()
    stack.deploy("watched.bpmn", one_step_model("watched", service_step("nobody-polls")))
    instance_key = stack.create("watched", {"tick": -1})
    wait_for(
        lambda: ProcessInstance.objects.filter(key=instance_key).exists(),
        timeout=60,
        what="the instance import",
    )
    after_commit: list[float] = []
    after_call: list[float] = []
    with sync_playwright() as playwright:
        chromium = browser(playwright)
        context = chromium.new_context(base_url=stack.url)
        page = login(context, "bench")
        page.goto(f"/instances/{instance_key}/")
        page.wait_for_selector(".live-status.on")
        channel, stub = stack.gateway()
        with channel:
            for tick in range(changes):
                page.evaluate(WATCH_SCRIPT, str(tick))
                called = time.time()
                stub.SetVariables(
                    pb.SetVariablesRequest(
                        elementInstanceKey=instance_key, variables=json.dumps({"tick": tick}), local=False
                    ),
                    timeout=30,
                )
                seen_ms = page.evaluate("() => window.fleetflowSeen")
                if seen_ms is None:
                    raise SystemExit(f"change {tick} did not reach the page within 15 s")
                committed = ImportPosition.objects.aggregate(latest=Max("updated_at"))["latest"]
                after_commit.append(seen_ms - committed.timestamp() * 1000)
                after_call.append(seen_ms - called * 1000)
                time.sleep(0.2)  # one change per import batch, as a person watching would see them
        chromium.close()
    return {
        "bench": "console",
        "figure": "import_to_screen",
        "changes": changes,
        "from_import_commit_ms": summary(after_commit),
        "from_set_variables_call_ms": summary(after_call),
        "goal_p95_ms": 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="page loads for first_paint")
    parser.add_argument("--changes", type=int, default=30, help="changes for import_to_screen")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        raise SystemExit("run under `python -m tests.services --`: it needs PostgreSQL and Redis")
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: install the Debian package 'chromium'")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # sync Playwright keeps a loop around
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection

    from processes import services
    from processes.roles import Role, assign_role
    from tests.console.live_stack import LiveStack, database_url

    call_command("migrate", verbosity=0)
    with tempfile.TemporaryDirectory(prefix="bench-console-") as work:
        stack = LiveStack(
            work_dir=Path(work),
            database_url=database_url(connection.settings_dict),
            redis_url=os.environ["REDIS_URL"],
        )
        try:
            stack.start_engine_and_proxy()
            services.cluster_create(
                cluster_id=1,
                name="c1",
                gateway_address=stack.engine_address,
                record_source_config={"data_dir": str(stack.engine_dir)},
            )
            if not User.objects.filter(username="bench").exists():
                assign_role(
                    user=User.objects.create_user(username="bench", password=PASSWORD), role=Role.VIEWER
                )
            print(json.dumps(bench_first_paint(stack, args.runs)), flush=True)
            print(json.dumps(bench_import_to_screen(stack, args.changes)), flush=True)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
