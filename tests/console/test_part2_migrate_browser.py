"""Migration in headless Chromium against the live system (issue 19 "Must show"): the mapping
editor on the instance page (elements matched by id, a row changed to an element of another type
shows Zeebe's refusal before anything is sent, the fixed plan is migrated and the instance runs on
version 2), and the batch dialog's dry run for every instance of version 1 (what would be migrated,
what refused and why, nothing sent). Screenshots go under test-output/browser/. Reuses the live
stack and browser of tests/console/test_browser.py."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.console import test_browser as base
from tests.console.live_stack import BPMN_HEADER, LiveStack, one_step_model, service_step
from tests.console.test_browser import OUTPUT_DIR, Walk
from tests.support import wait_for

# The live stack, the browser and the per-test page of the issue-12 browser tests.
stack = base.stack
browser = base.browser
walk = base.walk

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db]

PROCESS = "mig-flow"
# Version 2: the same step, then a user task 'approve' before the end.
VERSION_2 = (
    BPMN_HEADER + f'<bpmn:process id="{PROCESS}" isExecutable="true">'
    '<bpmn:startEvent id="start"/>'
    '<bpmn:serviceTask id="step" name="mig-check"><bpmn:extensionElements>'
    '<zeebe:taskDefinition type="mig-check" retries="1"/></bpmn:extensionElements></bpmn:serviceTask>'
    '<bpmn:userTask id="approve" name="Approve"/>'
    '<bpmn:endEvent id="end"/>'
    '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="step"/>'
    '<bpmn:sequenceFlow id="f2" sourceRef="step" targetRef="approve"/>'
    '<bpmn:sequenceFlow id="f3" sourceRef="approve" targetRef="end"/>'
    "</bpmn:process></bpmn:definitions>"
).encode()


@pytest.fixture(scope="module")
def versions(stack: dict[str, Any]) -> dict[str, Any]:
    """Three instances of version 1 (their jobs held by a worker; one failed: an incident), then
    version 2 deployed; all imported."""
    live: LiveStack = stack["live"]
    live.deploy(f"{PROCESS}.bpmn", one_step_model(PROCESS, service_step("mig-check")))
    keys = [live.create(PROCESS, {"serverSn": f"SN-MIG-{n}"}) for n in range(3)]
    jobs = {job.processInstanceKey: job for job in live.activate_until("mig-check", worker="mig", count=3)}
    live.fail(jobs[keys[2]].key, "BMC unreachable", retries=0)
    live.deploy(f"{PROCESS}-v2.bpmn", VERSION_2)
    from processes.models import Incident, ProcessDefinition, ProcessInstance

    def imported() -> bool:
        live.check_alive()
        with stack["blocker"].unblock():
            return (
                ProcessDefinition.objects.filter(bpmn_process_id=PROCESS).count() == 2
                and ProcessInstance.objects.filter(key__in=keys, version=1).count() == 3
                and Incident.objects.filter(process_instance_id=keys[2], state="active").exists()
            )

    wait_for(imported, timeout=60, interval=0.1, what="the migration scenario to be imported")
    return {"keys": keys, "jobs": jobs}


def screenshot(walk: Walk, name: str) -> None:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / f"{name}.png"
    walk.page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def test_batch_migration_dry_run_lists_what_would_be_refused_and_why(walk: Walk, stack, versions) -> None:  # type: ignore[no-untyped-def]
    walk.login("olga")
    page = walk.page
    page.goto(f"/instances/?bpmn_process_id={PROCESS}&version=1")
    page.click("button:has-text('Migrate all to another version…')")
    modal = page.locator(".modal")
    expect(modal).to_contain_text(f"Migrate every active instance of {PROCESS} version 1")
    # Matched by id: the step maps to the step of version 2.
    expect(page.locator(".modal select[name='map-step']")).to_have_value("step")
    page.click(".modal button:has-text('Dry run')")
    expect(page.locator("[data-would-migrate]")).to_have_text("2")
    expect(page.locator("[data-would-refuse]")).to_have_text("1")
    expect(page.locator("[data-refusal-reason]")).to_contain_text("has an incident")
    expect(page.locator("[data-confirm-button]")).to_contain_text("Start batch: migrate 2")
    screenshot(walk, "test_batch_migration_dry_run")
    from processes.operations.models import BatchOperation, Operation

    with stack["blocker"].unblock():
        assert not Operation.objects.filter(action="migrate").exists()
        assert not BatchOperation.objects.filter(action="migrate").exists()


def test_migration_mapping_refusal_then_migrate(walk: Walk, stack, versions) -> None:  # type: ignore[no-untyped-def]
    live: LiveStack = stack["live"]
    key = versions["keys"][0]
    walk.login("olga")
    page = walk.page
    page.goto(f"/instances/{key}/")
    page.wait_for_selector(".live-status.on")
    page.click("#instance-why button:has-text('Migrate…')")
    modal = page.locator(".modal")
    expect(modal).to_contain_text(f"Migrate {PROCESS} instance {key}")
    row = page.locator(".modal tr[data-source='step']")
    expect(row.locator("select")).to_have_value("step")
    expect(row.locator("[data-row-status]")).to_contain_text("moves 1 token to step")
    # Mapped to the user task: the row says why the engine would refuse, and Migrate is gone.
    row.locator("select").select_option("approve")
    expect(page.locator(".modal tr[data-source='step'] [data-row-refusal]")).to_contain_text(
        "and type 'SERVICE_TASK' is mapped to an element with id 'approve' and different type 'USER_TASK'"
    )
    expect(page.locator(".modal [data-confirm-button]")).to_have_count(0)
    screenshot(walk, "test_migration_mapping_refused")
    page.locator(".modal tr[data-source='step'] select").select_option("step")
    expect(page.locator("[data-plan]")).to_contain_text("The token at 'step' (SERVICE_TASK")
    screenshot(walk, "test_migration_mapping_plan")
    page.click(".modal [data-confirm-button]")
    page.wait_for_selector(".operation[data-operation-state='confirmed']", timeout=30_000)
    page.click(".modal [data-close-dialog]")
    # The held job completes under its old key and the instance goes on along version 2.
    live.complete(versions["jobs"][key].key)
    from processes.models import ElementInstance

    def at_approve() -> bool:
        live.check_alive()
        with stack["blocker"].unblock():
            return ElementInstance.objects.filter(process_instance_id=key, element_id="approve").exists()

    # Bounded generously: on a loaded machine the import can take a while.
    wait_for(at_approve, timeout=90, interval=0.2, what="the instance to reach version 2's 'approve'")
    page.goto(f"/instances/{key}/")
    expect(page.locator("h1 small")).to_have_text("v2")
    expect(page.locator("table.history tr", has_text="approve")).to_contain_text("Active")
