"""Walk the real demo in headless Chromium as the operator (issue 13 "Must show"): from the dashboard to
the stuck flow (a diagnosis of an unreachable machine, whose BMC log download ran out of retries), retry
it, and see it finish. The demo is `python -m console.demo` as `make demo` runs it, on SQLite in a
temporary folder; the retry goes through the console's action dialog, the Celery worker and the proxy.
The final page is saved as a screenshot (test-output/stack/, for the README)."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import free_port
from tests.stack.helpers import REPO, Browser, StackProcess, python
from tests.support import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
OUTPUT_DIR = Path(os.environ.get("TEST_OUTPUT_DIR", REPO / "test-output")) / "stack"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[dict[str, Any]]:
    web_port, gateway_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        DEBUG="1",
        FLEETFLOW_DEMO_PORT=str(web_port),
        FLEETFLOW_DEMO_GATEWAY_PORT=str(gateway_port),
        FLEETFLOW_DEMO_DATA_DIR=str(tmp_path / "demo"),
    )
    stack = StackProcess([python(), "-m", "console.demo"], env=env, log_dir=tmp_path)
    try:
        stack.wait_started(timeout=120)
        yield {"url": f"http://127.0.0.1:{web_port}", "stack": stack}
    except BaseException:
        stack.kill_all()
        print(stack.output())
        raise
    code = stack.stop(signal.SIGINT)
    assert code == 0, stack.output()


def test_operator_finds_the_stuck_flow_from_the_dashboard_retries_it_and_sees_it_finish(
    demo: dict[str, Any],
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian package 'chromium' (.ci/run does)")
    from playwright.sync_api import expect, sync_playwright

    api = Browser(demo["url"])
    api.login("operator", "operator")

    def unreachable_incident() -> dict[str, Any] | None:
        rows = api.get_json("/api/v1/incidents/?state=active")["results"]
        return next((row for row in rows if "unreachable" in row["error_message"]), None)

    incident = wait_for(
        what="the unreachable machine's incident", probe=unreachable_incident, timeout=120, interval=0.5
    )
    instance_key = str(incident["process_instance_key"])

    errors: list[str] = []
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = chromium.new_context(base_url=demo["url"], viewport={"width": 1400, "height": 1000})
            context.set_default_timeout(45_000)  # the demo's import can lag on a busy machine
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
            page.goto("/accounts/login/")
            page.fill("input[name=username]", "operator")
            page.fill("input[name=password]", "operator")
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r".*/$"))

            # Dashboard -> incidents by error -> the instances stuck on it -> the instance.
            page.click("#dashboard-body a:has-text('unreachable')")
            page.wait_for_url(re.compile(r".*/instances/\?.*error_message=.*"))
            page.click(f"table.instances tbody a:has-text('{instance_key}')")
            page.wait_for_url(re.compile(rf".*/instances/{instance_key}/"))
            assert "unreachable" in page.inner_text(".why")

            page.click(".why button:has-text('Retry…')")
            assert "What will happen" in page.inner_text(".modal")
            page.click("[data-confirm-button]")
            page.wait_for_selector(".operation[data-operation-state='confirmed']", timeout=60_000)
            page.click(".modal [data-close-dialog]")

            def finished() -> bool:
                return api.get_json(f"/api/v1/process-instances/{instance_key}/")["state"] == "completed"

            wait_for(what="the retried flow to finish", probe=finished, timeout=120, interval=0.5)
            page.reload()
            expect(page.locator("table.history tr", has_text="download-logs")).to_contain_text("Completed")
            OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
            screenshot = OUTPUT_DIR / "demo-retried-instance.png"
            page.screenshot(path=str(screenshot), full_page=True)
            print(f"screenshot: {screenshot}")
            page.goto("/")
            page.screenshot(path=str(OUTPUT_DIR / "demo-dashboard.png"), full_page=True)
        finally:
            chromium.close()
    assert errors == [], errors
