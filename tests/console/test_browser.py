"""The console in headless Chromium against the live system (issue 12 "Must show").

One stack for the module (tests/console/live_stack.py): engine, proxy, importer, Celery worker and
daphne, on the pytest-django test database and the suite's Redis. Jobs are failed and completed from
the test through the proxy, so each step happens when the test says. Every test saves a screenshot
under test-output/browser/ (the path is printed) and fails on any console error or page error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.console.live_stack import (
    FIXTURES,
    LIVE_APPLICATION_NAME,
    LiveStack,
    database_url,
    one_step_model,
    service_step,
    user_step,
)
from tests.support import wait_for

# django_db: each test runs in a transaction of its own that is rolled back, which the live processes
# never see (they commit on their own connections, and READ COMMITTED shows their rows to the test);
# the module's data is committed once by the stack fixture and flushed at its end.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db]

CHROMIUM = "/usr/bin/chromium"
OUTPUT_DIR = (
    Path(os.environ.get("TEST_OUTPUT_DIR", Path(__file__).resolve().parents[2] / "test-output")) / "browser"
)
PASSWORD = "browser-pw-123"

# Sync Playwright keeps an event loop in this thread between calls; the ORM calls the test makes
# (reading rows to wait for the importer) are plain blocking calls made outside it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _orm() -> Any:
    from processes.models import Incident, ProcessInstance

    return ProcessInstance, Incident


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, redis_url, tmp_path_factory) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian package 'chromium' (.ci/run does)")
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection, connections

    from processes import services
    from processes.roles import Role, assign_role

    live = LiveStack(
        work_dir=tmp_path_factory.mktemp("live-stack"),
        database_url=database_url(connection.settings_dict),
        redis_url=redis_url,
    )
    try:
        live.start_engine_and_proxy()
        with django_db_blocker.unblock():
            services.cluster_create(
                cluster_id=1,
                name="c1",
                gateway_address=live.engine_address,
                record_source_config={"data_dir": str(live.engine_dir)},
            )
            spare_dir = live.work_dir / "engine-2"
            spare_dir.mkdir()
            services.cluster_create(
                cluster_id=2,
                name="c2-spare",
                gateway_address="127.0.0.1:9",
                record_source_config={"data_dir": str(spare_dir)},
            )
            for name, role in (("vera", Role.VIEWER), ("olga", Role.OPERATOR), ("ada", Role.ADMIN)):
                assign_role(user=User.objects.create_user(username=name, password=PASSWORD), role=role)
        live.start_console_side()
        scenario = seed(live, django_db_blocker)
        yield {"live": live, "blocker": django_db_blocker, **scenario}
    finally:
        live.stop()
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)
            wait_for(
                lambda: _other_sessions(connection) == 0,
                timeout=15,
                interval=0.1,
                what="the live processes' database sessions to end",
            )
        connections.close_all()


def _other_sessions(connection: Any) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, state, left(query, 120) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            [LIVE_APPLICATION_NAME],
        )
        rows = cursor.fetchall()
    if rows:
        print("other database sessions:", rows)
    return len(rows)


def seed(live: LiveStack, blocker: Any) -> dict[str, Any]:
    """Models and instances the tests walk through, imported before the first test starts."""
    for name in ("diagnosis.bpmn", "server-repair.bpmn", "rack-sweep.bpmn"):
        live.deploy(name, (FIXTURES / name).read_bytes())
    live.deploy("ship-order.bpmn", one_step_model("ship-order", service_step("ship-part")))
    live.deploy("manual-check.bpmn", one_step_model("manual-check", user_step("repair-lead")))
    live.deploy("disk-check.bpmn", one_step_model("disk-check", service_step("disk-check")))

    root = live.create("rack-sweep", {"servers": ["SN-BROWSER-A", "SN-BROWSER-B"], "serverSn": "SN-RACK-7"})
    (list_job,) = live.activate_until("list-servers", worker="rack-worker", count=1)
    live.complete(list_job.key)
    # Two server-repair instances, each calling diagnosis: a three-level tree. Fail the CPU check of
    # one diagnosis with no retries left: an incident the tests look at and retry.
    cpu_jobs = live.activate_until("check-cpu", worker="cpu-worker-1", count=2)
    live.fail(cpu_jobs[0].key, "CPU sensor unreadable", retries=0)
    incident_instance = int(cpu_jobs[0].processInstanceKey)

    ship = live.create("ship-order", {"serverSn": "SN-BROWSER-A"})
    manual = live.create("manual-check", {"serverSn": "SN-BROWSER-A"})
    disks = [live.create("disk-check", {"serverSn": f"SN-DISK-{n}"}) for n in range(4)]
    for job in live.activate_until("disk-check", worker="disk-worker", count=len(disks)):
        live.fail(job.key, "Disk controller timeout", retries=0)

    ProcessInstance, Incident = _orm()

    def imported() -> bool:
        live.check_alive()
        with blocker.unblock():
            keys = {root, ship, manual, incident_instance, *disks}
            return (
                ProcessInstance.objects.filter(key__in=keys).count() == len(keys)
                and ProcessInstance.objects.filter(root_id=root).count() == 5
                and Incident.objects.filter(state="active").count() == 1 + len(disks)
            )

    wait_for(imported, timeout=60, interval=0.1, what="the seeded instances to be imported")
    return {
        "root": root,
        "incident_instance": incident_instance,
        "other_cpu_job": cpu_jobs[1].key,
        "ship": ship,
        "manual": manual,
        "disks": disks,
    }


@pytest.fixture(scope="module")
def browser(stack) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


class Walk:
    """One browser page of one test: logs in, collects console errors, saves the screenshot."""

    def __init__(self, browser: Any, base_url: str, name: str) -> None:
        self.base_url = base_url
        self.name = name
        self.context = browser.new_context(base_url=base_url, viewport={"width": 1400, "height": 1000})
        self.context.set_default_timeout(15_000)
        # htmx reports a missing swap target only by name: keep which element asked for what.
        self.context.add_init_script(
            "document.addEventListener('htmx:targetError', e => console.error('target missing: ' +"
            " (e.detail && e.detail.target) + ' asked by ' + (e.target && e.target.outerHTML || '').slice(0, 300)));"
        )
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        where = message.location or {}
        detail = ""
        if message.text.startswith("htmx:"):
            try:
                detail = " " + str(
                    message.args[1].evaluate(
                        "d => [d.target && d.target.outerHTML.slice(0, 200), d.xhr && d.xhr.status, d.pathInfo && d.pathInfo.requestPath]"
                    )
                )
            except Exception as error:  # the page may be gone
                detail = f" ({error})"
        self.errors.append(f"{message.text}{detail} at {where.get('url')}:{where.get('lineNumber')}")

    def login(self, username: str) -> None:
        self.page.goto("/accounts/login/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(re.compile(r".*/$"))

    def screenshot(self) -> Path:
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        path = OUTPUT_DIR / f"{self.name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path

    def finish(self) -> None:
        self.screenshot()
        self.context.close()
        assert self.errors == [], f"browser console errors: {self.errors}"


@pytest.fixture
def walk(browser, stack, request) -> Iterator[Walk]:  # type: ignore[no-untyped-def]
    stack["live"].check_alive()
    current = Walk(browser, stack["live"].url, request.node.name)
    yield current
    current.finish()


def test_login_and_dashboard(walk: Walk) -> None:
    walk.page.goto("/")
    assert "/accounts/login/" in walk.page.url
    walk.login("vera")
    page = walk.page
    assert page.inner_text("h1") == "Dashboard"
    assert page.inner_text("[data-figure=incidents]") == "5"
    assert "Disk controller timeout" in page.inner_text("#dashboard-body")
    assert "up" in page.inner_text("#dashboard-body")  # cluster health from the proxy's metrics.json
    page.wait_for_selector("[data-charts][data-charts-ready='1']")
    assert page.locator("[data-chart=instances] canvas").count() == 1
    # The lag chart has one sample right after the page opened: its time axis must end near
    # now, not span years (uPlot pads a single point by years unless told otherwise).
    span = page.evaluate(
        "() => { const x = document.querySelector('[data-chart=lag]').uplot.scales.x;"
        " return [x.min, x.max, Date.now() / 1000]; }"
    )
    low, high, now = span
    assert now - 3600 < low < high < now + 3600, span


def test_filter_instances(walk: Walk, stack) -> None:  # type: ignore[no-untyped-def]
    walk.login("vera")
    page = walk.page
    page.goto("/instances/")
    page.fill("input[name=bpmn_process_id]", "diagnosis")
    page.click("#instance-filters button[type=submit]")
    page.wait_for_url(re.compile(r".*bpmn_process_id=diagnosis.*"))
    processes = page.locator("table.instances tbody tr td:nth-child(2)").all_inner_texts()
    assert processes == ["diagnosis", "diagnosis"]
    page.fill("input[name=error_message]", "CPU sensor")
    page.click("#instance-filters button[type=submit]")
    keys = page.locator("table.instances tbody tr td:first-child a").all_inner_texts()
    assert keys == [str(stack["incident_instance"])]


def test_instance_shows_incident_on_diagram_and_why(walk: Walk, stack) -> None:  # type: ignore[no-untyped-def]
    walk.login("vera")
    page = walk.page
    page.goto(f"/instances/{stack['incident_instance']}/")
    page.wait_for_selector("#diagram[data-overlays-ready='1']")
    marked = page.locator(".djs-element.has-incident[data-element-id='check-cpu']")
    assert marked.count() == 1
    assert page.locator(".djs-overlay .badge-count.incidents").count() >= 1
    assert page.locator(".djs-connection.is-taken").count() >= 1  # start -> fork was taken
    why = page.inner_text(".why")
    assert "Step check-cpu has an incident (JOB_NO_RETRIES)" in why and "CPU sensor unreadable" in why


def test_expand_three_level_tree(walk: Walk, stack) -> None:  # type: ignore[no-untyped-def]
    walk.login("vera")
    page = walk.page
    page.goto(f"/instances/{stack['root']}/")
    root_node = page.locator(f"#tree li.node[data-key='{stack['root']}']")
    # The page's own instance opens by itself (lazy: one request per level).
    children = root_node.locator(":scope > ul.children > li.node")
    children.first.wait_for()
    assert children.count() == 2
    assert children.locator(":scope > a").all_inner_texts() == ["server-repair", "server-repair"]
    first_child = children.first
    first_child.locator(":scope > button.toggle").click()
    grandchild = first_child.locator(":scope > ul.children > li.node")
    grandchild.first.wait_for()
    assert grandchild.locator(":scope > a").all_inner_texts() == ["diagnosis"]
    # Folding hides the loaded level without fetching it again.
    first_child.locator(":scope > button.toggle").click()
    assert first_child.locator(":scope > ul.children").is_hidden()


def test_retry_incident_and_watch_it_move_on(walk: Walk, stack) -> None:  # type: ignore[no-untyped-def]
    live: LiveStack = stack["live"]
    walk.login("olga")
    page = walk.page
    page.goto(f"/instances/{stack['incident_instance']}/")
    page.wait_for_selector(".live-status.on")
    page.evaluate("window.fleetflowNoReload = 1")
    page.click(".why button:has-text('Retry…')")
    dialog = page.locator(".modal")
    assert "What will happen" in dialog.inner_text() and "check-cpu job" in dialog.inner_text()
    page.click("[data-confirm-button]")
    page.wait_for_selector(".operation[data-operation-state='confirmed']", timeout=30_000)
    page.click(".modal [data-close-dialog]")
    # The incident is resolved on screen without a reload; a worker now takes the job and completes it.
    # Generous waits: on a busy machine the import and the live event can take longer than 5 s.
    expect(page.locator(".why")).not_to_contain_text("CPU sensor unreadable", timeout=30_000)
    (job,) = live.activate_until("check-cpu", worker="cpu-worker-2", count=1)
    live.complete(job.key, {"ok": True})
    expect(page.locator("table.history tr", has_text="check-cpu")).to_contain_text(
        "Completed", timeout=30_000
    )
    page.wait_for_selector(".djs-element.is-completed[data-element-id='check-cpu']", timeout=30_000)
    assert page.evaluate("window.fleetflowNoReload") == 1


def test_why_stuck_names_a_job_type_no_worker_polls_then_skip(walk: Walk, stack) -> None:  # type: ignore[no-untyped-def]
    walk.login("olga")
    page = walk.page
    page.goto(f"/instances/{stack['ship']}/")
    why = page.inner_text(".why")
    assert "no worker has polled job type ship-part since the proxy started" in why
    # The model has no diagram data: laid out in the browser by bpmn-auto-layout.
    page.wait_for_selector("#diagram[data-auto-layout='1'][data-overlays-ready='1']")
    page.wait_for_selector(".live-status.on")
    page.click(".why button:has-text('Skip…')")
    assert "goes on along its normal outgoing path" in page.inner_text(".modal")
    page.fill(".modal textarea[name=variables]", '{"shipped": "by operator"}')
    page.click("[data-confirm-button]")
    page.wait_for_selector(".operation[data-operation-state='confirmed']", timeout=30_000)
    page.wait_for_selector("#instance-state.state-completed", timeout=15_000)
    # The tree follows too, without being rebuilt.
    expect(page.locator(f"#tree li.node[data-key='{stack['ship']}'] > [data-tree-state]")).to_have_text(
        "Completed"
    )


def test_reassign_manual_step(walk: Walk, stack) -> None:  # type: ignore[no-untyped-def]
    walk.login("olga")
    page = walk.page
    page.goto(f"/instances/{stack['manual']}/")
    assert "Manual step step is waiting for assignee repair-lead" in page.inner_text(".why")
    page.wait_for_selector(".live-status.on")
    page.click(".why button:has-text('Reassign…')")
    page.fill(".modal input[name=assignee]", "night-shift")
    page.click("[data-confirm-button]")
    page.wait_for_selector(".operation[data-operation-state='confirmed']", timeout=30_000)
    page.click(".modal [data-close-dialog]")
    expect(page.locator(".why")).to_contain_text("assignee night-shift")


def test_server_timeline(walk: Walk) -> None:
    walk.login("vera")
    page = walk.page
    page.goto("/servers/SN-BROWSER-A/")
    bars = page.locator("svg.timeline rect.bar")
    assert bars.count() >= 3  # the server-repair and diagnosis instances, ship-order, manual-check
    assert "server-repair" in (page.locator("svg.timeline").text_content() or "")


def test_batch_retry_progress_reaches_the_end(walk: Walk, stack) -> None:  # type: ignore[no-untyped-def]
    walk.login("olga")
    page = walk.page
    page.goto("/incidents/")
    row = page.locator("table.incident-groups tr", has_text="Disk controller timeout")
    row.locator("button:has-text('Retry all…')").click()
    assert page.inner_text("[data-dry-run-count]") == "4"
    page.click("[data-confirm-button]")
    page.wait_for_selector(".batch[data-batch-state='completed']", timeout=45_000)
    assert page.inner_text(".batch [data-done]") == "4"
    assert page.inner_text(".batch [data-pending]") == "0"


def test_admin_drains_a_cluster(walk: Walk, stack) -> None:  # type: ignore[no-untyped-def]
    walk.login("ada")
    page = walk.page
    page.goto("/clusters/")
    page.locator("tr[data-cluster='2'] button:has-text('Drain…')").click()
    assert "Stops placing new instances on cluster c2-spare" in page.inner_text(".modal")
    page.click("[data-confirm-button]")
    assert page.inner_text("[data-cluster-state]") == "Draining"
    from processes.models import Cluster

    with stack["blocker"].unblock():
        assert Cluster.objects.get(pk=2).state == "draining"


def test_viewer_sees_no_actions_and_a_forged_post_is_refused(walk: Walk, stack) -> None:  # type: ignore[no-untyped-def]
    walk.login("vera")
    page = walk.page
    page.goto(f"/instances/{stack['disks'][0]}/")
    assert page.locator("button.action").count() == 0
    page.goto("/incidents/")
    assert page.locator("button.action").count() == 0
    csrf = next(cookie["value"] for cookie in walk.context.cookies() if cookie["name"] == "csrftoken")
    from processes.models import Incident
    from processes.operations.models import Operation

    with stack["blocker"].unblock():
        incident = Incident.objects.filter(process_instance_id=stack["disks"][0]).order_by("-key").first()
        before = Operation.objects.count()
    response = page.request.post(
        f"/actions/cancel/{stack['disks'][0]}/",
        form={"csrfmiddlewaretoken": csrf},
        headers={"X-CSRFToken": csrf, "Referer": walk.base_url + "/"},
    )
    assert response.status == 403
    response = page.request.post(
        f"/actions/retry/{incident.key}/", form={"retries": "5"}, headers={"X-CSRFToken": csrf}
    )
    assert response.status == 403
    with stack["blocker"].unblock():
        assert Operation.objects.count() == before
    page.goto(f"/instances/{stack['disks'][0]}/")  # the screenshot shows the viewer's page
