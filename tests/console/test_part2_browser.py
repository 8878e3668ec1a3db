"""The modification plan in headless Chromium against the live system (issue 19 "Must show"): the
operator ticks the stuck step, picks the end event from the diagram's elements, previews what will
happen, applies, and the instance completes. Screenshots (preview and end) go under
test-output/browser/. Reuses the live stack and browser of tests/console/test_browser.py."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.console import test_browser as base
from tests.console.test_browser import OUTPUT_DIR, Walk

# The live stack, the browser and the per-test page of the issue-12 browser tests.
stack = base.stack
browser = base.browser
walk = base.walk

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db]


def test_modification_plan_moves_a_stuck_token_past_the_step(walk: Walk, stack) -> None:  # type: ignore[no-untyped-def]
    walk.login("olga")
    page = walk.page
    instance_key = stack["disks"][2]  # its disk-check job failed with no retries left
    page.goto(f"/instances/{instance_key}/")
    page.wait_for_selector(".live-status.on")
    page.click("#instance-why button:has-text('Modify…')")
    modal = page.locator(".modal")
    expect(modal).to_contain_text("Cancel tokens")
    # The picker offers what can be activated: the step and the end event, never the start event.
    options = page.locator(".modal select[name='activate-0-element'] option").all_inner_texts()
    assert "end (END_EVENT)" in options and not any("START_EVENT" in text for text in options)
    page.check(".modal input[name=terminate]")
    page.select_option(".modal select[name='activate-0-element']", "end")
    page.fill(".modal textarea[name='activate-0-variables']", '{"diskSkipped": true}')
    page.click(".modal button:has-text('Preview')")
    plan = page.locator("[data-plan]")
    expect(plan).to_contain_text("Add a token before 'end' (END_EVENT) with variables ['diskSkipped'].")
    expect(plan).to_contain_text("Cancel the token at 'step'")
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / "test_modification_plan_preview.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    page.click(".modal button:has-text('Apply this plan')")
    page.wait_for_selector(".operation[data-operation-state='confirmed']", timeout=30_000)
    page.click(".modal [data-close-dialog]")
    page.wait_for_selector("#instance-state.state-completed", timeout=15_000)
