"""Headless Chromium against the console with DEBUG off: every page loads under the Content
Security Policy with no violation, and the tenth wrong password in a row locks the login."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "browser-pw-123"
# /api/docs/ is left out: console/security.py exempts /api/ (Swagger UI runs its own scripts).
PAGES = [
    "/",
    "/instances/",
    "/incidents/",
    "/servers/",
    "/operations/",
    "/clusters/",
    "/admin/",
    "/admin/processes/apitoken/",
]
# Playwright's init scripts are not subject to the page's CSP: this listener sees every violation.
LISTEN = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber);
});
"""

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def browser_page() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian package 'chromium' (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.add_init_script(LISTEN)
            yield page
        finally:
            browser.close()


def submit_login(page: Any, base: str, username: str, password: str) -> int:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation() as navigation:
        page.click("button[type=submit]")
    response = navigation.value
    return int(response.status) if response is not None else 0


def test_pages_load_under_the_csp_with_no_violation(browser_page: Any, live_server: Any) -> None:
    User.objects.create_superuser("root", password=PASSWORD)
    page = browser_page
    console_errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.on("pageerror", lambda error: console_errors.append(str(error)))
    assert submit_login(page, live_server.url, "root", PASSWORD) == 200
    assert page.url.rstrip("/") == live_server.url.rstrip("/"), page.url  # signed in: the dashboard
    seen = {}
    for path in PAGES:
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200, (path, response and response.status)
        assert "Content-Security-Policy" in {k.title(): v for k, v in response.headers.items()}, path
        page.wait_for_load_state("networkidle")
        seen[path] = page.evaluate("window.__cspViolations")
    assert seen == {path: [] for path in PAGES}
    assert [e for e in console_errors if "Content Security Policy" in e or "Refused to" in e] == []


def test_tenth_wrong_password_locks_the_login(browser_page: Any, live_server: Any) -> None:
    User.objects.create_user("olga", password=PASSWORD)
    page = browser_page
    statuses = [submit_login(page, live_server.url, "olga", f"wrong-{n}") for n in range(1, 11)]
    assert statuses == [200] * 9 + [429]
    assert "locked" in page.content().lower()
    # the right password does not get in while the lock holds
    assert submit_login(page, live_server.url, "olga", PASSWORD) == 429
    assert page.evaluate("window.__cspViolations") == []
